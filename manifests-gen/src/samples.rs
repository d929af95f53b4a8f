//! The example LocustTests and LocustSchedules of `operator/samples/` — the
//! same files the tests apply — which become the CSV's `alm-examples`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Error;

/// Directory of the samples, relative to the workspace root.
pub const SAMPLES_DIR: &str = "operator/samples";

/// One LocustTest or LocustSchedule sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// File it came from.
    pub path: PathBuf,
    /// The object, as JSON.
    pub object: Value,
}

impl Sample {
    /// `apiVersion` of the object.
    pub fn api_version(&self) -> &str {
        self.object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// Every `LocustTest` and `LocustSchedule` in `<root>/operator/samples/*.yaml`
/// (other kinds, such as the demo ConfigMap, are skipped). Order: the
/// LocustTest storage version (`v2`) first, then by file name, so the console
/// offers the current API first.
pub fn load(root: &Path) -> Result<Vec<Sample>, Error> {
    let dir = root.join(SAMPLES_DIR);
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut samples = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let docs = crate::yaml::documents(&text).map_err(|e| Error::Input {
            path: path.clone(),
            message: crate::yaml::describe(&e, &path.display().to_string()),
        })?;
        for value in docs {
            let kind = value.get("kind").and_then(Value::as_str);
            let group = value
                .get("apiVersion")
                .and_then(Value::as_str)
                .and_then(|a| a.split_once('/'))
                .map(|(g, _)| g);
            let ours = [
                locust_operator::api::KIND,
                locust_operator::api::SCHEDULE_KIND,
            ];
            if kind.is_some_and(|k| ours.contains(&k)) && group == Some(locust_operator::api::GROUP)
            {
                samples.push(Sample {
                    path: path.clone(),
                    object: value,
                });
            }
        }
    }
    if samples.is_empty() {
        return Err(Error::Input {
            path: dir,
            message: "no LocustTest samples".to_owned(),
        });
    }
    let storage = format!("{}/v2", locust_operator::api::GROUP);
    samples.sort_by_key(|s| s.api_version() != storage);
    Ok(samples)
}

/// The `alm-examples` annotation: a JSON array of the samples, pretty-printed.
pub fn alm_examples(samples: &[Sample]) -> Result<String, Error> {
    let list: Vec<&Value> = samples.iter().map(|s| &s.object).collect();
    Ok(serde_json::to_string_pretty(&list)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_both_versions_and_skips_the_configmap() {
        let samples = load(&crate::workspace_root()).unwrap();
        let versions: Vec<&str> = samples.iter().map(Sample::api_version).collect();
        // v2 first, then by file name: locustschedule.yaml, locusttest-v1.yaml.
        assert_eq!(
            versions,
            vec!["locust.io/v2", "locust.io/v1alpha1", "locust.io/v1"]
        );
        assert!(samples.iter().all(|s| s.object["kind"] != "ConfigMap"));
    }

    #[test]
    fn samples_deserialize_into_the_api_types() {
        let samples = load(&crate::workspace_root()).unwrap();
        for s in &samples {
            match s.api_version() {
                "locust.io/v2" => {
                    serde_json::from_value::<locust_operator::api::v2::LocustTest>(
                        s.object.clone(),
                    )
                    .unwrap();
                }
                "locust.io/v1" => {
                    serde_json::from_value::<locust_operator::api::v1::LocustTest>(
                        s.object.clone(),
                    )
                    .unwrap();
                }
                locust_operator::api::SCHEDULE_API_VERSION => {
                    serde_json::from_value::<locust_operator::api::LocustSchedule>(
                        s.object.clone(),
                    )
                    .unwrap();
                }
                other => panic!("unexpected {other}"),
            }
        }
    }
}

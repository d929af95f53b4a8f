//! One registry+v1 bundle: `bundle/manifests/` (CRD, CSV, the metrics
//! Service and metrics-reader ClusterRole of [`crate::monitoring`]),
//! `bundle/metadata/annotations.yaml`, `bundle/tests/scorecard/config.yaml`
//! and `bundle.Dockerfile`.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use semver::Version;
use serde_json::{Value, json};

use crate::csv::CsvInputs;
use crate::releases::UpgradeGraph;
use crate::samples::Sample;
use crate::{Error, Options, yaml};

/// The operator-sdk module pin whose version the scorecard image follows.
pub const SDK_GO_MOD: &str = "olm-tests/tools/operator-sdk/go.mod";
/// Go module path of operator-sdk.
const SDK_MODULE: &str = "github.com/operator-framework/operator-sdk";

/// Inputs read once from the workspace.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// The bundle CRD.
    pub crd: CustomResourceDefinition,
    /// The CRD as JSON.
    pub crd_value: Value,
    /// The LocustSchedule CRD.
    pub schedule_crd: CustomResourceDefinition,
    /// The LocustSchedule CRD as JSON.
    pub schedule_crd_value: Value,
    /// The LocustTest samples.
    pub samples: Vec<Sample>,
    /// operator-sdk version in use (e.g. `v1.34.1`), for the scorecard image.
    pub sdk_version: String,
}

impl Inputs {
    /// Reads the samples and the operator-sdk pin under `root`.
    pub fn load(root: &Path) -> Result<Self, Error> {
        let crd = crate::crd::bundle_crd()?;
        let crd_value = crate::csv::sort_keys(serde_json::to_value(&crd)?);
        let schedule_crd = crate::crd::bundle_schedule_crd()?;
        let schedule_crd_value = crate::csv::sort_keys(serde_json::to_value(&schedule_crd)?);
        Ok(Self {
            crd,
            crd_value,
            schedule_crd,
            schedule_crd_value,
            samples: crate::samples::load(root)?,
            sdk_version: sdk_version(&root.join(SDK_GO_MOD))?,
        })
    }
}

/// The operator-sdk version required by the tools' `go.mod`.
pub fn sdk_version(go_mod: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(go_mod).map_err(|e| Error::io(go_mod, e))?;
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let first = words.next()?;
            let (module, version) = if first == "require" {
                (words.next()?, words.next()?)
            } else {
                (first, words.next()?)
            };
            (module == SDK_MODULE && version.starts_with('v')).then(|| version.to_owned())
        })
        .next()
        .ok_or_else(|| Error::Input {
            path: go_mod.to_owned(),
            message: format!("no {SDK_MODULE} requirement"),
        })
}

/// The scorecard test image.
pub fn scorecard_image(sdk_version: &str) -> String {
    format!("quay.io/operator-framework/scorecard-test:{sdk_version}")
}

/// Default operator image of `version`.
pub fn operator_image(version: &Version) -> String {
    format!("{}:{version}", crate::OPERATOR_IMAGE_REPO)
}

/// Bundle image of `version`.
pub fn bundle_image(version: &Version) -> String {
    format!("{}:v{version}", crate::BUNDLE_IMAGE_REPO)
}

/// A published bundle image, named by its `digest` (`sha256:...`).
pub fn bundle_image_by_digest(digest: &str) -> String {
    format!("{}@{digest}", crate::BUNDLE_IMAGE_REPO)
}

/// A rendered bundle.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// Bundle version.
    pub version: Version,
    /// Relative path → text (manifests, metadata, scorecard config, Dockerfile).
    pub files: BTreeMap<String, String>,
    /// The manifests as JSON, in file-name order (what `opm render` reads).
    pub objects: Vec<Value>,
    /// The CSV as JSON.
    pub csv: Value,
}

/// Renders the bundle of `version`. `opts.image` applies only when `version`
/// is the version being generated; other releases use their default image.
pub fn render(
    inputs: &Inputs,
    graph: &UpgradeGraph,
    version: &Version,
    opts: &Options,
) -> Result<Rendered, Error> {
    let release = graph
        .release(version)
        .ok_or_else(|| Error::InvalidRelease(format!("{version} is not a release")))?;
    let current = opts
        .version
        .clone()
        .or_else(|| graph.releases().last().map(|r| r.version.clone()));
    let is_current = current.as_ref() == Some(version);
    let image = match (&opts.image, is_current) {
        (Some(image), true) => image.clone(),
        _ => operator_image(version),
    };
    let edges = graph
        .csv_edges(version, &opts.default_channel)
        .ok_or_else(|| Error::InvalidRelease(format!("{version} has no channel entry")))?;
    let description = crate::description::render_for(version, graph, &opts.default_channel)?;
    let csv = crate::csv::csv(&CsvInputs {
        version,
        operator_image: image,
        channels: &release.channels,
        created_at: &release.created_at,
        edges,
        crd: &inputs.crd,
        schedule_crd: &inputs.schedule_crd,
        alm_examples: crate::samples::alm_examples(&inputs.samples)?,
        description,
        icon_base64: crate::description::icon_base64(),
    })?;

    let channels = release.channels.join(",");
    let mut files = BTreeMap::new();
    files.insert(crate::CRD_PATH.to_owned(), yaml::to_yaml(&inputs.crd_value));
    files.insert(
        crate::SCHEDULE_CRD_PATH.to_owned(),
        yaml::to_yaml(&inputs.schedule_crd_value),
    );
    files.insert(crate::CSV_PATH.to_owned(), yaml::to_yaml(&csv));
    files.insert(
        crate::ANNOTATIONS_PATH.to_owned(),
        annotations_yaml(&channels, &opts.default_channel),
    );
    let service = crate::monitoring::service();
    let reader_role = crate::monitoring::reader_role();
    files.insert(
        crate::monitoring::SERVICE_PATH.to_owned(),
        yaml::to_yaml(&service),
    );
    files.insert(
        crate::monitoring::READER_ROLE_PATH.to_owned(),
        yaml::to_yaml(&reader_role),
    );
    files.insert(
        crate::SCORECARD_PATH.to_owned(),
        yaml::to_yaml(&scorecard_config(&inputs.sdk_version)),
    );
    files.insert(
        crate::DOCKERFILE_PATH.to_owned(),
        dockerfile(&channels, &opts.default_channel),
    );

    // File-name order, as opm reads `manifests/`.
    let mut by_name = BTreeMap::new();
    by_name.insert(crate::CRD_PATH, inputs.crd_value.clone());
    by_name.insert(crate::SCHEDULE_CRD_PATH, inputs.schedule_crd_value.clone());
    by_name.insert(crate::CSV_PATH, csv.clone());
    by_name.insert(crate::monitoring::SERVICE_PATH, service);
    by_name.insert(crate::monitoring::READER_ROLE_PATH, reader_role);
    let objects = by_name.into_values().collect();
    Ok(Rendered {
        version: version.clone(),
        files,
        objects,
        csv,
    })
}

/// Bundle labels, in the order operator-sdk writes them: core, then scorecard.
fn labels(channels: &str, default_channel: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "operators.operatorframework.io.bundle.mediatype.v1",
            "registry+v1".to_owned(),
        ),
        (
            "operators.operatorframework.io.bundle.manifests.v1",
            "manifests/".to_owned(),
        ),
        (
            "operators.operatorframework.io.bundle.metadata.v1",
            "metadata/".to_owned(),
        ),
        (
            "operators.operatorframework.io.bundle.package.v1",
            crate::PACKAGE.to_owned(),
        ),
        (
            "operators.operatorframework.io.bundle.channels.v1",
            channels.to_owned(),
        ),
        (
            "operators.operatorframework.io.bundle.channel.default.v1",
            default_channel.to_owned(),
        ),
        (
            "operators.operatorframework.io.test.mediatype.v1",
            "scorecard+v1".to_owned(),
        ),
        (
            "operators.operatorframework.io.test.config.v1",
            "tests/scorecard/".to_owned(),
        ),
    ]
}

/// `metadata/annotations.yaml`: the same keys and values as the image labels.
pub fn annotations_yaml(channels: &str, default_channel: &str) -> String {
    let mut out = String::from("annotations:\n");
    for (i, (k, v)) in labels(channels, default_channel).into_iter().enumerate() {
        match i {
            0 => out.push_str("  # Core bundle annotations.\n"),
            6 => out.push_str("  # Annotations for testing.\n"),
            _ => {}
        }
        out.push_str(&format!(
            "  {}: {}\n",
            yaml::scalar_string(k),
            yaml::scalar_string(&v)
        ));
    }
    out
}

/// `bundle.Dockerfile`, at the root of the output directory.
pub fn dockerfile(channels: &str, default_channel: &str) -> String {
    let mut out = String::from(
        "# Generated by manifests-gen: do not edit. Build from the repository root:\n\
         #   docker build -f bundle.Dockerfile -t <bundle image> .\n\
         FROM scratch\n\n# Core bundle labels.\n",
    );
    for (i, (k, v)) in labels(channels, default_channel).into_iter().enumerate() {
        if i == 6 {
            out.push_str("\n# Labels for testing.\n");
        }
        out.push_str(&format!("LABEL {k}={v}\n"));
    }
    out.push_str(
        "\n# Copy files to locations specified by labels.\n\
         COPY bundle/manifests /manifests/\n\
         COPY bundle/metadata /metadata/\n\
         COPY bundle/tests/scorecard /tests/scorecard/\n",
    );
    out
}

/// The standard scorecard configuration: the `basic` and `olm` suites.
pub fn scorecard_config(sdk_version: &str) -> Value {
    let image = scorecard_image(sdk_version);
    let tests: Vec<Value> = [
        ("basic-check-spec", "basic"),
        ("olm-bundle-validation", "olm"),
        ("olm-crds-have-validation", "olm"),
        ("olm-crds-have-resources", "olm"),
        ("olm-spec-descriptors", "olm"),
        ("olm-status-descriptors", "olm"),
    ]
    .into_iter()
    .map(|(test, suite)| {
        json!({
            "entrypoint": ["scorecard-test", test],
            "image": image,
            "labels": {"suite": suite, "test": format!("{test}-test")},
            "storage": {"spec": {"mountPath": {}}},
        })
    })
    .collect();
    json!({
        "apiVersion": "scorecard.operatorframework.io/v1alpha3",
        "kind": "Configuration",
        "metadata": {"name": "config"},
        "stages": [{"parallel": true, "tests": tests}],
        "storage": {"spec": {"mountPath": {}}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_version_follows_the_tools_pin() {
        let v = sdk_version(&crate::workspace_root().join(SDK_GO_MOD)).unwrap();
        assert!(v.starts_with("v1."), "{v}");
        let cfg = scorecard_config(&v);
        for t in cfg["stages"][0]["tests"].as_array().unwrap() {
            assert_eq!(
                t["image"],
                format!("quay.io/operator-framework/scorecard-test:{v}")
            );
        }
        assert_eq!(cfg["stages"][0]["tests"].as_array().unwrap().len(), 6);
    }

    #[test]
    fn go_mod_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("go.mod");
        std::fs::write(
            &p,
            "module x\n\nrequire github.com/operator-framework/operator-sdk v1.2.3 // indirect\n",
        )
        .unwrap();
        assert_eq!(sdk_version(&p).unwrap(), "v1.2.3");
        std::fs::write(&p, "module x\nrequire (\n\tgithub.com/operator-framework/operator-sdk v1.9.0 // indirect\n)\n").unwrap();
        assert_eq!(sdk_version(&p).unwrap(), "v1.9.0");
        std::fs::write(&p, "module x\n").unwrap();
        assert!(sdk_version(&p).is_err());
    }

    #[test]
    fn annotations_and_dockerfile_labels_agree() {
        let a: Value = crate::yaml::from_str(&annotations_yaml("alpha,stable", "stable")).unwrap();
        let a = a["annotations"].as_object().unwrap();
        let d = dockerfile("alpha,stable", "stable");
        let labels: Vec<(&str, &str)> = d
            .lines()
            .filter_map(|l| l.strip_prefix("LABEL "))
            .filter_map(|l| l.split_once('='))
            .collect();
        assert_eq!(labels.len(), a.len());
        for (k, v) in labels {
            assert_eq!(a[k], v, "{k}");
        }
        assert_eq!(
            a["operators.operatorframework.io.bundle.channels.v1"],
            "alpha,stable"
        );
        assert_eq!(
            a["operators.operatorframework.io.bundle.channel.default.v1"],
            "stable"
        );
        assert_eq!(
            a["operators.operatorframework.io.bundle.mediatype.v1"],
            "registry+v1"
        );
        assert!(d.contains("COPY bundle/manifests /manifests/\n"));
        assert!(d.contains("COPY bundle/metadata /metadata/\n"));
    }
}

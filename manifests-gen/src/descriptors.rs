//! The CSV's spec and status descriptors: one table per root, with display
//! names and UI hints; descriptions come from the CRD schema (the API types'
//! doc comments).

use serde_json::{Value, json};

use crate::Error;
use crate::crd::schema_at;

/// A spec or status descriptor: the path, its display name and UI hints; the
/// description comes from the CRD schema.
pub struct Descriptor {
    path: &'static str,
    display_name: &'static str,
    x: &'static [&'static str],
}

/// A [`Descriptor`] (short, to keep the tables readable).
const fn d(
    path: &'static str,
    display_name: &'static str,
    x: &'static [&'static str],
) -> Descriptor {
    Descriptor {
        path,
        display_name,
        x,
    }
}

pub const TEXT: &str = "urn:alm:descriptor:com.tectonic.ui:text";
pub const NUMBER: &str = "urn:alm:descriptor:com.tectonic.ui:number";
pub const POD_COUNT: &str = "urn:alm:descriptor:com.tectonic.ui:podCount";
pub const RESOURCES: &str = "urn:alm:descriptor:com.tectonic.ui:resourceRequirements";
pub const PULL_POLICY: &str = "urn:alm:descriptor:com.tectonic.ui:imagePullPolicy";
pub const BOOLEAN: &str = "urn:alm:descriptor:com.tectonic.ui:booleanSwitch";
pub const CONFIG_MAP: &str = "urn:alm:descriptor:io.kubernetes:ConfigMap";
pub const ADVANCED: &str = "urn:alm:descriptor:com.tectonic.ui:advanced";
pub const STATUS_TEXT: &str = "urn:alm:descriptor:text";
pub const PHASE: &str = "urn:alm:descriptor:io.kubernetes.phase";
pub const CONDITIONS: &str = "urn:alm:descriptor:io.kubernetes.conditions";
pub const TIMESTAMP: &str = "urn:alm:descriptor:timestamp";

pub const V2_SPEC: &[Descriptor] = &[
    d("image", "Locust Image", &[TEXT]),
    d("imagePullPolicy", "Image Pull Policy", &[PULL_POLICY]),
    d("imagePullSecrets", "Image Pull Secrets", &[ADVANCED]),
    d("master", "Master", &[]),
    d("master.command", "Master Command", &[TEXT]),
    d("master.resources", "Master Resources", &[RESOURCES]),
    d("master.autostart", "Autostart", &[BOOLEAN]),
    d("master.autoquit", "Autoquit Settings", &[]),
    d("master.autoquit.enabled", "Autoquit", &[BOOLEAN]),
    d(
        "master.autoquit.timeout",
        "Autoquit Timeout (seconds)",
        &[NUMBER],
    ),
    d("master.extraArgs", "Master Extra Arguments", &[ADVANCED]),
    d("master.labels", "Master Pod Labels", &[ADVANCED]),
    d("master.annotations", "Master Pod Annotations", &[ADVANCED]),
    d("worker", "Worker", &[]),
    d("worker.command", "Worker Command", &[TEXT]),
    d("worker.replicas", "Worker Replicas", &[POD_COUNT]),
    d("worker.resources", "Worker Resources", &[RESOURCES]),
    d("worker.extraArgs", "Worker Extra Arguments", &[ADVANCED]),
    d(
        "worker.processesPerPod",
        "Locust Processes per Worker Pod",
        &[NUMBER],
    ),
    d("worker.labels", "Worker Pod Labels", &[ADVANCED]),
    d("worker.annotations", "Worker Pod Annotations", &[ADVANCED]),
    d("testFiles", "Test Files", &[]),
    d(
        "testFiles.configMapRef",
        "Locustfile ConfigMap",
        &[CONFIG_MAP],
    ),
    d(
        "testFiles.libConfigMapRef",
        "Library ConfigMap",
        &[CONFIG_MAP],
    ),
    d(
        "testFiles.srcMountPath",
        "Locustfile Mount Path",
        &[ADVANCED],
    ),
    d("testFiles.libMountPath", "Library Mount Path", &[ADVANCED]),
    d("thresholds", "Thresholds", &[]),
    d("thresholds.maxFailRatio", "Maximum Fail Ratio", &[NUMBER]),
    d(
        "thresholds.maxAverageResponseTime",
        "Maximum Average Response Time (ms)",
        &[NUMBER],
    ),
    d(
        "thresholds.maxP50ResponseTime",
        "Maximum Median Response Time (ms)",
        &[NUMBER],
    ),
    d(
        "thresholds.maxP90ResponseTime",
        "Maximum 90th Percentile Response Time (ms)",
        &[NUMBER],
    ),
    d(
        "thresholds.maxP95ResponseTime",
        "Maximum 95th Percentile Response Time (ms)",
        &[NUMBER],
    ),
    d(
        "thresholds.maxP99ResponseTime",
        "Maximum 99th Percentile Response Time (ms)",
        &[NUMBER],
    ),
    d(
        "thresholds.minRequestsPerSecond",
        "Minimum Requests per Second",
        &[NUMBER],
    ),
    d("output", "Report Files", &[ADVANCED]),
    d("webUI", "Web UI", &[ADVANCED]),
    d("scheduling", "Scheduling", &[ADVANCED]),
    d("env", "Environment", &[ADVANCED]),
    d("volumes", "Volumes", &[ADVANCED]),
    d("volumeMounts", "Volume Mounts", &[ADVANCED]),
    d("security", "Security", &[ADVANCED]),
    d("observability", "Observability", &[ADVANCED]),
];

/// v2 spec paths deliberately shown without a descriptor, with the reason.
/// Every other path of the v2 spec has a descriptor, or sits under one whose
/// UI hints show its whole subtree ([`uncovered`]); generation fails
/// otherwise, so a new field cannot reach the console unnamed.
pub const V2_SPEC_OPT_OUTS: &[(&str, &str)] = &[];

pub const V1_SPEC: &[Descriptor] = &[
    d("image", "Locust Image", &[TEXT]),
    d("imagePullPolicy", "Image Pull Policy", &[PULL_POLICY]),
    d("imagePullSecrets", "Image Pull Secrets", &[ADVANCED]),
    d("masterCommandSeed", "Master Command", &[TEXT]),
    d("workerCommandSeed", "Worker Command", &[TEXT]),
    d("workerReplicas", "Worker Replicas", &[POD_COUNT]),
    d("configMap", "Locustfile ConfigMap", &[CONFIG_MAP]),
    d("libConfigMap", "Library ConfigMap", &[CONFIG_MAP]),
    d("labels", "Labels", &[ADVANCED]),
    d("annotations", "Annotations", &[ADVANCED]),
    d("affinity", "Affinity", &[ADVANCED]),
    d("tolerations", "Tolerations", &[ADVANCED]),
];

/// The status is shared by both versions.
pub const STATUS: &[Descriptor] = &[
    d("phase", "Phase", &[PHASE]),
    d("conditions", "Conditions", &[CONDITIONS]),
    d("expectedWorkers", "Expected Workers", &[STATUS_TEXT]),
    d("connectedWorkers", "Connected Workers", &[STATUS_TEXT]),
    d("startTime", "Start Time", &[TIMESTAMP]),
    d("completionTime", "Completion Time", &[TIMESTAMP]),
    d("result.totalRequests", "Total Requests", &[STATUS_TEXT]),
    d("result.failedRequests", "Failed Requests", &[STATUS_TEXT]),
    d("result.failRatio", "Fail Ratio", &[STATUS_TEXT]),
    d(
        "result.requestsPerSecond",
        "Requests per Second",
        &[STATUS_TEXT],
    ),
    d(
        "result.p95ResponseTime",
        "95th Percentile Response Time (ms)",
        &[STATUS_TEXT],
    ),
];

/// The LocustSchedule spec. `template` is one advanced section: its `spec`
/// is a whole LocustTest spec, described by the LocustTest's own descriptors.
pub const SCHEDULE_SPEC: &[Descriptor] = &[
    d("schedule", "Schedule", &[TEXT]),
    d("timeZone", "Time Zone", &[TEXT]),
    d(
        "concurrencyPolicy",
        "Concurrency Policy",
        &[
            "urn:alm:descriptor:com.tectonic.ui:select:Allow",
            "urn:alm:descriptor:com.tectonic.ui:select:Forbid",
            "urn:alm:descriptor:com.tectonic.ui:select:Replace",
        ],
    ),
    d("suspend", "Suspend", &[BOOLEAN]),
    d(
        "startingDeadlineSeconds",
        "Starting Deadline (seconds)",
        &[NUMBER],
    ),
    d(
        "successfulTestsHistoryLimit",
        "Successful Tests to Keep",
        &[NUMBER],
    ),
    d("failedTestsHistoryLimit", "Failed Tests to Keep", &[NUMBER]),
    d("template", "Test Template", &[ADVANCED]),
];

/// The LocustSchedule status.
pub const SCHEDULE_STATUS: &[Descriptor] = &[
    d("conditions", "Conditions", &[CONDITIONS]),
    d("lastScheduleTime", "Last Schedule Time", &[TIMESTAMP]),
    d("nextScheduleTime", "Next Schedule Time", &[TIMESTAMP]),
    d("activeCount", "Active Tests", &[STATUS_TEXT]),
    d("lastResult", "Last Result", &[PHASE]),
];

/// The `specDescriptors` of the LocustSchedule: [`SCHEDULE_SPEC`], after the
/// same coverage check as [`spec_descriptors`] (no opt-outs).
pub fn schedule_spec_descriptors(schema: &Value) -> Result<Value, Error> {
    covered(schema, "LocustSchedule", SCHEDULE_SPEC, &[])?;
    descriptors(schema, "spec", SCHEDULE_SPEC)
}

/// An error naming the `kind`'s spec paths that `table` and `opt_outs` leave
/// without a descriptor ([`uncovered`]).
fn covered(
    schema: &Value,
    kind: &str,
    table: &[Descriptor],
    opt_outs: &[(&str, &str)],
) -> Result<(), Error> {
    let missing = uncovered(schema, "spec", table, opt_outs);
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Crd(format!(
        "{kind} spec paths without a CSV descriptor: {}; add each to the kind's table in \
         manifests-gen/src/descriptors.rs (or to its opt-outs with the reason)",
        missing.join(", "),
    )))
}

/// The descriptors of `root` (`spec` or `status`) with descriptions from
/// `schema`. A path the schema lacks (a renamed field) is an error.
pub fn descriptors(schema: &Value, root: &str, table: &[Descriptor]) -> Result<Value, Error> {
    let mut out = Vec::new();
    for d in table {
        let node = schema_at(schema, root, d.path).ok_or_else(|| {
            Error::Crd(format!(
                "descriptor path {root}.{} is not in the schema",
                d.path
            ))
        })?;
        let description = node
            .get("description")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Crd(format!("{root}.{} has no description", d.path)))?;
        let mut entry = json!({
            "path": d.path,
            "displayName": d.display_name,
            "description": description,
        });
        if !d.x.is_empty() {
            entry["x-descriptors"] = json!(d.x);
        }
        out.push(entry);
    }
    Ok(Value::Array(out))
}

/// The `specDescriptors` of the v2 entry: [`V2_SPEC`], after checking that
/// every v2 spec path is covered ([`uncovered`] with [`V2_SPEC_OPT_OUTS`]).
pub fn spec_descriptors(v2_schema: &Value) -> Result<Value, Error> {
    covered(v2_schema, "LocustTest v2", V2_SPEC, V2_SPEC_OPT_OUTS)?;
    descriptors(v2_schema, "spec", V2_SPEC)
}

/// The paths under `root` (object properties, recursively) that `table`
/// does not cover: a path is covered by its own descriptor, by an ancestor's
/// descriptor with UI hints (one widget for the whole subtree, e.g. resource
/// requirements or an advanced section), or by `opt_outs`. A descriptor
/// without hints (a group, e.g. `master`) covers only itself: its fields need
/// their own. Sorted.
pub fn uncovered(
    schema: &Value,
    root: &str,
    table: &[Descriptor],
    opt_outs: &[(&str, &str)],
) -> Vec<String> {
    fn walk(
        node: &Value,
        prefix: &str,
        table: &[Descriptor],
        opt_outs: &[(&str, &str)],
        out: &mut Vec<String>,
    ) {
        for (path, child) in properties(node, prefix) {
            if opt_outs.iter().any(|(p, _)| *p == path) {
                continue;
            }
            match table.iter().find(|d| d.path == path) {
                Some(d) if d.x.is_empty() => walk(child, &path, table, opt_outs, out),
                Some(_) => {}
                None => out.push(path),
            }
        }
    }
    let mut out = Vec::new();
    if let Some(node) = schema.get("properties").and_then(|p| p.get(root)) {
        walk(node, "", table, opt_outs, &mut out);
    }
    out.sort();
    out
}

/// The properties of a schema `node`, each with its dotted path below
/// `prefix` (`prefix.name`, or `name` at the top), in the schema's order.
pub(crate) fn properties<'a>(
    node: &'a Value,
    prefix: &'a str,
) -> impl Iterator<Item = (String, &'a Value)> + 'a {
    node.get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(move |(name, child)| {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            (path, child)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{bundle_crd, version_schema};

    fn v2() -> Value {
        version_schema(&bundle_crd().unwrap(), "v2").unwrap()
    }

    #[test]
    fn unknown_descriptor_paths_are_errors() {
        let bad = [d("worker.replicaz", "x", &[])];
        assert!(descriptors(&v2(), "spec", &bad).is_err());
    }

    #[test]
    fn every_v2_spec_path_has_a_descriptor() {
        assert_eq!(
            uncovered(&v2(), "spec", V2_SPEC, V2_SPEC_OPT_OUTS),
            Vec::<String>::new()
        );
        assert!(spec_descriptors(&v2()).is_ok());
        for (path, why) in V2_SPEC_OPT_OUTS {
            assert!(schema_at(&v2(), "spec", path).is_some(), "{path}");
            assert!(!why.trim().is_empty(), "{path}: say why");
        }
    }

    #[test]
    fn a_field_without_a_descriptor_fails_generation() {
        let schema = v2();
        // Dropping one descriptor of a group's field, or a whole section,
        // leaves those paths uncovered.
        let without = |path: &str| -> Vec<Descriptor> {
            V2_SPEC
                .iter()
                .filter(|d| d.path != path)
                .map(|x| d(x.path, x.display_name, x.x))
                .collect()
        };
        assert_eq!(
            uncovered(&schema, "spec", &without("worker.processesPerPod"), &[]),
            ["worker.processesPerPod"]
        );
        assert_eq!(
            uncovered(&schema, "spec", &without("webUI"), &[]),
            ["webUI"]
        );
        // A group without hints needs its fields; one with hints covers them.
        let thresholds_group_only: Vec<Descriptor> = V2_SPEC
            .iter()
            .filter(|x| !x.path.starts_with("thresholds."))
            .map(|x| d(x.path, x.display_name, x.x))
            .collect();
        assert_eq!(
            uncovered(&schema, "spec", &thresholds_group_only, &[]).len(),
            7
        );
        // An opt-out covers the path and its subtree.
        assert_eq!(
            uncovered(&schema, "spec", &without("webUI"), &[("webUI", "test")]),
            Vec::<String>::new()
        );
    }
}

//! docs/api.md is generated from the CRD schema (the Rust types' doc comments,
//! defaults, enums and bounds) and the validation rule table, and this test
//! keeps it so. Regenerate with:
//!   UPDATE_API_DOC=1 cargo test -p locust-k8s-operator --test api_reference

use std::fmt::Write as _;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use locust_operator::crd::{SCHEDULE_VERSION, crd, schedule_crd};
use locust_operator::validation::schedule_rules::SCHEDULE_RULES;
use locust_operator::validation::{RULES, V1_RULES};

/// Fields whose type is a core Kubernetes type, by `version:path`:
/// documented by Kubernetes, not expanded here. Keyed by path, not by field
/// name: v1's `affinity` (node label → value) and `imagePullSecrets` (plain
/// names) share names with v2's core types but are not them.
const CORE_TYPES: &[(&str, &str)] = &[
    ("v2:spec.env.variables", "[]core/v1 EnvVar"),
    ("v2:spec.imagePullSecrets", "[]core/v1 LocalObjectReference"),
    ("v2:spec.master.resources", "core/v1 ResourceRequirements"),
    ("v2:spec.worker.resources", "core/v1 ResourceRequirements"),
    ("v2:spec.scheduling.affinity", "core/v1 Affinity"),
    ("v2:spec.scheduling.tolerations", "[]core/v1 Toleration"),
    (
        "v2:spec.security.containerSecurityContext",
        "core/v1 SecurityContext",
    ),
    (
        "v2:spec.security.podSecurityContext",
        "core/v1 PodSecurityContext",
    ),
    ("v2:spec.volumes", "[]core/v1 Volume"),
    ("v2:status.conditions", "[]meta/v1 Condition"),
    ("v1:spec.tolerations", "[]core/v1 Toleration"),
    ("v1:status.conditions", "[]meta/v1 Condition"),
    (
        "v1alpha1:spec.template.spec",
        "LocustTest v2 `spec` (above)",
    ),
    ("v1alpha1:status.conditions", "[]meta/v1 Condition"),
    (
        "v1alpha1:status.lastSuccessfulTest.result",
        "LocustTest v2 `status.result` (above)",
    ),
    (
        "v1alpha1:status.lastFailedTest.result",
        "LocustTest v2 `status.result` (above)",
    ),
];

fn core_type(version: &str, path: &str) -> Option<&'static str> {
    let key = format!("{version}:{path}");
    CORE_TYPES.iter().find(|(k, _)| *k == key).map(|(_, t)| *t)
}

fn type_of(s: &JSONSchemaProps) -> String {
    if s.x_kubernetes_int_or_string == Some(true) {
        return "int-or-string".into();
    }
    match s.type_.as_deref() {
        Some("array") => {
            let item = s
                .items
                .as_ref()
                .and_then(|i| match i {
                    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(s) => {
                        Some(type_of(s))
                    }
                    _ => None,
                })
                .unwrap_or_default();
            format!("[]{item}")
        }
        Some("object") if s.additional_properties.is_some() => "map[string]string".into(),
        Some(t) => t.to_owned(),
        None => "any".into(),
    }
}

fn constraints(s: &JSONSchemaProps) -> String {
    let mut c = Vec::new();
    if let Some(e) = &s.enum_ {
        let vals: Vec<String> = e
            .iter()
            .filter_map(|v| v.0.as_str())
            .map(|v| format!("`{v}`"))
            .collect();
        c.push(format!("one of {}", vals.join(", ")));
    }
    if let Some(m) = s.minimum {
        c.push(format!("≥ {m}"));
    }
    if let Some(m) = s.maximum {
        c.push(format!("≤ {m}"));
    }
    if let Some(m) = s.max_items {
        c.push(format!("≤ {m} items"));
    }
    if let Some(m) = s.max_length {
        c.push(format!("≤ {m} chars"));
    }
    c.join("; ")
}

fn clean(d: &str) -> String {
    d.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn walk(out: &mut String, version: &str, path: &str, s: &JSONSchemaProps, required: bool) {
    let core = core_type(version, path);
    let default = s
        .default
        .as_ref()
        .map(|d| format!("`{}`", serde_json::to_string(&d.0).unwrap_or_default()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "| `{path}` | {} | {} | {} | {} | {} |",
        core.map_or_else(|| type_of(s), str::to_owned),
        if required { "yes" } else { "" },
        default,
        constraints(s),
        clean(s.description.as_deref().unwrap_or_default())
    );
    if core.is_some() {
        return;
    }
    let (props, req) = match (&s.properties, &s.items) {
        (Some(p), _) => (Some(p), s.required.clone().unwrap_or_default()),
        (None, Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(i))) => {
            (i.properties.as_ref(), i.required.clone().unwrap_or_default())
        }
        _ => (None, Vec::new()),
    };
    let sep = if s.type_.as_deref() == Some("array") {
        "[]."
    } else {
        "."
    };
    if let Some(props) = props {
        for (k, v) in props {
            walk(out, version, &format!("{path}{sep}{k}"), v, req.contains(k));
        }
    }
}

fn version_section(out: &mut String, crd: &CustomResourceDefinition, version: &str) {
    let Some(v) = crd.spec.versions.iter().find(|v| v.name == version) else {
        panic!("no version {version}");
    };
    let schema = v
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("schema");
    let props = schema.properties.as_ref().expect("properties");
    for top in ["spec", "status"] {
        let Some(s) = props.get(top) else { continue };
        let _ = writeln!(out, "\n### `{top}`\n");
        let _ = writeln!(
            out,
            "| Field | Type | Required | Default | Constraints | Description |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        let req = s.required.clone().unwrap_or_default();
        for (k, p) in s.properties.iter().flatten() {
            walk(out, version, &format!("{top}.{k}"), p, req.contains(k));
        }
    }
}

/// How the mount path rules (`*-mount-path-conflict`) decide, and why.
const MOUNT_PATHS: &str = "
#### Mount paths

Two mount paths conflict when they are equal or one contains the other, a trailing `/` ignored: \
`/a` conflicts with `/a`, `/a/` and `/a/b` (and `/` with every absolute path), not with `/ab` or `/b`. \
The paths compared are `testFiles.srcMountPath` (when `configMapRef` is set), `testFiles.libMountPath` \
(when `libConfigMapRef` is set), every `env.secretMounts[].mountPath` (mounted in both containers) and every \
`volumeMounts[].mountPath`; two volume mounts are compared only when their `target`s share a container \
(`master` and `worker` never do, `both` shares with either). Each conflicting pair is reported once, at the \
field of the later of the two in the order `spec.testFiles.libMountPath`, `spec.volumeMounts`, \
`spec.env.secretMounts` (so a volume mount over a secret is reported at the secret), always with the \
same message.

Why: a mount at or above the test files or the library hides them, and a mount inside one of the \
operator's ConfigMap or Secret volumes fails when the container starts, because the runtime cannot create \
its mount point in a read-only volume. Kubernetes itself accepts a mount nested in a writable volume, but \
within one container the rule rejects every nesting alike; to give several directories one writable \
volume, mount it once and use its subdirectories, or mount it at separate, non-nested paths with `subPath`. \
Paths are compared as written, which is sound because every mount path must also be written plainly: absolute, with no empty (`/a//b`), `.` or `..` part (the `*-absolute` rules below).
";

fn render() -> String {
    let mut out = String::from(
        "# API reference: `LocustTest` (`locust.io`)\n\n\
         <!-- Generated from the CRD schema by operator/tests/api_reference.rs; do not edit. -->\n\n\
         Kind `LocustTest`, plural `locusttests`, short name `lotest`, category `locust`, namespaced. \
         `v2` is served and stored; `v1` is served, deprecated (\"locust.io/v1 LocustTest is deprecated, \
         migrate to locust.io/v2\") and converted by the operator's conversion webhook, losslessly in both \
         directions (what v1 cannot express is kept in the `locust.io/v2-spec` annotation of the v1 view). \
         `kubectl explain lotest.spec` shows the same descriptions.\n\n\
         Fields typed as core Kubernetes types (`core/v1 Volume`, `EnvVar`, `Affinity`, ...) accept \
         exactly what a Pod accepts.\n\n## `locust.io/v2`\n",
    );
    version_section(&mut out, &crd(), "v2");
    out.push_str("\n### Validation rules (v2)\n\nEnforced by the API server (CEL, in the CRD) and by the validating webhook, with the same messages:\n\n| Rule | Field | Message |\n|---|---|---|\n");
    for r in RULES {
        let _ = writeln!(out, "| `{}` | `{}` | {} |", r.id, r.field, clean(r.message));
    }
    out.push_str(
        "\nThe webhook also rejects `spec.master.command` / `spec.worker.command` values that do not split \
         like a shell command line (unbalanced quotes, or a lone backslash at the end), which CEL cannot express.\n",
    );
    out.push_str(MOUNT_PATHS);
    out.push_str("\n## `locust.io/v1` (deprecated)\n");
    version_section(&mut out, &crd(), "v1");
    out.push_str("\n### Validation rules (v1)\n\n| Rule | Field | Message |\n|---|---|---|\n");
    for r in V1_RULES {
        let _ = writeln!(out, "| `{}` | `{}` | {} |", r.id, r.field, clean(r.message));
    }
    out.push_str(
        "\n### v1 → v2 field mapping\n\n\
         | v1 | v2 |\n|---|---|\n\
         | `masterCommandSeed` | `master.command` |\n\
         | `workerCommandSeed` | `worker.command` |\n\
         | `workerReplicas` | `worker.replicas` |\n\
         | `image`, `imagePullPolicy` | same |\n\
         | `imagePullSecrets` (names) | `imagePullSecrets` (`{name}` objects) |\n\
         | `configMap` | `testFiles.configMapRef` |\n\
         | `libConfigMap` | `testFiles.libConfigMapRef` |\n\
         | `labels.master` / `labels.worker` | `master.labels` / `worker.labels` |\n\
         | `annotations.master` / `annotations.worker` | `master.annotations` / `worker.annotations` |\n\
         | `affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution` (key → value) | `scheduling.affinity` (one node selector term, one `In` expression per key) |\n\
         | `tolerations` | `scheduling.tolerations` |\n\
         | — | every other v2 field takes its default |\n\n\
         Convert manifests with `locust-k8s-operator convert -f old.yaml --to v2`.\n",
    );
    out.push_str(
        "\n# API reference: `LocustSchedule` (`locust.io/v1alpha1`)\n\n\
         Kind `LocustSchedule`, plural `locustschedules`, short name `loschedule`, category `locust`, \
         namespaced, one version (`v1alpha1`). A schedule creates a LocustTest from `spec.template` at \
         every time `spec.schedule` names, like a CronJob creates Jobs: see docs/schedules.md. \
         `spec.template.spec` is a whole v2 LocustTest spec, validated by every v2 rule above \
         (reported under `spec.template.spec`).\n",
    );
    version_section(&mut out, &schedule_crd(), SCHEDULE_VERSION);
    out.push_str("\n### Validation rules (v1alpha1)\n\nEnforced by the API server (CEL) and by the validating webhook, with the same messages; the webhook and `locust-k8s-operator validate -f` also parse `spec.schedule` and look up `spec.timeZone` in the IANA database:\n\n| Rule | Field | Message |\n|---|---|---|\n");
    for r in SCHEDULE_RULES {
        let _ = writeln!(out, "| `{}` | `{}` | {} |", r.id, r.field, clean(r.message));
    }
    out
}

#[test]
fn api_reference_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let want = render();
    if std::env::var_os("UPDATE_API_DOC").is_some() {
        std::fs::write(&path, &want).expect("writing docs/api.md");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/api.md is out of date: run `UPDATE_API_DOC=1 cargo test -p locust-k8s-operator --test api_reference`"
    );
}

/// A property only the real core type has, for each core type the reference
/// names: v1's `affinity` (a node label map) would not pass as `Affinity`.
const CORE_TYPE_MARKERS: &[(&str, &str)] = &[
    ("core/v1 EnvVar", "valueFrom"),
    ("core/v1 LocalObjectReference", "name"),
    ("core/v1 ResourceRequirements", "limits"),
    ("core/v1 Affinity", "podAntiAffinity"),
    ("core/v1 Toleration", "tolerationSeconds"),
    ("core/v1 SecurityContext", "capabilities"),
    ("core/v1 PodSecurityContext", "fsGroup"),
    ("core/v1 Volume", "configMap"),
    ("meta/v1 Condition", "lastTransitionTime"),
    ("LocustTest v2 `spec` (above)", "worker"),
    ("LocustTest v2 `status.result` (above)", "totalRequests"),
];

fn schema_at<'a>(root: &'a JSONSchemaProps, path: &str) -> Option<&'a JSONSchemaProps> {
    path.split('.')
        .try_fold(root, |s, part| s.properties.as_ref()?.get(part))
}

fn items(s: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match s.items.as_ref()? {
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(i) => Some(i),
        _ => None,
    }
}

#[test]
fn core_typed_fields_have_the_core_types_schema() {
    let crds = [crd(), schedule_crd()];
    for (key, ty) in CORE_TYPES {
        let (version, path) = key.split_once(':').expect("version:path");
        let root = crds
            .iter()
            .flat_map(|crd| &crd.spec.versions)
            .find(|v| v.name == *version)
            .and_then(|v| v.schema.as_ref()?.open_api_v3_schema.as_ref())
            .unwrap_or_else(|| panic!("no schema for {version}"));
        let s = schema_at(root, path).unwrap_or_else(|| panic!("{version} has no {path}"));
        let (element, name) = match ty.strip_prefix("[]") {
            Some(name) => (
                items(s).unwrap_or_else(|| panic!("{version} {path} is not a list")),
                name,
            ),
            None => {
                assert_ne!(
                    s.type_.as_deref(),
                    Some("array"),
                    "{version} {path} is a list"
                );
                (s, *ty)
            }
        };
        let (_, marker) = CORE_TYPE_MARKERS
            .iter()
            .find(|(t, _)| *t == name)
            .unwrap_or_else(|| panic!("no marker for {name}"));
        assert!(
            element
                .properties
                .as_ref()
                .is_some_and(|p| p.contains_key(*marker)),
            "{version} {path} is documented as {ty} but its schema has no {marker}"
        );
    }
}

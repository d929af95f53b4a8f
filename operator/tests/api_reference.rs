//! docs/api.md is generated from the CRD schema (the Rust types' doc comments,
//! defaults, enums and bounds) and the validation rule table, and this test
//! keeps it so. Regenerate with:
//!   UPDATE_API_DOC=1 cargo test -p locust-k8s-operator --test api_reference

use std::fmt::Write as _;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use locust_operator::crd::crd;
use locust_operator::validation::{RULES, V1_RULES};

/// Fields whose type is a core Kubernetes type: documented by Kubernetes, not
/// expanded here.
const CORE_TYPES: &[(&str, &str)] = &[
    ("affinity", "core/v1 Affinity"),
    ("tolerations", "[]core/v1 Toleration"),
    ("volumes", "[]core/v1 Volume"),
    ("variables", "[]core/v1 EnvVar"),
    ("resources", "core/v1 ResourceRequirements"),
    ("podSecurityContext", "core/v1 PodSecurityContext"),
    ("containerSecurityContext", "core/v1 SecurityContext"),
    ("imagePullSecrets", "[]core/v1 LocalObjectReference"),
    ("conditions", "[]meta/v1 Condition"),
];

fn type_of(name: &str, s: &JSONSchemaProps) -> String {
    if let Some((_, t)) = CORE_TYPES.iter().find(|(n, _)| *n == name) {
        return t.to_string();
    }
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
                        Some(type_of("", s))
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

fn walk(out: &mut String, path: &str, name: &str, s: &JSONSchemaProps, required: bool) {
    let default = s
        .default
        .as_ref()
        .map(|d| format!("`{}`", serde_json::to_string(&d.0).unwrap_or_default()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "| `{path}` | {} | {} | {} | {} | {} |",
        type_of(name, s),
        if required { "yes" } else { "" },
        default,
        constraints(s),
        clean(s.description.as_deref().unwrap_or_default())
    );
    if CORE_TYPES.iter().any(|(n, _)| *n == name) {
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
            walk(out, &format!("{path}{sep}{k}"), k, v, req.contains(k));
        }
    }
}

fn version_section(out: &mut String, version: &str) {
    let crd = crd();
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
            walk(out, &format!("{top}.{k}"), k, p, req.contains(k));
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
Paths are compared as written: `.`, `..` and repeated slashes (`/a//b`) are not resolved.
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
    version_section(&mut out, "v2");
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
    version_section(&mut out, "v1");
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

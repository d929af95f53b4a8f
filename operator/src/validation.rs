//! Admission rules for `LocustTest`, declared once and enforced twice.
//!
//! Every rule that CEL can express is a [`Rule`]: a CEL expression that
//! [`crate::crd`] injects into the CRD schema (`x-kubernetes-validations`), so
//! the API server rejects bad objects even with no webhook running, plus a Rust
//! mirror (`check`) that the validating webhook and the `validate` CLI run. Both
//! report the same `message`, at the same field.
//!
//! [`validate`] (v2) and [`validate_v1`] return every violation, in a fixed
//! order:
//! 1. the checks the CRD's OpenAPI schema makes (required fields, types, enums,
//!    `minimum`/`maximum`, `maxItems`/`maxLength`, unknown fields), read from the
//!    generated schema itself so they can never drift from it;
//! 2. the CEL rules ([`RULES`], [`V1_RULES`]) in declaration order;
//! 3. the webhook-only rules CEL cannot express ([`WEBHOOK_RULES`],
//!    [`V1_WEBHOOK_RULES`]): the commands must split like a shell would.
//!
//! [`validate_value`] takes an untyped object (a manifest read by the CLI) and
//! runs the same checks for whichever version its `apiVersion` names.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::LazyLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde::Serialize;
use serde_json::Value;

use crate::api::v1;
use crate::api::v2::LocustTest;
use crate::resources::is_reserved_volume_name;

/// Longest accepted `metadata.name`: the operator names its resources
/// `<name>-master` and `<name>-worker`, which must fit in 63 characters.
pub const MAX_NAME_LENGTH: usize = 56;

/// Errors of this module. Validation itself never fails: it returns
/// [`Violation`]s. These describe why an object could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// The object could not be serialized to JSON for the schema checks.
    #[error("cannot serialize the object for validation: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The CRD schema of a version could not be found.
    #[error("the CRD has no schema for version {0}")]
    MissingSchema(&'static str),
}

impl ValidationError {
    /// CamelCase reason, for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ValidationError::Serialize(_) => "ValidationSerializeFailed",
            ValidationError::MissingSchema(_) => "ValidationSchemaMissing",
        }
    }
}

/// The `reason` a CEL rule reports; the API server turns it into the error's
/// type (`Invalid value`, `Required value`, `Forbidden`). `FieldValueDuplicate`
/// is deliberately absent: the API server drops the rule's message for it, so
/// uniqueness rules report `FieldValueInvalid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CelReason {
    /// `FieldValueInvalid`.
    Invalid,
    /// `FieldValueRequired`.
    Required,
    /// `FieldValueForbidden`.
    Forbidden,
}

impl CelReason {
    /// The value of the rule's `reason` in the CRD.
    pub fn as_str(self) -> &'static str {
        match self {
            CelReason::Invalid => "FieldValueInvalid",
            CelReason::Required => "FieldValueRequired",
            CelReason::Forbidden => "FieldValueForbidden",
        }
    }
}

/// One admission rule, expressed both as CEL (for the CRD) and in Rust.
///
/// `T` is the typed object the Rust mirror checks: the v2 [`LocustTest`] by
/// default, [`v1::LocustTest`] for [`V1_RULES`].
#[derive(Debug)]
pub struct Rule<T: 'static = LocustTest> {
    /// Stable kebab-case identifier.
    pub id: &'static str,
    /// Schema location the CEL rule is attached to, as property names from
    /// the root object: `&[]` is the root, `&["spec", "volumes"]` the volume list.
    pub at: &'static [&'static str],
    /// CEL expression; `self` is the object at `at`.
    pub cel: &'static str,
    /// CEL `fieldPath`, relative to `at` (e.g. `".volumeMounts"`), or `""`.
    pub field_path: &'static str,
    /// Full path of the reported field: `at` joined by `.`, plus `field_path`.
    pub field: &'static str,
    /// Message, identical in CEL and Rust; names the field and the fix.
    pub message: &'static str,
    /// CEL `reason`.
    pub reason: CelReason,
    /// Rust mirror of `cel`: `true` when the object is valid.
    pub check: fn(&T) -> bool,
}

/// A rule CEL cannot express, enforced only by the validating webhook (and the CLI).
#[derive(Debug)]
pub struct WebhookRule<T: 'static = LocustTest> {
    /// Stable kebab-case identifier.
    pub id: &'static str,
    /// Full path of the reported field.
    pub field: &'static str,
    /// Message naming the field and the fix.
    pub message: &'static str,
    /// `true` when the object is valid.
    pub check: fn(&T) -> bool,
}

/// One reason an object is rejected. Displays as `<field>: <message>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Full path of the offending field, e.g. `spec.volumeMounts`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Id of the [`Rule`] or [`WebhookRule`] that failed; `None` for checks
    /// made by the OpenAPI schema itself.
    pub rule: Option<&'static str>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl Violation {
    fn schema(field: String, message: String) -> Self {
        Self {
            field,
            message,
            rule: None,
        }
    }
}

// --- Messages shared by v2 and v1 -------------------------------------------------

const NAME_LENGTH_CEL: &str = "!has(self.metadata.name) || size(self.metadata.name) <= 56";
const NAME_LENGTH_MESSAGE: &str = "metadata.name must be at most 56 characters so that the operator's <name>-master and <name>-worker resources fit in 63; choose a shorter name";
const IMAGE_MESSAGE: &str =
    "spec.image must not be empty; set the Locust container image, e.g. locustio/locust:2.43.1";
const NOT_BLANK_CEL: &str = "self.trim() != ''";

// --- Rust mirrors of the v2 rules -------------------------------------------------

fn name_length_ok(name: Option<&str>) -> bool {
    name.is_none_or(|n| n.chars().count() <= MAX_NAME_LENGTH)
}

fn not_blank(s: &str) -> bool {
    !s.trim().is_empty()
}

fn test_files(t: &LocustTest) -> Option<&crate::api::v2::TestFilesSpec> {
    t.spec.test_files.as_ref()
}

/// Mount paths the operator itself uses for test files: `(src, lib)`, each
/// present only when its ConfigMap is referenced.
fn active_test_file_paths(t: &LocustTest) -> (Option<&str>, Option<&str>) {
    match test_files(t) {
        Some(tf) => (
            tf.config_map_ref
                .as_ref()
                .map(|_| tf.src_mount_path.as_str()),
            tf.lib_config_map_ref
                .as_ref()
                .map(|_| tf.lib_mount_path.as_str()),
        ),
        None => (None, None),
    }
}

fn secret_mounts(t: &LocustTest) -> &[crate::api::v2::SecretMount] {
    t.spec
        .env
        .as_ref()
        .map(|e| e.secret_mounts.as_slice())
        .unwrap_or_default()
}

fn all_unique<'a>(items: impl IntoIterator<Item = &'a str>) -> bool {
    let mut seen = BTreeSet::new();
    items.into_iter().all(|item| seen.insert(item))
}

fn check_name_length(t: &LocustTest) -> bool {
    name_length_ok(t.metadata.name.as_deref())
}

fn check_image(t: &LocustTest) -> bool {
    not_blank(&t.spec.image)
}

fn check_master_command(t: &LocustTest) -> bool {
    not_blank(&t.spec.master.command)
}

fn check_worker_command(t: &LocustTest) -> bool {
    not_blank(&t.spec.worker.command)
}

fn check_otel_endpoint(t: &LocustTest) -> bool {
    t.spec
        .observability
        .as_ref()
        .and_then(|o| o.open_telemetry.as_ref())
        .is_none_or(|otel| !otel.enabled || otel.endpoint.as_deref().is_some_and(not_blank))
}

fn check_volume_mounts_known(t: &LocustTest) -> bool {
    let volumes: BTreeSet<&str> = t.spec.volumes.iter().map(|v| v.name.as_str()).collect();
    t.spec
        .volume_mounts
        .iter()
        .all(|m| volumes.contains(m.mount.name.as_str()))
}

fn check_volume_names_unique(t: &LocustTest) -> bool {
    all_unique(t.spec.volumes.iter().map(|v| v.name.as_str()))
}

fn check_volume_names_reserved(t: &LocustTest) -> bool {
    !t.spec
        .volumes
        .iter()
        .any(|v| is_reserved_volume_name(&v.name))
}

fn check_volume_mount_paths_free(t: &LocustTest) -> bool {
    let (src, lib) = active_test_file_paths(t);
    let mut operator_paths: BTreeSet<&str> = src.into_iter().chain(lib).collect();
    operator_paths.extend(secret_mounts(t).iter().map(|s| s.mount_path.as_str()));
    !t.spec
        .volume_mounts
        .iter()
        .any(|m| operator_paths.contains(m.mount.mount_path.as_str()))
}

fn check_secret_mount_paths_unique(t: &LocustTest) -> bool {
    all_unique(secret_mounts(t).iter().map(|s| s.mount_path.as_str()))
}

fn check_secret_mount_paths_free(t: &LocustTest) -> bool {
    let (src, lib) = active_test_file_paths(t);
    secret_mounts(t)
        .iter()
        .all(|s| Some(s.mount_path.as_str()) != src && Some(s.mount_path.as_str()) != lib)
}

fn check_test_file_paths_distinct(t: &LocustTest) -> bool {
    test_files(t).is_none_or(|tf| {
        tf.config_map_ref.is_none()
            || tf.lib_config_map_ref.is_none()
            || tf.src_mount_path != tf.lib_mount_path
    })
}

fn check_src_mount_path_absolute(t: &LocustTest) -> bool {
    test_files(t).is_none_or(|tf| tf.src_mount_path.starts_with('/'))
}

fn check_lib_mount_path_absolute(t: &LocustTest) -> bool {
    test_files(t).is_none_or(|tf| tf.lib_mount_path.starts_with('/'))
}

fn check_secret_mount_paths_absolute(t: &LocustTest) -> bool {
    secret_mounts(t)
        .iter()
        .all(|s| s.mount_path.starts_with('/'))
}

fn check_volume_mount_paths_absolute(t: &LocustTest) -> bool {
    t.spec
        .volume_mounts
        .iter()
        .all(|m| m.mount.mount_path.starts_with('/'))
}

/// Every enabled output file of the master (an enabled file without a path counts as `""`).
fn enabled_output_paths(t: &LocustTest) -> Vec<&str> {
    let Some(o) = t.spec.output.as_ref() else {
        return Vec::new();
    };
    fn file(f: Option<&crate::api::v2::FileOutput>) -> Option<&str> {
        f.filter(|f| f.enabled)
            .map(|f| f.path.as_deref().unwrap_or(""))
    }
    let csv = o
        .csv
        .as_ref()
        .filter(|c| c.enabled)
        .map(|c| c.prefix.as_deref().unwrap_or(""));
    [
        file(o.html_report.as_ref()),
        file(o.json_file.as_ref()),
        csv,
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn check_output_paths_on_master_volume(t: &LocustTest) -> bool {
    enabled_output_paths(t).iter().all(|p| {
        t.spec.volume_mounts.iter().any(|m| {
            let mp = &m.mount.mount_path;
            let dir = if mp.ends_with('/') {
                mp.clone()
            } else {
                format!("{mp}/")
            };
            m.target.includes_master() && p.starts_with(&dir) && p.len() > dir.len()
        })
    })
}

/// The v2 rules, each a CEL expression in the CRD and a Rust mirror.
pub static RULES: &[Rule] = &[
    Rule {
        id: "name-length",
        at: &[],
        cel: NAME_LENGTH_CEL,
        field_path: ".metadata.name",
        field: "metadata.name",
        message: NAME_LENGTH_MESSAGE,
        reason: CelReason::Invalid,
        check: check_name_length,
    },
    Rule {
        id: "image-required",
        at: &["spec", "image"],
        cel: NOT_BLANK_CEL,
        field_path: "",
        field: "spec.image",
        message: IMAGE_MESSAGE,
        reason: CelReason::Required,
        check: check_image,
    },
    Rule {
        id: "master-command-required",
        at: &["spec", "master", "command"],
        cel: NOT_BLANK_CEL,
        field_path: "",
        field: "spec.master.command",
        message: "spec.master.command must not be empty or blank; set the master's base command, e.g. \"locust -f /lotest/src/locustfile.py\"",
        reason: CelReason::Required,
        check: check_master_command,
    },
    Rule {
        id: "worker-command-required",
        at: &["spec", "worker", "command"],
        cel: NOT_BLANK_CEL,
        field_path: "",
        field: "spec.worker.command",
        message: "spec.worker.command must not be empty or blank; set the workers' base command, e.g. \"locust -f /lotest/src/locustfile.py\"",
        reason: CelReason::Required,
        check: check_worker_command,
    },
    Rule {
        id: "otel-endpoint-required",
        at: &["spec", "observability", "openTelemetry"],
        cel: "!has(self.enabled) || !self.enabled || (has(self.endpoint) && self.endpoint.trim() != '')",
        field_path: ".endpoint",
        field: "spec.observability.openTelemetry.endpoint",
        message: "spec.observability.openTelemetry.endpoint is required when openTelemetry.enabled is true; set the OTLP collector endpoint, e.g. otel-collector.monitoring:4317, or disable OpenTelemetry",
        reason: CelReason::Required,
        check: check_otel_endpoint,
    },
    Rule {
        id: "volume-mount-unknown-volume",
        at: &["spec"],
        cel: "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.name))",
        field_path: ".volumeMounts",
        field: "spec.volumeMounts",
        message: "every spec.volumeMounts[].name must be the name of a volume in spec.volumes; add the volume to spec.volumes or correct the mount's name",
        reason: CelReason::Invalid,
        check: check_volume_mounts_known,
    },
    Rule {
        id: "volume-names-unique",
        at: &["spec", "volumes"],
        cel: "self.all(v, self.exists_one(w, w.name == v.name))",
        field_path: "",
        field: "spec.volumes",
        message: "spec.volumes[].name must be unique; rename or remove the duplicate volume",
        reason: CelReason::Invalid,
        check: check_volume_names_unique,
    },
    Rule {
        id: "volume-names-reserved",
        at: &["spec", "volumes"],
        cel: "self.all(v, v.name != 'locust-src' && v.name != 'locust-lib' && !v.name.matches('^locust-secret-[0-9]+$'))",
        field_path: "",
        field: "spec.volumes",
        message: "spec.volumes[].name must not be locust-src, locust-lib or locust-secret-<number>: the operator names its own volumes so; rename the volume",
        reason: CelReason::Forbidden,
        check: check_volume_names_reserved,
    },
    Rule {
        id: "volume-mount-path-conflict",
        at: &["spec"],
        cel: "!has(self.volumeMounts) || self.volumeMounts.all(m, !(has(self.testFiles) && has(self.testFiles.configMapRef) && m.mountPath == self.testFiles.srcMountPath) && !(has(self.testFiles) && has(self.testFiles.libConfigMapRef) && m.mountPath == self.testFiles.libMountPath) && !(has(self.env) && has(self.env.secretMounts) && self.env.secretMounts.exists(s, s.mountPath == m.mountPath)))",
        field_path: ".volumeMounts",
        field: "spec.volumeMounts",
        message: "spec.volumeMounts[].mountPath must not be a path the operator mounts (testFiles.srcMountPath when configMapRef is set, testFiles.libMountPath when libConfigMapRef is set, any env.secretMounts[].mountPath); choose another mountPath",
        reason: CelReason::Invalid,
        check: check_volume_mount_paths_free,
    },
    Rule {
        id: "secret-mount-paths-unique",
        at: &["spec", "env", "secretMounts"],
        cel: "self.all(s, self.exists_one(t, t.mountPath == s.mountPath))",
        field_path: "",
        field: "spec.env.secretMounts",
        message: "spec.env.secretMounts[].mountPath must be unique; give each secret mount its own mountPath",
        reason: CelReason::Invalid,
        check: check_secret_mount_paths_unique,
    },
    Rule {
        id: "secret-mount-path-conflict",
        at: &["spec"],
        cel: "!has(self.env) || !has(self.env.secretMounts) || !has(self.testFiles) || self.env.secretMounts.all(s, !(has(self.testFiles.configMapRef) && s.mountPath == self.testFiles.srcMountPath) && !(has(self.testFiles.libConfigMapRef) && s.mountPath == self.testFiles.libMountPath))",
        field_path: ".env.secretMounts",
        field: "spec.env.secretMounts",
        message: "spec.env.secretMounts[].mountPath must not be testFiles.srcMountPath (when configMapRef is set) or testFiles.libMountPath (when libConfigMapRef is set); choose another mountPath",
        reason: CelReason::Invalid,
        check: check_secret_mount_paths_free,
    },
    Rule {
        id: "test-files-mount-paths-distinct",
        at: &["spec", "testFiles"],
        cel: "!has(self.configMapRef) || !has(self.libConfigMapRef) || self.srcMountPath != self.libMountPath",
        field_path: ".libMountPath",
        field: "spec.testFiles.libMountPath",
        message: "spec.testFiles.libMountPath must differ from spec.testFiles.srcMountPath when both configMapRef and libConfigMapRef are set; change one of the paths",
        reason: CelReason::Invalid,
        check: check_test_file_paths_distinct,
    },
    Rule {
        id: "src-mount-path-absolute",
        at: &["spec", "testFiles", "srcMountPath"],
        cel: "self.startsWith('/')",
        field_path: "",
        field: "spec.testFiles.srcMountPath",
        message: "spec.testFiles.srcMountPath must be an absolute path; start it with '/', e.g. /lotest/src",
        reason: CelReason::Invalid,
        check: check_src_mount_path_absolute,
    },
    Rule {
        id: "lib-mount-path-absolute",
        at: &["spec", "testFiles", "libMountPath"],
        cel: "self.startsWith('/')",
        field_path: "",
        field: "spec.testFiles.libMountPath",
        message: "spec.testFiles.libMountPath must be an absolute path; start it with '/', e.g. /opt/locust/lib",
        reason: CelReason::Invalid,
        check: check_lib_mount_path_absolute,
    },
    Rule {
        id: "secret-mount-paths-absolute",
        at: &["spec", "env", "secretMounts"],
        cel: "self.all(s, s.mountPath.startsWith('/'))",
        field_path: "",
        field: "spec.env.secretMounts",
        message: "every spec.env.secretMounts[].mountPath must be an absolute path; start it with '/', e.g. /etc/locust/certs",
        reason: CelReason::Invalid,
        check: check_secret_mount_paths_absolute,
    },
    Rule {
        id: "volume-mount-paths-absolute",
        at: &["spec", "volumeMounts"],
        cel: "self.all(m, m.mountPath.startsWith('/'))",
        field_path: "",
        field: "spec.volumeMounts",
        message: "every spec.volumeMounts[].mountPath must be an absolute path; start it with '/', e.g. /results",
        reason: CelReason::Invalid,
        check: check_volume_mount_paths_absolute,
    },
    Rule {
        id: "output-paths-on-master-volume",
        at: &["spec"],
        cel: "!has(self.output) || ((has(self.output.htmlReport) && has(self.output.htmlReport.enabled) && self.output.htmlReport.enabled ? [has(self.output.htmlReport.path) ? self.output.htmlReport.path : ''] : []) + (has(self.output.jsonFile) && has(self.output.jsonFile.enabled) && self.output.jsonFile.enabled ? [has(self.output.jsonFile.path) ? self.output.jsonFile.path : ''] : []) + (has(self.output.csv) && has(self.output.csv.enabled) && self.output.csv.enabled ? [has(self.output.csv.prefix) ? self.output.csv.prefix : ''] : [])).all(p, has(self.volumeMounts) && self.volumeMounts.exists(m, (!has(m.target) || m.target != 'worker') && p.startsWith(m.mountPath.endsWith('/') ? m.mountPath : m.mountPath + '/') && size(p) > size(m.mountPath.endsWith('/') ? m.mountPath : m.mountPath + '/')))",
        field_path: ".output",
        field: "spec.output",
        message: "every enabled spec.output file (htmlReport.path, jsonFile.path, csv.prefix) must be set and lie below the mountPath of a spec.volumeMounts entry whose target is master or both; e.g. write /results/report.html and mount a volume at /results",
        reason: CelReason::Invalid,
        check: check_output_paths_on_master_volume,
    },
];

// --- Webhook-only rules -----------------------------------------------------------

/// A command is acceptable when the operator can split it into the
/// container's arguments ([`crate::resources::split_command`]): every quote
/// closed, at least one word, no lone backslash at the end. Blank commands are
/// left to the CEL rules that require them, so they are reported once.
fn splits_like_a_shell(command: &str) -> bool {
    !not_blank(command) || crate::resources::split_command(command, "").is_ok()
}

/// v2 rules CEL cannot express, run by the validating webhook and the CLI.
pub static WEBHOOK_RULES: &[WebhookRule] = &[
    WebhookRule {
        id: "master-command-shell-syntax",
        field: "spec.master.command",
        message: "spec.master.command must split like a shell command line into at least one word; close every quote or escape it with a backslash, do not end it with a lone backslash (write \\\\ for a literal one), and do not start with '#' (which comments out the rest)",
        check: |t| splits_like_a_shell(&t.spec.master.command),
    },
    WebhookRule {
        id: "worker-command-shell-syntax",
        field: "spec.worker.command",
        message: "spec.worker.command must split like a shell command line into at least one word; close every quote or escape it with a backslash, do not end it with a lone backslash (write \\\\ for a literal one), and do not start with '#' (which comments out the rest)",
        check: |t| splits_like_a_shell(&t.spec.worker.command),
    },
];

// --- v1 ---------------------------------------------------------------------------

/// The v1 (deprecated) rules, each a CEL expression in the v1 schema and a Rust mirror.
pub static V1_RULES: &[Rule<v1::LocustTest>] = &[
    Rule {
        id: "name-length",
        at: &[],
        cel: NAME_LENGTH_CEL,
        field_path: ".metadata.name",
        field: "metadata.name",
        message: NAME_LENGTH_MESSAGE,
        reason: CelReason::Invalid,
        check: |t| name_length_ok(t.metadata.name.as_deref()),
    },
    Rule {
        id: "image-required",
        at: &["spec", "image"],
        cel: NOT_BLANK_CEL,
        field_path: "",
        field: "spec.image",
        message: IMAGE_MESSAGE,
        reason: CelReason::Required,
        check: |t| not_blank(&t.spec.image),
    },
    Rule {
        id: "master-command-seed-required",
        at: &["spec", "masterCommandSeed"],
        cel: NOT_BLANK_CEL,
        field_path: "",
        field: "spec.masterCommandSeed",
        message: "spec.masterCommandSeed must not be empty or blank; set the master's base command, e.g. \"locust -f /lotest/src/locustfile.py\"",
        reason: CelReason::Required,
        check: |t| not_blank(&t.spec.master_command_seed),
    },
    Rule {
        id: "worker-command-seed-required",
        at: &["spec", "workerCommandSeed"],
        cel: NOT_BLANK_CEL,
        field_path: "",
        field: "spec.workerCommandSeed",
        message: "spec.workerCommandSeed must not be empty or blank; set the workers' base command, e.g. \"locust -f /lotest/src/locustfile.py\"",
        reason: CelReason::Required,
        check: |t| not_blank(&t.spec.worker_command_seed),
    },
];

/// v1 rules CEL cannot express, run by the validating webhook and the CLI.
pub static V1_WEBHOOK_RULES: &[WebhookRule<v1::LocustTest>] = &[
    WebhookRule {
        id: "master-command-seed-shell-syntax",
        field: "spec.masterCommandSeed",
        message: "spec.masterCommandSeed must split like a shell command line into at least one word; close every quote or escape it with a backslash, do not end it with a lone backslash (write \\\\ for a literal one), and do not start with '#' (which comments out the rest)",
        check: |t| splits_like_a_shell(&t.spec.master_command_seed),
    },
    WebhookRule {
        id: "worker-command-seed-shell-syntax",
        field: "spec.workerCommandSeed",
        message: "spec.workerCommandSeed must split like a shell command line into at least one word; close every quote or escape it with a backslash, do not end it with a lone backslash (write \\\\ for a literal one), and do not start with '#' (which comments out the rest)",
        check: |t| splits_like_a_shell(&t.spec.worker_command_seed),
    },
];

/// The v2 rules whose CEL is attached at `path` (property names from the root).
pub fn cel_rules_at(path: &[&str]) -> Vec<&'static Rule> {
    RULES.iter().filter(|r| r.at == path).collect()
}

/// The v1 rules whose CEL is attached at `path` (property names from the root).
pub fn v1_cel_rules_at(path: &[&str]) -> Vec<&'static Rule<v1::LocustTest>> {
    V1_RULES.iter().filter(|r| r.at == path).collect()
}

// --- Entry points -----------------------------------------------------------------

/// Every violation of a v2 `LocustTest`, in a deterministic order: schema
/// checks, then [`RULES`], then [`WEBHOOK_RULES`].
pub fn validate(test: &LocustTest) -> Vec<Violation> {
    let mut out = match serde_json::to_value(test) {
        Ok(value) => schema_violations(SchemaVersion::V2, &value),
        Err(err) => vec![internal_violation(&ValidationError::from(err))],
    };
    out.extend(rule_violations(test, RULES, WEBHOOK_RULES));
    out
}

/// Every violation of a v1 `LocustTest` (name length, replica range, non-empty
/// image and command seeds, seeds that split like a shell would), in a
/// deterministic order: schema checks, then [`V1_RULES`], then [`V1_WEBHOOK_RULES`].
pub fn validate_v1(test: &v1::LocustTest) -> Vec<Violation> {
    let mut out = match serde_json::to_value(test) {
        Ok(value) => schema_violations(SchemaVersion::V1, &value),
        Err(err) => vec![internal_violation(&ValidationError::from(err))],
    };
    out.extend(rule_violations(test, V1_RULES, V1_WEBHOOK_RULES));
    out
}

/// Validate an untyped object, e.g. a manifest read by the CLI: checks
/// `apiVersion` and `kind`, then the schema of that version (required fields,
/// types, enums, ranges, unknown fields), then — when the schema checks pass —
/// the CEL and webhook-only rules on the decoded object.
pub fn validate_value(value: &Value) -> Vec<Violation> {
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    let version = match api_version {
        Some("locust.io/v2") => SchemaVersion::V2,
        Some("locust.io/v1") => SchemaVersion::V1,
        other => {
            let got = other.map_or_else(|| "<missing>".to_owned(), str::to_owned);
            return vec![Violation::schema(
                "apiVersion".to_owned(),
                format!(
                    "Unsupported value: {got:?}: supported values: \"locust.io/v2\", \"locust.io/v1\""
                ),
            )];
        }
    };
    let mut out = Vec::new();
    match value.get("kind").and_then(Value::as_str) {
        Some(crate::api::KIND) => {}
        other => out.push(Violation::schema(
            "kind".to_owned(),
            format!(
                "Unsupported value: {:?}: supported values: \"{}\"",
                other.unwrap_or("<missing>"),
                crate::api::KIND
            ),
        )),
    }
    out.extend(schema_violations(version, value));
    let schema_failed = !out.is_empty();
    // Report the rules too whenever the object still decodes, so a user sees
    // every problem at once; a type error the schema already reported is not
    // repeated as a decoding error.
    match decode_and_check(version, value) {
        Ok(violations) => out.extend(violations),
        Err(_) if schema_failed => {}
        Err(violation) => out.push(violation),
    }
    out
}

/// What the validating webhook checks of the object in a `locust.io/v2`
/// admission request: [`validate_value`] (schema, every CEL rule and every
/// webhook-only rule, nulls pruned as the API server prunes them, decoding
/// errors naming the field), with the request's version and kind standing in
/// when the object omits them. The webhook and the CLI thus agree.
pub fn validate_admitted_v2(value: &Value) -> Vec<Violation> {
    let mut value = value.clone();
    if let Some(map) = value.as_object_mut() {
        for (key, default) in [("apiVersion", "locust.io/v2"), ("kind", crate::api::KIND)] {
            if map
                .get(key)
                .is_none_or(|v| v.as_str().is_none_or(str::is_empty))
            {
                map.insert(key.to_owned(), Value::String(default.to_owned()));
            }
        }
    }
    validate_value(&value)
}

/// Decodes `value` like the API server would see it and runs the rules. Like
/// the API server, nulls the schema does not allow are dropped before decoding
/// (the typed defaults then stand in for the schema's).
fn decode_and_check(version: SchemaVersion, value: &Value) -> Result<Vec<Violation>, Violation> {
    let schema = schema_of(version);
    let mut pruned = value.clone();
    if let Some(schema) = schema {
        prune_nulls(schema, &mut pruned);
    }
    match version {
        SchemaVersion::V2 => {
            decode::<LocustTest>(schema, pruned).map(|t| rule_violations(&t, RULES, WEBHOOK_RULES))
        }
        SchemaVersion::V1 => decode::<v1::LocustTest>(schema, pruned)
            .map(|t| rule_violations(&t, V1_RULES, V1_WEBHOOK_RULES)),
    }
}

/// Decodes an object that passed the schema checks. What can still fail lies
/// outside the CRD schema (`metadata`, which the API server checks itself) or
/// beyond it (a number out of the typed range, a malformed timestamp); the
/// violation names the offending field, e.g. `metadata: Required value` for an
/// empty `metadata:` in a manifest.
fn decode<T: serde::de::DeserializeOwned>(
    schema: Option<&JSONSchemaProps>,
    value: Value,
) -> Result<T, Violation> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = field_path(schema, err.path());
        let message = err.into_inner().to_string();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'));
        match (path.as_str(), missing) {
            (".", Some(name)) => Violation::schema(name.to_owned(), "Required value".to_owned()),
            (path, Some(name)) => {
                Violation::schema(format!("{path}.{name}"), "Required value".to_owned())
            }
            (".", None) => Violation::schema(
                String::new(),
                format!("cannot decode the object: {message}"),
            ),
            (path, None) => Violation::schema(
                path.to_owned(),
                format!("cannot decode the object: {message}"),
            ),
        }
    })
}

/// A decoding error's path written as the schema checks write theirs:
/// `.name` for a property, `[key]` for a map key (`metadata.labels[a.b/c]`),
/// `[0]` for an item; `.` for the root. `serde_path_to_error` alone cannot
/// tell a property from a map key, so the schema decides where it knows the
/// node; elsewhere (metadata, which the CRD schema leaves to the API server)
/// a key that is not a plain identifier is taken as a map key.
fn field_path(schema: Option<&JSONSchemaProps>, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    let mut node = schema;
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                node = node.and_then(|n| match n.items.as_ref() {
                    Some(JSONSchemaPropsOrArray::Schema(items)) => Some(items.as_ref()),
                    _ => None,
                });
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                let property = node.and_then(|n| n.properties.as_ref()?.get(key.as_str()));
                let map_values = node.and_then(|n| match n.additional_properties.as_ref() {
                    Some(JSONSchemaPropsOrBool::Schema(values)) => Some(values.as_ref()),
                    _ => None,
                });
                let identifier = key
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if property.is_some() || (map_values.is_none() && identifier) {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                    node = property;
                } else {
                    out.push_str(&format!("[{key}]"));
                    node = map_values;
                }
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
                node = None;
            }
        }
    }
    if out.is_empty() { ".".to_owned() } else { out }
}

fn rule_violations<T>(test: &T, rules: &[Rule<T>], webhook: &[WebhookRule<T>]) -> Vec<Violation> {
    let cel = rules
        .iter()
        .filter(|r| !(r.check)(test))
        .map(|r| (r.id, r.field, r.message));
    let hooks = webhook
        .iter()
        .filter(|r| !(r.check)(test))
        .map(|r| (r.id, r.field, r.message));
    cel.chain(hooks)
        .map(|(id, field, message)| Violation {
            field: field.to_owned(),
            message: message.to_owned(),
            rule: Some(id),
        })
        .collect()
}

fn internal_violation(err: &ValidationError) -> Violation {
    Violation::schema(String::new(), format!("{} ({})", err, err.reason()))
}

// --- Schema checks ----------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum SchemaVersion {
    V2,
    V1,
}

impl SchemaVersion {
    fn name(self) -> &'static str {
        match self {
            SchemaVersion::V2 => "v2",
            SchemaVersion::V1 => "v1",
        }
    }
}

/// The CRD's schemas, generated once.
static SCHEMAS: LazyLock<Schemas> = LazyLock::new(|| {
    let crd = crate::crd::crd();
    let find = |name: &str| {
        crd.spec
            .versions
            .iter()
            .find(|v| v.name == name)
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.clone())
    };
    Schemas {
        v2: find(SchemaVersion::V2.name()),
        v1: find(SchemaVersion::V1.name()),
    }
});

struct Schemas {
    v2: Option<JSONSchemaProps>,
    v1: Option<JSONSchemaProps>,
}

fn schema_of(version: SchemaVersion) -> Option<&'static JSONSchemaProps> {
    match version {
        SchemaVersion::V2 => SCHEMAS.v2.as_ref(),
        SchemaVersion::V1 => SCHEMAS.v1.as_ref(),
    }
}

/// Removes the `null`s the schema does not declare `nullable`, as the API
/// server's pruning does before defaulting and validation.
fn prune_nulls(schema: &JSONSchemaProps, value: &mut Value) {
    let nullable = |s: &JSONSchemaProps| s.nullable == Some(true);
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.properties.as_ref() {
                map.retain(|key, v| {
                    !(v.is_null() && properties.get(key).is_some_and(|p| !nullable(p)))
                });
                for (key, v) in map.iter_mut() {
                    if let Some(p) = properties.get(key) {
                        prune_nulls(p, v);
                    }
                }
            } else if let Some(JSONSchemaPropsOrBool::Schema(values)) =
                schema.additional_properties.as_ref()
            {
                map.retain(|_, v| !v.is_null() || nullable(values));
                for v in map.values_mut() {
                    prune_nulls(values, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(JSONSchemaPropsOrArray::Schema(item)) = schema.items.as_ref() {
                for v in items {
                    prune_nulls(item, v);
                }
            }
        }
        _ => {}
    }
}

fn schema_violations(version: SchemaVersion, value: &Value) -> Vec<Violation> {
    let Some(schema) = schema_of(version) else {
        return vec![internal_violation(&ValidationError::MissingSchema(
            version.name(),
        ))];
    };
    let mut out = Vec::new();
    check_object(schema, value, "", true, &mut out);
    out
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integer(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Integers as the API server sees them: any JSON number with no fraction.
fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => matches!(value, Value::Number(n) if is_integer(n)),
        _ => true,
    }
}

/// A JSON number as a float64 reads it (as the API server's schema checks
/// do), written like [`fmt_bound`]: `-1` whether it arrived as the integer `-1`
/// or the float `-1.0` (a typed object serialises its `f64` fields with a
/// fraction), and the same digits for an integer beyond 2^53 either way.
fn fmt_number(n: &serde_json::Number) -> String {
    n.as_f64().map_or_else(|| n.to_string(), fmt_bound)
}

/// A number formatted like the schema writes it (`1`, not `1.0`).
fn fmt_bound(bound: f64) -> String {
    if bound.fract() == 0.0 && bound.abs() < 1e15 {
        format!("{}", bound as i64)
    } else {
        format!("{bound}")
    }
}

fn check_value(schema: &JSONSchemaProps, value: &Value, path: &str, out: &mut Vec<Violation>) {
    if value.is_null() {
        // Null is either allowed (nullable) or pruned by the API server before
        // validation; the parent object reports a missing required field.
        return;
    }
    if schema.x_kubernetes_int_or_string == Some(true) {
        let ok = value.is_string() || matches!(value, Value::Number(n) if is_integer(n));
        if !ok {
            out.push(Violation::schema(
                path.to_owned(),
                format!(
                    "must be an integer or a string, got {}",
                    json_type_name(value)
                ),
            ));
        }
        return;
    }
    if let Some(expected) = schema
        .type_
        .as_deref()
        .filter(|expected| !type_matches(expected, value))
    {
        out.push(Violation::schema(
            path.to_owned(),
            format!("must be of type {expected}, got {}", json_type_name(value)),
        ));
        return;
    }
    check_enum(schema, value, path, out);
    match value {
        Value::Number(n) => check_number(schema, n, path, out),
        Value::String(s) => check_string(schema, s, path, out),
        Value::Array(items) => check_array(schema, items, path, out),
        Value::Object(_) => check_object(schema, value, path, false, out),
        Value::Bool(_) | Value::Null => {}
    }
}

fn check_enum(schema: &JSONSchemaProps, value: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(allowed) = schema.enum_.as_ref() else {
        return;
    };
    if allowed.iter().any(|a| &a.0 == value) {
        return;
    }
    let supported: Vec<String> = allowed
        .iter()
        .filter(|a| !a.0.is_null())
        .map(|a| a.0.to_string())
        .collect();
    out.push(Violation::schema(
        path.to_owned(),
        format!(
            "Unsupported value: {value}: supported values: {}",
            supported.join(", ")
        ),
    ));
}

fn check_number(
    schema: &JSONSchemaProps,
    n: &serde_json::Number,
    path: &str,
    out: &mut Vec<Violation>,
) {
    let Some(x) = n.as_f64() else {
        return;
    };
    let excl_min = schema.exclusive_minimum == Some(true);
    let excl_max = schema.exclusive_maximum == Some(true);
    let below = schema
        .minimum
        .is_some_and(|min| if excl_min { x <= min } else { x < min });
    let above = schema
        .maximum
        .is_some_and(|max| if excl_max { x >= max } else { x > max });
    if !below && !above {
        return;
    }
    let message = match (schema.minimum, schema.maximum) {
        (Some(min), Some(max)) if !excl_min && !excl_max => {
            format!(
                "must be between {} and {}, got {}",
                fmt_bound(min),
                fmt_bound(max),
                fmt_number(n)
            )
        }
        (Some(min), _) if below => {
            let op = if excl_min {
                "greater than"
            } else {
                "greater than or equal to"
            };
            format!("must be {op} {}, got {}", fmt_bound(min), fmt_number(n))
        }
        (_, Some(max)) => {
            let op = if excl_max {
                "less than"
            } else {
                "less than or equal to"
            };
            format!("must be {op} {}, got {}", fmt_bound(max), fmt_number(n))
        }
        _ => format!("is out of range, got {}", fmt_number(n)),
    };
    out.push(Violation::schema(path.to_owned(), message));
}

fn check_string(schema: &JSONSchemaProps, s: &str, path: &str, out: &mut Vec<Violation>) {
    let len = s.chars().count();
    let len_i64 = i64::try_from(len).unwrap_or(i64::MAX);
    if let Some(max) = schema.max_length.filter(|max| len_i64 > *max) {
        out.push(Violation::schema(
            path.to_owned(),
            format!("must be at most {max} characters long, got {len}"),
        ));
    }
    if let Some(min) = schema.min_length.filter(|min| len_i64 < *min) {
        out.push(Violation::schema(
            path.to_owned(),
            format!("must be at least {min} characters long, got {len}"),
        ));
    }
}

fn check_array(schema: &JSONSchemaProps, items: &[Value], path: &str, out: &mut Vec<Violation>) {
    let len = items.len();
    let len_i64 = i64::try_from(len).unwrap_or(i64::MAX);
    if let Some(max) = schema.max_items.filter(|max| len_i64 > *max) {
        out.push(Violation::schema(
            path.to_owned(),
            format!("must have at most {max} items, got {len}"),
        ));
    }
    if let Some(min) = schema.min_items.filter(|min| len_i64 < *min) {
        out.push(Violation::schema(
            path.to_owned(),
            format!("must have at least {min} items, got {len}"),
        ));
    }
    if let Some(JSONSchemaPropsOrArray::Schema(item_schema)) = schema.items.as_ref() {
        for (i, item) in items.iter().enumerate() {
            check_value(item_schema, item, &format!("{path}[{i}]"), out);
        }
    }
}

/// Fields every object has at the root, outside the CRD's own schema.
const IMPLICIT_ROOT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn check_object(
    schema: &JSONSchemaProps,
    value: &Value,
    path: &str,
    root: bool,
    out: &mut Vec<Violation>,
) {
    let Some(map) = value.as_object() else {
        return;
    };
    let properties = schema.properties.as_ref();
    let present = |name: &str| -> bool {
        match map.get(name) {
            None => false,
            Some(Value::Null) => properties
                .and_then(|p| p.get(name))
                .is_some_and(|p| p.nullable == Some(true)),
            Some(_) => true,
        }
    };
    for name in schema.required.iter().flatten() {
        if !present(name) {
            out.push(Violation::schema(
                child(path, name),
                "Required value".to_owned(),
            ));
        }
    }
    if let Some(properties) = properties {
        for (name, prop_schema) in properties {
            if root && IMPLICIT_ROOT_FIELDS.contains(&name.as_str()) {
                continue;
            }
            if let Some(v) = map.get(name) {
                check_value(prop_schema, v, &child(path, name), out);
            }
        }
    }
    let additional = match schema.additional_properties.as_ref() {
        Some(JSONSchemaPropsOrBool::Schema(s)) => Some(s.as_ref()),
        _ => None,
    };
    if let Some(additional) = additional {
        for (key, v) in map {
            if properties.is_some_and(|p| p.contains_key(key)) {
                continue;
            }
            check_value(additional, v, &format!("{path}[{key}]"), out);
        }
        return;
    }
    let preserve = schema.x_kubernetes_preserve_unknown_fields == Some(true)
        || matches!(
            schema.additional_properties,
            Some(JSONSchemaPropsOrBool::Bool(true))
        );
    if preserve {
        return;
    }
    let mut unknown: Vec<&String> = map
        .keys()
        .filter(|k| !properties.is_some_and(|p| p.contains_key(k.as_str())))
        .filter(|k| !(root && IMPLICIT_ROOT_FIELDS.contains(&k.as_str())))
        .collect();
    unknown.sort();
    for key in unknown {
        out.push(Violation::schema(
            child(path, key),
            "unknown field; remove it or correct its spelling".to_owned(),
        ));
    }
}

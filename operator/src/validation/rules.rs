//! The admission rules, declared once: each [`Rule`] is a CEL expression that
//! [`crate::crd`] injects into the CRD schema (`x-kubernetes-validations`) and
//! a Rust mirror (`check`) that the validating webhook and the `validate` CLI
//! run, with the same `message` at the same field. [`WEBHOOK_RULES`] and
//! [`V1_WEBHOOK_RULES`] are the checks CEL cannot express.
//!
//! Pure data and predicates: this module depends on the API types and on the
//! builders' own notion of reserved volume names and command splitting, never
//! on the CRD, so the CRD can be built from it.

use std::borrow::Cow;
use std::collections::BTreeSet;

use crate::api::v1;
use crate::api::v2::{LocustTest, MountTarget};
use crate::dns::is_dns1123_subdomain;
use crate::resources::{is_reserved_volume_name, split_command};

/// Longest accepted `metadata.name`: the operator names its resources
/// `<name>-master` and `<name>-worker`, which must fit in 63 characters.
pub const MAX_TEST_NAME_LENGTH: usize = 56;

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

// --- Messages shared by v2 and v1 -------------------------------------------------

const NAME_LENGTH_CEL: &str = "!has(self.metadata.name) || size(self.metadata.name) <= 56";
const NAME_LENGTH_MESSAGE: &str = "metadata.name must be at most 56 characters so that the operator's <name>-master and <name>-worker resources fit in 63; choose a shorter name";
const IMAGE_MESSAGE: &str =
    "spec.image must not be empty; set the Locust container image, e.g. locustio/locust:2.43.1";
const NOT_BLANK_CEL: &str = "self.trim() != ''";

// --- Mount paths: one conflict rule, one message ------------------------------------

/// The message of every mount path conflict, whichever field reports it
/// (`test-files-mount-path-conflict`, `secret-mount-path-conflict`,
/// `volume-mount-path-conflict`).
pub const MOUNT_PATH_CONFLICT_MESSAGE: &str = "mount paths must not overlap: spec.testFiles.srcMountPath (when configMapRef is set), spec.testFiles.libMountPath (when libConfigMapRef is set), every spec.env.secretMounts[].mountPath and every spec.volumeMounts[].mountPath must neither equal nor contain one another, ignoring a trailing '/' (/a conflicts with /a/ and /a/b, not with /ab); two volumeMounts conflict only when their targets share a container (master, worker or both); choose paths that do not nest";

/// CEL: `$x` is `$y` or one of its parent directories, a trailing `/`
/// ignored, given that `$x` is not longer than `$y`: `$y` starts with `$x`,
/// and there `$x` ends a directory (it ends with `/`, or `$y` ends or goes on
/// with `/` right after it).
macro_rules! cel_contains {
    ($x:literal, $y:literal) => {
        concat!(
            "(",
            $y,
            ".startsWith(",
            $x,
            ") && (",
            $x,
            ".endsWith('/') || size(",
            $y,
            ") == size(",
            $x,
            ") || ",
            $y,
            ".charAt(size(",
            $x,
            ")) == '/'))"
        )
    };
}

/// CEL of [`mount_paths_conflict`]`($a, $b)`: the shorter path contains the
/// longer one. (A path cannot contain a strictly shorter one except as the
/// same directory, `/a/` and `/a`, which the other way round sees too.) No
/// string is built and each pair costs one traversal of a path, which keeps
/// the rules' estimated cost within the API server's budget. The Rust
/// function says the same more plainly; the tests hold the two equal.
macro_rules! cel_conflict {
    ($a:literal, $b:literal) => {
        concat!(
            "(size(",
            $a,
            ") <= size(",
            $b,
            ") ? ",
            cel_contains!($a, $b),
            " : ",
            cel_contains!($b, $a),
            ")"
        )
    };
}

/// CEL: the mount path `$p` conflicts with the test-files path `$path`, which
/// is mounted while `self.testFiles.$ref` is set; `self` is the spec.
macro_rules! cel_conflicts_with_test_files {
    ($p:literal, $ref:literal, $path:literal) => {
        concat!(
            "(has(self.testFiles) && has(self.testFiles.",
            $ref,
            ") && ",
            cel_conflict!($p, $path),
            ")"
        )
    };
}

/// CEL of [`is_clean_absolute_path`]`($p)`. (`/.` and `/..` at the end
/// are caught by `endsWith`, also with one trailing `/`: `/a/./`
/// contains `/./`.)
macro_rules! cel_clean_absolute {
    ($p:literal) => {
        concat!(
            $p,
            ".startsWith('/') && !",
            $p,
            ".contains('//') && !",
            $p,
            ".contains('/./') && !",
            $p,
            ".endsWith('/.') && !",
            $p,
            ".contains('/../') && !",
            $p,
            ".endsWith('/..')"
        )
    };
}

/// `path` as a directory: `/a` and `/a/` both give `/a/`; `/` stays `/`.
fn as_dir(path: &str) -> Cow<'_, str> {
    if path.ends_with('/') {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(format!("{path}/"))
    }
}

/// Whether two mount paths conflict: they are equal or one contains the other,
/// ignoring a trailing `/`. `/a` conflicts with `/a`, `/a/` and `/a/b` (and `/`
/// with every absolute path), not with `/ab` or `/b`. Mounted in one container,
/// such paths break the pod: a mount over the test files hides them, and a
/// mount inside a ConfigMap or Secret volume (read-only) cannot be created
/// when the container starts.
pub fn mount_paths_conflict(a: &str, b: &str) -> bool {
    let (a, b) = (as_dir(a), as_dir(b));
    a.starts_with(b.as_ref()) || b.starts_with(a.as_ref())
}

// --- Rust mirrors of the v2 rules -------------------------------------------------

fn name_length_ok(name: Option<&str>) -> bool {
    name.is_none_or(|n| n.chars().count() <= MAX_TEST_NAME_LENGTH)
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

/// Whether two volume mounts land in a common container.
fn share_a_container(a: MountTarget, b: MountTarget) -> bool {
    (a.includes_master() && b.includes_master()) || (a.includes_worker() && b.includes_worker())
}

/// No `spec.volumeMounts[].mountPath` conflicts with a mounted test-files
/// path or with another volume mount in a container they share. (Secret
/// mounts are checked against the volume mounts by
/// [`check_secret_mount_paths_free`].)
fn check_volume_mount_paths_free(t: &LocustTest) -> bool {
    let (src, lib) = active_test_file_paths(t);
    let mounts = &t.spec.volume_mounts;
    mounts.iter().enumerate().all(|(i, m)| {
        let path = m.mount.mount_path.as_str();
        !src.into_iter()
            .chain(lib)
            .any(|p| mount_paths_conflict(path, p))
            && !mounts[i + 1..].iter().any(|n| {
                share_a_container(m.target, n.target)
                    && mount_paths_conflict(path, &n.mount.mount_path)
            })
    })
}

/// No `spec.env.secretMounts[].mountPath` conflicts with a mounted test-files
/// path, another secret mount or a volume mount (secrets are mounted in both
/// containers).
fn check_secret_mount_paths_free(t: &LocustTest) -> bool {
    let (src, lib) = active_test_file_paths(t);
    let secrets = secret_mounts(t);
    let volumes = t
        .spec
        .volume_mounts
        .iter()
        .map(|m| m.mount.mount_path.as_str());
    secrets.iter().enumerate().all(|(i, s)| {
        let path = s.mount_path.as_str();
        !src.into_iter()
            .chain(lib)
            .chain(secrets[i + 1..].iter().map(|o| o.mount_path.as_str()))
            .chain(volumes.clone())
            .any(|p| mount_paths_conflict(path, p))
    })
}

/// `testFiles.srcMountPath` and `testFiles.libMountPath` do not conflict when
/// both are mounted.
fn check_test_file_paths_free(t: &LocustTest) -> bool {
    match active_test_file_paths(t) {
        (Some(src), Some(lib)) => !mount_paths_conflict(src, lib),
        _ => true,
    }
}

/// Whether `path` is an absolute mount path written plainly: it starts with
/// `/` and has no empty (`//`), `.` or `..` segment; one trailing `/` is
/// allowed. [`mount_paths_conflict`] compares such paths as written, so
/// `/a//b` or `/a/../b` cannot slip past it.
pub fn is_clean_absolute_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.contains("//")
        && path.split('/').all(|seg| !matches!(seg, "." | ".."))
}

fn check_src_mount_path_absolute(t: &LocustTest) -> bool {
    test_files(t).is_none_or(|tf| is_clean_absolute_path(&tf.src_mount_path))
}

fn check_lib_mount_path_absolute(t: &LocustTest) -> bool {
    test_files(t).is_none_or(|tf| is_clean_absolute_path(&tf.lib_mount_path))
}

fn check_secret_mount_paths_absolute(t: &LocustTest) -> bool {
    secret_mounts(t)
        .iter()
        .all(|s| is_clean_absolute_path(&s.mount_path))
}

fn check_volume_mount_paths_absolute(t: &LocustTest) -> bool {
    t.spec
        .volume_mounts
        .iter()
        .all(|m| is_clean_absolute_path(&m.mount.mount_path))
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

/// `scheduling.runtimeClassName` is unset, `""` (no runtime class) or a RuntimeClass name.
fn check_runtime_class_name(t: &LocustTest) -> bool {
    t.spec
        .scheduling
        .as_ref()
        .and_then(|s| s.runtime_class_name.as_deref())
        .is_none_or(|name| name.is_empty() || is_dns1123_subdomain(name))
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
        cel: concat!(
            "!has(self.volumeMounts) || self.volumeMounts.all(m, ",
            "self.volumeMounts.exists_one(n, (!has(m.target) || !has(n.target) || m.target == 'both' || n.target == 'both' || m.target == n.target) && ",
            cel_conflict!("m.mountPath", "n.mountPath"),
            ") && !",
            cel_conflicts_with_test_files!(
                "m.mountPath",
                "configMapRef",
                "self.testFiles.srcMountPath"
            ),
            " && !",
            cel_conflicts_with_test_files!(
                "m.mountPath",
                "libConfigMapRef",
                "self.testFiles.libMountPath"
            ),
            ")"
        ),
        field_path: ".volumeMounts",
        field: "spec.volumeMounts",
        message: MOUNT_PATH_CONFLICT_MESSAGE,
        reason: CelReason::Invalid,
        check: check_volume_mount_paths_free,
    },
    Rule {
        id: "secret-mount-path-conflict",
        at: &["spec"],
        cel: concat!(
            "!has(self.env) || !has(self.env.secretMounts) || self.env.secretMounts.all(s, ",
            "self.env.secretMounts.exists_one(o, ",
            cel_conflict!("s.mountPath", "o.mountPath"),
            ") && !",
            cel_conflicts_with_test_files!(
                "s.mountPath",
                "configMapRef",
                "self.testFiles.srcMountPath"
            ),
            " && !",
            cel_conflicts_with_test_files!(
                "s.mountPath",
                "libConfigMapRef",
                "self.testFiles.libMountPath"
            ),
            " && !(has(self.volumeMounts) && self.volumeMounts.exists(m, ",
            cel_conflict!("s.mountPath", "m.mountPath"),
            ")))"
        ),
        field_path: ".env.secretMounts",
        field: "spec.env.secretMounts",
        message: MOUNT_PATH_CONFLICT_MESSAGE,
        reason: CelReason::Invalid,
        check: check_secret_mount_paths_free,
    },
    Rule {
        id: "test-files-mount-path-conflict",
        at: &["spec", "testFiles"],
        cel: concat!(
            "!has(self.configMapRef) || !has(self.libConfigMapRef) || !",
            cel_conflict!("self.srcMountPath", "self.libMountPath")
        ),
        field_path: ".libMountPath",
        field: "spec.testFiles.libMountPath",
        message: MOUNT_PATH_CONFLICT_MESSAGE,
        reason: CelReason::Invalid,
        check: check_test_file_paths_free,
    },
    Rule {
        id: "src-mount-path-absolute",
        at: &["spec", "testFiles", "srcMountPath"],
        cel: cel_clean_absolute!("self"),
        field_path: "",
        field: "spec.testFiles.srcMountPath",
        message: "spec.testFiles.srcMountPath must be an absolute path without empty, '.' or '..' parts; start it with '/' and write each directory once, e.g. /lotest/src",
        reason: CelReason::Invalid,
        check: check_src_mount_path_absolute,
    },
    Rule {
        id: "lib-mount-path-absolute",
        at: &["spec", "testFiles", "libMountPath"],
        cel: cel_clean_absolute!("self"),
        field_path: "",
        field: "spec.testFiles.libMountPath",
        message: "spec.testFiles.libMountPath must be an absolute path without empty, '.' or '..' parts; start it with '/' and write each directory once, e.g. /opt/locust/lib",
        reason: CelReason::Invalid,
        check: check_lib_mount_path_absolute,
    },
    Rule {
        id: "secret-mount-paths-absolute",
        at: &["spec", "env", "secretMounts"],
        cel: concat!("self.all(s, ", cel_clean_absolute!("s.mountPath"), ")"),
        field_path: "",
        field: "spec.env.secretMounts",
        message: "every spec.env.secretMounts[].mountPath must be an absolute path without empty, '.' or '..' parts; start it with '/' and write each directory once, e.g. /etc/locust/certs",
        reason: CelReason::Invalid,
        check: check_secret_mount_paths_absolute,
    },
    Rule {
        id: "volume-mount-paths-absolute",
        at: &["spec", "volumeMounts"],
        cel: concat!("self.all(m, ", cel_clean_absolute!("m.mountPath"), ")"),
        field_path: "",
        field: "spec.volumeMounts",
        message: "every spec.volumeMounts[].mountPath must be an absolute path without empty, '.' or '..' parts; start it with '/' and write each directory once, e.g. /results",
        reason: CelReason::Invalid,
        check: check_volume_mount_paths_absolute,
    },
    Rule {
        id: "runtime-class-name",
        at: &["spec", "scheduling", "runtimeClassName"],
        // crate::dns::SUBDOMAIN_PATTERN, with the length of crate::dns::MAX_SUBDOMAIN.
        cel: "self == '' || (size(self) <= 253 && self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))",
        field_path: "",
        field: "spec.scheduling.runtimeClassName",
        message: "spec.scheduling.runtimeClassName must be the name of a RuntimeClass: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, e.g. gvisor; write \"\" for no runtime class, or leave the field out for the operator's default",
        reason: CelReason::Invalid,
        check: check_runtime_class_name,
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
    !not_blank(command) || split_command(command, "").is_ok()
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

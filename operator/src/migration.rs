//! The migration check of `locust-k8s-operator validate`: where a LocustTest
//! written for the Go operator (v1.x and v2.x, `locust.io/v1` or `/v2`) is
//! treated differently here, each as a [`Difference`] that names the field as
//! the manifest writes it. Pure: the test (as v2) and the version it was
//! written in go in, the differences come out. docs/migration.md explains each.
//!
//! What differs for every test alike (the metrics exporter sidecar, the
//! ephemeral-storage and Kafka defaults, container and port names) is left to
//! the migration guide: a warning on each manifest would say nothing about it.

use std::fmt;

use crate::api::v2::LocustTest;
use crate::config::LOCUST_IMAGE_UID;
use crate::conversion::ApiVersion;
use crate::resources::command::{MASTER_COMMAND_FIELD, WORKER_COMMAND_FIELD};
use crate::resources::labels::{
    LABEL_LEGACY_MANAGED_BY, LABEL_TEST_POD_NAME, POD_LOOKUP_LABEL_KEYS, is_operator_label_key,
    operator_labels, selector_labels,
};
use crate::resources::{ContainerCommand, Role, job_name, split_command};

/// Label keys the Go operator did not let a test's labels replace either; for the
/// other keys of the operator's own labels the Go operator applied the test's value.
const GO_PROTECTED_LABEL_KEYS: [&str; 2] = [LABEL_TEST_POD_NAME, LABEL_LEGACY_MANAGED_BY];

/// The image the official Locust images come from.
const OFFICIAL_IMAGE: &str = "locustio/locust";

/// The kinds of [`Difference`]. docs/migration.md describes each under the heading
/// `` ### `<name>` `` (its anchor is the name), and every warning ends with that link
/// (`operator/tests/migration_doc.rs` checks both against [`DifferenceKind::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DifferenceKind {
    /// `metadata.name`: the Service and Jobs are named otherwise.
    ChildNames,
    /// A command splits into other words (quotes, backslashes, `#` comments).
    CommandSplit,
    /// A command starts with a program, which replaces the image's entrypoint.
    CommandProgram,
    /// No pull policy on a `:latest` (or untagged) image.
    PullPolicy,
    /// A label the Go operator applied and this one keeps its own value for.
    ProtectedLabel,
    /// A custom image without a pod security context runs under the restricted profile.
    RestrictedImage,
    /// A pod security context without a container one gets the default container context.
    ContainerSecurityContext,
}

impl DifferenceKind {
    /// Every kind, in the order [`go_operator_differences`] reports them.
    pub const ALL: [Self; 7] = [
        Self::ChildNames,
        Self::CommandSplit,
        Self::CommandProgram,
        Self::PullPolicy,
        Self::ProtectedLabel,
        Self::RestrictedImage,
        Self::ContainerSecurityContext,
    ];

    /// The kind's name: its heading and anchor in docs/migration.md.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChildNames => "child-names",
            Self::CommandSplit => "command-split",
            Self::CommandProgram => "command-program",
            Self::PullPolicy => "pull-policy",
            Self::ProtectedLabel => "protected-label",
            Self::RestrictedImage => "restricted-image",
            Self::ContainerSecurityContext => "container-security-context",
        }
    }
}

/// The guide every warning links to.
pub const MIGRATION_GUIDE: &str = "docs/migration.md";

/// One way a test behaves differently here than under the Go operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// Which difference it is.
    pub kind: DifferenceKind,
    /// The field as the manifest writes it, e.g. `spec.masterCommandSeed`.
    pub field: String,
    /// What differs, and what to do if the old behaviour is wanted.
    pub message: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (see {MIGRATION_GUIDE}#{})",
            self.field,
            self.message,
            self.kind.as_str()
        )
    }
}

/// Every [`Difference`] of `test`, written as `written`, in a fixed order: names,
/// commands (master, worker), image pull policy, labels (master, worker), security.
pub fn go_operator_differences(test: &LocustTest, written: ApiVersion) -> Vec<Difference> {
    let mut out = Vec::new();
    child_names(test, &mut out);
    for role in [Role::Master, Role::Worker] {
        command(test, role, written, &mut out);
    }
    pull_policy(test, &mut out);
    for role in [Role::Master, Role::Worker] {
        labels(test, role, written, &mut out);
    }
    security(test, written, &mut out);
    out
}

fn push(
    out: &mut Vec<Difference>,
    kind: DifferenceKind,
    field: impl Into<String>,
    message: String,
) {
    out.push(Difference {
        kind,
        field: field.into(),
        message,
    });
}

/// The name the Go operator gave a role's Job (and, for the master, the Service):
/// `<test>-<role>` with every `.` turned into `-`.
pub fn go_child_name(test_name: &str, role: Role) -> String {
    format!("{test_name}-{}", role.as_str()).replace('.', "-")
}

fn child_names(test: &LocustTest, out: &mut Vec<Difference>) {
    let Some(name) = test.metadata.name.as_deref() else {
        return;
    };
    let ours = |role| job_name(name, role);
    let go = |role| go_child_name(name, role);
    if ours(Role::Master) != go(Role::Master) || ours(Role::Worker) != go(Role::Worker) {
        push(
            out,
            DifferenceKind::ChildNames,
            "metadata.name",
            format!(
                "the Service and the master Job are named {} and the worker Job {}; the Go operator named them {} and {}. A name that is not a valid DNS label as written gets a hash of the whole name, so that tests named a.b and a-b never share children; update scripts that use the old names, or rename the test",
                ours(Role::Master),
                ours(Role::Worker),
                go(Role::Master),
                go(Role::Worker)
            ),
        );
    }
}

fn command_field(role: Role, written: ApiVersion) -> &'static str {
    match (role, written) {
        (Role::Master, ApiVersion::V1) => "spec.masterCommandSeed",
        (Role::Worker, ApiVersion::V1) => "spec.workerCommandSeed",
        (Role::Master, ApiVersion::V2) => MASTER_COMMAND_FIELD,
        (Role::Worker, ApiVersion::V2) => WORKER_COMMAND_FIELD,
    }
}

fn command(test: &LocustTest, role: Role, written: ApiVersion, out: &mut Vec<Difference>) {
    let (text, field) = match role {
        Role::Master => (&test.spec.master.command, MASTER_COMMAND_FIELD),
        Role::Worker => (&test.spec.worker.command, WORKER_COMMAND_FIELD),
    };
    let Ok(words) = split_command(text, field) else {
        return;
    };
    let field = command_field(role, written);
    let go_words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    if words != go_words {
        push(
            out,
            DifferenceKind::CommandSplit,
            field,
            format!(
                "is split like a shell command line here, into {words:?}; the Go operator split it at white space only, into {go_words:?} (quotes, backslashes and # comments were passed on as written)"
            ),
        );
    }
    if let Some(program) = ContainerCommand::from_tokens(words).command {
        push(
            out,
            DifferenceKind::CommandProgram,
            field,
            format!(
                "starts with the program `{program}`, which here replaces the image's entrypoint; the Go operator passed every word as arguments to the entrypoint (with locustio/locust: `locust {program} ...`). Start the command with an option (--locustfile ...) to keep the entrypoint",
                program = program.join(" ")
            ),
        );
    }
}

/// Whether Kubernetes pulls `image` on every start when no pull policy is given: its tag
/// is `latest` or missing, and it has no digest.
fn pulled_on_every_start(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').is_none_or(|(_, tag)| tag == "latest")
}

fn pull_policy(test: &LocustTest, out: &mut Vec<Difference>) {
    let image = test.spec.image.trim();
    if test.spec.image_pull_policy.is_none() && pulled_on_every_start(image) {
        push(
            out,
            DifferenceKind::PullPolicy,
            "spec.imagePullPolicy",
            format!(
                "is unset and the image {image} has the tag latest (or none): Kubernetes then pulls it on every start (Always); the Go operator defaulted the policy to IfNotPresent. Set imagePullPolicy: IfNotPresent to keep the old behaviour"
            ),
        );
    }
}

fn labels_field(role: Role, written: ApiVersion) -> &'static str {
    match (role, written) {
        (Role::Master, ApiVersion::V1) => "spec.labels.master",
        (Role::Worker, ApiVersion::V1) => "spec.labels.worker",
        (Role::Master, ApiVersion::V2) => "spec.master.labels",
        (Role::Worker, ApiVersion::V2) => "spec.worker.labels",
    }
}

fn labels(test: &LocustTest, role: Role, written: ApiVersion, out: &mut Vec<Difference>) {
    let Some(name) = test.metadata.name.as_deref() else {
        return;
    };
    let user = match role {
        Role::Master => &test.spec.master.labels,
        Role::Worker => &test.spec.worker.labels,
    };
    let ours = operator_labels(name, role);
    let selector = selector_labels(name, role);
    for key in user.keys() {
        if !is_operator_label_key(key) || GO_PROTECTED_LABEL_KEYS.contains(&key.as_str()) {
            continue;
        }
        let why = if POD_LOOKUP_LABEL_KEYS.contains(&key.as_str()) {
            "the operator finds the test's pods by it"
        } else if role == Role::Master && selector.contains_key(key) {
            "the master Service selects the master pod by it"
        } else {
            "it is one of the operator's labels"
        };
        let value = ours.get(key).map_or("", String::as_str);
        push(
            out,
            DifferenceKind::ProtectedLabel,
            format!("{}[{key}]", labels_field(role, written)),
            format!(
                "is ignored: the pods keep the operator's value {value:?} because {why}; the Go operator gave them the test's value. Select on another label key"
            ),
        );
    }
}

/// Whether `image` is an official `locustio/locust` image (any tag or digest).
fn is_official_image(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    let repository = match without_digest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => without_digest,
    };
    let repository = ["docker.io/", "index.docker.io/", "registry-1.docker.io/"]
        .iter()
        .find_map(|registry| repository.strip_prefix(registry))
        .unwrap_or(repository);
    repository == OFFICIAL_IMAGE
}

fn security(test: &LocustTest, written: ApiVersion, out: &mut Vec<Difference>) {
    let security = test.spec.security.as_ref();
    let pod = security.and_then(|s| s.pod_security_context.as_ref());
    let container = security.and_then(|s| s.container_security_context.as_ref());
    let image = test.spec.image.trim();
    if pod.is_none() && !is_official_image(image) {
        let fix = match written {
            ApiVersion::V2 => "set spec.security.podSecurityContext",
            ApiVersion::V1 => {
                "convert the test to locust.io/v2 and set spec.security.podSecurityContext"
            }
        };
        push(
            out,
            DifferenceKind::RestrictedImage,
            "spec.image",
            format!(
                "{image} is not the official {OFFICIAL_IMAGE} image: here its pods run with the restricted Pod Security profile (runAsNonRoot, runAsUser {LOCUST_IMAGE_UID} unless the operator's --pod-run-as-user says otherwise or the cluster is OpenShift, no privilege escalation, every capability dropped); the Go operator ran the image's own user with only the RuntimeDefault seccomp profile. If the image must run as another user, {fix}"
            ),
        );
    }
    if pod.is_some() && container.is_none() {
        push(
            out,
            DifferenceKind::ContainerSecurityContext,
            "spec.security.containerSecurityContext",
            "is unset, so the container gets the operator's default (runAsNonRoot, no privilege escalation, every capability dropped, RuntimeDefault seccomp) next to spec.security.podSecurityContext; the Go operator set no container security context then. Set containerSecurityContext to what the container needs".to_owned(),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The test `demo`, its spec's top-level fields replaced by those of `spec`.
    fn test(spec: serde_json::Value) -> LocustTest {
        let demo = r#"{"apiVersion": "locust.io/v2", "kind": "LocustTest", "metadata": {"name": "demo"}, "spec": {"image": "locustio/locust:2.43.1", "master": {"command": "--locustfile /lotest/src/l.py --users 10"}, "worker": {"command": "--locustfile /lotest/src/l.py", "replicas": 2}}}"#;
        let mut doc: serde_json::Value = serde_json::from_str(demo).unwrap();
        if let (Some(base), Some(fields)) = (doc["spec"].as_object_mut(), spec.as_object()) {
            base.extend(fields.clone());
        }
        serde_json::from_value(doc).unwrap()
    }

    fn fields(t: &LocustTest, written: ApiVersion) -> Vec<String> {
        go_operator_differences(t, written)
            .into_iter()
            .map(|d| d.field)
            .collect()
    }

    #[test]
    fn a_plain_test_has_no_difference() {
        assert_eq!(
            fields(&test(json!({})), ApiVersion::V2),
            Vec::<String>::new()
        );
        let pinned = test(json!({"image": "docker.io/locustio/locust@sha256:abc"}));
        assert_eq!(fields(&pinned, ApiVersion::V1), Vec::<String>::new());
    }

    #[test]
    fn dotted_names_name_the_children_both_ways() {
        let mut t = test(json!({}));
        t.metadata.name = Some("team.checkout".into());
        let d = go_operator_differences(&t, ApiVersion::V2);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].field, "metadata.name");
        assert!(
            d[0].message
                .contains("team-checkout-master and team-checkout-worker"),
            "{}",
            d[0]
        );
        assert!(
            d[0].message
                .contains(&job_name("team.checkout", Role::Worker)),
            "{}",
            d[0]
        );
    }

    #[test]
    fn commands_that_split_or_start_differently_are_named_as_written() {
        let t = test(json!({
            "master": {"command": "--locustfile /lotest/src/l.py --tags 'a b'   # note"},
            "worker": {"command": "locust -f /lotest/src/l.py", "replicas": 1}
        }));
        let d = go_operator_differences(&t, ApiVersion::V1);
        let shown: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(d.len(), 2, "{shown:#?}");
        assert!(shown[0].starts_with("spec.masterCommandSeed: is split like a shell command line here, into [\"--locustfile\", \"/lotest/src/l.py\", \"--tags\", \"a b\"]; the Go operator split it at white space only, into [\"--locustfile\", \"/lotest/src/l.py\", \"--tags\", \"'a\", \"b'\", \"#\", \"note\"]"), "{shown:#?}");
        assert!(
            shown[1].starts_with(
                "spec.workerCommandSeed: starts with the program `locust`, which here replaces"
            ),
            "{shown:#?}"
        );
        // Multi-line commands without quotes split the same way in both.
        let t =
            test(json!({"master": {"command": "--locustfile /lotest/src/l.py\n  --users 10\n"}}));
        assert!(fields(&t, ApiVersion::V2).is_empty());
    }

    #[test]
    fn only_latest_or_untagged_images_without_a_policy_pull_differently() {
        for (image, policy, warned) in [
            ("locustio/locust", None, true),
            ("locustio/locust:latest", None, true),
            ("registry:5000/team/locust", None, true),
            ("registry:5000/team/locust:latest", Some("Always"), false),
            ("registry:5000/team/locust:1.2", None, false),
            ("locustio/locust@sha256:abc", None, false),
        ] {
            let mut spec = json!({"image": image});
            if let Some(p) = policy {
                spec["imagePullPolicy"] = json!(p);
            }
            let got = fields(&test(spec), ApiVersion::V2);
            assert_eq!(
                got.contains(&"spec.imagePullPolicy".to_owned()),
                warned,
                "{image}: {got:?}"
            );
        }
    }

    #[test]
    fn labels_the_go_operator_applied_but_this_one_keeps_are_named() {
        let t = test(json!({
            "master": {"command": "--locustfile l.py", "labels": {
                "performance-test-name": "x", "app": "shop", "app.kubernetes.io/instance": "y",
                "performance-test-pod-name": "z", "team": "a"
            }},
            "worker": {"command": "--locustfile l.py", "replicas": 1, "labels": {"app.kubernetes.io/part-of": "p"}}
        }));
        let d = go_operator_differences(&t, ApiVersion::V2);
        let shown: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            d.iter().map(|d| d.field.as_str()).collect::<Vec<_>>(),
            [
                "spec.master.labels[app.kubernetes.io/instance]",
                "spec.master.labels[performance-test-name]",
                "spec.worker.labels[app.kubernetes.io/part-of]",
            ],
            "{shown:#?}"
        );
        assert!(
            shown[0].contains("\"demo\" because the master Service selects the master pod by it"),
            "{}",
            shown[0]
        );
        assert!(
            shown[1].contains("because the operator finds the test's pods by it"),
            "{}",
            shown[1]
        );
        assert!(
            shown[2].contains("\"locust-k8s-operator\" because it is one of the operator's labels"),
            "{}",
            shown[2]
        );
        assert_eq!(
            fields(&t, ApiVersion::V1)[1],
            "spec.labels.master[performance-test-name]"
        );
    }

    /// Every kind of [`DifferenceKind::ALL`] is reported for some test, and each
    /// warning names its kind's section of the guide.
    #[test]
    fn every_kind_is_reported_and_links_its_section() {
        let mut dotted = test(json!({
            "image": "ghcr.io/team/locust",
            "master": {"command": "locust --tags 'a b'", "labels": {"performance-test-name": "x"}}
        }));
        dotted.metadata.name = Some("team.checkout".into());
        let partial = test(json!({"security": {"podSecurityContext": {}}}));
        let mut seen = std::collections::BTreeSet::new();
        for t in [dotted, partial] {
            for d in go_operator_differences(&t, ApiVersion::V2) {
                assert!(
                    d.to_string()
                        .ends_with(&format!(" (see docs/migration.md#{})", d.kind.as_str())),
                    "{d}"
                );
                seen.insert(d.kind);
            }
        }
        assert_eq!(
            seen,
            DifferenceKind::ALL.into_iter().collect(),
            "a kind no test reports"
        );
        let names: std::collections::BTreeSet<&str> =
            DifferenceKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), DifferenceKind::ALL.len(), "names are distinct");
    }

    #[test]
    fn custom_images_and_partial_security_contexts_are_named() {
        for image in [
            "locustio/locust",
            "docker.io/locustio/locust:2.43.1",
            "index.docker.io/locustio/locust@sha256:ab",
        ] {
            assert!(is_official_image(image), "{image}");
        }
        for image in [
            "ghcr.io/team/locust:1",
            "locustio/locust-plugins:1",
            "mirror.local/locustio/locust:2",
            "localhost:5000/locustio/locust",
        ] {
            assert!(!is_official_image(image), "{image}");
        }
        let custom = test(json!({"image": "ghcr.io/team/locust:1.2"}));
        let d = go_operator_differences(&custom, ApiVersion::V1);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "spec.image");
        assert!(
            d[0].message.contains("runAsUser 1000")
                && d[0].message.ends_with(
                    "convert the test to locust.io/v2 and set spec.security.podSecurityContext"
                ),
            "{}",
            d[0]
        );
        let pod_only = test(
            json!({"image": "ghcr.io/team/locust:1.2", "security": {"podSecurityContext": {"runAsUser": 0}}}),
        );
        assert_eq!(
            fields(&pod_only, ApiVersion::V2),
            ["spec.security.containerSecurityContext"]
        );
        let both =
            test(json!({"security": {"podSecurityContext": {}, "containerSecurityContext": {}}}));
        assert!(fields(&both, ApiVersion::V2).is_empty());
    }
}

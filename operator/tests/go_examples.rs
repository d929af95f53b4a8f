//! Every published LocustTest example of the Go operator's documentation and
//! samples, transcribed in `tests/go_examples/` with its source in the header:
//! the examples valid there are valid here and render the Jobs and Service its
//! documentation describes; the invalid ones are rejected naming the field.
//!
//! Header lines of a file:
//! - `# check: <object> <JSON pointer> <JSON value>`: a fact of the rendered
//!   `service`, `master-job` or `worker-job`;
//! - `# warning: <field>`: a migration warning `validate` prints for the file
//!   (the list is complete: no other warning may appear);
//! - `# invalid: <field>`: the example is rejected, with a violation of that field.
//!
//! Beyond those, every valid example is held to what the Go operator's
//! documentation describes for any test: `<name>-master` Service and Job and
//! `<name>-worker` Job, the `app`, `performance-test-name`,
//! `performance-test-pod-name` and `managed-by` labels, the command line the
//! Go operator built (`--master --master-port=5557 --expect-workers=N
//! --autostart --autoquit 60 --enable-rebalancing --only-summary`), the test's
//! resources replacing the defaults, and its scheduling, pull policy, test
//! files and variables passed on as written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use locust_operator::api::v1::DEPRECATION_WARNING;
use locust_operator::api::v2;
use locust_operator::config::OperatorConfig;
use locust_operator::conversion::{V2_API_VERSION, convert_value};
use locust_operator::migration::go_child_name;
use locust_operator::resources::defaults::sets_requests_or_limits;
use locust_operator::resources::labels::{
    LABEL_APP, LABEL_LEGACY_MANAGED_BY, LABEL_TEST_NAME, LABEL_TEST_POD_NAME, OPERATOR_NAME,
    is_operator_label_key,
};
use locust_operator::resources::{Children, Role, build_children, service_name};
use locust_operator::validation::validate_value;
use serde_json::{Value, json};

struct Example {
    path: PathBuf,
    /// The LocustTests of the file (other kinds left out).
    tests: Vec<Value>,
    /// `(object, pointer, value)` of each `# check:` line.
    checks: Vec<(String, String, Value)>,
    warnings: BTreeSet<String>,
    invalid: Option<String>,
}

fn examples() -> Vec<Example> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go_examples");
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension() == Some("yaml".as_ref()) {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let header: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
            let field = |key: &'static str| -> Vec<String> {
                header
                    .iter()
                    .filter_map(|l| l.strip_prefix(key))
                    .map(|v| v.trim().to_owned())
                    .collect()
            };
            let checks = field("# check:")
                .into_iter()
                .map(|c| {
                    let mut parts = c.splitn(3, ' ');
                    let (Some(object), Some(pointer), Some(value)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        panic!("{}: bad check {c:?}", path.display());
                    };
                    let value = serde_json::from_str(value)
                        .unwrap_or_else(|e| panic!("{}: {c:?}: {e}", path.display()));
                    (object.to_owned(), pointer.to_owned(), value)
                })
                .collect();
            let tests = locust_operator::yaml::documents(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .into_iter()
                .filter(|d| d["kind"] == "LocustTest")
                .collect();
            Example {
                warnings: field("# warning:").into_iter().collect(),
                invalid: field("# invalid:").into_iter().next(),
                checks,
                tests,
                path,
            }
        })
        .collect()
}

/// The operator's configuration as `render` uses it.
fn config() -> OperatorConfig {
    OperatorConfig::default().with_default_run_as_user()
}

fn render(doc: &Value) -> (v2::LocustTest, Children) {
    let mut test: v2::LocustTest =
        serde_json::from_value(convert_value(doc.clone(), V2_API_VERSION).unwrap()).unwrap();
    test.metadata
        .namespace
        .get_or_insert_with(|| "default".to_owned());
    test.metadata.uid = Some("00000000-0000-0000-0000-000000000000".to_owned());
    let children = build_children(&test, &config()).unwrap();
    (test, children)
}

fn template(job: &Job) -> &PodTemplateSpec {
    &job.spec.as_ref().unwrap().template
}

/// The labels of a Job's pods.
fn pod_labels(job: &Job) -> &BTreeMap<String, String> {
    template(job)
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap()
}

fn pod(job: &Job) -> &PodSpec {
    template(job).spec.as_ref().unwrap()
}

fn container(job: &Job) -> &Container {
    &pod(job).containers[0]
}

/// `command` and `args` of a container, as one command line.
fn command_line(c: &Container) -> Vec<String> {
    let mut words = c.command.clone().unwrap_or_default();
    words.extend(c.args.clone().unwrap_or_default());
    words
}

/// A command split as the Go operator split it (at white space), then `--otel`
/// when the test enables OpenTelemetry.
fn go_words(command: &str, spec: &v2::LocustTestSpec) -> Vec<String> {
    let mut words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
    let otel = spec
        .observability
        .as_ref()
        .and_then(|o| o.open_telemetry.as_ref())
        .is_some_and(|o| o.enabled);
    if otel {
        words.push("--otel".into());
    }
    words
}

/// The master command line the Go operator built for `spec`.
fn go_master_command(spec: &v2::LocustTestSpec) -> Vec<String> {
    let mut words = go_words(&spec.master.command, spec);
    words.extend([
        "--master".into(),
        "--master-port=5557".into(),
        format!("--expect-workers={}", spec.worker.replicas),
    ]);
    if spec.master.autostart {
        words.push("--autostart".into());
    }
    if spec.master.autoquit.enabled {
        words.extend([
            "--autoquit".into(),
            spec.master.autoquit.timeout.to_string(),
        ]);
    }
    words.extend(["--enable-rebalancing".into(), "--only-summary".into()]);
    words.extend(spec.master.extra_args.iter().cloned());
    words
}

/// The worker command line the Go operator built for `spec` (its operator flags in
/// another order: compared as sorted words), with `master_host` for the Service.
fn go_worker_command(spec: &v2::LocustTestSpec, master_host: &str) -> Vec<String> {
    let mut words = go_words(&spec.worker.command, spec);
    words.extend([
        "--worker".into(),
        "--master-port=5557".into(),
        format!("--master-host={master_host}"),
    ]);
    words.extend(spec.worker.extra_args.iter().cloned());
    words.sort();
    words
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// What the Go operator's documentation describes for every test.
fn check_go_facts(ex: &Example, test: &v2::LocustTest, children: &Children) {
    let what = ex.path.display();
    let name = test.metadata.name.as_deref().unwrap();
    let spec = &test.spec;
    let jobs = [
        (Role::Master, &children.master_job),
        (Role::Worker, &children.worker_job),
    ];

    if !ex.warnings.contains("metadata.name") {
        assert_eq!(
            children.service.metadata.name.as_deref(),
            Some(go_child_name(name, Role::Master).as_str()),
            "{what}"
        );
        for (role, job) in jobs {
            assert_eq!(
                job.metadata.name.as_deref(),
                Some(go_child_name(name, role).as_str()),
                "{what}"
            );
        }
    }

    for (role, job) in jobs {
        let user = match role {
            Role::Master => &spec.master.labels,
            Role::Worker => &spec.worker.labels,
        };
        let job_name = job.metadata.name.clone().unwrap();
        let template = template(job).metadata.as_ref().unwrap();
        let pod_labels = pod_labels(job);
        let job_labels = job.metadata.labels.as_ref().unwrap();
        let app = user.get(LABEL_APP).map_or(name, String::as_str);
        for (key, value) in [
            (LABEL_APP, app),
            (LABEL_TEST_NAME, name),
            (LABEL_TEST_POD_NAME, job_name.as_str()),
            (LABEL_LEGACY_MANAGED_BY, OPERATOR_NAME),
        ] {
            assert_eq!(pod_labels[key], value, "{what}: pod label {key}");
            if key != LABEL_APP {
                assert_eq!(job_labels[key], value, "{what}: Job label {key}");
            }
        }
        assert_eq!(job_labels[LABEL_APP], name, "{what}");
        for (key, value) in user {
            if !is_operator_label_key(key) {
                assert_eq!(&pod_labels[key], value, "{what}: user label {key}");
            }
        }
        assert_eq!(
            template.annotations.clone().unwrap_or_default(),
            match role {
                Role::Master => spec.master.annotations.clone(),
                Role::Worker => spec.worker.annotations.clone(),
            },
            "{what}"
        );
        let own = match role {
            Role::Master => spec.master.resources.as_ref(),
            Role::Worker => spec.worker.resources.as_ref(),
        };
        let resources = serde_json::to_value(container(job).resources.as_ref().unwrap()).unwrap();
        match own.filter(|r| sets_requests_or_limits(r)) {
            Some(own) => assert_eq!(resources, serde_json::to_value(own).unwrap(), "{what}"),
            None => assert_eq!(
                resources,
                json!({"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": "1000m", "memory": "1024Mi"}}),
                "{what}"
            ),
        }
        let c = container(job);
        assert_eq!(c.image.as_deref(), Some(spec.image.as_str()), "{what}");
        assert_eq!(
            c.image_pull_policy.as_deref(),
            spec.image_pull_policy.map(|p| p.as_str()),
            "{what}"
        );
        let variables = spec
            .env
            .as_ref()
            .map_or(&[][..], |e| e.variables.as_slice());
        assert_eq!(
            &c.env.clone().unwrap_or_default()[..variables.len()],
            variables,
            "{what}"
        );
        let pod = pod(job);
        let scheduling = spec.scheduling.clone().unwrap_or_default();
        assert_eq!(pod.affinity, scheduling.affinity, "{what}");
        assert_eq!(
            pod.tolerations.clone().unwrap_or_default(),
            scheduling.tolerations,
            "{what}"
        );
        assert_eq!(
            pod.node_selector.clone().unwrap_or_default(),
            scheduling.node_selector,
            "{what}"
        );
        assert_eq!(
            pod.image_pull_secrets.clone().unwrap_or_default(),
            spec.image_pull_secrets,
            "{what}"
        );
        if let Some(cm) = spec
            .test_files
            .as_ref()
            .and_then(|t| t.config_map_ref.as_ref())
        {
            let volume = &pod.volumes.as_ref().unwrap()[0];
            assert_eq!(volume.config_map.as_ref().unwrap().name, *cm, "{what}");
            let mount = &c.volume_mounts.as_ref().unwrap()[0];
            assert_eq!(mount.mount_path, "/lotest/src", "{what}");
        }
    }

    let master_labels = pod_labels(&children.master_job);
    let service = children.service.spec.as_ref().unwrap();
    for (key, value) in service.selector.as_ref().unwrap() {
        assert_eq!(
            &master_labels[key], value,
            "{what}: the Service selects the master"
        );
    }
    let ports: Vec<i32> = service
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert!(
        ports.contains(&5557) && ports.contains(&5558),
        "{what}: {ports:?}"
    );
    let (master, worker) = (
        children.master_job.spec.as_ref().unwrap(),
        children.worker_job.spec.as_ref().unwrap(),
    );
    assert_eq!(master.parallelism, Some(1), "{what}");
    assert_eq!(worker.parallelism, Some(spec.worker.replicas), "{what}");

    let command_warned = |field: &str| ex.warnings.iter().any(|w| w.ends_with(field));
    if !command_warned("CommandSeed") && !command_warned("master.command") {
        assert_eq!(
            command_line(container(&children.master_job)),
            go_master_command(spec),
            "{what}"
        );
    }
    if !command_warned("CommandSeed") && !command_warned("worker.command") {
        assert_eq!(
            sorted(command_line(container(&children.worker_job))),
            go_worker_command(spec, &service_name(name)),
            "{what}"
        );
    }
}

fn object(children: &Children, name: &str) -> Value {
    match name {
        "service" => serde_json::to_value(&children.service),
        "master-job" => serde_json::to_value(&children.master_job),
        "worker-job" => serde_json::to_value(&children.worker_job),
        other => panic!("unknown object {other}"),
    }
    .unwrap()
}

/// `validate -f` on the file: exit code, the fields of the migration warnings, stderr.
fn cli_validate(path: &Path) -> (Option<i32>, BTreeSet<String>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_locust-k8s-operator"))
        .args(["validate", "-f"])
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let warnings = stderr
        .lines()
        .filter(|l| !l.contains(DEPRECATION_WARNING))
        .filter_map(|l| l.split_once(": warning: "))
        .filter_map(|(_, rest)| rest.split_once(": ").map(|(field, _)| field.to_owned()))
        .collect();
    (out.status.code(), warnings, stderr)
}

#[test]
fn the_go_operators_examples_validate_and_render_as_its_docs_describe() {
    let examples = examples();
    let valid: Vec<&Example> = examples.iter().filter(|e| e.invalid.is_none()).collect();
    assert!(valid.len() >= 60, "{} valid examples", valid.len());
    assert!(examples.len() - valid.len() >= 6, "the invalid examples");
    assert!(
        valid
            .iter()
            .filter(|e| e.tests[0]["apiVersion"] == "locust.io/v1")
            .count()
            >= 4,
        "the v1 examples"
    );
    for ex in valid {
        let what = ex.path.display();
        assert_eq!(ex.tests.len(), 1, "{what}: one LocustTest");
        let doc = &ex.tests[0];
        assert_eq!(validate_value(doc), vec![], "{what}");
        let (test, children) = render(doc);
        check_go_facts(ex, &test, &children);
        for (name, pointer, want) in &ex.checks {
            let got = object(&children, name);
            assert_eq!(got.pointer(pointer), Some(want), "{what}: {name} {pointer}");
        }
        let (code, warnings, stderr) = cli_validate(&ex.path);
        assert_eq!(code, Some(0), "{what}: {stderr}");
        assert_eq!(warnings, ex.warnings, "{what}: {stderr}");
    }
}

#[test]
fn the_invalid_examples_are_rejected_naming_the_field() {
    for ex in examples().iter().filter(|e| e.invalid.is_some()) {
        let what = ex.path.display();
        let field = ex.invalid.as_deref().unwrap();
        assert!(ex.checks.is_empty() && ex.warnings.is_empty(), "{what}");
        let violations = validate_value(&ex.tests[0]);
        assert!(
            violations.iter().any(|v| v.field == field),
            "{what}: no violation of {field}: {violations:#?}"
        );
        let (code, _, stderr) = cli_validate(&ex.path);
        assert_eq!(code, Some(1), "{what}: {stderr}");
    }
}

#[test]
fn documents_of_other_kinds_are_passed_over_with_a_note() {
    let ex = examples()
        .into_iter()
        .find(|e| e.path.ends_with("v2-security-external-secrets.yaml"))
        .unwrap();
    let (code, _, stderr) = cli_validate(&ex.path);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "note: ExternalSecret load-test-credentials: not a LocustTest or LocustSchedule, skipped"
        ),
        "{stderr}"
    );
}

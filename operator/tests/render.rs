//! `locust-k8s-operator render` prints exactly what the running operator's
//! builders create with the same configuration and defaults.

use std::path::Path;
use std::process::Command;

use locust_operator::api::v2;
use locust_operator::config::{LOCUST_IMAGE_UID, OperatorConfig};
use locust_operator::conversion::{V2_API_VERSION, convert_value};
use locust_operator::resources::build_children;
use locust_operator::yaml;

const BIN: &str = env!("CARGO_BIN_EXE_locust-k8s-operator");

fn render(file: &Path, flags: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("render")
        .arg("-f")
        .arg(file)
        .args(flags)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What the operator creates for every test in `file` with `config`
/// (namespace `default`, the placeholder uid `render` assumes).
fn built(file: &Path, config: &OperatorConfig) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = String::new();
    for value in yaml::documents(&text).unwrap() {
        let mut test: v2::LocustTest =
            serde_json::from_value(convert_value(value, V2_API_VERSION).unwrap()).unwrap();
        test.metadata
            .namespace
            .get_or_insert_with(|| "default".to_owned());
        test.metadata
            .uid
            .get_or_insert_with(|| "00000000-0000-0000-0000-000000000000".to_owned());
        let children = build_children(&test, config).unwrap();
        for yaml in [
            yaml::to_string(&children.service),
            yaml::to_string(&children.master_job),
            yaml::to_string(&children.worker_job),
        ] {
            out.push_str("---\n");
            out.push_str(&yaml.unwrap());
        }
    }
    out
}

fn samples() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    ["locusttest-v2.yaml", "locusttest-v1.yaml"]
        .iter()
        .map(|f| dir.join(f))
        .collect()
}

#[test]
fn render_equals_the_builders_with_the_operators_default_config() {
    // What the operator runs with on a cluster that is not OpenShift.
    let config = OperatorConfig::default().with_default_run_as_user();
    assert_eq!(config.pod_run_as_user, Some(LOCUST_IMAGE_UID));
    for sample in samples() {
        let printed = render(&sample, &[]);
        assert_eq!(printed, built(&sample, &config), "{}", sample.display());
        assert_eq!(
            printed.matches("runAsUser: 1000\n").count(),
            2,
            "{}: both pod templates run as the image's UID:\n{printed}",
            sample.display()
        );
    }
}

#[test]
fn render_applies_the_given_flags() {
    let config = OperatorConfig {
        pod_run_as_user: Some(2000),
        pod_cpu_limit: Some("2".to_owned()),
        ..OperatorConfig::default()
    };
    for sample in samples() {
        let printed = render(
            &sample,
            &["--pod-run-as-user", "2000", "--pod-cpu-limit", "2"],
        );
        assert_eq!(printed, built(&sample, &config), "{}", sample.display());
        assert!(!printed.contains("runAsUser: 1000"), "{printed}");
    }
}

/// A test with its locustfile's ConfigMap in the same file, the worker
/// resources leaving `limits.cpu` out.
const WITH_CONFIGMAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-locustfile
data:
  locustfile.py: |
    from locust import HttpUser, task
---
apiVersion: locust.io/v1
kind: LocustTest
metadata:
  name: shop
spec:
  image: locustio/locust:2.43.1
  masterCommandSeed: --locustfile /lotest/src/locustfile.py
  workerCommandSeed: --locustfile /lotest/src/locustfile.py
  workerReplicas: 2
  configMap: shop-locustfile
---
apiVersion: locust.io/v2
kind: LocustTest
metadata:
  name: shop-v2
spec:
  image: locustio/locust:2.43.1
  master:
    command: --locustfile /lotest/src/locustfile.py
  worker:
    command: --locustfile /lotest/src/locustfile.py
    replicas: 2
    resources:
      requests: {cpu: 500m}
      limits: {memory: 1Gi}
"#;

fn run(args: &[&str], file: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("-f")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// [`run`] on a file holding `text`.
fn run_on(text: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("test.yaml");
    std::fs::write(&file, text).unwrap();
    run(args, &file)
}

/// The `resources` of the container of the rendered Job `job`.
fn resources_of(rendered: &[serde_json::Value], job: &str) -> serde_json::Value {
    let job = rendered
        .iter()
        .find(|d| d["metadata"]["name"] == job)
        .unwrap();
    job["spec"]["template"]["spec"]["containers"][0]["resources"].clone()
}

#[test]
fn other_kinds_are_passed_over_with_a_note_by_every_subcommand() {
    let note = "note: ConfigMap shop-locustfile: not a LocustTest or LocustSchedule, skipped\n";

    let (code, stdout, stderr) = run_on(WITH_CONFIGMAP, &["validate"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "shop: valid\nshop-v2: valid\n");
    assert!(stderr.starts_with(note), "{stderr}");

    let (code, stdout, stderr) = run_on(WITH_CONFIGMAP, &["render"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr, note);
    assert_eq!(stdout.matches("\nkind: Job\n").count(), 4, "{stdout}");
    assert_eq!(stdout.matches("\nkind: Service\n").count(), 2, "{stdout}");

    let (code, stdout, stderr) = run_on(WITH_CONFIGMAP, &["convert", "--to", "v2"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stderr,
        "note: ConfigMap shop-locustfile: not a LocustTest, skipped\n"
    );
    assert_eq!(stdout.matches("kind: LocustTest\n").count(), 2, "{stdout}");
    assert!(!stdout.contains("ConfigMap"), "{stdout}");

    // `kubectl get -o yaml` of several objects: a List, its items taken one by one.
    let docs = yaml::documents(WITH_CONFIGMAP).unwrap();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs});
    let (code, stdout, stderr) = run_on(&yaml::to_string(&list).unwrap(), &["validate"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "shop: valid\nshop-v2: valid\n");
    assert!(stderr.starts_with(note), "{stderr}");
}

#[test]
fn render_shows_that_a_tests_resources_replace_the_defaults() {
    let (code, stdout, stderr) = run_on(WITH_CONFIGMAP, &["render", "--worker-cpu-limit", "2"]);
    assert_eq!(code, Some(0), "{stderr}");
    let docs = yaml::documents(&stdout).unwrap();
    assert_eq!(
        resources_of(&docs, "shop-v2-worker"),
        serde_json::json!({"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}}),
        "no CPU limit: neither --worker-cpu-limit nor the unified default"
    );
    assert_eq!(
        resources_of(&docs, "shop-worker"),
        serde_json::json!({"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "1024Mi"}})
    );
}

#[test]
fn validate_warns_where_the_go_operator_differs_without_failing() {
    let (code, stdout, stderr) = run_on(
        r#"
apiVersion: locust.io/v1
kind: LocustTest
metadata:
  name: team.shop
spec:
  image: locustio/locust:latest
  masterCommandSeed: "--locustfile /lotest/src/l.py --tags 'a b'"
  workerCommandSeed: --locustfile /lotest/src/l.py
  workerReplicas: 1
  labels:
    worker:
      performance-test-name: other
"#,
        &["validate"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "team.shop: valid\n");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("team.shop: warning: "))
        .collect();
    // Each warning starts with its field and names the difference.
    let expected = [
        "locust.io/v1 LocustTest is deprecated",
        "metadata.name: the Service and the master Job are named team-shop-",
        "spec.masterCommandSeed: is split like a shell command line here",
        "spec.imagePullPolicy: is unset and the image locustio/locust:latest",
        "spec.labels.worker[performance-test-name]: is ignored",
    ];
    assert_eq!(warnings.len(), expected.len(), "{stderr}");
    for (warning, start) in warnings.iter().zip(expected) {
        assert!(warning.starts_with(start), "{start:?} in {stderr}");
    }
    assert!(
        warnings[1].contains("the Go operator named them team-shop-master and team-shop-worker"),
        "{stderr}"
    );
}

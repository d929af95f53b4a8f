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

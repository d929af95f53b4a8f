//! The user documentation stays true to the code: every operator flag and its
//! environment variable is documented, and every condition reason the phase
//! machine can write is in the status lifecycle page.

use clap::{Args, Command};
use locust_operator::config::OperatorConfig;

fn doc(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn every_flag_and_variable_is_documented() {
    let text = doc("configuration.md");
    let cmd = OperatorConfig::augment_args(Command::new("locust-k8s-operator"));
    let mut count = 0;
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        count += 1;
        assert!(
            text.contains(&format!("`--{long}`")),
            "docs/configuration.md lacks --{long}"
        );
        if let Some(env) = arg.get_env() {
            let env = env.to_string_lossy();
            assert!(
                text.contains(&format!("`{env}`")),
                "docs/configuration.md lacks {env}"
            );
        }
        if let Some(default) = arg.get_default_values().first() {
            let default = default.to_string_lossy();
            let row = text
                .lines()
                .find(|l| l.starts_with(&format!("| `--{long}`")))
                .unwrap_or_default();
            assert!(
                row.contains(&format!("`{default}`")),
                "--{long}: default {default} not documented: {row}"
            );
        }
    }
    assert!(count > 20, "found only {count} flags");
}

#[test]
fn every_condition_reason_is_documented() {
    use locust_operator::controller::pod_health::Problem;
    use locust_operator::controller::state::reason;
    let text = doc("status.md");
    let reasons = [
        reason::ALL_RESOURCES_CREATED,
        reason::RESOURCES_MISSING,
        reason::TEST_FINISHED,
        reason::ALL_WORKERS_CONNECTED,
        reason::WAITING_FOR_WORKERS,
        reason::TEST_PENDING,
        reason::TEST_IN_PROGRESS,
        reason::TEST_SUCCEEDED,
        reason::TEST_FAILED,
        reason::PODS_UNHEALTHY,
        reason::ALL_PODS_HEALTHY,
        reason::NO_DRIFT,
        reason::SPEC_CHANGED,
        reason::STATS_READ,
        reason::MASTER_UNREACHABLE,
        reason::WAITING_FOR_MASTER,
        reason::THRESHOLDS_BREACHED,
        reason::RESULTS_UNAVAILABLE,
        "MasterBadResponse",
        "StatsUndecodable",
        Problem::ImagePullError.reason(),
        Problem::ConfigError.reason(),
        Problem::Unschedulable.reason(),
        Problem::CrashLoop.reason(),
        Problem::ContainerFailed.reason(),
    ];
    for r in reasons {
        assert!(
            text.contains(&format!("`{r}`")),
            "docs/status.md lacks reason {r}"
        );
    }
}

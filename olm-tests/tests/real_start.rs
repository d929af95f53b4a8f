//! The start deadline on the real node: a test whose pods cannot start and
//! whose pods show no error (a missing test-files ConfigMap leaves them
//! `ContainerCreating`), and a test whose Jobs cannot create pods at all (a
//! ResourceQuota of zero pods), end `Failed` once `--start-timeout` passes,
//! with the cause the Warning Events name.
//!
//! Skips without the tools or images unless `CI`/`LOCUST_REQUIRE_TOOLS`.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{Api, PostParams};
use locust_operator::api::{Phase, condition_type as ct};
use olm_tests::fixture::{self, RealNodeFixture, locust_spec, phase};
use serde_json::json;

/// The deadline the operator runs with here.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_tests_that_cannot_start_fail_at_the_deadline() -> Result<()> {
    let flag = format!("--start-timeout={}s", START_TIMEOUT.as_secs());
    let (files_ns, quota_ns) = ("no-files", "no-pods");
    RealNodeFixture::run(
        "real_node_tests_that_cannot_start_fail_at_the_deadline",
        "real-start",
        &[&flag],
        &[files_ns, quota_ns],
        async |fx| {
            fx.namespace(files_ns, &[]).await?;
            fx.namespace(quota_ns, &[]).await?;
            let quota: ResourceQuota = serde_json::from_value(json!({
                "metadata": {"name": "no-pods"},
                "spec": {"hard": {"pods": "0"}},
            }))?;
            Api::<ResourceQuota>::namespaced(fx.client(), quota_ns)
                .create(&PostParams::default(), &quota)
                .await?;
            let t0 = Instant::now();
            // No ConfigMap `no-such-files` exists.
            fx.create_test(
                files_ns,
                "missing",
                locust_spec("no-such-files", "10s", json!({})),
            )
            .await?;
            fx.create_test(
                quota_ns,
                "quota",
                locust_spec("no-such-files", "10s", json!({})),
            )
            .await?;
            let bound = START_TIMEOUT + Duration::from_secs(60);
            let (missing, quota) = tokio::try_join!(
                fx.wait_terminal(files_ns, "missing", bound),
                fx.wait_terminal(quota_ns, "quota", bound),
            )?;
            let took = t0.elapsed();
            let mut lines = Vec::new();
            for (test, reason, parts) in [
                (
                    &missing,
                    "ConfigError",
                    &[
                        "start timeout (30s)",
                        "ContainerCreating",
                        "FailedMount",
                        r#"configmap "no-such-files" not found"#,
                    ][..],
                ),
                (
                    &quota,
                    "StartTimedOut",
                    &[
                        "start timeout (30s)",
                        "no pod of the test exists",
                        "FailedCreate",
                        "quota",
                    ][..],
                ),
            ] {
                ensure!(phase(test) == Some(Phase::Failed), "{:?}", test.status);
                let (status, got, message) =
                    fixture::condition(test, ct::TEST_COMPLETED).unwrap_or_default();
                ensure!(status == "True" && got == reason, "{got}: {message}");
                for part in parts {
                    ensure!(message.contains(part), "{part:?} not in {message}");
                }
                let created = test.metadata.creation_timestamp.as_ref().map(|t| t.0);
                let completed = test
                    .status
                    .as_ref()
                    .and_then(|s| s.completion_time.as_ref())
                    .map(|t| t.0);
                if let (Some(c), Some(d)) = (created, completed) {
                    let after = d.duration_since(c).as_secs_f64();
                    ensure!(
                        after >= START_TIMEOUT.as_secs_f64() - 1.0,
                        "failed {after:.1}s after creation, before the deadline"
                    );
                    lines.push(format!("{reason} {after:.1}s after creation"));
                }
            }
            eprintln!(
                "real_node_start_deadline: {} (both final {:.1}s after creating them; took {:.1}s)",
                lines.join(", "),
                took.as_secs_f64(),
                fx.started.elapsed().as_secs_f64()
            );
            Ok(())
        },
    )
    .await
}

//! The per-test `locust_test_*` metrics during and after a real run: a real
//! Locust master and two workers on the real node ([`RealNodeFixture`])
//! load the target, and the operator's `/metrics` carries the test's series
//! with the numbers its master reports.
//!
//! Skips without the tools or images unless `CI`/`LOCUST_REQUIRE_TOOLS`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use locust_operator::api::{LocustTest, Phase};
use locust_operator::stats;
use olm_tests::fixture::{self, RealNodeFixture, locust_spec, locustfile, phase};
use olm_tests::wait_for;
use serde_json::json;

const NS: &str = "metrics";
const NAME: &str = "scraped";
/// Bound on the whole run (creation to final phase).
const RUN: Duration = Duration::from_secs(180);

/// The value of the series `family{namespace="metrics",name="scraped"<extra>}`
/// in the exposition `text`, if present.
fn series(text: &str, family: &str, extra: &str) -> Option<f64> {
    let head = format!(r#"{family}{{namespace="{NS}",name="{NAME}"{extra}}} "#);
    text.lines()
        .find_map(|l| l.strip_prefix(head.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

/// Checks that the series of `family` (with `extra` labels) in `text` is
/// `want` (`None`: absent).
fn expect(text: &str, family: &str, extra: &str, want: Option<f64>) -> Result<()> {
    let got = series(text, family, extra);
    ensure!(
        got == want,
        "{family}{extra}: {got:?} in the scrape, expected {want:?}:\n{text}"
    );
    Ok(())
}

/// A count as the scrape writes it.
fn count(n: Option<i64>) -> Option<f64> {
    n.map(|n| n as f64)
}

fn live_requests(t: &LocustTest) -> Option<i64> {
    t.status.as_ref()?.live.as_ref()?.total_requests
}

/// A scrape taken between two reads of the running test that show the same
/// live request count (its status did not change meanwhile), with the test.
async fn scrape_between_equal_reads(fx: &RealNodeFixture) -> Result<(String, LocustTest)> {
    let tests = fx.tests(NS);
    for _ in 0..20 {
        let before = tests.get(NAME).await?;
        let text = fx.operator.metrics().await?;
        let after = tests.get(NAME).await?;
        if phase(&after) == Some(Phase::Running)
            && live_requests(&before).is_some_and(|n| n > 0)
            && live_requests(&before) == live_requests(&after)
        {
            return Ok((text, after));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bail!("no scrape between two equal reads of the running test in 20 tries")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_metrics_carry_the_masters_numbers() -> Result<()> {
    RealNodeFixture::run(
        "real_node_metrics_carry_the_masters_numbers",
        "real-metrics",
        &[],
        &[NS],
        async |fx| {
            fx.namespace(NS, &[]).await?;
            let target = fx.start_target(NS, None).await?;
            fx.locustfile(NS, "m-files", &locustfile("", "\"/\""))
                .await?;
            fx.create_test(NS, NAME, locust_spec("m-files", "25s", json!({})))
                .await?;

            // Before the master runs: the phase and the expected workers only,
            // once the operator has reconciled the test (its series appear
            // with the first reconcile, shortly after the create; a scrape
            // before that has none).
            let pending = wait_for(
                Duration::from_secs(20),
                Duration::from_millis(100),
                || async {
                    let text = fx.operator.metrics().await?;
                    Ok(series(&text, "locust_test_workers_expected", "").map(|_| text))
                },
            )
            .await
            .context("the test's series never appeared on /metrics")?;
            expect(&pending, "locust_test_workers_expected", "", Some(2.0))?;
            expect(&pending, "locust_test_users", "", None)?;

            // While it runs: the live numbers of the status, and the users and
            // workers the master itself reports.
            fx.wait_test(NS, NAME, "live requests", Duration::from_secs(120), |t| {
                live_requests(t).is_some_and(|n| n > 0)
            })
            .await?;
            let (text, test) = scrape_between_equal_reads(fx).await?;
            let live = test
                .status
                .as_ref()
                .and_then(|s| s.live.clone())
                .context("status.live")?;
            let requests = live.total_requests.unwrap_or(0) as f64;
            expect(&text, "locust_test_requests_total", "", Some(requests))?;
            expect(
                &text,
                "locust_test_request_failures_total",
                "",
                count(live.failed_requests),
            )?;
            expect(&text, "locust_test_phase", r#",phase="Running""#, Some(1.0))?;
            let p50 = series(
                &text,
                "locust_test_response_time_seconds",
                r#",quantile="0.5""#,
            )
            .context("no median response time series")?;
            ensure!(
                live.median_response_time
                    .is_some_and(|ms| (ms / 1000.0 - p50).abs() < 1e-9),
                "median {p50}s in the scrape, {:?} ms in the status",
                live.median_response_time
            );
            let masters = fx
                .wait_role_running(NS, NAME, "master", 1, Duration::from_secs(10))
                .await?;
            let forward = fx
                .cluster
                .forward(SocketAddr::new(fixture::pod_ip(&masters[0])?, 8089))?;
            let master = stats::read_stats(forward.host_addr(), "", stats::DEFAULT_TIMEOUT).await?;
            drop(forward);
            let users = series(&text, "locust_test_users", "");
            ensure!(
                users.is_some() && users == master.user_count.map(|u| u as f64),
                "users: scrape {users:?}, master {:?}",
                master.user_count
            );
            expect(
                &text,
                "locust_test_workers_connected",
                "",
                count(master.worker_count),
            )?;

            // After the run: the result, and no live numbers.
            let done = fx.wait_terminal(NS, NAME, RUN).await?;
            ensure!(phase(&done) == Some(Phase::Succeeded), "{:?}", done.status);
            let result = done
                .status
                .as_ref()
                .and_then(|s| s.result.clone())
                .context("status.result")?;
            let after = fx.operator.metrics().await?;
            expect(
                &after,
                "locust_test_result_requests",
                "",
                count(result.total_requests),
            )?;
            expect(
                &after,
                "locust_test_result_failures",
                "",
                count(result.failed_requests),
            )?;
            expect(
                &after,
                "locust_test_phase",
                r#",phase="Succeeded""#,
                Some(1.0),
            )?;
            expect(&after, "locust_test_users", "", None)?;
            expect(&after, "locust_test_requests_total", "", None)?;
            let served = fx.target_stats(&target).await?.requests_to("/");
            eprintln!(
                "real_node_metrics: while running {requests} requests, {users:?} users, p50 {p50}s \
             in the scrape = status and master; after: {:?} requests, {:?} failed \
             (target answered {served}); took {:.1}s",
                result.total_requests,
                result.failed_requests,
                fx.started.elapsed().as_secs_f64()
            );
            Ok(())
        },
    )
    .await
}

//! The operator's command lines, report flags and stats reader against REAL
//! Locust (the version pinned in `olm-tests/locust-requirements.txt`).
//!
//! For a sample LocustTest the operator's builders render the Jobs; a real
//! master and two real workers run as local processes with exactly those
//! command lines and environments (host mapping: see `olm_tests::locust`),
//! against a small HTTP target on 127.0.0.1. Checked: the workers connect,
//! `--autostart`/`--run-time`/`--autoquit` end the run, the exit code, the
//! report files, and `stats.rs` reading live and final numbers from the real
//! master, including a failing target (failRatio > 0, thresholds breached).
//!
//! Skips when Locust cannot be installed, unless `CI`/`LOCUST_REQUIRE_TOOLS`
//! is set. Each scenario binds its own loopback address, so they run in
//! parallel without clashing on ports 5557/8089.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use locust_operator::api::status::TestResult;
use locust_operator::api::v2::{
    CsvOutput, FileOutput, LocustTest, LocustTestSpec, OutputSpec, ThresholdsSpec,
};
use locust_operator::config::OperatorConfig;
use locust_operator::resources::{self, names};
use locust_operator::stats::{self, MasterStats};
use locust_operator::thresholds::{self, ThresholdError};
use locust_operator::validation;
use olm_tests::locust::{self, LOCUSTFILE, Target};
use serde_json::json;

const USERS: u32 = 5;

/// A sample test: 2 workers, 5 users, 10 s, autoquit 3 s, every report enabled
/// on a master-only volume.
fn sample(name: &str, dir: &Path, target: SocketAddr, thresholds: ThresholdsSpec) -> LocustTest {
    let locustfile = dir.join("locustfile.py");
    let results = dir.join("results");
    let command = format!(
        "locust -f {} --host http://{target} --users {USERS} --spawn-rate {USERS} --run-time 10s",
        locustfile.display()
    );
    let spec: LocustTestSpec = serde_json::from_value(json!({
        "image": format!("locustio/locust:{}", locust::locust_version()),
        "master": {"command": command, "autoquit": {"enabled": true, "timeout": 3}},
        "worker": {"command": format!("locust -f {}", locustfile.display()), "replicas": 2},
        "volumes": [{"name": "results", "emptyDir": {}}],
        "volumeMounts": [{"name": "results", "mountPath": results.display().to_string(), "target": "master"}],
    }))
    .unwrap();
    let mut test = LocustTest::new(name, spec);
    test.metadata.namespace = Some("load".into());
    test.metadata.uid = Some(format!("uid-{name}"));
    test.spec.thresholds = Some(thresholds);
    test.spec.output = Some(OutputSpec {
        html_report: Some(FileOutput {
            enabled: true,
            path: Some(results.join("report.html").display().to_string()),
        }),
        json_file: Some(FileOutput {
            enabled: true,
            path: Some(results.join("stats").display().to_string()),
        }),
        csv: Some(CsvOutput {
            enabled: true,
            prefix: Some(results.join("run").display().to_string()),
        }),
    });
    test
}

struct Outcome {
    live: MasterStats,
    final_stats: MasterStats,
    result: TestResult,
    exit_code: Option<i32>,
    json_report: serde_json::Value,
}

/// Runs one scenario; `ip` is the loopback address the master binds.
async fn run(
    bin: &Path,
    name: &str,
    ip: Ipv4Addr,
    fail_every: Option<u64>,
    th: ThresholdsSpec,
) -> Result<Outcome> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("locustfile.py"), LOCUSTFILE)?;
    std::fs::create_dir(dir.path().join("results"))?;
    let target = Target::start(fail_every).await?;
    let test = sample(name, dir.path(), target.addr, th);
    assert_eq!(validation::validate(&test), vec![], "sample is valid");

    let children = resources::build_children(&test, &OperatorConfig::default())?;
    let master = locust::rendered_command(&children.master_job)?;
    let worker = locust::rendered_command(&children.worker_job)?;
    // The rendered master command carries the report flags and autostart/autoquit.
    let master_line = master.args.join(" ");
    for flag in [
        "--html=",
        "--json-file=",
        "--csv=",
        "--autostart",
        "--autoquit 3",
        "--expect-workers=2",
    ] {
        ensure!(
            master_line.contains(flag),
            "master args lack {flag}: {master_line}"
        );
    }

    let service = names::service_name(name);
    let replace: BTreeMap<String, String> = [(
        format!("--master-host={service}"),
        format!("--master-host={ip}"),
    )]
    .into();
    ensure!(
        worker.args.iter().any(|a| replace.contains_key(a)),
        "worker args lack --master-host={service}: {:?}",
        worker.args
    );
    let mip = IpAddr::V4(ip);
    let mut m = locust::spawn(
        bin,
        &master,
        &BTreeMap::new(),
        &locust::master_bind_args(mip),
        dir.path(),
        dir.path().join("master.log"),
    )?;
    let mut workers = Vec::new();
    for i in 0..2 {
        workers.push(locust::spawn(
            bin,
            &worker,
            &replace,
            &[],
            dir.path(),
            dir.path().join(format!("worker-{i}.log")),
        )?);
    }

    let web = SocketAddr::new(mip, 8089);
    let timeout = stats::DEFAULT_TIMEOUT;
    // Live: running with both workers connected and requests counted.
    let deadline = Instant::now() + Duration::from_secs(40);
    let live = loop {
        if Instant::now() > deadline {
            bail!("no live stats with 2 workers; master log:\n{}", m.output());
        }
        if let Ok(s) = stats::read_stats(web, "", timeout).await
            && s.state.as_deref() == Some("running")
            && s.worker_count == Some(2)
            && s.aggregated
                .as_ref()
                .and_then(|a| a.num_requests)
                .unwrap_or(0)
                > 0
        {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // Final: the first read that sees `stopped` (autoquit keeps the master up 3 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    let reading = loop {
        if Instant::now() > deadline {
            bail!("run never stopped; master log:\n{}", m.output());
        }
        match stats::read_master(web, "", timeout).await {
            Ok(r) if r.final_result.is_some() => break r,
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    };
    let status = m.wait(Duration::from_secs(20)).await?;
    for w in &mut workers {
        w.wait(Duration::from_secs(20)).await?;
    }
    let results = dir.path().join("results");
    for f in [
        "report.html",
        "stats.json",
        "run_stats.csv",
        "run_failures.csv",
    ] {
        ensure!(
            results.join(f).exists(),
            "{f} was not written; master log:\n{}",
            m.output()
        );
    }
    let json_report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(results.join("stats.json"))?)
            .context("stats.json")?;
    ensure!(target.served.load(std::sync::atomic::Ordering::SeqCst) > 0);
    Ok(Outcome {
        live,
        final_stats: reading.stats,
        result: reading.final_result.context("final result")?,
        exit_code: status.code(),
        json_report,
    })
}

fn report_totals(report: &serde_json::Value) -> (i64, i64) {
    let rows = report.as_array().cloned().unwrap_or_default();
    rows.iter().fold((0, 0), |(r, f), row| {
        (
            r + row["num_requests"].as_i64().unwrap_or(0),
            f + row["num_failures"].as_i64().unwrap_or(0),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_locust_runs_rendered_jobs_and_stats_are_read() -> Result<()> {
    let Some(bin) = locust::ensure_locust().await? else {
        return Ok(());
    };
    let passing = ThresholdsSpec {
        max_fail_ratio: Some(0.01),
        max_p95_response_time: Some(2000.0),
        min_requests_per_second: Some(1.0),
        ..Default::default()
    };
    let (ok, bad) = tokio::join!(
        run(
            &bin,
            "real-ok",
            Ipv4Addr::new(127, 77, 0, 1),
            None,
            passing.clone()
        ),
        run(
            &bin,
            "real-bad",
            Ipv4Addr::new(127, 77, 0, 2),
            Some(4),
            passing.clone()
        ),
    );
    let ok = ok.context("passing scenario")?;
    let bad = bad.context("failing scenario")?;

    // Live numbers from the real master.
    for o in [&ok, &bad] {
        assert_eq!(o.live.state.as_deref(), Some("running"));
        assert_eq!(o.live.worker_count, Some(2));
        assert_eq!(o.live.user_count, Some(i64::from(USERS)));
        assert!(o.live.total_rps.is_some());
        assert!(o.live.live().total_requests.unwrap_or(0) > 0);
        assert!(o.final_stats.is_stopped());
    }

    // Final numbers: consistent with themselves and with the master's JSON report.
    let r = &ok.result;
    let total = r.total_requests.unwrap();
    assert!(total > 0);
    assert_eq!(r.failed_requests, Some(0));
    assert_eq!(r.fail_ratio, Some(0.0));
    for v in [
        r.average_response_time,
        r.median_response_time,
        r.p90_response_time,
        r.p95_response_time,
        r.p99_response_time,
        r.max_response_time,
        r.requests_per_second,
    ] {
        assert!(v.is_some_and(|v| v >= 0.0), "{r:?}");
    }
    assert!(r.median_response_time <= r.p95_response_time);
    assert!(r.p95_response_time <= r.p99_response_time);
    assert_eq!(report_totals(&ok.json_report), (total, 0));
    assert_eq!(ok.exit_code, Some(0), "no failures: exit code 0");
    assert_eq!(thresholds::evaluate(&passing, r), Ok(()));

    // Failing target: every 4th request is a 500.
    let r = &bad.result;
    let (total, failed) = (r.total_requests.unwrap(), r.failed_requests.unwrap());
    assert!(failed > 0 && failed < total, "{r:?}");
    let ratio = r.fail_ratio.unwrap();
    assert!((ratio - failed as f64 / total as f64).abs() < 1e-12);
    assert!(ratio > 0.15 && ratio < 0.35, "about 1 in 4 fails: {ratio}");
    assert_eq!(report_totals(&bad.json_report), (total, failed));
    // Locust exits 1 when any request failed (--exit-code-on-error default).
    assert_eq!(bad.exit_code, Some(1));
    match thresholds::evaluate(&passing, r) {
        Err(e @ ThresholdError::Breached { .. }) => {
            assert_eq!(e.reason(), "ThresholdsBreached");
            assert!(e.to_string().starts_with("fail ratio 0."), "{e}");
            assert!(e.to_string().contains("> 0.01"), "{e}");
        }
        other => panic!("expected a breach, got {other:?}"),
    }
    Ok(())
}

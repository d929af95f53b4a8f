//! The operator runs as its image and the CSV run it (issue #7): as a
//! non-root user (65532, distroless `nonroot`), with no capabilities, no new
//! privileges, and a read-only root filesystem — and still becomes ready,
//! serves its webhook over TLS and reconciles a test to the end.
//!
//! Here the "container" is a private mount namespace (`unshare`) with a
//! read-only bind of the root, entered with `chroot` and `setpriv`; this needs root on the test
//! machine (CI runs as root). Without root the test says so and skips,
//! unless `LOCUST_REQUIRE_TOOLS=1`, where it fails.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use kube::api::{Api, PostParams};
use locust_operator::api::{LocustTest, Phase};
use olm_tests::checks::{self, wait_phase};
use olm_tests::e2e;
use olm_tests::operator::{self, OperatorProcess};

const NONROOT: u32 = 65532;

/// Bind the whole filesystem tree (recursively, so /proc, /sys and /dev come
/// along) onto `root` in a private mount namespace, make it read-only, and
/// exec the operator (`$0 "$@"`) chrooted there as 65532 with no
/// capabilities and no new privileges.
fn sandbox_script(root: &Path) -> String {
    format!(
        r#"set -e
mount --rbind / '{root}'
mount -o remount,bind,ro '{root}'
mount -o remount,bind,ro '{root}/dev/shm' 2>/dev/null || true
exec chroot '{root}' setpriv --reuid=65532 --regid=65532 --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all "$0" "$@""#,
        root = root.display()
    )
}

fn share(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

fn uid_of(pid: u32) -> Result<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .context("no Uid line")?;
    // Uid: real effective saved filesystem — all must be 65532.
    let ids: Vec<u32> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()?;
    ensure!(ids.iter().all(|&i| i == ids[0]), "mixed uids in {line:?}");
    Ok(ids[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_runs_non_root_on_a_read_only_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        if std::env::var_os("LOCUST_REQUIRE_TOOLS").is_some() {
            bail!(
                "this test needs root (a mount namespace and setpriv) and LOCUST_REQUIRE_TOOLS is set"
            );
        }
        eprintln!("SKIP operator_runs_non_root_on_a_read_only_root: not root");
        return Ok(());
    }
    for tool in ["unshare", "setpriv", "chroot"] {
        ensure!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} (util-linux) is needed"
        );
    }
    let Some((cluster, kubeconfig)) =
        e2e::operator_cluster("operator_runs_non_root_on_a_read_only_root", "rel-sandbox").await?
    else {
        return Ok(());
    };
    let client = cluster.admin_client();

    // What the pod would mount: the ServiceAccount credentials and the
    // webhook certificate, readable by 65532 (the cluster directory is not).
    let shared = tempfile::Builder::new().prefix("ro-operator-").tempdir()?;
    share(shared.path(), 0o755)?;
    let kc = shared.path().join("kubeconfig");
    std::fs::copy(&kubeconfig, &kc)?;
    share(&kc, 0o644)?;
    let certs = shared.path().join("certs");
    let ca = operator::write_webhook_cert(&certs)?;
    share(&certs, 0o755)?;
    for f in ["tls.crt", "tls.key"] {
        share(&certs.join(f), 0o644)?;
    }
    let port = operator::free_port()?;
    let crd = operator::with_local_conversion_webhook(operator::bundle_crd()?, port, &ca);
    operator::install_crd(&client, &crd).await?;
    operator::install_local_validating_webhook(&client, port, &ca).await?;

    let root = shared.path().join("root");
    std::fs::create_dir(&root)?;
    let wrapper: Vec<String> = vec![
        "unshare".into(),
        "--mount".into(),
        "--propagation".into(),
        "private".into(),
        "sh".into(),
        "-c".into(),
        sandbox_script(&root),
    ];
    let op = OperatorProcess::spawn_wrapped(
        &cluster,
        &kc,
        "sandboxed",
        &[
            "--leader-elect=true".into(),
            "--webhook-bind-address=127.0.0.1".into(),
            format!("--webhook-port={port}"),
            format!("--webhook-cert-dir={}", certs.display()),
        ],
        &wrapper,
    )?;
    let result = async {
        op.wait_ready(Duration::from_secs(30)).await?;
        let pid = op.pid().context("no pid")?;
        let uid = uid_of(pid)?;
        ensure!(uid == NONROOT, "the operator runs as uid {uid}");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        for cap in ["CapEff:", "CapPrm:", "CapBnd:"] {
            let line = status.lines().find(|l| l.starts_with(cap)).unwrap_or("");
            ensure!(
                line.ends_with("0000000000000000"),
                "capabilities left: {line}"
            );
        }
        ensure!(
            status.lines().any(|l| l == "NoNewPrivs:\t1"),
            "no_new_privs is not set"
        );
        // Its root is read-only: even root cannot write there, in its mount namespace.
        let probe = std::fs::write(
            format!("/proc/{pid}/root/tmp/.operator-rw-probe"),
            b"x",
        );
        ensure!(
            probe
                .as_ref()
                .is_err_and(|e| e.raw_os_error() == Some(libc::EROFS)),
            "the operator's root is writable: {probe:?}"
        );

        // It serves its webhooks (through the apiserver) and reconciles.
        let tests: Api<LocustTest> = Api::namespaced(client.clone(), "default");
        let created = olm_tests::wait_for(Duration::from_secs(20), Duration::from_millis(250), || async {
            Ok(Some(tests.create(&PostParams::default(), &checks::sample("sandboxed")?).await?))
        })
        .await?;
        ensure!(created.metadata.uid.is_some());
        wait_phase(&tests, "sandboxed", Phase::Running, Duration::from_secs(60)).await?;
        let master = cluster.job_pods("default", "sandboxed-master").await?;
        ensure!(master.len() == 1);
        cluster
            .complete_pod("default", &kube::ResourceExt::name_any(&master[0]), 0)
            .await?;
        wait_phase(&tests, "sandboxed", Phase::Succeeded, Duration::from_secs(60)).await?;
        let log = op.log();
        ensure!(!log.contains("Read-only file system"), "the operator tried to write a file");
        ensure!(!log.contains("Permission denied"), "the operator needed a permission");
        eprintln!(
            "FIGURE sandboxed operator: uid {uid}, no capabilities, no_new_privs, read-only root; ready, webhook and reconcile OK"
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    e2e::with_operator_log(&cluster, &op, 40, result)
}

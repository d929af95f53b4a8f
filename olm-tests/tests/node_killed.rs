//! A test process killed outright (SIGKILL, no clean-up code runs) leaves
//! nothing of its real node running: `local-cluster up --real-node` is
//! started as a child process, a pod is made to run on its node, the child is
//! SIGKILLed, and then, within a bounded time, no process of the node's PID
//! namespace (containerd, kubelet, shims) and no container process (found by
//! the node's cgroup root) is left, no process holds the cluster's network
//! namespace, no mount of the cluster is visible on the host, and the
//! host-wide sysctls the kubelet would set are unchanged. The cgroup root the
//! dead process left is removed by the next real node (its owner pid is
//! gone). Processes are found and checked by pid and namespace, never by name.
//!
//! Skips without the tools or images unless `CI`/`LOCUST_REQUIRE_TOOLS`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use olm_tests::cluster::{KUBELET_SYSCTLS, client_from_kubeconfig, pod_phase};
use olm_tests::images::{self, Image};
use olm_tests::{Cluster, ClusterOptions, wait_for};
use serde_json::json;

const CGROUP_PREFIX: &str = "locust-k8s-operator-node.";

fn sysctls() -> Vec<String> {
    KUBELET_SYSCTLS
        .iter()
        .map(|(key, _)| std::fs::read_to_string(format!("/proc/sys/{key}")).unwrap_or_default())
        .collect()
}

fn ns_link(pid: u32, ns: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Alive and not a zombie.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// Pids in the node's PID namespace, or in its cgroup root (containers live
/// in PID namespaces of their own below it).
fn node_pids(pidns: &str, cgroup_root: &str) -> BTreeSet<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| {
            ns_link(pid, "pid").as_deref() == Some(pidns)
                || std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                    .is_ok_and(|c| c.contains(cgroup_root))
        })
        .collect()
}

fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for top in entries.flatten() {
            let dir = top.path().join(name);
            if dir.is_dir() {
                found.push(dir);
            }
        }
    }
    let v2 = Path::new("/sys/fs/cgroup").join(name);
    if v2.is_dir() && !found.contains(&v2) {
        found.push(v2);
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_test_process_leaves_no_node_process_mount_or_setting_behind() -> Result<()> {
    let test = "a_killed_test_process_leaves_nothing";
    let Some((tools, _images)) = images::tools_and_images_or_skip(test) else {
        return Ok(());
    };
    let before = sysctls();
    let work = tempfile::tempdir()?;
    let kubeconfig = work.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_local-cluster"))
        .args(["up", "--real-node", "--nodes", "0", "--write-kubeconfig"])
        .arg(&kubeconfig)
        .env("LOCUST_TOOLS_DIR", tools.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting local-cluster up --real-node")?;
    let child_pid = child.id();
    let stdout = child.stdout.take().context("stdout")?;
    // Read the child's announcements (bounded by its own start-up timeout
    // and the kill below).
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut init_pid = None;
    let mut cluster_dir = None;
    let deadline = Instant::now() + Duration::from_secs(240);
    while init_pid.is_none() || cluster_dir.is_none() || !kubeconfig.exists() {
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("local-cluster did not announce a ready real node in 240 s");
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if let Some(rest) = line.split("PID namespace of pid ").nth(1) {
                    init_pid = rest
                        .split_whitespace()
                        .next()
                        .and_then(|p| p.parse::<u32>().ok());
                }
                if let Some(rest) = line.split("; logs in ").nth(1) {
                    cluster_dir = Path::new(rest.trim()).parent().map(Path::to_path_buf);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => {
                let _ = child.kill();
                bail!("local-cluster ended early: {e}");
            }
        }
    }
    let (init_pid, cluster_dir) = (init_pid.context("init pid")?, cluster_dir.context("dir")?);
    let outcome = async {
        let client = client_from_kubeconfig(&kubeconfig).await?;
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "busy"},
            "spec": {"containers": [{
                "name": "target",
                "image": Image::Target.reference(),
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                    "runAsNonRoot": true,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            }]},
        }))?;
        let pods: Api<Pod> = Api::namespaced(client, "default");
        pods.create(&PostParams::default(), &pod).await?;
        wait_for(
            Duration::from_secs(90),
            Duration::from_millis(250),
            || async {
                let p = pods.get("busy").await?;
                Ok((pod_phase(&p) == "Running").then_some(()))
            },
        )
        .await
        .context("the pod never ran")
    }
    .await;
    let cgroup_root = format!("{CGROUP_PREFIX}{child_pid}.0");
    let pidns = ns_link(init_pid, "pid").context("the node's PID namespace")?;
    let netns = ns_link(init_pid, "net").context("the cluster's network namespace")?;
    let tracked = node_pids(&pidns, &cgroup_root);
    let containers: Vec<u32> = tracked
        .iter()
        .copied()
        .filter(|&p| ns_link(p, "pid").as_deref() != Some(pidns.as_str()))
        .collect();

    // The test process dies without running a line of clean-up.
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child_pid as libc::pid_t, libc::SIGKILL);
    }
    let _ = child.wait();
    let killed = Instant::now();
    outcome?;
    ensure!(
        tracked.contains(&init_pid),
        "the init was tracked: {tracked:?}"
    );
    ensure!(
        !containers.is_empty(),
        "a container process was running in the node's cgroup root ({tracked:?})"
    );

    let gone = wait_for(Duration::from_secs(20), Duration::from_millis(100), || async {
        let left: Vec<u32> = tracked.iter().copied().filter(|&p| running(p)).collect();
        let later = node_pids(&pidns, &cgroup_root);
        let netns_held: Vec<u32> = all_pids()
            .into_iter()
            .filter(|&p| ns_link(p, "net").as_deref() == Some(netns.as_str()))
            .collect();
        if left.is_empty() && later.iter().all(|&p| !running(p)) && netns_held.is_empty() {
            Ok(Some(()))
        } else {
            anyhow::bail!("still running: {left:?}; in the node: {later:?}; holding its network: {netns_held:?}")
        }
    })
    .await;
    let gone_after = killed.elapsed();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    let dir_text = cluster_dir.to_string_lossy().into_owned();
    let host_mounts: Vec<&str> = mounts.lines().filter(|l| l.contains(&dir_text)).collect();
    let after = sysctls();
    let left_roots = cgroup_dirs(&cgroup_root);

    // The next real node sweeps the dead owner's cgroup root.
    let next = Cluster::start(ClusterOptions::real_node_from(tools, "node-killed-next")).await;
    let swept = cgroup_dirs(&cgroup_root);
    let next = next.map(drop);
    let _ = std::fs::remove_dir_all(&cluster_dir);

    gone.context("the node's processes outlived the killed test process")?;
    eprintln!(
        "FIGURE killed test process: {} node processes ({} in containers) gone {:.2}s after SIGKILL",
        tracked.len(),
        containers.len(),
        gone_after.as_secs_f64()
    );
    ensure!(
        host_mounts.is_empty(),
        "mounts of the cluster on the host: {host_mounts:?}"
    );
    ensure!(
        before == after,
        "host sysctls changed: {before:?} → {after:?}"
    );
    ensure!(
        !left_roots.is_empty(),
        "the killed process's cgroup root was expected to stay until the next node"
    );
    next?;
    ensure!(
        swept.is_empty(),
        "the next real node did not sweep {swept:?}"
    );
    Ok(())
}

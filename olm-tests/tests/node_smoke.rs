//! Smoke test of the real node: a cluster with the real kubelet node only
//! (containerd, runc, CNI bridge, kube-proxy, CoreDNS) runs real containers
//! from the images built here.
//!
//! Checked: the node registers Ready; a Deployment-less pair of pods (the
//! HTTP target behind a ClusterIP Service, and a client pod in the Locust
//! image) run; the client reaches the target by the Service's DNS name
//! (pod DNS, kube-proxy's DNAT across the bridge); the pods' logs are
//! readable through the apiserver (kubelet serving with the cluster CA);
//! and when the cluster is gone nothing of the node is left on the host:
//! no process of its PID namespace, no cgroup root, and the host-wide
//! sysctls the kubelet would rewrite are untouched.
//!
//! Skips without the tools or images unless `CI`/`LOCUST_REQUIRE_TOOLS`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::api::{LogParams, PostParams};
use olm_tests::cluster::{KUBELET_SYSCTLS, REAL_NODE_NAME, pod_phase};
use olm_tests::images::{self, Image};
use olm_tests::{Cluster, ClusterOptions, wait_for};
use serde_json::json;

const NS: &str = "default";
const POLL: Duration = Duration::from_millis(250);

fn host_sysctls() -> Vec<(String, String)> {
    KUBELET_SYSCTLS
        .iter()
        .map(|(key, _)| {
            let value = std::fs::read_to_string(format!("/proc/sys/{key}")).unwrap_or_default();
            (key.to_string(), value.trim().to_owned())
        })
        .collect()
}

fn cgroup_roots() -> Vec<String> {
    let mut found = Vec::new();
    for top in [
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup",
    ] {
        if let Ok(entries) = std::fs::read_dir(top) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("locust-k8s-operator-node.{}.", std::process::id())) {
                    found.push(format!("{top}/{name}"));
                }
            }
        }
    }
    found
}

async fn create_pod(client: &kube::Client, pod: serde_json::Value) -> Result<()> {
    let pod: Pod = serde_json::from_value(pod)?;
    Api::<Pod>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &pod)
        .await
        .context("creating a pod")?;
    Ok(())
}

async fn wait_pod_phase(
    client: &kube::Client,
    name: &str,
    phases: &[&str],
    timeout: Duration,
) -> Result<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    wait_for(timeout, POLL, || async {
        let pod = pods.get(name).await?;
        Ok(phases.contains(&pod_phase(&pod)).then_some(pod))
    })
    .await
    .with_context(|| format!("pod {name} never reached {phases:?}"))
}

#[tokio::test]
async fn real_node_runs_containers_that_reach_each_other_through_services() -> Result<()> {
    let Some((tools, images)) = images::tools_and_images_or_skip("real_node_runs_containers")
    else {
        return Ok(());
    };
    let before = host_sysctls();
    let started = Instant::now();
    let cluster = Cluster::start(ClusterOptions::real_node_from(tools, "node-smoke")).await?;
    eprintln!(
        "cluster with the real node ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let init_pid = cluster.node_init_pid().context("the node's init")?;
    let client = cluster.admin_client();
    let outcome = async {
        let node: k8s_openapi::api::core::v1::Node =
            Api::all(client.clone()).get(REAL_NODE_NAME).await?;
        ensure!(olm_tests::cluster::node_ready(&node), "the real node is Ready");

        let restricted = images::restricted_security_context();
        create_pod(
            &client,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "target", "labels": {"app": "target"}},
                "spec": {"containers": [{
                    "name": "target",
                    "image": images.reference(Image::Target),
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
                    "securityContext": restricted,
                }]},
            }),
        )
        .await?;
        let service: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "target"},
            "spec": {"selector": {"app": "target"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }))?;
        Api::<Service>::namespaced(client.clone(), NS)
            .create(&PostParams::default(), &service)
            .await?;
        wait_pod_phase(&client, "target", &["Running"], Duration::from_secs(90)).await?;
        // Ready (the kubelet probed it), and kube-proxy told: the Service's
        // EndpointSlice lists the pod as ready.
        let slices: Api<k8s_openapi::api::discovery::v1::EndpointSlice> =
            Api::namespaced(client.clone(), NS);
        wait_for(Duration::from_secs(60), POLL, || async {
            let listed = slices
                .list(&kube::api::ListParams::default().labels("kubernetes.io/service-name=target"))
                .await?;
            let ready = listed.items.iter().any(|s| {
                s.endpoints.iter().any(|e| {
                    e.conditions.as_ref().and_then(|c| c.ready) == Some(true)
                })
            });
            Ok(ready.then_some(()))
        })
        .await
        .context("the target's EndpointSlice never listed a ready endpoint")?;

        // Python from the Locust image: DNS name → ClusterIP → pod, five
        // times (the first attempts retried for up to 10 s: kube-proxy may
        // still be writing the Service's rules).
        let script = "import time, urllib.request\n\
                      for i in range(20):\n    \
                      try:\n        \
                      urllib.request.urlopen('http://target/healthz', timeout=5)\n        \
                      break\n    \
                      except OSError:\n        \
                      time.sleep(0.5)\n\
                      for i in range(5):\n    \
                      r = urllib.request.urlopen('http://target.default.svc.cluster.local/', timeout=5)\n    \
                      print(r.status, r.read().decode())\n\
                      r = urllib.request.urlopen('http://target/stats', timeout=5)\n\
                      print('stats', r.read().decode())\n";
        create_pod(
            &client,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "client"},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 1000},
                    "containers": [{
                        "name": "client",
                        "image": images.reference(Image::Locust),
                        "command": ["python3", "-c", script],
                        "securityContext": restricted,
                    }],
                },
            }),
        )
        .await?;
        let pod = wait_pod_phase(&client, "client", &["Succeeded", "Failed"], Duration::from_secs(90)).await?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
        let log = pods.logs("client", &LogParams::default()).await?;
        eprintln!("client log:\n{log}");
        ensure!(pod_phase(&pod) == "Succeeded", "the client pod failed:\n{log}");
        ensure!(log.matches("200 ok").count() == 5, "five answers through the Service: {log}");
        ensure!(log.contains("stats"), "{log}");
        Ok(())
    }
    .await;
    if outcome.is_err() {
        cluster.mark_failed();
    }
    drop(cluster);

    // Nothing of the node is left on the host.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{init_pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = host_sysctls();
    outcome?;
    ensure!(
        !std::path::Path::new(&format!("/proc/{init_pid}")).exists(),
        "the node's PID namespace is gone"
    );
    ensure!(
        before == after,
        "host sysctls changed: {before:?} → {after:?}"
    );
    let left = cgroup_roots();
    if !left.is_empty() {
        bail!("cgroup roots left behind: {left:?}");
    }
    Ok(())
}

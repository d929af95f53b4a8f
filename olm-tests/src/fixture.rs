//! The real-node end-to-end fixture: a local cluster with the real kubelet
//! node only ([`ClusterOptions::real_node`]), the operator's CRD and RBAC
//! installed, and the operator binary running as a process inside the
//! cluster's network namespace (so it reaches pod IPs) under its
//! ServiceAccount's token.
//!
//! Helpers for what the real-node tests share:
//! - the HTTP target image as a pod behind a Service (ready through
//!   kube-proxy before a test starts), and its `/stats` counters;
//! - LocustTest specs in the Locust image built here, the locustfile from a
//!   ConfigMap ([`locust_spec`]);
//! - [`REPORT_PY`]: Python for a locustfile that reports what each Locust
//!   process sees (UID, environment, files) as ONE request path to the target,
//!   which the test reads back from the target's `/stats`
//!   ([`TargetStats::reports`]);
//! - bounded waits on a test's phase and pods, and [`RealNodeFixture::check`],
//!   which adds the operator log tail, the pods' states and logs and the
//!   namespace's Events to a failure.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, Secret, Service};
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use locust_operator::api::{LocustTest, Phase};
use locust_operator::resources::{labels, names};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cluster::{
    Cluster, ClusterOptions, NodeComponent, first_container_state, log_tail, pod_log_tail,
    pod_running,
};
use crate::images::{self, Image, Images, TARGET_PORT};
use crate::operator::{self, OperatorProcess};
use crate::wait_for;

/// Polling interval of the fixture's waits.
pub const POLL: Duration = Duration::from_millis(250);

/// The operator's statistics interval in these tests (`--stats-interval`):
/// short, so a short run shows live numbers; every test's `autoquit.timeout`
/// is at least twice as long.
pub const STATS_INTERVAL: &str = "2s";

/// Name (and DNS name, in the test's namespace) of the target Service.
pub const TARGET_SERVICE: &str = "target";

/// Where the locustfile lives in the Locust containers (the default
/// `testFiles.srcMountPath` and the ConfigMap key).
pub const LOCUSTFILE_PATH: &str = "/lotest/src/locustfile.py";

/// A cluster with the real node, the operator's prerequisites and the
/// operator process. Dropping it stops the operator, then the cluster.
pub struct RealNodeFixture {
    /// The operator process (`--leader-elect=false --disable-webhooks
    /// --stats-interval=2s` and the test's own arguments).
    pub operator: OperatorProcess,
    /// The cluster (real node only).
    pub cluster: Cluster,
    /// The images imported into the node.
    pub images: Images,
    /// How long the cluster took to start.
    pub cluster_startup: Duration,
    /// How long the operator took to become ready.
    pub operator_ready: Duration,
    /// When the test began: before the cluster booted.
    pub started: Instant,
}

impl RealNodeFixture {
    /// Boots the cluster with the real node, installs the CRD and RBAC and
    /// starts the operator with `operator_args` appended to the defaults.
    /// `Ok(None)`: skip (tools or images missing and not required).
    pub async fn start(test: &str, operator_args: &[&str]) -> Result<Option<Self>> {
        let test_started = Instant::now();
        let Some((tools, images)) = images::tools_and_images_or_skip(test) else {
            return Ok(None);
        };
        let started = Instant::now();
        let cluster = Cluster::start(ClusterOptions::real_node_from(tools, cluster_name(test)))
            .await
            .with_context(|| format!("{test}: starting the cluster with the real node"))?;
        let cluster_startup = started.elapsed();
        let kubeconfig = operator::install_operator_prereqs(&cluster).await?;
        let mut args = operator::single_replica_args();
        args.push(format!("--stats-interval={STATS_INTERVAL}"));
        args.extend(operator_args.iter().map(|a| (*a).to_owned()));
        let operator = OperatorProcess::spawn(&cluster, &kubeconfig, "real", &args)?;
        let operator_ready = match operator.wait_ready(Duration::from_secs(60)).await {
            Ok(d) => d,
            Err(e) => {
                cluster.mark_failed();
                return Err(e);
            }
        };
        eprintln!(
            "{test}: cluster with the real node ready in {:.1}s, operator ready {:.1}s later",
            cluster_startup.as_secs_f64(),
            operator_ready.as_secs_f64()
        );
        Ok(Some(Self {
            operator,
            cluster,
            images,
            cluster_startup,
            operator_ready,
            started: test_started,
        }))
    }

    /// The whole of real-node test `test`: starts the fixture `name` with
    /// `operator_args` ([`RealNodeFixture::start`]; skipped: `Ok(())`), runs
    /// `body` on it, and [`RealNodeFixture::finish`]es, describing
    /// `namespaces` if it failed.
    pub async fn run(
        test: &str,
        name: &str,
        operator_args: &[&str],
        namespaces: &[&str],
        body: impl AsyncFnOnce(&RealNodeFixture) -> Result<()>,
    ) -> Result<()> {
        let Some(fx) = Self::start(name, operator_args).await? else {
            return Ok(());
        };
        let result = body(&fx).await;
        fx.finish(test, namespaces, result).await
    }

    /// The admin client.
    pub fn client(&self) -> Client {
        self.cluster.admin_client()
    }

    /// LocustTests of `ns`.
    pub fn tests(&self, ns: &str) -> Api<LocustTest> {
        Api::namespaced(self.client(), ns)
    }

    /// Pods of `ns`.
    pub fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client(), ns)
    }

    /// Creates namespace `ns` with `labels`.
    pub async fn namespace(&self, ns: &str, labels: &[(&str, &str)]) -> Result<()> {
        operator::create_namespace(&self.client(), ns, labels).await
    }

    /// Creates or replaces ConfigMap `ns/name` with `data`.
    pub async fn config_map(&self, ns: &str, name: &str, data: &[(&str, &str)]) -> Result<()> {
        self.apply::<ConfigMap>(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns},
            "data": string_map(data),
        }))
        .await
    }

    /// Creates or replaces Secret `ns/name` with `data` (as `stringData`).
    pub async fn secret(&self, ns: &str, name: &str, data: &[(&str, &str)]) -> Result<()> {
        self.apply::<Secret>(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": ns},
            "stringData": string_map(data),
        }))
        .await
    }

    /// Creates or replaces (server-side apply) the namespaced `K` `object`.
    async fn apply<K>(&self, object: Value) -> Result<()>
    where
        K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Serialize
            + std::fmt::Debug,
    {
        let object: K = serde_json::from_value(object)?;
        let (ns, name) = (object.namespace().unwrap_or_default(), object.name_any());
        Api::<K>::namespaced(self.client(), &ns)
            .patch(
                &name,
                &PatchParams::apply("olm-tests").force(),
                &Patch::Apply(&object),
            )
            .await
            .with_context(|| format!("applying {} {ns}/{name}", K::kind(&())))?;
        Ok(())
    }

    /// The locustfile ConfigMap `name` in `ns` (key `locustfile.py`).
    pub async fn locustfile(&self, ns: &str, name: &str, text: &str) -> Result<()> {
        self.config_map(ns, name, &[("locustfile.py", text)]).await
    }

    /// Starts the HTTP target image as pod `target` behind Service `target`
    /// (port 80 → 8080) in `ns`, with `-fail-every N` when set, and waits
    /// until the pod is ready and the Service answers through kube-proxy.
    pub async fn start_target(&self, ns: &str, fail_every: Option<u64>) -> Result<TargetService> {
        start_target(&self.cluster, &self.images, ns, fail_every).await
    }

    /// The target's counters (`GET /stats` on the pod's IP).
    pub async fn target_stats(&self, target: &TargetService) -> Result<TargetStats> {
        let (code, body) = self
            .cluster
            .http_get(SocketAddr::new(target.pod_ip, TARGET_PORT), "/stats")
            .await?;
        ensure!(code == 200, "target /stats answered {code}: {body}");
        serde_json::from_str(&body).with_context(|| format!("parsing target /stats: {body}"))
    }

    /// Creates LocustTest `ns/name` with `spec` (JSON, see [`locust_spec`]).
    pub async fn create_test(&self, ns: &str, name: &str, spec: Value) -> Result<LocustTest> {
        let test: LocustTest = serde_json::from_value(json!({
            "apiVersion": "locust.io/v2", "kind": "LocustTest",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }))
        .with_context(|| format!("building LocustTest {ns}/{name}"))?;
        self.tests(ns)
            .create(&PostParams::default(), &test)
            .await
            .with_context(|| format!("creating LocustTest {ns}/{name}"))
    }

    /// Waits (bounded) until `check` holds for test `ns/name`.
    pub async fn wait_test(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&LocustTest) -> bool,
    ) -> Result<LocustTest> {
        let tests = self.tests(ns);
        let check = &check;
        wait_for(timeout, POLL, || {
            let tests = tests.clone();
            async move {
                let t = tests.get(name).await?;
                Ok(check(&t).then_some(t))
            }
        })
        .await
        .with_context(|| format!("{ns}/{name}: waiting for {what}"))
    }

    /// Waits (bounded) for test `ns/name` to reach `Succeeded` or `Failed`.
    pub async fn wait_terminal(
        &self,
        ns: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<LocustTest> {
        self.wait_test(ns, name, "a final phase", timeout, |t| {
            phase(t).is_some_and(Phase::is_terminal)
        })
        .await
    }

    /// Creates test `ns/name` with `spec`, waits (bounded by `timeout`) until
    /// it is final and returns it with the time it took.
    pub async fn run_test(
        &self,
        ns: &str,
        name: &str,
        spec: Value,
        timeout: Duration,
    ) -> Result<(LocustTest, Duration)> {
        let started = Instant::now();
        self.create_test(ns, name, spec).await?;
        let done = self.wait_terminal(ns, name, timeout).await?;
        Ok((done, started.elapsed()))
    }

    /// The pods of test `name`'s `role` (`master` or `worker`), sorted by name.
    pub async fn role_pods(&self, ns: &str, name: &str, role: &str) -> Result<Vec<Pod>> {
        self.cluster.list_pods(ns, &role_selector(name, role)).await
    }

    /// Waits until exactly `count` pods of `role` run.
    pub async fn wait_role_running(
        &self,
        ns: &str,
        name: &str,
        role: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Pod>> {
        self.cluster
            .wait_for_running_pods(ns, &role_selector(name, role), count, timeout)
            .await
            .with_context(|| format!("{ns}/{name}: {count} running {role} pod(s)"))
    }

    /// The log of the first container of pod `ns/pod` (through the apiserver
    /// and the kubelet).
    pub async fn pod_log(&self, ns: &str, pod: &str) -> Result<String> {
        self.pods(ns)
            .logs(pod, &LogParams::default())
            .await
            .with_context(|| format!("reading the log of pod {ns}/{pod}"))
    }

    /// The master pod's final container exit code (None while it runs).
    pub async fn master_exit_code(&self, ns: &str, name: &str) -> Result<Option<i32>> {
        let masters = self.role_pods(ns, name, "master").await?;
        ensure!(masters.len() == 1, "{} master pods", masters.len());
        Ok(exit_code(&masters[0]))
    }

    /// What to read when something failed in `namespaces`: the operator's
    /// log tail, every pod's phase, container states and log tail, the
    /// Events, the kubelet's log tail.
    pub async fn diagnostics(&self, namespaces: &[&str]) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "--- operator log tail ({}) ---\n{}\n",
            self.operator.log_path.display(),
            self.operator.log_tail(60)
        ));
        for ns in namespaces {
            out.push_str(&namespace_diagnostics(&self.client(), ns, 25, 40).await);
        }
        let kubelet = self.cluster.node_log_path(NodeComponent::Kubelet);
        out.push_str(&format!(
            "--- kubelet log tail ({}) ---\n{}\n",
            kubelet.display(),
            log_tail(&kubelet, 20)
        ));
        out
    }

    /// Passes `result` through; on an error marks the cluster failed (kept
    /// with `LOCUST_KEEP_CLUSTER=1`) and adds [`Self::diagnostics`].
    pub async fn check<T>(&self, namespaces: &[&str], result: Result<T>) -> Result<T> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                self.cluster.mark_failed();
                let diagnostics = self.diagnostics(namespaces).await;
                Err(anyhow!("{e:#}\n{diagnostics}"))
            }
        }
    }
}

impl RealNodeFixture {
    /// [`Self::check`], then prints how long test `test` took from
    /// [`Self::started`] (before the cluster booted; its teardown comes
    /// after) and whether it passed: `TIME <test>: <secs>s (passed|FAILED)`.
    pub async fn finish<T>(&self, test: &str, namespaces: &[&str], result: Result<T>) -> Result<T> {
        let outcome = self.check(namespaces, result).await;
        eprintln!(
            "TIME {test}: {:.1}s ({})",
            self.started.elapsed().as_secs_f64(),
            if outcome.is_ok() { "passed" } else { "FAILED" }
        );
        outcome
    }
}

/// `[(key, value)]` as a JSON object of strings.
fn string_map(data: &[(&str, &str)]) -> serde_json::Map<String, Value> {
    data.iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect()
}

/// A short cluster name from a test name (directory and kubeconfig prefix).
fn cluster_name(test: &str) -> String {
    let mut name: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(24);
    name.trim_end_matches('-').to_owned()
}

/// Label selector of a test's pods of `role` (`master` or `worker`).
pub fn role_selector(test: &str, role: &str) -> String {
    format!(
        "{}={},{}={role}",
        labels::LABEL_TEST_NAME,
        names::label_value(test),
        labels::LABEL_COMPONENT
    )
}

/// The target pod behind Service [`TARGET_SERVICE`].
#[derive(Clone, Debug)]
pub struct TargetService {
    /// Its namespace.
    pub namespace: String,
    /// The pod's IP.
    pub pod_ip: IpAddr,
    /// The Service's ClusterIP.
    pub cluster_ip: IpAddr,
}

/// The target's `/stats` (see `olm-tests/images/target/main.go`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TargetStats {
    /// Counted requests.
    pub requests: u64,
    /// Answered 200.
    pub ok: u64,
    /// Answered 500.
    pub errors: u64,
    /// Per path (decoded).
    pub paths: BTreeMap<String, PathStats>,
}

/// Counters of one path.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PathStats {
    /// Counted requests.
    pub requests: u64,
    /// Answered 500.
    pub errors: u64,
}

/// What one Locust process reported (see [`REPORT_PY`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// `master`, `worker` or `local`.
    pub role: String,
    /// The pod's host name (the pod name).
    pub host: String,
    /// The process id (in the pod's PID namespace).
    pub pid: u32,
    /// Everything else, `key → value`.
    pub facts: BTreeMap<String, String>,
}

impl Report {
    /// Fact `key` ("" when missing).
    pub fn fact(&self, key: &str) -> &str {
        self.facts.get(key).map(String::as_str).unwrap_or_default()
    }
}

impl TargetStats {
    /// Requests to `path`.
    pub fn requests_to(&self, path: &str) -> u64 {
        self.paths.get(path).map_or(0, |p| p.requests)
    }

    /// The reports of [`REPORT_PY`], one per process (repeats merged), by
    /// role, host and pid.
    pub fn reports(&self) -> Vec<Report> {
        let mut out: BTreeMap<(String, String, u32), Report> = BTreeMap::new();
        for path in self.paths.keys() {
            let Some(rest) = path.strip_prefix("/r/") else {
                continue;
            };
            let segments: Vec<String> = rest.split('/').map(percent_decode).collect();
            let [role, host, pid, facts @ ..] = segments.as_slice() else {
                continue;
            };
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            let facts = facts
                .iter()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            out.insert(
                (role.clone(), host.clone(), pid),
                Report {
                    role: role.clone(),
                    host: host.clone(),
                    pid,
                    facts,
                },
            );
        }
        out.into_values().collect()
    }
}

/// Decodes `%XX` escapes (what [`REPORT_PY`]'s second encoding left after the
/// target's URL decoding).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi * 16 + lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A fresh random-enough token (`<prefix>-<nanos hex>-<pid>`), to tell this
/// run's values from anything else.
pub fn token(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{nanos:x}-{}", std::process::id())
}

/// SHA-256 of `s`, lower-case hex (what [`REPORT_PY`]'s `sha` computes).
pub fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Python for a locustfile: on Locust's `init` event every process (the
/// master, each worker process) sends ONE request to the target,
/// `/r/<role>/<hostname>/<pid>/<key>=<value>/...`, with `uid`, `gid`,
/// `ppid` and whatever the locustfile's own `facts(environment)` (a dict)
/// returns. Keys and values are percent-encoded twice: the target decodes
/// once, [`TargetStats::reports`] the second time. `sha(value)` hashes a
/// secret so that only its digest travels. Failed attempts are printed to
/// the process's stderr (the pod log) and retried up to 5 times.
pub const REPORT_PY: &str = r#"
# --- olm-tests report helper (olm_tests::fixture::REPORT_PY) ---
import hashlib as _hashlib
import os as _os
import socket as _socket
import sys as _sys
import time as _time
import urllib.parse as _parse
import urllib.request as _request

from locust import events as _events
from locust.runners import MasterRunner as _Master, WorkerRunner as _Worker


def _enc(v):
    return _parse.quote(_parse.quote(str(v), safe=""), safe="")


def sha(v):
    return _hashlib.sha256(v.encode() if isinstance(v, str) else v).hexdigest()


def report_facts(role, facts):
    parts = [_enc(role), _enc(_socket.gethostname()), str(_os.getpid())]
    parts += [_enc(k) + "=" + _enc(v) for k, v in sorted(facts.items())]
    path = "/r/" + "/".join(parts)
    for attempt in range(5):
        try:
            _request.urlopen("http://target" + path, timeout=5).read()
            return
        except Exception as e:
            print(f"olm-tests report attempt {attempt} failed: {e!r}", file=_sys.stderr, flush=True)
            _time.sleep(1)


@_events.init.add_listener
def _olm_tests_report(environment, runner, **kwargs):
    if isinstance(runner, _Master):
        role = "master"
    elif isinstance(runner, _Worker):
        role = "worker"
    else:
        role = "local"
    facts = {"uid": _os.getuid(), "gid": _os.getgid(), "ppid": _os.getppid()}
    extra = globals().get("facts")
    if extra is not None:
        try:
            facts.update(extra(environment))
        except Exception as e:
            facts["facts_error"] = repr(e)
    report_facts(role, facts)
# --- end of the report helper ---
"#;

/// A locustfile: [`REPORT_PY`], then `body` (imports, `facts`, ...), then a
/// user requesting `path_expr` (a Python expression) every 100 ms.
pub fn locustfile(body: &str, path_expr: &str) -> String {
    format!(
        "{REPORT_PY}\n{body}\n\nfrom locust import HttpUser, task, constant\n\n\n\
         class User(HttpUser):\n    wait_time = constant(0.1)\n\n    @task\n    \
         def index(self):\n        self.client.get({path_expr})\n"
    )
}

/// A LocustTest spec in the Locust image built here, the locustfile from
/// ConfigMap `files` ([`LOCUSTFILE_PATH`]), 2 workers, 4 users for `run_time`
/// against `http://target`, autoquit 10 s (5 × [`STATS_INTERVAL`]), with
/// `overrides` merged in (objects recursively; anything else replaces).
pub fn locust_spec(files: &str, run_time: &str, overrides: Value) -> Value {
    let mut spec = json!({
        "image": images::locust_image(),
        "master": {
            "command": format!(
                "locust -f {LOCUSTFILE_PATH} --host http://{TARGET_SERVICE} --users 4 \
                 --spawn-rate 4 --run-time {run_time}"
            ),
            "autoquit": {"enabled": true, "timeout": 10},
        },
        "worker": {"command": format!("locust -f {LOCUSTFILE_PATH}"), "replicas": 2},
        "testFiles": {"configMapRef": files},
    });
    merge(&mut spec, overrides);
    spec
}

/// Merges `patch` into `base`: objects key by key (recursively), anything
/// else replaces; `null` removes the key.
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p,
    }
}

/// A test's phase.
pub fn phase(test: &LocustTest) -> Option<Phase> {
    test.status.as_ref().and_then(|s| s.phase)
}

/// Whether the test runs (Locust state `running`) with `workers` connected
/// workers in its status.
pub fn running_with_workers(test: &LocustTest, workers: i32) -> bool {
    test.status.as_ref().is_some_and(|s| {
        s.connected_workers == Some(workers)
            && s.live.as_ref().and_then(|l| l.state.as_deref()) == Some("running")
    })
}

/// The condition `type_` of a test: (status, reason, message).
pub fn condition(test: &LocustTest, type_: &str) -> Option<(String, String, String)> {
    test.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The pod's IP.
pub fn pod_ip(pod: &Pod) -> Result<IpAddr> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .with_context(|| format!("pod {} has no IP", pod.name_any()))?
        .parse()
        .context("parsing a pod IP")
}

/// The `args` of the pod's first container (none: empty).
pub fn container_args(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.args.clone())
        .unwrap_or_default()
}

/// The first container's exit code, once it terminated.
pub fn exit_code(pod: &Pod) -> Option<i32> {
    first_container_state(pod)?
        .terminated
        .as_ref()
        .map(|t| t.exit_code)
}

/// Whether the pod's first container is running (per the pod status the
/// kubelet wrote).
pub fn container_running(pod: &Pod) -> bool {
    pod_running(pod)
        && pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref())
            .is_some_and(|s| s.running.is_some())
}

/// One line about a pod: phase, node, IP, each container's state.
pub fn describe_pod(pod: &Pod) -> String {
    let status = pod.status.as_ref();
    let containers = status
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let state = c.state.as_ref();
                    let s = if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
                        format!(
                            "waiting {} {}",
                            w.reason.as_deref().unwrap_or_default(),
                            w.message.as_deref().unwrap_or_default()
                        )
                    } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
                        format!(
                            "terminated exit {} {} {}",
                            t.exit_code,
                            t.reason.as_deref().unwrap_or_default(),
                            t.message.as_deref().unwrap_or_default()
                        )
                    } else if state.and_then(|s| s.running.as_ref()).is_some() {
                        "running".to_owned()
                    } else {
                        "unknown".to_owned()
                    };
                    format!("{}: {s}, restarts {}", c.name, c.restart_count)
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    format!(
        "phase {} node {} ip {} [{containers}]",
        status.and_then(|s| s.phase.as_deref()).unwrap_or("-"),
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("-"),
        status.and_then(|s| s.pod_ip.as_deref()).unwrap_or("-"),
    )
}

/// Starts the HTTP target image as pod `target` behind Service `target`
/// (port 80 → 8080) in `ns`, with `-fail-every N` when set, and waits
/// until the pod is ready and the Service answers through kube-proxy.
pub async fn start_target(
    cluster: &Cluster,
    images: &Images,
    ns: &str,
    fail_every: Option<u64>,
) -> Result<TargetService> {
    let client = cluster.admin_client();
    let mut args: Vec<String> = Vec::new();
    if let Some(n) = fail_every {
        args.extend(["-fail-every".to_owned(), n.to_string()]);
    }
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": TARGET_SERVICE, "namespace": ns, "labels": {"app": TARGET_SERVICE}},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "target",
                "image": images.reference(Image::Target),
                "args": args,
                "ports": [{"containerPort": TARGET_PORT}],
                "readinessProbe": {
                    "httpGet": {"path": "/healthz", "port": TARGET_PORT},
                    "periodSeconds": 1,
                },
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                    "readOnlyRootFilesystem": true,
                },
            }],
        },
    }))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.create(&PostParams::default(), &pod)
        .await
        .with_context(|| format!("creating the target pod in {ns}"))?;
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": TARGET_SERVICE, "namespace": ns},
        "spec": {"selector": {"app": TARGET_SERVICE}, "ports": [{"port": 80, "targetPort": TARGET_PORT}]},
    }))?;
    let service = Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &service)
        .await
        .with_context(|| format!("creating the target Service in {ns}"))?;
    let cluster_ip: IpAddr = service
        .spec
        .and_then(|s| s.cluster_ip)
        .context("the target Service has no ClusterIP")?
        .parse()?;
    let pod = wait_for(Duration::from_secs(90), POLL, || async {
        let pod = pods.get(TARGET_SERVICE).await?;
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        Ok(ready.then_some(pod))
    })
    .await
    .with_context(|| format!("{ns}: the target pod never became ready"))?;
    let pod_ip = pod_ip(&pod)?;
    // Through the ClusterIP (kube-proxy's DNAT) from inside the cluster.
    let via_service = SocketAddr::new(cluster_ip, 80);
    wait_for(Duration::from_secs(60), POLL, || async {
        let (code, _) = cluster.http_get(via_service, "/healthz").await?;
        Ok((code == 200).then_some(()))
    })
    .await
    .with_context(|| format!("{ns}: the target Service never answered at {via_service}"))?;
    Ok(TargetService {
        namespace: ns.to_owned(),
        pod_ip,
        cluster_ip,
    })
}

/// Every pod of `ns` (phase, container states, its last `log_lines` log
/// lines) and the last `events` Events of `ns`: what to read when a test in
/// that namespace failed.
pub async fn namespace_diagnostics(
    client: &Client,
    ns: &str,
    log_lines: i64,
    events: usize,
) -> String {
    let mut out = String::new();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    match pods.list(&ListParams::default()).await {
        Ok(list) => {
            for p in &list.items {
                let name = p.name_any();
                out.push_str(&format!("--- pod {ns}/{name}: {} ---\n", describe_pod(p)));
                let log = pod_log_tail(&pods, &name, log_lines).await;
                out.push_str(&log);
                if !log.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        Err(e) => out.push_str(&format!("--- pods of {ns}: {e:#} ---\n")),
    }
    match Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => {
            out.push_str(&format!("--- events of {ns} ---\n"));
            for e in list.items.iter().rev().take(events).rev() {
                out.push_str(&format!(
                    "{} {} {}/{}: {} (x{})\n",
                    e.type_.as_deref().unwrap_or_default(),
                    e.reason.as_deref().unwrap_or_default(),
                    e.involved_object.kind.as_deref().unwrap_or_default(),
                    e.involved_object.name.as_deref().unwrap_or_default(),
                    e.message.as_deref().unwrap_or_default().trim(),
                    e.count.unwrap_or(1)
                ));
            }
        }
        Err(e) => out.push_str(&format!("--- events of {ns}: {e:#} ---\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_parsed_from_target_paths() {
        let stats: TargetStats = serde_json::from_value(json!({
            "requests": 3, "ok": 3, "errors": 0,
            "paths": {
                "/r/worker/demo-worker-x/7/mode=http%2Fprotobuf/uid=1000": {"requests": 2, "errors": 0},
                "/r/master/demo-master-y/1/uid=1000": {"requests": 1, "errors": 0},
                "/": {"requests": 9, "errors": 0},
            },
        }))
        .unwrap();
        let reports = stats.reports();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].role, "master");
        assert_eq!(reports[1].fact("mode"), "http/protobuf");
        assert_eq!(reports[1].pid, 7);
        assert_eq!(stats.requests_to("/"), 9);
    }

    #[test]
    fn percent_decoding_and_hashing() {
        assert_eq!(percent_decode("a%2Fb%3Dc%"), "a/b=c%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn specs_merge_overrides() {
        let spec = locust_spec(
            "files",
            "5s",
            json!({"worker": {"replicas": 3}, "testFiles": {"libConfigMapRef": "lib"}}),
        );
        assert_eq!(spec["worker"]["replicas"], 3);
        assert_eq!(
            spec["worker"]["command"],
            "locust -f /lotest/src/locustfile.py"
        );
        assert_eq!(spec["testFiles"]["configMapRef"], "files");
        assert_eq!(spec["testFiles"]["libConfigMapRef"], "lib");
        let mut v = json!({"a": {"b": 1, "c": 2}});
        merge(&mut v, json!({"a": {"b": null}}));
        assert_eq!(v, json!({"a": {"c": 2}}));
        assert_eq!(
            cluster_name("real_node_restricted_pod_security"),
            "real-node-restricted-pod"
        );
    }
}

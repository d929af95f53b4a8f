//! The operator benchmark (`make bench`): start-up, bursts of N LocustTests
//! against the floor of a plain client, cost (memory, CPU, API requests per
//! test from the apiserver's audit log) and idle behaviour, on the local
//! control plane, with the operator as a process under its own RBAC.
//!
//! Each size N gets two fresh clusters with identical settings: one where a
//! plain client (a ServiceAccount, like the operator) creates the 3×N
//! children directly (the floor), and one where the operator does it. The
//! first operator cluster also measures start-up (several runs, warm
//! apiserver) and an idle operator on an empty cluster; the largest size
//! measures an operator restarted over N finished tests, idle.
//!
//! Everything is bounded in time, and every process (clusters, operators) is
//! killed when its owner is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, ResourceExt};
use locust_operator::api::{LocustTest, Phase};
use locust_operator::config::OperatorConfig;
use locust_operator::resources::{self, labels};
use serde::Deserialize;

use crate::cluster::ClusterNet;
use crate::cluster::{
    AuditOptions, Cluster, ClusterOptions, Component, NodeCapacity, Throughput,
    client_from_kubeconfig, pod_running,
};
use crate::load;
use crate::operator::{self as op, OPERATOR_NAMESPACE, SERVICE_ACCOUNT};
use crate::tools::Tools;

/// Namespace the benchmark's LocustTests (or the floor's children) live in.
pub const BENCH_NAMESPACE: &str = "bench";
/// ServiceAccount (in [`BENCH_NAMESPACE`]) of the floor's plain client.
pub const FLOOR_ACCOUNT: &str = "bench-floor";

/// The budgets of issue #6.
pub mod budget {
    use std::time::Duration;
    /// Start-up to ready on a warm apiserver.
    pub const STARTUP: Duration = Duration::from_millis(200);
    /// Burst of 1000 to Running, as a multiple of the floor.
    pub const BURST_RATIO: f64 = 1.5;
    /// API writes per LocustTest, creation to Succeeded (children + status).
    pub const WRITES_PER_TEST: f64 = 6.0;
    /// Idle RSS on an empty cluster (MiB).
    pub const IDLE_RSS_MIB: f64 = 16.0;
    /// RSS with 1000 tests and their pods cached (MiB).
    pub const RSS_1000_MIB: f64 = 64.0;
}

/// How to run the benchmark.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Burst sizes, run in this order.
    pub sizes: Vec<usize>,
    /// Measured start-up runs (after one warm-up run).
    pub startup_runs: usize,
    /// Length of each idle window.
    pub idle: Duration,
    /// Quiet time after the last pod is completed before the life window
    /// closes, and after a restart before its writes are counted.
    pub settle: Duration,
    /// The operator binary to run.
    pub operator_bin: PathBuf,
    /// Requests in flight when the bench creates LocustTests, when the floor
    /// client creates children, and when the harness completes pods.
    pub concurrency: usize,
    /// Fake nodes per cluster.
    pub nodes: usize,
    /// Cluster tools; `None`: [`Tools::locate`].
    pub tools: Option<Tools>,
    /// Copy every cluster's logs (the audit log included) and the operators'
    /// logs into `<dir>/<cluster>/` before the cluster is removed.
    pub keep_logs: Option<PathBuf>,
    /// Measure the floor (default); without it the ratios are not computed.
    pub floor: bool,
}

impl BenchOptions {
    /// Defaults for `sizes` with `operator_bin`: 7 start-up runs, one-minute
    /// idle windows, 5 s settle, 32 requests in flight, 4 nodes.
    pub fn new(sizes: Vec<usize>, operator_bin: PathBuf) -> Self {
        Self {
            sizes,
            startup_runs: 7,
            idle: Duration::from_secs(60),
            settle: Duration::from_secs(5),
            operator_bin,
            concurrency: 32,
            nodes: 4,
            tools: None,
            keep_logs: None,
            floor: true,
        }
    }

    /// Upper bound of one wait for N tests (Running, Succeeded, floor pods).
    fn wait_bound(&self, n: usize) -> Duration {
        Duration::from_secs(120) + Duration::from_millis(500) * u32::try_from(n).unwrap_or(u32::MAX)
    }
}

// ---------------------------------------------------------------------------
// Machine and process readings (/proc).

/// The machine the benchmark ran on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Machine {
    /// `nproc`.
    pub cpus: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// MemTotal from /proc/meminfo, in MiB.
    pub memory_mib: u64,
    /// /proc/sys/kernel/osrelease.
    pub kernel: String,
}

impl Machine {
    /// Reads /proc.
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == "model name").then(|| v.trim().to_owned())
                })
                .unwrap_or_else(|| "unknown".into()),
            memory_mib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib / 1024),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
        }
    }
}

/// Memory and CPU of one process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcSample {
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// VmHWM (peak RSS), KiB.
    pub hwm_kib: u64,
    /// utime + stime, seconds.
    pub cpu_secs: f64,
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// utime + stime (seconds) from the text of /proc/<pid>/stat.
pub fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // Fields after the command name (which may contain spaces and parentheses).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks())
}

/// A `<key>: <n> kB` line of /proc/<pid>/status.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        l.strip_prefix(key)?
            .strip_prefix(':')?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}

/// Reads RSS, peak RSS and CPU time of `pid`.
pub fn proc_sample(pid: u32) -> Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(ProcSample {
        rss_kib: status_kib(&status, "VmRSS").context("no VmRSS")?,
        hwm_kib: status_kib(&status, "VmHWM").context("no VmHWM")?,
        cpu_secs: parse_stat_cpu(&stat).context("cannot parse /proc/<pid>/stat")?,
    })
}

/// Busy and total CPU time of the whole machine (seconds), from /proc/stat.
fn machine_cpu() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    let t = clock_ticks();
    ((total - idle.min(total)) as f64 / t, total as f64 / t)
}

/// The 1-minute load average.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// CPU used by each control-plane process, the operator, the bench itself
/// and the whole machine over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadSample {
    /// Length of the window.
    pub wall: Duration,
    /// Busy CPU of the whole machine, in cores (busy seconds / wall seconds).
    pub machine_cores: f64,
    /// CPU seconds per process name in the window.
    pub per_process: BTreeMap<String, f64>,
    /// 1-minute load average at the end.
    pub loadavg: f64,
}

impl LoadSample {
    /// Cores used by `name` on average over the window.
    pub fn cores(&self, name: &str) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.per_process.get(name).copied().unwrap_or(0.0) / secs
    }

    /// Cores used by processes outside the benchmark (other work on the machine).
    pub fn foreign_cores(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        let ours: f64 = self.per_process.values().sum();
        (self.machine_cores - ours / secs).max(0.0)
    }
}

struct LoadMeter {
    started: Instant,
    machine_busy: f64,
    pids: BTreeMap<String, u32>,
    cpu: BTreeMap<String, f64>,
}

impl LoadMeter {
    fn start(cluster: &Cluster, operator: Option<&BenchOperator>) -> Self {
        let mut pids = BTreeMap::new();
        for c in Component::ALL {
            if let Some(pid) = cluster.component_pid(c) {
                pids.insert(c.name().to_owned(), pid);
            }
        }
        if let Some(o) = operator {
            pids.insert("operator".into(), o.pid);
        }
        pids.insert("bench".into(), std::process::id());
        let cpu = pids
            .iter()
            .filter_map(|(n, p)| Some((n.clone(), proc_sample(*p).ok()?.cpu_secs)))
            .collect();
        Self {
            started: Instant::now(),
            machine_busy: machine_cpu().0,
            pids,
            cpu,
        }
    }

    fn finish(self) -> LoadSample {
        let wall = self.started.elapsed();
        let busy = machine_cpu().0 - self.machine_busy;
        let per_process = self
            .pids
            .iter()
            .filter_map(|(n, p)| {
                let before = self.cpu.get(n)?;
                Some((n.clone(), proc_sample(*p).ok()?.cpu_secs - before))
            })
            .collect();
        LoadSample {
            wall,
            machine_cores: if wall.as_secs_f64() > 0.0 {
                busy / wall.as_secs_f64()
            } else {
                0.0
            },
            per_process,
            loadavg: loadavg(),
        }
    }
}

/// Size of a binary and whether it still has a symbol table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinaryInfo {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// `Some(true)` when the ELF file has no `.symtab` section.
    pub stripped: Option<bool>,
}

impl BinaryInfo {
    /// Reads the size and the ELF section names of `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            bytes: u64::try_from(data.len()).unwrap_or(u64::MAX),
            stripped: elf_section_names(&data).map(|names| !names.iter().any(|n| n == ".symtab")),
        })
    }
}

/// Section names of a little-endian ELF64 file (`None` if it is not one).
fn elf_section_names(data: &[u8]) -> Option<Vec<String>> {
    if data.get(0..4)? != b"\x7fELF" || *data.get(4)? != 2 || *data.get(5)? != 1 {
        return None;
    }
    let u16_at = |o: usize| -> Option<usize> {
        Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?).into())
    };
    let u64_at = |o: usize| -> Option<usize> {
        usize::try_from(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?)).ok()
    };
    let shoff = u64_at(0x28)?;
    let shentsize = u16_at(0x3a)?;
    let shnum = u16_at(0x3c)?;
    let shstrndx = u16_at(0x3e)?;
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let strtab = header(shstrndx)?;
    let str_off = u64_at(strtab + 0x18)?;
    let mut names = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let name_off = u32::from_le_bytes(data.get(header(i)?..header(i)? + 4)?.try_into().ok()?);
        let start = str_off.checked_add(usize::try_from(name_off).ok()?)?;
        let end = start + data.get(start..)?.iter().position(|b| *b == 0)?;
        names.push(String::from_utf8_lossy(data.get(start..end)?).into_owned());
    }
    Some(names)
}

// ---------------------------------------------------------------------------
// The audit log.

/// Username of the operator's ServiceAccount.
pub fn operator_user() -> String {
    format!("system:serviceaccount:{OPERATOR_NAMESPACE}:{SERVICE_ACCOUNT}")
}

/// Username of the floor client's ServiceAccount.
pub fn floor_user() -> String {
    format!("system:serviceaccount:{BENCH_NAMESPACE}:{FLOOR_ACCOUNT}")
}

/// The audit policy: the operator's and the floor client's requests at
/// `Metadata`, their updates and patches at `RequestResponse` (the response
/// carries the object's resourceVersion: no-op detection), every write to a
/// LocustTest by anyone at `RequestResponse` (so each test's
/// resourceVersions are all known), the apiserver's ClusterIP allocations at
/// `Metadata`; nothing else. Creates of the children and Events stay at
/// `Metadata`: a create always makes a new object, and logging their bodies
/// would cost the apiserver more CPU in the operator's run (more writes) than
/// in the floor's.
pub fn audit_policy() -> String {
    let users = serde_json::json!([operator_user(), floor_user()]);
    let writes = serde_json::json!(["update", "patch"]);
    let policy = serde_json::json!({
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "omitManagedFields": true,
        "rules": [
            { "level": "RequestResponse", "users": users, "verbs": writes },
            { "level": "Metadata", "users": users },
            {
                "level": "RequestResponse",
                "verbs": ["create", "update", "patch"],
                "resources": [{ "group": "locust.io", "resources": ["locusttests", "locusttests/status"] }],
            },
            // ClusterIP allocations (by the apiserver itself), for the
            // evidence of what bounds Service creation.
            {
                "level": "Metadata",
                "verbs": ["create"],
                "resources": [{ "group": "networking.k8s.io", "resources": ["ipaddresses"] }],
            },
            { "level": "None" },
        ],
    });
    serde_yaml::to_string(&policy).unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAudit {
    #[serde(rename = "auditID")]
    audit_id: String,
    stage: String,
    verb: String,
    user: RawUser,
    #[serde(default)]
    object_ref: Option<RawObjectRef>,
    #[serde(default)]
    response_status: Option<RawStatus>,
    #[serde(default)]
    response_object: Option<RawObject>,
    request_received_timestamp: String,
    #[serde(default)]
    stage_timestamp: Option<String>,
}

#[derive(Deserialize)]
struct RawUser {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawObjectRef {
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    api_group: Option<String>,
    #[serde(default)]
    subresource: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    #[serde(default)]
    code: Option<u16>,
}

#[derive(Deserialize)]
struct RawObject {
    #[serde(default)]
    metadata: Option<RawMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// One API request, from its last audit stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// The request's auditID.
    pub id: String,
    /// Who sent it.
    pub user: String,
    /// get, list, watch, create, update, patch, delete, …
    pub verb: String,
    /// API group ("" for core).
    pub group: String,
    /// Resource (plural), e.g. `jobs`.
    pub resource: String,
    /// Subresource, e.g. `status`.
    pub subresource: String,
    /// Namespace ("" when cluster-scoped).
    pub namespace: String,
    /// Object name ("" for collections).
    pub name: String,
    /// HTTP status code (0 while a watch is still open).
    pub code: u16,
    /// When the apiserver received the request.
    pub received: Timestamp,
    /// When its last logged stage happened (the response, for a request
    /// that completed).
    pub completed: Timestamp,
    /// resourceVersion of the object in the response, when logged.
    pub response_rv: Option<u64>,
}

impl AuditRecord {
    /// Whether the verb changes state.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    fn key(&self) -> (String, String, String, String) {
        (
            self.group.clone(),
            self.resource.clone(),
            self.namespace.clone(),
            self.name.clone(),
        )
    }
}

/// Parses an audit log (JSON lines); one record per request (its last stage
/// wins), sorted by the response's resourceVersion, then by receive time.
pub fn read_audit_log(path: &Path) -> Result<Vec<AuditRecord>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut by_id: BTreeMap<String, AuditRecord> = BTreeMap::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawAudit = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}", path.display(), i + 1))?;
        let complete = raw.stage == "ResponseComplete" || raw.stage == "Panic";
        if !complete && by_id.contains_key(&raw.audit_id) {
            continue;
        }
        let oref = raw.object_ref.unwrap_or(RawObjectRef {
            resource: None,
            namespace: None,
            name: None,
            api_group: None,
            subresource: None,
        });
        let meta = raw.response_object.and_then(|o| o.metadata);
        let received: Timestamp = raw
            .request_received_timestamp
            .parse()
            .with_context(|| format!("{} line {}: timestamp", path.display(), i + 1))?;
        let name = oref
            .name
            .filter(|n| !n.is_empty())
            .or_else(|| meta.as_ref().and_then(|m| m.name.clone()))
            .unwrap_or_default();
        let record = AuditRecord {
            id: raw.audit_id.clone(),
            user: raw.user.username,
            verb: raw.verb,
            group: oref.api_group.unwrap_or_default(),
            resource: oref.resource.unwrap_or_default(),
            subresource: oref.subresource.unwrap_or_default(),
            namespace: oref.namespace.unwrap_or_default(),
            name,
            code: if complete {
                raw.response_status.and_then(|s| s.code).unwrap_or(0)
            } else {
                0
            },
            received,
            completed: raw
                .stage_timestamp
                .as_deref()
                .and_then(|t| t.parse().ok())
                .unwrap_or(received),
            response_rv: meta
                .and_then(|m| m.resource_version)
                .and_then(|rv| rv.parse().ok()),
        };
        by_id.insert(raw.audit_id, record);
    }
    let mut records: Vec<AuditRecord> = by_id.into_values().collect();
    records.sort_by(|a, b| {
        (a.response_rv.unwrap_or(u64::MAX), a.received, &a.id).cmp(&(
            b.response_rv.unwrap_or(u64::MAX),
            b.received,
            &b.id,
        ))
    });
    Ok(records)
}

/// One user's API requests in a time window, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiCounts {
    /// get, list and watch requests of API objects, Leases excluded.
    pub reads: u64,
    /// Reads by `<verb> <resource>` (housekeeping included).
    pub reads_by_kind: BTreeMap<String, u64>,
    /// Reads that do not depend on the tests: the leader election's Lease
    /// gets and the `/version` reachability checks.
    pub housekeeping_reads: u64,
    /// Creates of Jobs and Services (the children).
    pub child_creates: u64,
    /// Writes of LocustTest status.
    pub status_writes: u64,
    /// Creates and patches of Events.
    pub event_writes: u64,
    /// Writes of Leases (leader election renewals).
    pub lease_writes: u64,
    /// Any other write, by `<verb> <resource>[/<subresource>]`.
    pub other_writes: BTreeMap<String, u64>,
    /// Writes answered with an error (e.g. 409 Conflict).
    pub failed_writes: u64,
    /// Successful updates/patches whose response kept the object's
    /// resourceVersion: they changed nothing.
    pub noop_writes: u64,
    /// Up to 5 no-op writes, for the report.
    pub noop_examples: Vec<String>,
    /// Status writes per LocustTest name: how many tests got 1, 2, 3… writes.
    pub status_writes_per_test: BTreeMap<u64, u64>,
}

impl ApiCounts {
    /// Writes other than lease renewals and Events.
    pub fn object_writes(&self) -> u64 {
        self.child_creates + self.status_writes + self.other_writes.values().sum::<u64>()
    }

    /// Every write but lease renewals (Events included).
    pub fn writes_excluding_leases(&self) -> u64 {
        self.object_writes() + self.event_writes
    }
}

/// Counts `user`'s requests received in `[from, to)`. A write is a no-op
/// when it succeeded and the resourceVersion in its response is one an
/// earlier write of the same object (by anyone audited) already returned:
/// every real change gets a new, unique resourceVersion.
pub fn count_requests(
    records: &[AuditRecord],
    user: &str,
    from: Timestamp,
    to: Timestamp,
) -> ApiCounts {
    let mut counts = ApiCounts::default();
    let mut seen: BTreeMap<(String, String, String, String), BTreeSet<u64>> = BTreeMap::new();
    let mut per_test: BTreeMap<String, u64> = BTreeMap::new();
    for r in records {
        let in_window = r.user == user && r.received >= from && r.received < to;
        let duplicate_rv = r
            .response_rv
            .is_some_and(|rv| seen.get(&r.key()).is_some_and(|s| s.contains(&rv)));
        if let Some(rv) = r.response_rv
            && r.is_write()
        {
            seen.entry(r.key()).or_default().insert(rv);
        }
        if !in_window {
            continue;
        }
        if !r.is_write() {
            if r.resource.is_empty() || r.resource == "leases" {
                counts.housekeeping_reads += 1;
            } else {
                counts.reads += 1;
            }
            let what = if r.resource.is_empty() {
                "non-resource"
            } else {
                &r.resource
            };
            *counts
                .reads_by_kind
                .entry(format!("{} {what}", r.verb))
                .or_default() += 1;
            continue;
        }
        if r.code >= 400 {
            counts.failed_writes += 1;
        }
        if (200..300).contains(&r.code)
            && matches!(r.verb.as_str(), "update" | "patch")
            && duplicate_rv
        {
            counts.noop_writes += 1;
            if counts.noop_examples.len() < 5 {
                counts.noop_examples.push(format!(
                    "{} {}/{} {}/{} rv {}",
                    r.verb,
                    r.resource,
                    r.subresource,
                    r.namespace,
                    r.name,
                    r.response_rv.unwrap_or_default()
                ));
            }
        }
        match (r.verb.as_str(), r.resource.as_str(), r.subresource.as_str()) {
            ("create", "jobs" | "services", "") => counts.child_creates += 1,
            (_, "locusttests", "status") => {
                counts.status_writes += 1;
                *per_test.entry(r.name.clone()).or_default() += 1;
            }
            (_, "events", _) => counts.event_writes += 1,
            (_, "leases", _) => counts.lease_writes += 1,
            (verb, resource, sub) => {
                let kind = if sub.is_empty() {
                    format!("{verb} {resource}")
                } else {
                    format!("{verb} {resource}/{sub}")
                };
                *counts.other_writes.entry(kind).or_default() += 1;
            }
        }
    }
    for n in per_test.values() {
        *counts.status_writes_per_test.entry(*n).or_default() += 1;
    }
    counts
}

/// Latencies of one kind of request (from its audit timestamps).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    /// Requests counted.
    pub count: u64,
    /// Median time from receipt to response.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// From the first receipt to the last response.
    pub span: Duration,
}

impl Latency {
    /// Requests per second over [`Latency::span`].
    pub fn rate(&self) -> f64 {
        let secs = self.span.as_secs_f64();
        if secs > 0.0 {
            self.count as f64 / secs
        } else {
            0.0
        }
    }
}

/// Latencies of `verb` on `resource` by `user` (any user when empty),
/// received in `[from, to)`.
pub fn latency(
    records: &[AuditRecord],
    user: &str,
    verb: &str,
    resource: &str,
    from: Timestamp,
    to: Timestamp,
) -> Latency {
    let picked: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| {
            (user.is_empty() || r.user == user)
                && r.verb == verb
                && r.resource == resource
                && r.subresource.is_empty()
                && r.received >= from
                && r.received < to
        })
        .collect();
    let mut took: Vec<Duration> = picked
        .iter()
        .map(|r| {
            Duration::try_from(r.completed.duration_since(r.received)).unwrap_or(Duration::ZERO)
        })
        .collect();
    took.sort();
    let at = |q: f64| -> Duration {
        if took.is_empty() {
            return Duration::ZERO;
        }
        let i = ((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1;
        took[i]
    };
    let first = picked.iter().map(|r| r.received).min();
    let last = picked.iter().map(|r| r.completed).max();
    Latency {
        count: u64::try_from(took.len()).unwrap_or(u64::MAX),
        p50: at(0.5),
        p99: at(0.99),
        span: match (first, last) {
            (Some(a), Some(b)) => Duration::try_from(b.duration_since(a)).unwrap_or_default(),
            _ => Duration::ZERO,
        },
    }
}

/// Create latencies of the children and the apiserver's ClusterIP
/// allocations in a burst.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CreateLatencies {
    /// Service creates by the measured client.
    pub services: Latency,
    /// Job creates by the measured client.
    pub jobs: Latency,
    /// IPAddress creates (one per ClusterIP) by the apiserver itself.
    pub cluster_ips: Latency,
    /// Every audited write in the window but the ClusterIP allocations: the
    /// measured client's, and the bench's LocustTest creates.
    pub writes: u64,
}

impl CreateLatencies {
    fn measure(records: &[AuditRecord], user: &str, from: Timestamp, to: Timestamp) -> Self {
        Self {
            services: latency(records, user, "create", "services", from, to),
            jobs: latency(records, user, "create", "jobs", from, to),
            cluster_ips: latency(records, "", "create", "ipaddresses", from, to),
            writes: records
                .iter()
                .filter(|r| {
                    r.is_write()
                        && r.resource != "ipaddresses"
                        && r.received >= from
                        && r.received < to
                })
                .count() as u64,
        }
    }
}

// ---------------------------------------------------------------------------
// The operator as a process.

/// The operator binary running as a benchmark subject: production logging
/// (no `RUST_LOG`), leader election on, webhooks off, its log in the cluster
/// directory. Killed when dropped; dies with the bench process.
pub struct BenchOperator {
    pid: u32,
    started: Instant,
    exited: Arc<Mutex<Option<ExitStatus>>>,
    net: ClusterNet,
    /// Health port on 127.0.0.1 in the cluster.
    pub health_port: u16,
    /// The operator's log (stdout and stderr).
    pub log_path: PathBuf,
}

impl BenchOperator {
    /// Starts `bin` with the ServiceAccount `kubeconfig`.
    pub fn spawn(cluster: &Cluster, bin: &Path, kubeconfig: &Path, tag: &str) -> Result<Self> {
        let health_port = op::free_port()?;
        let metrics_port = op::free_port()?;
        let log_path = cluster.dir().join(format!("operator-{tag}.log"));
        let mut cmd = Command::new(bin);
        cmd.env("KUBECONFIG", kubeconfig)
            .env("POD_NAMESPACE", OPERATOR_NAMESPACE)
            .env("POD_NAME", format!("operator-{tag}"))
            .env_remove("RUST_LOG")
            .arg("--leader-elect=true")
            .arg("--disable-webhooks")
            .arg(format!(
                "--health-probe-bind-address=127.0.0.1:{health_port}"
            ))
            .arg(format!("--metrics-bind-address=127.0.0.1:{metrics_port}"));
        let exited = Arc::new(Mutex::new(None));
        let (tx, rx) = mpsc::channel();
        let log = log_path.clone();
        let status = Arc::clone(&exited);
        let started = Instant::now();
        // Forked in the cluster's network namespace by its spawner thread
        // (PR_SET_PDEATHSIG: it dies with the cluster); a thread of its own
        // waits for it.
        let net = cluster.net();
        let mut child = net
            .spawn(cmd, &log)
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id();
        std::thread::Builder::new()
            .name(format!("operator-{tag}"))
            .spawn(move || {
                let result = child.wait().ok();
                if let Ok(mut s) = status.lock() {
                    *s = result;
                }
                let _ = tx.send(());
            })
            .context("starting the operator's waiter thread")?;
        drop(rx);
        Ok(Self {
            pid,
            started,
            exited,
            net,
            health_port,
            log_path,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status, once the process ended.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exited.lock().ok().and_then(|s| *s)
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits until the operator is ready to reconcile — it logged "caches
    /// synced" (which happens only after it acquired the lease) and `/readyz`
    /// answers 200 — probing every 5 ms; returns the time since the process
    /// was started.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Duration> {
        let deadline = self.started + timeout;
        let mut offset = 0usize;
        let mut synced = false;
        loop {
            if let Some(status) = self.exit_status() {
                bail!(
                    "the operator exited with {status} before it was ready; log:\n{}",
                    self.log_tail(30)
                );
            }
            if !synced {
                let mut text = String::new();
                if let Ok(mut f) = std::fs::File::open(&self.log_path) {
                    let _ = f.read_to_string(&mut text);
                }
                // Search only what is new (keeping a margin for a split line).
                let from = offset.saturating_sub(64).min(text.len());
                synced = text
                    .get(from..)
                    .is_some_and(|t| t.contains("caches synced"));
                offset = text.len();
            }
            if synced
                && matches!(
                    op::http_get(&self.net, self.health_port, "/readyz").await,
                    Ok((200, _))
                )
            {
                return Ok(self.started.elapsed());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the operator was not ready after {timeout:?}; log:\n{}",
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn signal(&self, signal: libc::c_int) {
        if self.exit_status().is_some() {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.pid) {
            // SAFETY: kill(2) on our own child, still unreaped (checked above).
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.exit_status().is_some()
    }

    /// SIGTERM (the operator releases its lease and exits), SIGKILL after 15 s.
    pub fn terminate(&self) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        if !self.wait_exit(Duration::from_secs(15)) {
            self.signal(libc::SIGKILL);
            self.wait_exit(Duration::from_secs(5));
        }
        self.exit_status()
    }
}

impl Drop for BenchOperator {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait_exit(Duration::from_secs(5));
    }
}

// ---------------------------------------------------------------------------
// Results.

/// Start-up times of several runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Startup {
    /// Each measured run, in order (the warm-up run is not included).
    pub runs: Vec<Duration>,
}

impl Startup {
    /// The median run (the lower middle one for an even count).
    pub fn median(&self) -> Duration {
        let mut v = self.runs.clone();
        v.sort();
        v.get(v.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or_default()
    }
    /// The fastest run.
    pub fn min(&self) -> Duration {
        self.runs.iter().min().copied().unwrap_or_default()
    }
    /// The slowest run.
    pub fn max(&self) -> Duration {
        self.runs.iter().max().copied().unwrap_or_default()
    }
}

/// An operator left alone for a while.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Idle {
    /// LocustTests present.
    pub tests: usize,
    /// Length of the window.
    pub window: Duration,
    /// Memory and CPU at the start of the window.
    pub start: ProcSample,
    /// Memory and CPU at the end of the window.
    pub end: ProcSample,
    /// The operator's requests in the window.
    pub requests: ApiCounts,
}

impl Idle {
    /// CPU seconds used in the window.
    pub fn cpu_secs(&self) -> f64 {
        self.end.cpu_secs - self.start.cpu_secs
    }
}

/// The floor: a plain client creating the children itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Floor {
    /// Until every one of the 3×N creates returned.
    pub create_only: Duration,
    /// Until every master Job's pod is Running (from the first create).
    pub masters_running: Duration,
    /// Creates by the floor client counted in the audit log (must be 3×N).
    pub audited_creates: u64,
    /// Latencies of its creates and of the ClusterIP allocations.
    pub creates: CreateLatencies,
    /// The scenario floor (own cluster): the N LocustTest creates *and*,
    /// as each returns, its 3 children by the plain client, until every
    /// master pod runs: what the apiserver must do for the burst without
    /// the operator's status writes, Events and watches.
    pub scenario: Duration,
    /// Audited writes during the scenario floor.
    pub scenario_writes: u64,
    /// CPU of the processes during the scenario floor.
    pub scenario_load: LoadSample,
    /// CPU of the processes during the burst.
    pub load: LoadSample,
}

/// An operator restarted over N finished tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Restart {
    /// Process start to ready.
    pub startup: Duration,
    /// Its requests from start until `settle` after ready.
    pub requests: ApiCounts,
    /// Memory and CPU after the settle time.
    pub sample: ProcSample,
}

/// Everything measured for one size.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SizeResult {
    /// N.
    pub n: usize,
    /// The floor (its own cluster).
    pub floor: Floor,
    /// Until the bench's N creates returned.
    pub create_tests: Duration,
    /// First create → every test Running (with its 3 children).
    pub to_running: Duration,
    /// Start of completing the masters → every test Succeeded.
    pub to_succeeded: Duration,
    /// Start of completing the masters → the harness's last completion returned.
    pub completions_done: Duration,
    /// The children after the run (checked exact).
    pub children: load::ChildrenReport,
    /// CPU of the processes during the burst to Running.
    pub burst_load: LoadSample,
    /// Latencies of the operator's creates and of the ClusterIP allocations
    /// during the burst.
    pub creates: CreateLatencies,
    /// The operator when every test was Running.
    pub at_running: ProcSample,
    /// The operator after every pod finished and `settle` passed.
    pub after: ProcSample,
    /// Operator start → after: the whole life of the N tests.
    pub life: ApiCounts,
    /// The operator restarted over the N finished tests.
    pub restart: Restart,
    /// The restarted operator idle with N finished tests (largest size only).
    pub idle: Option<Idle>,
}

impl SizeResult {
    /// Burst to Running over the pods-Running floor.
    pub fn ratio(&self) -> f64 {
        ratio(self.to_running, self.floor.masters_running)
    }
    /// Burst to Running over the create-only floor.
    pub fn ratio_create_only(&self) -> f64 {
        ratio(self.to_running, self.floor.create_only)
    }
    fn per_test(&self, count: u64) -> f64 {
        count as f64 / self.n.max(1) as f64
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        f64::INFINITY
    } else {
        a.as_secs_f64() / b.as_secs_f64()
    }
}

/// The benchmark's results.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BenchReport {
    /// Where it ran.
    pub machine: Machine,
    /// The operator binary.
    pub binary: BinaryInfo,
    /// Start-up runs on a warm apiserver, empty cluster.
    pub startup: Startup,
    /// Idle on an empty cluster.
    pub idle_empty: Idle,
    /// Per size.
    pub sizes: Vec<SizeResult>,
    /// Wall time of the whole benchmark.
    pub wall: Duration,
}

// ---------------------------------------------------------------------------
// Running it.

fn cluster_options(opts: &BenchOptions, n: usize, name: &str) -> ClusterOptions {
    // Two pods per test plus room; requests of 250m CPU / 128Mi per pod.
    let pods_per_node = ((2 * n + 20) * 11 / 10)
        .div_ceil(opts.nodes.max(1))
        .max(250);
    ClusterOptions {
        tools: opts.tools.clone(),
        nodes: opts.nodes,
        node_capacity: NodeCapacity {
            cpu: (pods_per_node / 2 + 32).to_string(),
            memory: format!("{}Gi", pods_per_node / 4 + 256),
            pods: pods_per_node.to_string(),
        },
        throughput: Some(Throughput::high()),
        audit: Some(AuditOptions {
            policy: audit_policy(),
        }),
        name: name.into(),
        ..ClusterOptions::default()
    }
}

async fn bench_namespace(client: &Client) -> Result<()> {
    op::create_namespace(client, BENCH_NAMESPACE, &[]).await
}

fn audit_records(cluster: &Cluster) -> Result<Vec<AuditRecord>> {
    let path = cluster
        .audit_log_path()
        .context("the cluster has no audit log")?;
    read_audit_log(&path)
}

/// The 3×N children the operator would create for `tests` (existing
/// LocustTests, so the owner references are real ones, with
/// `blockOwnerDeletion`, exactly as the operator's).
fn floor_children(tests: &[LocustTest]) -> Result<Vec<FloorObject>> {
    let config = OperatorConfig::default();
    let mut out = Vec::with_capacity(tests.len() * 3);
    for test in tests {
        let c = resources::build_children(test, &config)?;
        out.push(FloorObject::Service(Box::new(c.service)));
        out.push(FloorObject::Job(Box::new(c.master_job)));
        out.push(FloorObject::Job(Box::new(c.worker_job)));
    }
    Ok(out)
}

enum FloorObject {
    Service(Box<k8s_openapi::api::core::v1::Service>),
    Job(Box<k8s_openapi::api::batch::v1::Job>),
}

/// A ServiceAccount in [`BENCH_NAMESPACE`] allowed to create Jobs and
/// Services there (and, as the operator, to set `blockOwnerDeletion` on
/// owner references to LocustTests); returns a client authenticated as it.
async fn floor_client(cluster: &Cluster) -> Result<Client> {
    let admin = cluster.admin_client();
    let meta = |name: &str| ObjectMeta {
        name: Some(name.into()),
        namespace: Some(BENCH_NAMESPACE.into()),
        ..ObjectMeta::default()
    };
    Api::<ServiceAccount>::namespaced(admin.clone(), BENCH_NAMESPACE)
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta(FLOOR_ACCOUNT),
                ..ServiceAccount::default()
            },
        )
        .await?;
    let rule = |group: &str, resource: &str, verb: &str| PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(vec![resource.into()]),
        verbs: vec![verb.into()],
        ..PolicyRule::default()
    };
    Api::<Role>::namespaced(admin.clone(), BENCH_NAMESPACE)
        .create(
            &PostParams::default(),
            &Role {
                metadata: meta(FLOOR_ACCOUNT),
                rules: Some(vec![
                    rule("batch", "jobs", "create"),
                    rule("", "services", "create"),
                    rule("locust.io", "locusttests/finalizers", "update"),
                ]),
            },
        )
        .await?;
    Api::<RoleBinding>::namespaced(admin.clone(), BENCH_NAMESPACE)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: meta(FLOOR_ACCOUNT),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: FLOOR_ACCOUNT.into(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: FLOOR_ACCOUNT.into(),
                    namespace: Some(BENCH_NAMESPACE.into()),
                    ..Subject::default()
                }]),
            },
        )
        .await?;
    let kubeconfig = cluster
        .service_account_kubeconfig(BENCH_NAMESPACE, FLOOR_ACCOUNT, Duration::from_secs(3600))
        .await?;
    client_from_kubeconfig(&kubeconfig).await
}

/// Waits, with one watch, until `count` pods matching `selector` in `ns` are
/// Running on a node; returns the wait's duration.
async fn wait_pods_running(
    client: &Client,
    ns: &str,
    selector: &str,
    count: usize,
    timeout: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let events = watcher(api, watcher::Config::default().labels(selector)).default_backoff();
    futures::pin_mut!(events);
    let mut running: BTreeSet<String> = BTreeSet::new();
    let outcome = tokio::time::timeout(timeout, async {
        let mut synced = false;
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Init) => running.clear(),
                Ok(watcher::Event::InitApply(p) | watcher::Event::Apply(p)) => {
                    if pod_running(&p) {
                        running.insert(p.name_any());
                    } else {
                        running.remove(&p.name_any());
                    }
                }
                Ok(watcher::Event::Delete(p)) => {
                    running.remove(&p.name_any());
                }
                Ok(watcher::Event::InitDone) => synced = true,
                Err(error) => tracing::debug!(%error, "pod watch error (retried)"),
            }
            if synced && running.len() >= count {
                return Ok(());
            }
        }
        bail!("the pod watch ended")
    })
    .await;
    match outcome {
        Ok(r) => r.map(|()| started.elapsed()),
        Err(_) => bail!(
            "timed out after {timeout:?}: {}/{count} pods matching {selector} Running",
            running.len()
        ),
    }
}

async fn measure_floor(opts: &BenchOptions, n: usize) -> Result<Floor> {
    let name = format!("bench-floor-{n}");
    let cluster = Cluster::start(cluster_options(opts, n, &name)).await?;
    let result = floor_run(opts, &cluster, n).await;
    if result.is_err() {
        cluster.mark_failed();
    }
    save_logs(opts, &cluster, &name)?;
    drop(cluster);
    let mut floor = result?;

    let name = format!("bench-scenario-{n}");
    let cluster = Cluster::start(cluster_options(opts, n, &name)).await?;
    let result = scenario_floor_run(opts, &cluster, n).await;
    if result.is_err() {
        cluster.mark_failed();
    }
    save_logs(opts, &cluster, &name)?;
    (floor.scenario, floor.scenario_writes, floor.scenario_load) = result?;
    Ok(floor)
}

/// Creates and deletes one LocustTest, so the first timed creates do not
/// pay for the apiserver's first use of a new CRD (its handler, schema and
/// CEL rules are set up on first use). Call it before any operator runs.
async fn warm_up_crd(client: &Client) -> Result<()> {
    let api: Api<LocustTest> = Api::namespaced(client.clone(), BENCH_NAMESPACE);
    let name = "warm-up";
    api.create(&PostParams::default(), &load::test_object(name))
        .await
        .context("creating the warm-up LocustTest")?;
    api.delete(name, &Default::default())
        .await
        .context("deleting the warm-up LocustTest")?;
    crate::wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
        let api = api.clone();
        async move { Ok(api.get_opt(name).await?.is_none().then_some(())) }
    })
    .await
    .context("waiting for the warm-up LocustTest to go")
}

/// The scenario floor: the bench creates N LocustTests (admin, `concurrency`
/// in flight, as in the operator's run) and the plain client creates each
/// one's 3 children as soon as it exists (`concurrency` tests at a time,
/// their 3 children at once, as the operator does), until every master pod
/// runs. Returns the time, the audited writes and the CPU.
async fn scenario_floor_run(
    opts: &BenchOptions,
    cluster: &Cluster,
    n: usize,
) -> Result<(Duration, u64, LoadSample)> {
    let admin = cluster.admin_client();
    bench_namespace(&admin).await?;
    let client = floor_client(cluster).await?;
    op::install_crd(&admin, &op::crd_without_webhook(op::bundle_crd()?)).await?;
    warm_up_crd(&admin).await?;
    let names = load::test_names("t", n);
    let tests: Api<LocustTest> = Api::namespaced(admin.clone(), BENCH_NAMESPACE);
    let config = OperatorConfig::default();
    let c = opts.concurrency.max(1);
    let window_start = Timestamp::now();
    let meter = LoadMeter::start(cluster, None);
    let started = Instant::now();
    let master_selector = format!("{}=master", labels::LABEL_COMPONENT);
    let running = wait_pods_running(
        &admin,
        BENCH_NAMESPACE,
        &master_selector,
        n,
        opts.wait_bound(n),
    );
    let create = async {
        stream::iter(names.iter())
            .map(|name| {
                let tests = tests.clone();
                async move {
                    tests
                        .create(&PostParams::default(), &load::test_object(name))
                        .await
                        .with_context(|| format!("creating LocustTest {name}"))
                }
            })
            .buffer_unordered(c)
            .map_ok(|test| {
                let client = client.clone();
                let config = &config;
                async move {
                    let children = resources::build_children(&test, config)?;
                    let pp = PostParams::default();
                    let jobs: Api<k8s_openapi::api::batch::v1::Job> =
                        Api::namespaced(client.clone(), BENCH_NAMESPACE);
                    let services: Api<k8s_openapi::api::core::v1::Service> =
                        Api::namespaced(client, BENCH_NAMESPACE);
                    let (s, m, w) = tokio::join!(
                        services.create(&pp, &children.service),
                        jobs.create(&pp, &children.master_job),
                        jobs.create(&pp, &children.worker_job),
                    );
                    s?;
                    m?;
                    w?;
                    Ok::<(), anyhow::Error>(())
                }
            })
            .try_buffer_unordered(c)
            .try_collect::<Vec<()>>()
            .await
            .context("the scenario floor")?;
        Ok::<Duration, anyhow::Error>(started.elapsed())
    };
    let (created, running) = tokio::join!(create, running);
    let took = running?.max(created?);
    let load = meter.finish();
    let records = audit_records(cluster)?;
    let window_end = Timestamp::now();
    let writes = CreateLatencies::measure(&records, &floor_user(), window_start, window_end).writes;
    let children = count_requests(&records, &floor_user(), window_start, window_end);
    ensure!(
        children.child_creates == 3 * n as u64 && children.failed_writes == 0,
        "the audit log shows {} creates ({} failed) by the floor client, expected {}",
        children.child_creates,
        children.failed_writes,
        3 * n
    );
    Ok((took, writes, load))
}

async fn floor_run(opts: &BenchOptions, cluster: &Cluster, n: usize) -> Result<Floor> {
    let admin = cluster.admin_client();
    bench_namespace(&admin).await?;
    let client = floor_client(cluster).await?;
    // The LocustTests exist (no operator runs here), so the children's owner
    // references are real; created before the measurement starts.
    op::install_crd(&admin, &op::crd_without_webhook(op::bundle_crd()?)).await?;
    let names = load::test_names("t", n);
    load::create_tests(&admin, BENCH_NAMESPACE, &names, opts.concurrency).await?;
    let mut tests = Api::<LocustTest>::namespaced(admin.clone(), BENCH_NAMESPACE)
        .list(&Default::default())
        .await?
        .items;
    ensure!(
        tests.len() == n,
        "{} LocustTests, expected {n}",
        tests.len()
    );
    tests.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let objects = floor_children(&tests)?;
    let window_start = Timestamp::now();
    let meter = LoadMeter::start(cluster, None);
    let started = Instant::now();
    let master_selector = format!("{}=master", labels::LABEL_COMPONENT);
    let running = wait_pods_running(
        &admin,
        BENCH_NAMESPACE,
        &master_selector,
        n,
        opts.wait_bound(n),
    );
    // The fastest a plain client can go: Jobs and Services in two streams
    // at once (a Service waits for its ClusterIP; the Jobs need not), each
    // with `concurrency` requests in flight.
    let (services, jobs): (Vec<FloorObject>, Vec<FloorObject>) = objects
        .into_iter()
        .partition(|o| matches!(o, FloorObject::Service(_)));
    let create_all = |objects: Vec<FloorObject>| {
        let client = client.clone();
        async move {
            let pp = PostParams::default();
            stream::iter(objects)
                .map(|o| {
                    let api_client = client.clone();
                    let pp = pp.clone();
                    async move {
                        match o {
                            FloorObject::Service(s) => Api::namespaced(api_client, BENCH_NAMESPACE)
                                .create(&pp, &*s)
                                .await
                                .map(drop),
                            FloorObject::Job(j) => Api::namespaced(api_client, BENCH_NAMESPACE)
                                .create(&pp, &*j)
                                .await
                                .map(drop),
                        }
                    }
                })
                .buffer_unordered(opts.concurrency.max(1))
                .try_collect::<Vec<()>>()
                .await
                .context("the floor client creating children")
        }
    };
    let create = async {
        let (s, j) = tokio::join!(create_all(services), create_all(jobs));
        s?;
        j?;
        Ok::<Duration, anyhow::Error>(started.elapsed())
    };
    let (created, running) = tokio::join!(create, running);
    let create_only = created?;
    let running_wait = running?;
    let masters_running = running_wait.max(create_only);
    let load = meter.finish();
    let records = audit_records(cluster)?;
    let window_end = Timestamp::now();
    let counts = count_requests(&records, &floor_user(), window_start, window_end);
    ensure!(
        counts.child_creates == 3 * n as u64 && counts.failed_writes == 0,
        "the audit log shows {} creates ({} failed) by the floor client, expected {}",
        counts.child_creates,
        counts.failed_writes,
        3 * n
    );
    Ok(Floor {
        create_only,
        masters_running,
        audited_creates: counts.child_creates,
        creates: CreateLatencies::measure(&records, &floor_user(), window_start, window_end),
        load,
        ..Floor::default()
    })
}

async fn measure_startup(
    opts: &BenchOptions,
    cluster: &Cluster,
    kubeconfig: &Path,
) -> Result<Startup> {
    let mut startup = Startup::default();
    // One warm-up run (creates the Lease, warms the apiserver's caches).
    for run in 0..=opts.startup_runs {
        let operator = BenchOperator::spawn(
            cluster,
            &opts.operator_bin,
            kubeconfig,
            &format!("startup-{run}"),
        )?;
        let took = operator.wait_ready(Duration::from_secs(60)).await?;
        if run > 0 {
            startup.runs.push(took);
        }
        // SIGTERM releases the lease, so the next run need not wait for it.
        match operator.terminate() {
            Some(status) if status.success() => {}
            other => bail!(
                "the operator did not exit cleanly on SIGTERM ({other:?}); log:\n{}",
                operator.log_tail(30)
            ),
        }
    }
    Ok(startup)
}

async fn measure_idle(
    cluster: &Cluster,
    operator: &BenchOperator,
    tests: usize,
    window: Duration,
) -> Result<Idle> {
    let from = Timestamp::now();
    let start = proc_sample(operator.pid())?;
    tokio::time::sleep(window).await;
    let end = proc_sample(operator.pid())?;
    let to = Timestamp::now();
    let records = audit_records(cluster)?;
    Ok(Idle {
        tests,
        window,
        start,
        end,
        requests: count_requests(&records, &operator_user(), from, to),
    })
}

struct FirstCluster {
    startup: Startup,
    idle_empty: Idle,
}

async fn measure_operator(
    opts: &BenchOptions,
    n: usize,
    first: bool,
    last: bool,
) -> Result<(SizeResult, Option<FirstCluster>)> {
    let name = format!("bench-op-{n}");
    let cluster = Cluster::start(cluster_options(opts, n, &name)).await?;
    let result = operator_run(opts, &cluster, n, first, last).await;
    if result.is_err() {
        cluster.mark_failed();
    }
    save_logs(opts, &cluster, &name)?;
    result
}

/// Copies the cluster's logs and the operators' logs to
/// [`BenchOptions::keep_logs`]`/<label>/`, when set.
fn save_logs(opts: &BenchOptions, cluster: &Cluster, label: &str) -> Result<()> {
    let Some(dir) = &opts.keep_logs else {
        return Ok(());
    };
    let target = dir.join(label);
    std::fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
    let logs = cluster.dir().join("logs");
    let sources = [logs.as_path(), cluster.dir()];
    for source in sources {
        let entries =
            std::fs::read_dir(source).with_context(|| format!("listing {}", source.display()))?;
        for entry in entries {
            let path = entry?.path();
            let is_log = path.extension().is_some_and(|e| e == "log");
            if path.is_file() && is_log {
                let name = path.file_name().unwrap_or_default();
                std::fs::copy(&path, target.join(name))
                    .with_context(|| format!("copying {}", path.display()))?;
            }
        }
    }
    Ok(())
}

async fn operator_run(
    opts: &BenchOptions,
    cluster: &Cluster,
    n: usize,
    first: bool,
    last: bool,
) -> Result<(SizeResult, Option<FirstCluster>)> {
    let admin = cluster.admin_client();
    let kubeconfig = op::install_operator_prereqs(cluster).await?;
    bench_namespace(&admin).await?;
    warm_up_crd(&admin).await?;

    let first_cluster = if first {
        let startup = measure_startup(opts, cluster, &kubeconfig).await?;
        let operator = BenchOperator::spawn(cluster, &opts.operator_bin, &kubeconfig, "idle")?;
        operator.wait_ready(Duration::from_secs(60)).await?;
        tokio::time::sleep(opts.settle.min(Duration::from_secs(2))).await;
        let idle_empty = measure_idle(cluster, &operator, 0, opts.idle).await?;
        operator.terminate();
        Some(FirstCluster {
            startup,
            idle_empty,
        })
    } else {
        None
    };

    let life_start = Timestamp::now();
    let operator = BenchOperator::spawn(cluster, &opts.operator_bin, &kubeconfig, "burst")?;
    operator.wait_ready(Duration::from_secs(60)).await?;
    let names = load::test_names("t", n);
    let c = opts.concurrency;

    let burst_start = Timestamp::now();
    // Burst: N creates at once, until all are Running.
    let meter = LoadMeter::start(cluster, Some(&operator));
    let (created, running) = tokio::join!(
        load::create_tests(&admin, BENCH_NAMESPACE, &names, c),
        load::wait_all_phase(
            &admin,
            BENCH_NAMESPACE,
            &names,
            Phase::Running,
            opts.wait_bound(n)
        ),
    );
    let create_tests = created?;
    let to_running = running
        .map_err(|e| e.context(format!("operator log:\n{}", operator.log_tail(20))))?
        .max(create_tests);
    let burst_load = meter.finish();
    let burst_end = Timestamp::now();
    let at_running = proc_sample(operator.pid())?;
    let children = load::children_report(&admin, BENCH_NAMESPACE).await?;
    children.ensure_exact()?;
    ensure!(
        children.per_test.len() == n,
        "{} LocustTests, expected {n}",
        children.per_test.len()
    );

    // Complete the masters: every test Succeeded.
    let master = format!("{}=master", labels::LABEL_COMPONENT);
    let started = Instant::now();
    let complete = async {
        let count = load::complete_pods(cluster, BENCH_NAMESPACE, &master, c).await?;
        ensure!(count == n, "completed {count} master pods, expected {n}");
        Ok::<Duration, anyhow::Error>(started.elapsed())
    };
    let (completed, succeeded) = tokio::join!(
        complete,
        load::wait_all_phase(
            &admin,
            BENCH_NAMESPACE,
            &names,
            Phase::Succeeded,
            opts.wait_bound(n)
        ),
    );
    let completions_done = completed?;
    let to_succeeded = succeeded?.max(completions_done);
    // The workers end too (Locust workers quit with their master).
    let worker = format!("{}=worker", labels::LABEL_COMPONENT);
    load::complete_pods(cluster, BENCH_NAMESPACE, &worker, c).await?;
    tokio::time::sleep(opts.settle).await;
    let after = proc_sample(operator.pid())?;
    let records = audit_records(cluster)?;
    let life = count_requests(&records, &operator_user(), life_start, Timestamp::now());
    let creates = CreateLatencies::measure(&records, &operator_user(), burst_start, burst_end);

    // Restart over N finished tests: start-up, and nothing to write.
    operator.terminate();
    drop(operator);
    let restart_start = Timestamp::now();
    let restarted = BenchOperator::spawn(cluster, &opts.operator_bin, &kubeconfig, "restart")?;
    let restart_startup = restarted.wait_ready(Duration::from_secs(60)).await?;
    tokio::time::sleep(opts.settle).await;
    let restart = Restart {
        startup: restart_startup,
        sample: proc_sample(restarted.pid())?,
        requests: count_requests(
            &audit_records(cluster)?,
            &operator_user(),
            restart_start,
            Timestamp::now(),
        ),
    };
    let idle = if last {
        Some(measure_idle(cluster, &restarted, n, opts.idle).await?)
    } else {
        None
    };
    let children = load::children_report(&admin, BENCH_NAMESPACE).await?;
    children.ensure_exact()?;
    restarted.terminate();

    Ok((
        SizeResult {
            n,
            floor: Floor::default(),
            create_tests,
            to_running,
            to_succeeded,
            completions_done,
            children,
            burst_load,
            creates,
            at_running,
            after,
            life,
            restart,
            idle,
        },
        first_cluster,
    ))
}

/// Runs the whole benchmark; `progress` gets one line per step.
pub async fn run(opts: &BenchOptions, progress: impl Fn(&str)) -> Result<BenchReport> {
    ensure!(!opts.sizes.is_empty(), "no sizes to run");
    ensure!(opts.startup_runs > 0, "at least one start-up run");
    let started = Instant::now();
    let mut report = BenchReport {
        machine: Machine::read(),
        binary: BinaryInfo::read(&opts.operator_bin)?,
        ..BenchReport::default()
    };
    let largest = opts.sizes.iter().copied().max().unwrap_or(0);
    let mut largest_done = false;
    for (i, &n) in opts.sizes.iter().enumerate() {
        progress(&format!("N={n}: floor (plain client, own cluster)"));
        let floor = if opts.floor {
            measure_floor(opts, n)
                .await
                .with_context(|| format!("floor, N={n}"))?
        } else {
            Floor::default()
        };
        progress(&format!(
            "N={n}: floor create-only {:.2} s, masters Running {:.2} s",
            floor.create_only.as_secs_f64(),
            floor.masters_running.as_secs_f64()
        ));
        let last = n == largest && !largest_done;
        largest_done |= last;
        progress(&format!("N={n}: operator (own cluster)"));
        let (mut size, first) = measure_operator(opts, n, i == 0, last)
            .await
            .with_context(|| format!("operator, N={n}"))?;
        size.floor = floor;
        progress(&format!(
            "N={n}: Running {:.2} s ({:.2}x floor), Succeeded {:.2} s after completing",
            size.to_running.as_secs_f64(),
            size.ratio(),
            size.to_succeeded.as_secs_f64()
        ));
        if let Some(f) = first {
            report.startup = f.startup;
            report.idle_empty = f.idle_empty;
        }
        report.sizes.push(size);
    }
    report.wall = started.elapsed();
    Ok(report)
}

// ---------------------------------------------------------------------------
// Reporting.

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// A Markdown table with padded columns (readable as plain text too).
fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width = vec![3usize; cols];
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (i, cell) in row.iter().enumerate().take(cols) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |row: &[String]| {
        let cells: Vec<String> = (0..cols)
            .map(|i| {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                format!("{cell}{}", " ".repeat(width[i] - cell.chars().count()))
            })
            .collect();
        format!("| {} |", cells.join(" | "))
    };
    let mut out = line(header);
    out.push('\n');
    let sep: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&format!("|-{}-|\n", sep.join("-|-")));
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

impl BenchReport {
    /// The results table: one column per size, one row per figure.
    pub fn table(&self) -> String {
        let mut header = vec!["Figure".to_owned()];
        header.extend(self.sizes.iter().map(|s| format!("N={}", s.n)));
        let row = |label: &str, f: &dyn Fn(&SizeResult) -> String| {
            let mut r = vec![label.to_owned()];
            r.extend(self.sizes.iter().map(f));
            r
        };
        let per = |s: &SizeResult, v: u64| format!("{:.2}", s.per_test(v));
        let rows = vec![
            row("bench creates N LocustTests", &|s| secs(s.create_tests)),
            row(
                "burst: first create → all Running, 3 children each",
                &|s| secs(s.to_running),
            ),
            row("floor: plain client creates the 3×N children", &|s| {
                secs(s.floor.create_only)
            }),
            row("floor: … and every master pod Running", &|s| {
                secs(s.floor.masters_running)
            }),
            row("ratio burst / floor (pods Running)", &|s| {
                format!("{:.2}", s.ratio())
            }),
            row("scenario floor: + the N LocustTest creates", &|s| {
                secs(s.floor.scenario)
            }),
            row("ratio burst / scenario floor", &|s| {
                format!("{:.2}", ratio(s.to_running, s.floor.scenario))
            }),
            row("ratio burst / floor (create-only)", &|s| {
                format!("{:.2}", s.ratio_create_only())
            }),
            row("complete masters → all Succeeded", &|s| {
                secs(s.to_succeeded)
            }),
            row("  of which the harness completing the pods", &|s| {
                secs(s.completions_done)
            }),
            row("operator CPU, start → all finished", &|s| {
                format!("{:.2} s", s.after.cpu_secs)
            }),
            row("operator peak RSS (VmHWM)", &|s| {
                format!("{:.1} MiB", mib(s.after.hwm_kib))
            }),
            row("operator RSS when all Running", &|s| {
                format!("{:.1} MiB", mib(s.at_running.rss_kib))
            }),
            row("operator steady RSS, all finished", &|s| {
                format!("{:.1} MiB", mib(s.after.rss_kib))
            }),
            row("writes per test: children created", &|s| {
                per(s, s.life.child_creates)
            }),
            row("writes per test: status", &|s| per(s, s.life.status_writes)),
            row("writes per test: other objects", &|s| {
                per(s, s.life.other_writes.values().sum())
            }),
            row("writes per test: total (children + status)", &|s| {
                per(s, s.life.object_writes())
            }),
            row("writes per test: Events (separate)", &|s| {
                per(s, s.life.event_writes)
            }),
            row("status writes: tests with 1/2/3/4/5+", &|s| {
                let h = &s.life.status_writes_per_test;
                let get = |k: u64| h.get(&k).copied().unwrap_or(0);
                let more: u64 = h.range(5..).map(|(_, v)| *v).sum();
                format!("{}/{}/{}/{}/{}", get(1), get(2), get(3), get(4), more)
            }),
            row("reads per test (get/list/watch of objects)", &|s| {
                per(s, s.life.reads)
            }),
            row("housekeeping reads (lease, /version), whole life", &|s| {
                s.life.housekeeping_reads.to_string()
            }),
            row("lease writes (leader election), whole life", &|s| {
                s.life.lease_writes.to_string()
            }),
            row("no-op writes / failed writes", &|s| {
                format!("{} / {}", s.life.noop_writes, s.life.failed_writes)
            }),
            row("restart over N finished: start-up", &|s| {
                ms(s.restart.startup)
            }),
            row("restart over N finished: writes (no lease)", &|s| {
                s.restart.requests.writes_excluding_leases().to_string()
            }),
            row("restart over N finished: reads", &|s| {
                s.restart.requests.reads.to_string()
            }),
            row("restart over N finished: RSS", &|s| {
                format!("{:.1} MiB", mib(s.restart.sample.rss_kib))
            }),
            row("Service create p50 / p99: operator | floor", &|s| {
                format!(
                    "{} / {} | {} / {}",
                    ms(s.creates.services.p50),
                    ms(s.creates.services.p99),
                    ms(s.floor.creates.services.p50),
                    ms(s.floor.creates.services.p99)
                )
            }),
            row("Job create p50 / p99: operator | floor", &|s| {
                format!(
                    "{} / {} | {} / {}",
                    ms(s.creates.jobs.p50),
                    ms(s.creates.jobs.p99),
                    ms(s.floor.creates.jobs.p50),
                    ms(s.floor.creates.jobs.p99)
                )
            }),
            row(
                "API writes during the burst: operator | floor | scenario",
                &|s| {
                    format!(
                        "{} | {} | {}",
                        s.creates.writes, s.floor.creates.writes, s.floor.scenario_writes
                    )
                },
            ),
            row("ClusterIPs allocated per second: operator | floor", &|s| {
                format!(
                    "{:.0} | {:.0}",
                    s.creates.cluster_ips.rate(),
                    s.floor.creates.cluster_ips.rate()
                )
            }),
            row("CPU during burst: kube-apiserver", &|s| {
                format!("{:.2} cores", s.burst_load.cores("kube-apiserver"))
            }),
            row("CPU during burst: etcd", &|s| {
                format!("{:.2} cores", s.burst_load.cores("etcd"))
            }),
            row("CPU during burst: controller-manager", &|s| {
                format!("{:.2} cores", s.burst_load.cores("kube-controller-manager"))
            }),
            row("CPU during burst: scheduler + kwok", &|s| {
                format!(
                    "{:.2} cores",
                    s.burst_load.cores("kube-scheduler") + s.burst_load.cores("kwok")
                )
            }),
            row("CPU during burst: operator", &|s| {
                format!("{:.2} cores", s.burst_load.cores("operator"))
            }),
            row("CPU during burst: machine busy (other work)", &|s| {
                format!(
                    "{:.2} ({:.2}) cores",
                    s.burst_load.machine_cores,
                    s.burst_load.foreign_cores()
                )
            }),
            row(
                "CPU during scenario floor: kube-apiserver / machine (other)",
                &|s| {
                    format!(
                        "{:.2} / {:.2} ({:.2}) cores",
                        s.floor.scenario_load.cores("kube-apiserver"),
                        s.floor.scenario_load.machine_cores,
                        s.floor.scenario_load.foreign_cores()
                    )
                },
            ),
            row(
                "CPU during floor: kube-apiserver / machine (other work)",
                &|s| {
                    format!(
                        "{:.2} / {:.2} ({:.2}) cores",
                        s.floor.load.cores("kube-apiserver"),
                        s.floor.load.machine_cores,
                        s.floor.load.foreign_cores()
                    )
                },
            ),
        ];
        let mut out = table(&header, &rows);
        out.push('\n');
        let i = &self.idle_empty;
        let mut single = vec![
            vec![
                format!("start-up to ready (median of {})", self.startup.runs.len()),
                format!(
                    "{} (min {}, max {})",
                    ms(self.startup.median()),
                    ms(self.startup.min()),
                    ms(self.startup.max())
                ),
            ],
            vec![
                format!("idle, empty cluster, {} s: RSS", i.window.as_secs()),
                format!(
                    "{:.1} MiB (peak {:.1} MiB)",
                    mib(i.end.rss_kib),
                    mib(i.end.hwm_kib)
                ),
            ],
            vec![
                "idle, empty cluster: CPU / writes (no lease) / lease writes".to_owned(),
                format!(
                    "{:.2} s / {} / {}",
                    i.cpu_secs(),
                    i.requests.writes_excluding_leases(),
                    i.requests.lease_writes
                ),
            ],
        ];
        if let Some((n, idle)) = self
            .sizes
            .iter()
            .find_map(|s| s.idle.as_ref().map(|i| (s.n, i)))
        {
            single.push(vec![
                format!("idle, {n} finished tests, {} s: RSS", idle.window.as_secs()),
                format!(
                    "{:.1} MiB (peak {:.1} MiB)",
                    mib(idle.end.rss_kib),
                    mib(idle.end.hwm_kib)
                ),
            ]);
            single.push(vec![
                format!("idle, {n} finished tests: CPU / writes (no lease) / lease writes"),
                format!(
                    "{:.2} s / {} / {}",
                    idle.cpu_secs(),
                    idle.requests.writes_excluding_leases(),
                    idle.requests.lease_writes
                ),
            ]);
        }
        single.push(vec![
            "operator binary".to_owned(),
            format!(
                "{} bytes ({:.1} MiB), {}",
                self.binary.bytes,
                mib(self.binary.bytes / 1024),
                match self.binary.stripped {
                    Some(true) => "stripped",
                    Some(false) => "not stripped",
                    None => "not an ELF64 file",
                }
            ),
        ]);
        out.push_str(&table(&["Figure".into(), "Measured".into()], &single));
        out
    }

    /// Budgets against the measurements, with the ratio measured/budget.
    pub fn budgets(&self) -> String {
        let mut rows = Vec::new();
        let median = self.startup.median();
        rows.push(vec![
            "start-up to ready (warm apiserver)".into(),
            "≤ 200 ms".into(),
            ms(median),
            format!("{:.2}", ratio(median, budget::STARTUP)),
            verdict(median <= budget::STARTUP).into(),
        ]);
        let largest = self.sizes.iter().max_by_key(|s| s.n);
        if let Some(s) = largest {
            rows.push(vec![
                format!("burst of {} to Running vs floor (pods Running)", s.n),
                format!("≤ {:.1}× floor", budget::BURST_RATIO),
                format!(
                    "{} vs {} = {:.2}×",
                    secs(s.to_running),
                    secs(s.floor.masters_running),
                    s.ratio()
                ),
                format!("{:.2}", s.ratio() / budget::BURST_RATIO),
                verdict(s.ratio() <= budget::BURST_RATIO).into(),
            ]);
        }
        for s in &self.sizes {
            let w = s.per_test(s.life.object_writes());
            rows.push(vec![
                format!("writes per LocustTest, creation → Succeeded (N={})", s.n),
                format!("≤ {}", budget::WRITES_PER_TEST),
                format!("{w:.2}"),
                format!("{:.2}", w / budget::WRITES_PER_TEST),
                verdict(w <= budget::WRITES_PER_TEST).into(),
            ]);
        }
        let noops: u64 = self.sizes.iter().map(|s| s.life.noop_writes).sum();
        rows.push(vec![
            "no-op writes (all sizes)".into(),
            "0".into(),
            noops.to_string(),
            "-".into(),
            verdict(noops == 0).into(),
        ]);
        let mut idle_writes = self.idle_empty.requests.writes_excluding_leases();
        for s in &self.sizes {
            idle_writes += s.restart.requests.writes_excluding_leases();
            idle_writes += s
                .idle
                .as_ref()
                .map_or(0, |i| i.requests.writes_excluding_leases());
        }
        rows.push(vec![
            "writes when nothing changed (idle windows, restarts; leases excluded)".into(),
            "0".into(),
            idle_writes.to_string(),
            "-".into(),
            verdict(idle_writes == 0).into(),
        ]);
        let idle_rss = mib(self.idle_empty.end.rss_kib);
        rows.push(vec![
            "idle RSS, empty cluster".into(),
            format!("≤ {} MiB", budget::IDLE_RSS_MIB),
            format!("{idle_rss:.1} MiB"),
            format!("{:.2}", idle_rss / budget::IDLE_RSS_MIB),
            verdict(idle_rss <= budget::IDLE_RSS_MIB).into(),
        ]);
        if let Some(s) = largest {
            let fresh = s
                .idle
                .as_ref()
                .map_or(s.restart.sample.rss_kib, |i| i.end.rss_kib);
            let worst = mib(s.after.hwm_kib.max(fresh));
            rows.push(vec![
                format!(
                    "RSS with {} tests cached (peak of burst, and restarted idle)",
                    s.n
                ),
                format!("≤ {} MiB", budget::RSS_1000_MIB),
                format!(
                    "peak {:.1} MiB, restarted {:.1} MiB",
                    mib(s.after.hwm_kib),
                    mib(fresh)
                ),
                format!("{:.2}", worst / budget::RSS_1000_MIB),
                verdict(worst <= budget::RSS_1000_MIB).into(),
            ]);
        }
        table(
            &[
                "Budget".into(),
                "Allowed".into(),
                "Measured".into(),
                "Measured / allowed".into(),
                "".into(),
            ],
            &rows,
        )
    }

    /// The Markdown block `docs/performance.md` keeps between its markers.
    pub fn markdown(&self, command: &str) -> String {
        let m = &self.machine;
        let mut out = String::new();
        out.push_str(&format!(
            "Measured by `{command}` in {:.0} s wall time.\n\n",
            self.wall.as_secs_f64()
        ));
        out.push_str(&format!(
            "Machine: {} CPUs (`nproc`), {} MiB memory, {}, Linux {}.\n",
            m.cpus, m.memory_mib, m.cpu_model, m.kernel
        ));
        out.push_str(&format!(
            "Operator binary: `{}`, {} bytes ({}).\n\n",
            self.binary
                .path
                .strip_prefix(crate::operator::workspace_root())
                .unwrap_or(&self.binary.path)
                .display(),
            self.binary.bytes,
            match self.binary.stripped {
                Some(true) => "stripped",
                Some(false) => "not stripped",
                None => "not an ELF64 file",
            }
        ));
        out.push_str("### Results\n\n");
        out.push_str(&self.table());
        out.push_str("\n### Budgets\n\n");
        out.push_str(&self.budgets());
        out.push_str("\n### Start-up runs\n\n");
        let runs: Vec<String> = self.startup.runs.iter().map(|d| ms(*d)).collect();
        out.push_str(&format!("{}\n", runs.join(", ")));
        out.push_str("\n### Reads by the operator over each run (whole life)\n\n");
        for s in &self.sizes {
            let kinds: Vec<String> = s
                .life
                .reads_by_kind
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            out.push_str(&format!("- N={}: {}\n", s.n, kinds.join(", ")));
        }
        let noops: Vec<&String> = self
            .sizes
            .iter()
            .flat_map(|s| s.life.noop_examples.iter())
            .collect();
        if !noops.is_empty() {
            out.push_str("\nNo-op writes seen (examples):\n\n");
            for n in noops {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out
    }
}

/// Start and end markers of the generated block in `docs/performance.md`.
pub const MARKERS: (&str, &str) = (
    "<!-- bench:begin (generated by `make bench`; edit outside these markers) -->",
    "<!-- bench:end -->",
);

/// `existing` with the block between [`MARKERS`] replaced by `block`; when
/// the markers are missing, a new document holding just the block.
pub fn splice_markdown(existing: Option<&str>, block: &str) -> String {
    let (begin, end) = MARKERS;
    if let Some(text) = existing
        && let Some(b) = text.find(begin)
        && let Some(e) = text[b..].find(end).map(|e| b + e)
    {
        return format!("{}{begin}\n{block}{}", &text[..b], &text[e..]);
    }
    format!("# Performance\n\n{begin}\n{block}{end}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        id: &str,
        stage: &str,
        user: &str,
        verb: &str,
        resource: &str,
        sub: &str,
        name: &str,
        rv: Option<u64>,
        code: u16,
        at: &str,
    ) -> String {
        let mut v = serde_json::json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "RequestResponse",
            "auditID": id,
            "stage": stage,
            "verb": verb,
            "user": { "username": user, "groups": ["system:serviceaccounts"] },
            "objectRef": { "resource": resource, "namespace": "bench", "name": name, "apiGroup": "locust.io", "apiVersion": "v2" },
            "responseStatus": { "metadata": {}, "code": code },
            "requestReceivedTimestamp": at,
            "stageTimestamp": at,
        });
        if !sub.is_empty() {
            v["objectRef"]["subresource"] = sub.into();
        }
        if let Some(rv) = rv {
            v["responseObject"] = serde_json::json!({ "metadata": { "name": name, "resourceVersion": rv.to_string() } });
        }
        serde_json::to_string(&v).unwrap()
    }

    #[test]
    fn audit_counts_writes_reads_and_noops() {
        let op = operator_user();
        let lines = [
            // The bench creates the test (rv 10); the operator patches its
            // status twice for real (11, 13) and once without effect (13).
            line(
                "a",
                "ResponseComplete",
                "admin",
                "create",
                "locusttests",
                "",
                "t-0",
                Some(10),
                201,
                "2026-01-01T00:00:01.000000Z",
            ),
            line(
                "b",
                "ResponseComplete",
                &op,
                "patch",
                "locusttests",
                "status",
                "t-0",
                Some(11),
                200,
                "2026-01-01T00:00:02.000000Z",
            ),
            line(
                "c",
                "ResponseComplete",
                &op,
                "patch",
                "locusttests",
                "status",
                "t-0",
                Some(13),
                200,
                "2026-01-01T00:00:03.000000Z",
            ),
            line(
                "d",
                "ResponseComplete",
                &op,
                "patch",
                "locusttests",
                "status",
                "t-0",
                Some(13),
                200,
                "2026-01-01T00:00:04.000000Z",
            ),
            line(
                "e",
                "ResponseComplete",
                &op,
                "create",
                "jobs",
                "",
                "t-0-master",
                Some(12),
                201,
                "2026-01-01T00:00:02.500000Z",
            ),
            line(
                "f",
                "ResponseComplete",
                &op,
                "create",
                "jobs",
                "",
                "t-0-master",
                None,
                409,
                "2026-01-01T00:00:02.600000Z",
            ),
            // Housekeeping: a Lease get and a non-resource /version get.
            line(
                "l",
                "ResponseComplete",
                &op,
                "get",
                "leases",
                "",
                "lock",
                None,
                200,
                "2026-01-01T00:00:01.100000Z",
            ),
            serde_json::json!({
                "auditID": "v",
                "stage": "ResponseComplete",
                "verb": "get",
                "requestURI": "/version",
                "user": { "username": op },
                "responseStatus": { "code": 200 },
                "requestReceivedTimestamp": "2026-01-01T00:00:01.200000Z",
            })
            .to_string(),
            // A watch still open (only ResponseStarted) and a finished list.
            line(
                "g",
                "ResponseStarted",
                &op,
                "watch",
                "pods",
                "",
                "",
                None,
                200,
                "2026-01-01T00:00:01.500000Z",
            ),
            line(
                "h",
                "ResponseStarted",
                &op,
                "watch",
                "jobs",
                "",
                "",
                None,
                200,
                "2026-01-01T00:00:01.500000Z",
            ),
            line(
                "h",
                "ResponseComplete",
                &op,
                "watch",
                "jobs",
                "",
                "",
                None,
                200,
                "2026-01-01T00:00:01.500000Z",
            ),
            line(
                "i",
                "ResponseComplete",
                &op,
                "update",
                "leases",
                "",
                "lock",
                Some(14),
                200,
                "2026-01-01T00:00:05.000000Z",
            ),
            line(
                "j",
                "ResponseComplete",
                &op,
                "create",
                "events",
                "",
                "t-0.1",
                Some(15),
                201,
                "2026-01-01T00:00:05.000000Z",
            ),
            // Outside the window.
            line(
                "k",
                "ResponseComplete",
                &op,
                "patch",
                "locusttests",
                "status",
                "t-0",
                Some(20),
                200,
                "2026-01-01T00:01:00.000000Z",
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let records = read_audit_log(&path).unwrap();
        assert_eq!(records.len(), 13, "one record per auditID");
        let c = count_requests(
            &records,
            &op,
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:30Z"),
        );
        assert_eq!(c.status_writes, 3);
        assert_eq!(c.child_creates, 2);
        assert_eq!(c.failed_writes, 1);
        assert_eq!(c.noop_writes, 1, "{:?}", c.noop_examples);
        assert!(
            c.noop_examples[0].contains("t-0 rv 13"),
            "{:?}",
            c.noop_examples
        );
        assert_eq!(c.lease_writes, 1);
        assert_eq!(c.event_writes, 1);
        assert_eq!(c.reads, 2);
        assert_eq!(c.housekeeping_reads, 2);
        assert_eq!(c.reads_by_kind["get non-resource"], 1);
        assert_eq!(c.reads_by_kind["watch pods"], 1);
        assert_eq!(c.object_writes(), 5);
        assert_eq!(c.writes_excluding_leases(), 6);
        assert_eq!(c.status_writes_per_test[&3], 1);
        let admin = count_requests(
            &records,
            "admin",
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:30Z"),
        );
        assert_eq!(admin.other_writes["create locusttests"], 1);
        assert_eq!(admin.noop_writes, 0);
    }

    #[test]
    fn latencies_of_one_kind() {
        let rec = |id: &str, resource: &str, at: &str, took_ms: i64| {
            let received = ts(at);
            AuditRecord {
                id: id.into(),
                user: "u".into(),
                verb: "create".into(),
                group: String::new(),
                resource: resource.into(),
                subresource: String::new(),
                namespace: "bench".into(),
                name: id.into(),
                code: 201,
                received,
                completed: received
                    .checked_add(k8s_openapi::jiff::SignedDuration::from_millis(took_ms))
                    .unwrap(),
                response_rv: None,
            }
        };
        let records: Vec<AuditRecord> = (0..100)
            .map(|i| {
                rec(
                    &format!("s{i}"),
                    "services",
                    "2026-01-01T00:00:01Z",
                    10 * (i + 1),
                )
            })
            .chain([rec("j", "jobs", "2026-01-01T00:00:02Z", 5)])
            .collect();
        let from = ts("2026-01-01T00:00:00Z");
        let to = ts("2026-01-01T00:01:00Z");
        let l = latency(&records, "u", "create", "services", from, to);
        assert_eq!(l.count, 100);
        assert_eq!(l.p50, Duration::from_millis(500));
        assert_eq!(l.p99, Duration::from_millis(990));
        assert_eq!(l.span, Duration::from_millis(1000));
        assert!((l.rate() - 100.0).abs() < 1e-9);
        assert_eq!(latency(&records, "", "create", "jobs", from, to).count, 1);
        assert_eq!(
            latency(&records, "other", "create", "jobs", from, to).count,
            0
        );
        assert_eq!(Latency::default().rate(), 0.0);
    }

    #[test]
    fn policy_names_both_users_and_parses() {
        let policy: serde_json::Value = serde_yaml::from_str(&audit_policy()).unwrap();
        assert_eq!(policy["kind"], "Policy");
        let users = &policy["rules"][0]["users"];
        assert_eq!(
            users[0],
            "system:serviceaccount:locust-system:locust-k8s-operator"
        );
        assert_eq!(users[1], "system:serviceaccount:bench:bench-floor");
        assert_eq!(
            policy["rules"][3]["resources"][0]["resources"][0],
            "ipaddresses"
        );
        assert_eq!(policy["rules"][4]["level"], "None");
    }

    #[test]
    fn proc_parsing() {
        let stat = "1234 (tokio (runtime)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 100 1000 200";
        let cpu = parse_stat_cpu(stat).unwrap();
        assert!((cpu - 300.0 / clock_ticks()).abs() < 1e-9, "{cpu}");
        let status = "Name:\tx\nVmHWM:\t   12345 kB\nVmRSS:\t    6789 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(12345));
        assert_eq!(status_kib(status, "VmRSS"), Some(6789));
        let own = proc_sample(std::process::id()).unwrap();
        assert!(own.rss_kib > 0 && own.hwm_kib >= own.rss_kib);
        assert!(Machine::read().cpus > 0);
    }

    #[test]
    fn elf_of_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let info = BinaryInfo::read(&exe).unwrap();
        assert!(info.bytes > 0);
        // Test binaries are built with symbols.
        assert_eq!(info.stripped, Some(false));
        assert_eq!(elf_section_names(b"not an elf"), None);
    }

    #[test]
    fn startup_median_and_table() {
        let s = Startup {
            runs: [90, 70, 120, 80].map(Duration::from_millis).to_vec(),
        };
        assert_eq!(s.median(), Duration::from_millis(80));
        assert_eq!(s.min(), Duration::from_millis(70));
        assert_eq!(s.max(), Duration::from_millis(120));
        let t = table(
            &["a".into(), "bb".into()],
            &[vec!["long cell".into(), "1".into()]],
        );
        assert_eq!(
            t,
            "| a         | bb  |\n|-----------|-----|\n| long cell | 1   |\n"
        );
    }

    #[test]
    fn report_renders_every_row() {
        let report = BenchReport {
            startup: Startup {
                runs: vec![Duration::from_millis(50)],
            },
            sizes: vec![SizeResult {
                n: 20,
                to_running: Duration::from_secs(3),
                floor: Floor {
                    masters_running: Duration::from_secs(2),
                    create_only: Duration::from_secs(1),
                    ..Floor::default()
                },
                life: ApiCounts {
                    child_creates: 60,
                    status_writes: 60,
                    ..ApiCounts::default()
                },
                ..SizeResult::default()
            }],
            ..BenchReport::default()
        };
        let t = report.table();
        assert!(t.contains("| ratio burst / floor (pods Running)"), "{t}");
        assert!(t.contains("| 1.50"), "{t}");
        let b = report.budgets();
        assert!(
            b.lines().any(
                |l| l.contains("writes per LocustTest, creation → Succeeded (N=20)")
                    && l.contains("| ≤ 6 ")
                    && l.contains("| met")
            ),
            "{b}"
        );
        assert!(b.contains("| 6.00 "), "{b}");
        let md = report.markdown("make bench");
        assert!(md.starts_with("Measured by `make bench`"), "{md}");
    }

    #[test]
    fn markers_keep_the_hand_written_parts() {
        let (b, e) = MARKERS;
        let fresh = splice_markdown(None, "table\n");
        assert!(fresh.contains(&format!("{b}\ntable\n{e}")));
        let doc = format!("# P\n\nintro\n\n{b}\nold\n{e}\n\n## Analysis\nkept\n");
        let new = splice_markdown(Some(&doc), "new\n");
        assert_eq!(
            new,
            format!("# P\n\nintro\n\n{b}\nnew\n{e}\n\n## Analysis\nkept\n")
        );
    }
}

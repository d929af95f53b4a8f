//! What the benchmark measures.

use std::time::Duration;

use super::{ApiCounts, BinaryInfo, CreateLatencies, LoadSample, Machine, ProcSample};
use crate::load;

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
    pub(super) fn per_test(&self, count: u64) -> f64 {
        count as f64 / self.n.max(1) as f64
    }
}

pub(super) fn ratio(a: Duration, b: Duration) -> f64 {
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
    /// Idle over [`SUSPENDED_SCHEDULES`](super::SUSPENDED_SCHEDULES) suspended
    /// LocustSchedules (and no test).
    pub idle_schedules: Idle,
    /// Per size.
    pub sizes: Vec<SizeResult>,
    /// Wall time of the whole benchmark.
    pub wall: Duration,
}

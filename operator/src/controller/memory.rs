//! What the reconciler remembers per test between reconciles, by test uid
//! ([`UidCache`]): children it created and has not seen in the caches yet,
//! statuses it wrote, first starts it holds back, when each master is next
//! read, and which error Events it published. Held by
//! [`super::context::Context`]; the steps read and update it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::api::LocustTestStatus;

use super::cache::UidCache;
use super::model::Child;

/// How long a child created by this process stands in for the cached one.
pub const EXPECTATION_TTL: Duration = Duration::from_secs(30);

/// Children of one test created by this process and not yet seen in the
/// caches (controller "expectations"), with when they were created.
#[derive(Clone, Debug, Default)]
pub struct Expected(pub(super) BTreeMap<Child, Instant>);

/// [`Expected`] by test uid: avoids duplicate create calls while the watch
/// event of a create is in flight.
pub type Expectations = UidCache<Expected>;

impl UidCache<Expected> {
    /// Whether `child` of test `uid` was created by this process within
    /// [`EXPECTATION_TTL`] and not seen in the caches since.
    pub fn expected(&self, uid: Option<&str>, child: Child) -> bool {
        self.retain(|e| {
            e.0.retain(|_, at| at.elapsed() < EXPECTATION_TTL);
            !e.0.is_empty()
        });
        self.update(uid, |slot| {
            slot.as_ref().is_some_and(|e| e.0.contains_key(&child))
        })
        .unwrap_or(false)
    }

    /// Records that `child` of test `uid` was just created.
    pub fn expect(&self, uid: Option<&str>, child: Child) {
        self.update(uid, |slot| {
            slot.get_or_insert_with(Expected::default)
                .0
                .insert(child, Instant::now());
        });
    }

    /// Records that the caches show `child` of test `uid`.
    pub fn seen(&self, uid: Option<&str>, child: Child) {
        self.update(uid, |slot| {
            if let Some(e) = slot {
                e.0.remove(&child);
                if e.0.is_empty() {
                    *slot = None;
                }
            }
        });
    }
}

/// How long the first start of a test may be held back while only some of
/// its pods run (the master without all its workers, or workers before the
/// master): the start is then written once, with every pod running, instead
/// of once per pod. Phase `Running` shows at most this much later than the
/// master pod started (`status.startTime` is still the master's start).
pub const START_HOLD: Duration = Duration::from_secs(2);

/// When this process began holding back a test's first start.
#[derive(Clone, Copy, Debug)]
pub struct StartHold {
    since: Instant,
}

/// Tests whose first start is being held back, by uid.
pub type StartHolds = UidCache<StartHold>;

impl UidCache<StartHold> {
    /// With `partial` (only some of the test's pods run, none has failed),
    /// the time left to hold the status write, counted from the first such
    /// reconcile, or `None` once `hold` has passed; without `partial`, `None`
    /// (and the test is forgotten).
    pub fn check(&self, uid: Option<&str>, partial: bool, hold: Duration) -> Option<Duration> {
        self.update(uid, |slot| {
            if !partial {
                *slot = None;
                return None;
            }
            let since = slot
                .get_or_insert_with(|| StartHold {
                    since: Instant::now(),
                })
                .since;
            hold.checked_sub(since.elapsed()).filter(|d| !d.is_zero())
        })
        .flatten()
    }
}

/// Default of [`super::context::Context::stats_interval`].
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(10);

/// First retry after a read that did not find the run under way: a master
/// pod runs a moment before Locust listens and before its users are spawned,
/// and a short run (`--run-time 10s`) would otherwise show no live numbers.
pub(super) const FIRST_STATS_RETRY: Duration = Duration::from_secs(1);

/// When a test's master statistics are next read.
#[derive(Clone, Copy, Debug)]
pub struct StatsSchedule {
    pub(super) at: Instant,
    pub(super) delay: Duration,
    pub(super) under_way: bool,
}

/// [`StatsSchedule`] by test uid.
pub type StatsSchedules = UidCache<StatsSchedule>;

impl UidCache<StatsSchedule> {
    /// `None` when a read of test `uid` is due now, else the time until it is.
    pub fn due_in(&self, uid: Option<&str>) -> Option<Duration> {
        let at = self.get(uid)?.at;
        let left = at.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Records a read of test `uid` that just ended (`under_way`: it found
    /// the run under way) and returns the time until the next.
    pub fn done(&self, uid: Option<&str>, under_way: bool, interval: Duration) -> Duration {
        self.update(uid, |slot| {
            let (delay, under_way) = next_stats_delay(slot.as_ref(), under_way, interval);
            *slot = Some(StatsSchedule {
                at: Instant::now() + delay,
                delay,
                under_way,
            });
            delay
        })
        .unwrap_or(interval)
    }
}

/// The delay until the next read, and whether a read has found the run under
/// way. A read every `interval`; until one finds the run under way (the
/// master not listening yet, or still `ready`/`spawning`), the next read comes
/// after 1 s, 2 s, 4 s, … up to `interval`: at most a few extra reads per
/// test, and none afterwards.
pub(super) fn next_stats_delay(
    prev: Option<&StatsSchedule>,
    under_way: bool,
    interval: Duration,
) -> (Duration, bool) {
    if under_way || prev.is_some_and(|p| p.under_way) {
        return (interval, true);
    }
    let delay = prev.map_or(FIRST_STATS_RETRY, |p| p.delay.saturating_mul(2));
    (delay.min(interval), false)
}

/// How long a written status stands in for the cached one when the cache
/// never shows the write's resourceVersion (a later change of the test, by
/// anyone, superseded it; only this operator writes the status, so the
/// written status is still the current one).
pub const WRITTEN_TTL: Duration = Duration::from_secs(60);

/// A status written by this process.
#[derive(Clone, Debug)]
pub struct WrittenStatus {
    /// resourceVersion of the test in the write's response.
    pub(super) resource_version: Option<String>,
    /// The status written.
    pub(super) status: LocustTestStatus,
    /// When it was written.
    pub(super) at: Instant,
}

/// The statuses this process wrote that the watch cache may not show yet,
/// by test uid: a reconcile triggered by a child's event may run before the
/// test's own watch event of that write arrives, and must neither write the
/// same status again (a no-op write) nor publish the same transition Event
/// twice.
pub type WrittenStatuses = UidCache<WrittenStatus>;

impl UidCache<WrittenStatus> {
    /// The status last written for the test `uid`, while the cached test (at
    /// resourceVersion `cached_rv`) may not include it yet; `None` once the
    /// cache shows the write's resourceVersion, or after [`WRITTEN_TTL`].
    pub fn current(&self, uid: Option<&str>, cached_rv: Option<&str>) -> Option<LocustTestStatus> {
        self.retain(|w| w.at.elapsed() < WRITTEN_TTL);
        self.update(uid, |slot| {
            let caught_up = slot.as_ref().is_some_and(|w| {
                w.resource_version.is_none() || w.resource_version.as_deref() == cached_rv
            });
            if caught_up {
                *slot = None;
            }
            slot.as_ref().map(|w| w.status.clone())
        })
        .flatten()
    }

    /// Records that `status` was written for test `uid`, answered with
    /// resourceVersion `rv`.
    pub fn record(&self, uid: Option<&str>, rv: Option<String>, status: LocustTestStatus) {
        self.insert(
            uid,
            WrittenStatus {
                resource_version: rv,
                status,
                at: Instant::now(),
            },
        );
    }
}

/// Least time between two Events of the same reconcile error on one test: a
/// persistent error (retried every 5 s or 60 s) is reported, not repeated.
pub const ERROR_EVENT_INTERVAL: Duration = Duration::from_secs(600);

/// When each reconcile error reason was last published as an Event on a test.
#[derive(Clone, Debug, Default)]
pub struct ErrorEvents(BTreeMap<&'static str, Instant>);

/// [`ErrorEvents`] by test uid.
pub type ErrorEventLog = UidCache<ErrorEvents>;

impl UidCache<ErrorEvents> {
    /// Whether an Event for `reason` on test `uid` is due (none was
    /// published in the last `interval`); if so it is recorded as published.
    pub fn due(&self, uid: Option<&str>, reason: &'static str, interval: Duration) -> bool {
        self.retain(|log| {
            log.0.retain(|_, at| at.elapsed() < interval);
            !log.0.is_empty()
        });
        self.update(uid, |slot| {
            let log = slot.get_or_insert_with(ErrorEvents::default);
            if log.0.contains_key(reason) {
                return false;
            }
            log.0.insert(reason, Instant::now());
            true
        })
        .unwrap_or(false)
    }
}

//! The "read statistics" step of a reconcile: read the running master's
//! statistics at most once per interval (sooner, with back-off, until the
//! run is under way), and schedule the next read.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tracing::debug;

use crate::api::LocustTest;
use crate::resources;
use crate::stats;

use super::cache::UidCache;
use super::observe::Seen;
use super::reconcile::Context;
use super::state::StatsObservation;

/// Default of [`Context::stats_interval`].
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(10);

/// First retry after a read that did not find the run under way: a master
/// pod runs a moment before Locust listens and before its users are spawned,
/// and a short run (`--run-time 10s`) would otherwise show no live numbers.
const FIRST_STATS_RETRY: Duration = Duration::from_secs(1);

/// When a test's master statistics are next read.
#[derive(Clone, Copy, Debug)]
pub struct StatsSchedule {
    at: Instant,
    delay: Duration,
    under_way: bool,
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

/// Whether a read found the run under way (Locust past `ready` and
/// `spawning`): from then on the master is read once per interval.
fn run_under_way(read: &StatsObservation) -> bool {
    match read {
        StatsObservation::Read { live, .. } => live
            .state
            .as_deref()
            .is_some_and(|s| !matches!(s, "ready" | "spawning")),
        StatsObservation::Failed { .. } => false,
    }
}

/// The delay until the next read, and whether a read has found the run under
/// way. A read every `interval`; until one finds the run under way (the
/// master not listening yet, or still `ready`/`spawning`), the next read comes
/// after 1 s, 2 s, 4 s, … up to `interval`: at most a few extra reads per
/// test, and none afterwards.
fn next_stats_delay(
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

/// Reads the master at `ip` on the web port (under `webUI.basePath`).
async fn read_master_stats(ctx: &Context, test: &LocustTest, ip: IpAddr) -> StatsObservation {
    let port = u16::try_from(resources::command::WEB_PORT).unwrap_or(8089);
    let addr = SocketAddr::new(ip, port);
    match stats::read_master(addr, &test.spec.web_base_path(), ctx.stats_timeout).await {
        Ok(reading) => {
            debug!(%addr, state = ?reading.stats.state, "read master statistics");
            StatsObservation::Read {
                live: reading.stats.live(),
                workers: reading
                    .stats
                    .worker_count
                    .and_then(|w| i32::try_from(w).ok()),
                final_result: reading.final_result.map(Box::new),
            }
        }
        Err(e) => {
            debug!(%addr, error = %e, "reading master statistics failed");
            StatsObservation::Failed {
                reason: e.reason(),
                message: e.to_string(),
            }
        }
    }
}

/// The read-statistics step: while the test is not over and its master
/// runs, reads the master when a read is due and records the read (or the
/// time until the next one) in `seen.obs`. A finished test's schedule is
/// forgotten.
pub(super) async fn read_statistics(ctx: &Context, test: &LocustTest, seen: &mut Seen) {
    let uid = seen.uid.as_deref();
    if seen.terminal() {
        ctx.stats_reads.forget(uid);
        return;
    }
    let Some(ip) = seen.master_ip else {
        return;
    };
    match ctx.stats_reads.due_in(uid) {
        Some(left) => seen.obs.next_stats_read = Some(left),
        None => {
            let read = read_master_stats(ctx, test, ip).await;
            let under_way = run_under_way(&read);
            seen.obs.next_stats_read =
                Some(ctx.stats_reads.done(uid, under_way, ctx.stats_interval));
            seen.obs.stats = Some(read);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::status::LiveStats;

    #[test]
    fn stats_reads_retry_quickly_only_until_the_run_is_under_way() {
        let interval = Duration::from_secs(10);
        let delays = |reads: &[bool], interval: Duration| {
            let mut prev: Option<StatsSchedule> = None;
            let mut out = Vec::new();
            for &under_way in reads {
                let (delay, under_way) = next_stats_delay(prev.as_ref(), under_way, interval);
                out.push(delay.as_millis());
                prev = Some(StatsSchedule {
                    at: Instant::now() + delay,
                    delay,
                    under_way,
                });
            }
            out
        };
        // 1, 2, 4, 8 s, then the interval; once a read found the run under
        // way, the interval even when a read fails (the master exiting, a
        // NetworkPolicy).
        let reads = [false, false, false, false, false, true, false, true];
        assert_eq!(
            delays(&reads, interval),
            [1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000]
        );
        // The interval bounds the retries.
        let short = Duration::from_millis(1500);
        assert_eq!(delays(&[false, false, false], short), [1000, 1500, 1500]);
        assert_eq!(delays(&[true], short), [1500]);
    }

    #[test]
    fn the_schedule_is_per_test() {
        let reads = StatsSchedules::default();
        let interval = Duration::from_secs(10);
        assert_eq!(reads.due_in(Some("u1")), None, "never read: due");
        assert_eq!(reads.done(Some("u1"), false, interval), FIRST_STATS_RETRY);
        let left = reads.due_in(Some("u1")).unwrap();
        assert!(left <= FIRST_STATS_RETRY && left > Duration::ZERO);
        assert_eq!(reads.due_in(Some("u2")), None);
        assert_eq!(
            reads.done(Some("u1"), false, interval),
            FIRST_STATS_RETRY * 2
        );
        assert_eq!(reads.done(Some("u1"), true, interval), interval);
        // Without a uid: no memory, read once per interval.
        assert_eq!(reads.done(None, false, interval), interval);
        reads.forget(Some("u1"));
        assert!(reads.is_empty());
    }

    #[test]
    fn a_run_is_under_way_past_ready_and_spawning() {
        let read = |state: Option<&str>| StatsObservation::Read {
            live: LiveStats {
                state: state.map(Into::into),
                ..LiveStats::default()
            },
            workers: None,
            final_result: None,
        };
        assert!(!run_under_way(&read(None)));
        assert!(!run_under_way(&read(Some("ready"))));
        assert!(!run_under_way(&read(Some("spawning"))));
        assert!(run_under_way(&read(Some("running"))));
        assert!(run_under_way(&read(Some("stopped"))));
        assert!(!run_under_way(&StatsObservation::Failed {
            reason: "MasterUnreachable",
            message: String::new()
        }));
    }
}

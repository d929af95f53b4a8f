//! The "read statistics" step of a reconcile: read the running master's
//! statistics at most once per interval (sooner, with back-off, until the
//! run is under way), and schedule the next read.

use std::net::{IpAddr, SocketAddr};

use tracing::debug;

use crate::api::LocustTest;
use crate::resources;
use crate::stats;

use super::context::Context;
use super::model::StatsObservation;
use super::observe::Seen;

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
    use crate::controller::memory::{FIRST_STATS_RETRY, next_stats_delay};
    use crate::controller::memory::{StatsSchedule, StatsSchedules};
    use std::time::{Duration, Instant};

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

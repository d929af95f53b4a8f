//! Giving freed heap memory back to the kernel.
//!
//! The operator's memory comes and goes in bursts: a list page is decoded
//! whole before it is trimmed for a cache, a status write decodes the object
//! it returns, a burst of tests holds many requests in flight. glibc's
//! allocator keeps the pages such a burst freed inside its heaps, so an
//! operator that did some work and then sits idle keeps paying for the work
//! it is no longer doing. Go's runtime returns such pages in the background;
//! [`scavenge`] does the same with `malloc_trim(0)` every
//! [`SCAVENGE_PERIOD`]. Measured on the bench's idle windows (`bench --sizes
//! 20 --no-floor --idle-secs 20`, trimming every 10 s): with 100 suspended
//! schedules 16.7 → 16.2 MiB, with 20 finished tests 18.4 → 16.8 MiB;
//! docs/performance.md has the full run.
//!
//! Only glibc has `malloc_trim`: with musl (the container image's static
//! binary) [`trim`] does nothing. The musl binary, measured the same way
//! before the change, idled at 16.6 MiB on an empty cluster and 17.8 MiB
//! with 100 suspended schedules.

use std::future::Future;
use std::time::Duration;

/// How often [`scavenge`] trims: an operator is back near its idle size
/// within this time after a burst. Each trim walks the allocator's free
/// lists and gives back pages that the next burst faults in again: trimming
/// every 10 s cost 0.04 s of CPU per 20 s idle window (bench, 20 tests);
/// every 30 s, `make bench` measured 0.05–0.12 s per idle minute, as without
/// it (0.08–0.10 s).
pub const SCAVENGE_PERIOD: Duration = Duration::from_secs(30);

/// Returns the free pages of every heap to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() {
    // SAFETY: malloc_trim has no preconditions; it takes the allocator's own
    // locks and only releases memory that is free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Returns the free pages of every heap to the kernel: nothing to do with
/// this allocator.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

/// Trims every `period` until `shutdown` resolves.
pub async fn scavenge(period: Duration, shutdown: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {
                trim();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn trim_returns_the_pages_a_burst_freed() {
        fn rss_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        }
        // 64 MiB in small blocks (below the mmap threshold: they come from
        // the heap), touched, then all freed but the last one, which pins the
        // top of the heap so that freeing alone cannot shrink it.
        let mut blocks: Vec<Vec<u8>> = (0..16 * 1024).map(|_| vec![1u8; 4096]).collect();
        let pin = vec![1u8; 4096];
        let full = rss_kib();
        blocks.clear();
        blocks.shrink_to_fit();
        let freed = rss_kib();
        trim();
        let trimmed = rss_kib();
        drop(pin);
        assert!(
            full.saturating_sub(trimmed) > 32 * 1024,
            "RSS {full} KiB with the blocks, {freed} KiB freed, {trimmed} KiB trimmed"
        );
    }

    #[tokio::test]
    async fn scavenge_trims_until_shutdown() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(scavenge(Duration::from_millis(10), async {
            let _ = rx.await;
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!task.is_finished(), "scavenge stopped before shutdown");
        let _ = tx.send(());
        let stopped = tokio::time::timeout(Duration::from_secs(5), task).await;
        assert!(matches!(stopped, Ok(Ok(()))), "scavenge did not stop");
    }
}

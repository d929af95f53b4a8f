//! Bounded polling.

use std::future::Future;
use std::time::Duration;

use anyhow::{Result, anyhow};
use tokio::time::Instant;

/// Polls `check` every `interval` until it returns `Ok(Some(value))`, and
/// returns that value; gives up after `timeout`.
///
/// `Ok(None)` means "not yet". An `Err` is remembered and retried (API calls
/// fail transiently while a component restarts); if the time runs out, the
/// returned error names the last error seen. Each call of `check` is itself
/// bounded by the time left (but always gets at least one second), so a hung
/// request cannot stretch the wait.
pub async fn wait_for<T, F, Fut>(timeout: Duration, interval: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let deadline = start + timeout;
    let mut attempts: u32 = 0;
    loop {
        attempts += 1;
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let last_error = match tokio::time::timeout(budget, check()).await {
            Ok(Ok(Some(value))) => return Ok(value),
            Ok(Ok(None)) => None,
            Ok(Err(error)) => Some(error),
            Err(_) => Some(anyhow!("one check took longer than {budget:?}")),
        };
        let now = Instant::now();
        if now >= deadline {
            let waited = now.duration_since(start);
            return Err(match last_error {
                Some(error) => error.context(format!(
                    "timed out after {waited:?} ({attempts} attempts); last check failed"
                )),
                None => anyhow!(
                    "timed out after {waited:?} ({attempts} attempts): condition still not met"
                ),
            });
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_value_once_the_condition_holds() {
        let calls = Arc::new(AtomicU32::new(0));
        let value = wait_for(Duration::from_secs(5), Duration::from_millis(5), || {
            let calls = calls.clone();
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if n == 1 {
                    anyhow::bail!("transient");
                }
                Ok((n >= 3).then_some(n))
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn times_out_with_the_last_error() {
        let error = wait_for(
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async { Err::<Option<()>, _>(anyhow!("apiserver unreachable")) },
        )
        .await
        .unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("timed out"), "{text}");
        assert!(text.contains("apiserver unreachable"), "{text}");
    }

    #[tokio::test]
    async fn times_out_when_never_ready() {
        let started = std::time::Instant::now();
        let error = wait_for(
            Duration::from_millis(60),
            Duration::from_millis(10),
            || async { Ok::<Option<()>, anyhow::Error>(None) },
        )
        .await
        .unwrap_err();
        assert!(format!("{error:#}").contains("condition still not met"));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

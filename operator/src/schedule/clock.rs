//! Where the controller reads the time: [`SystemClock`] in the operator,
//! [`TestClock`] (set by hand) in tests, so that schedule logic is tested at
//! chosen instants without waiting.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's real-time clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that shows what it was last set to, for tests. Share it (it is
/// [`Clock`] behind an [`Arc`] too) between the test and the code under test.
#[derive(Debug)]
pub struct TestClock {
    now: Mutex<Timestamp>,
}

impl TestClock {
    /// A clock showing `now`.
    pub fn new(now: Timestamp) -> TestClock {
        TestClock {
            now: Mutex::new(now),
        }
    }

    /// Sets the time (backwards too: clocks jump).
    pub fn set(&self, now: Timestamp) {
        *self.lock() = now;
    }

    /// Moves the time by `by` (negative: backwards), saturating at the ends
    /// of the representable range; returns the new time.
    pub fn advance(&self, by: SignedDuration) -> Timestamp {
        let mut now = self.lock();
        let bound = if by.is_negative() {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        };
        *now = now.checked_add(by).unwrap_or(bound);
        *now
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        // A panic while holding the lock cannot leave a Timestamp half-written.
        self.now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_clock() {
        let start: Timestamp = "2024-03-31T00:00:00Z".parse().unwrap();
        let clock = Arc::new(TestClock::new(start));
        let shared: Arc<dyn Clock> = clock.clone();
        assert_eq!(shared.now(), start);
        assert_eq!(
            clock.advance(SignedDuration::from_mins(90)),
            "2024-03-31T01:30:00Z".parse().unwrap()
        );
        assert_eq!(shared.now(), "2024-03-31T01:30:00Z".parse().unwrap());
        clock.set(start);
        assert_eq!(shared.now(), start);
        assert_eq!(clock.advance(SignedDuration::MAX), Timestamp::MAX);
        assert_eq!(clock.advance(SignedDuration::MIN), Timestamp::MIN);
    }

    #[test]
    fn system_clock_moves_forward() {
        let a = SystemClock.now();
        let b = SystemClock.now();
        assert!(b >= a);
        assert!(a > "2024-01-01T00:00:00Z".parse().unwrap());
    }
}

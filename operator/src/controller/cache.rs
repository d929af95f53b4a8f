//! The reconciler's memory of each test between two reconciles, keyed by the
//! test's uid (so a test recreated under the same name starts afresh): one
//! small generic map behind a lock, used for every per-test memory (children
//! expected in the caches, start holds, statistics schedules, statuses
//! written and not yet seen, error Events published).

use std::collections::HashMap;
use std::sync::Mutex;

/// Values of type `T` by test uid. A poisoned lock reads as empty and
/// ignores writes: the memories only save API calls, they never decide
/// correctness, so the reconciler carries on without them.
#[derive(Debug)]
pub struct UidCache<T>(Mutex<HashMap<String, T>>);

impl<T> Default for UidCache<T> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<T> UidCache<T> {
    /// Runs `f` on the entry of test `uid` (`None` when it has none) under
    /// the lock; the entry `f` leaves (`None` removes it) is kept. `None`
    /// without a uid (or with a poisoned lock), else what `f` returned.
    pub fn update<R>(&self, uid: Option<&str>, f: impl FnOnce(&mut Option<T>) -> R) -> Option<R> {
        let uid = uid?;
        let mut map = self.0.lock().ok()?;
        let mut slot = map.remove(uid);
        let out = f(&mut slot);
        if let Some(value) = slot {
            map.insert(uid.to_owned(), value);
        }
        Some(out)
    }

    /// Sets the entry of test `uid`.
    pub fn insert(&self, uid: Option<&str>, value: T) {
        self.update(uid, |slot| *slot = Some(value));
    }

    /// Keeps only the entries for which `keep` holds (of every test).
    pub fn retain(&self, mut keep: impl FnMut(&mut T) -> bool) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|_, v| keep(v));
        }
    }

    /// Forgets the test `uid` (it is being deleted, or the entry is done).
    pub fn forget(&self, uid: Option<&str>) {
        self.update(uid, |slot| *slot = None);
    }

    /// Tests with an entry.
    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |m| m.len())
    }

    /// Whether no test has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Clone> UidCache<T> {
    /// A copy of the entry of test `uid`.
    pub fn get(&self, uid: Option<&str>) -> Option<T> {
        self.update(uid, |slot| slot.clone()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_per_uid_and_need_one() {
        let cache = UidCache::<u32>::default();
        assert!(cache.is_empty());
        cache.insert(Some("u1"), 1);
        cache.insert(Some("u2"), 2);
        cache.insert(None, 3);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(Some("u1")), Some(1));
        assert_eq!(cache.get(Some("u3")), None);
        assert_eq!(cache.get(None), None);
        // update sees the entry, changes or removes it, and returns.
        assert_eq!(
            cache.update(Some("u1"), |slot| {
                let old = *slot;
                *slot = slot.map(|v| v + 10);
                old
            }),
            Some(Some(1))
        );
        assert_eq!(cache.get(Some("u1")), Some(11));
        assert_eq!(cache.update(Some("u3"), |slot| slot.is_none()), Some(true));
        assert_eq!(cache.len(), 2, "looking at a missing entry adds none");
        assert_eq!(cache.update(None, |_| ()), None);
        cache.update(Some("u1"), |slot| *slot = None);
        assert_eq!(cache.get(Some("u1")), None);
        cache.retain(|v| *v != 2);
        assert!(cache.is_empty());
        cache.insert(Some("u4"), 4);
        cache.forget(Some("u4"));
        cache.forget(None);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_poisoned_lock_reads_as_empty() {
        let cache = std::sync::Arc::new(UidCache::<u32>::default());
        cache.insert(Some("u1"), 1);
        let c = cache.clone();
        let _ = std::thread::spawn(move || {
            let _guard = c.0.lock();
            panic!("poison");
        })
        .join();
        assert_eq!(cache.get(Some("u1")), None);
        assert_eq!(cache.len(), 0);
        cache.insert(Some("u2"), 2);
        assert_eq!(cache.get(Some("u2")), None);
    }
}

//! The schedule controller's shared state ([`Context`]) and what it
//! remembers per schedule between reconciles ([`Pending`]): the status it
//! wrote and the tests it created or deleted, until the caches show them. The
//! decision itself never depends on this memory (the deterministic names and
//! `AlreadyExists` keep it correct without); it saves the API calls and
//! status writes a lagging cache would otherwise cause.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use tokio::sync::watch;

use crate::api::LocustTest;
use crate::api::schedule::LocustScheduleStatus;
use crate::controller::cache::UidCache;
use crate::controller::memory::ErrorEventLog;
use crate::schedule::Clock;

use super::decide::OwnedTest;

/// How long what this process wrote stands in for what the caches show.
pub const PENDING_TTL: Duration = Duration::from_secs(30);

/// Shared state of the schedule controller.
pub struct Context {
    pub client: Client,
    /// The LocustTests created by schedules (label `locust.io/schedule`).
    pub tests: Store<LocustTest>,
    /// Turns `true` once `tests` (and the schedules) have listed: no
    /// reconcile decides before, as CronJob's controller waits for its
    /// informers (a `Forbid` schedule would see none of its running tests).
    pub synced: watch::Receiver<bool>,
    pub recorder: Recorder,
    /// Where "now" comes from ([`crate::schedule::SystemClock`] in the operator).
    pub clock: Arc<dyn Clock>,
    pub pending: Pendings,
    /// The reconcile errors reported by Events.
    pub error_events: ErrorEventLog,
}

/// What this process did to one schedule and the caches do not show yet.
#[derive(Clone, Debug, Default)]
pub struct Pending {
    /// The status written, with the schedule's resourceVersion it produced.
    written: Option<(Option<String>, LocustScheduleStatus, Instant)>,
    /// Tests created.
    created: BTreeMap<String, (OwnedTest, Instant)>,
    /// Tests deleted.
    deleted: BTreeMap<String, Instant>,
}

/// [`Pending`] by schedule uid.
pub type Pendings = UidCache<Pending>;

/// Whether the cache at `cached` shows the write that produced `written`.
fn caught_up(cached: Option<&str>, written: Option<&str>) -> bool {
    match (cached, written) {
        (Some(c), Some(w)) if c == w => true,
        (Some(c), Some(w)) => matches!(
            (c.parse::<u64>(), w.parse::<u64>()),
            (Ok(c), Ok(w)) if c >= w
        ),
        _ => false,
    }
}

impl UidCache<Pending> {
    /// The status of schedule `uid`: the one this process wrote while the
    /// cache (at resourceVersion `cached_rv`, showing `cached`) is behind it.
    pub fn status(
        &self,
        uid: Option<&str>,
        cached_rv: Option<&str>,
        cached: Option<&LocustScheduleStatus>,
    ) -> Option<LocustScheduleStatus> {
        let mine = self
            .update(uid, |slot| {
                let p = slot.as_mut()?;
                let (rv, status, at) = p.written.as_ref()?;
                if caught_up(cached_rv, rv.as_deref()) || at.elapsed() >= PENDING_TTL {
                    p.written = None;
                    return None;
                }
                Some(status.clone())
            })
            .flatten();
        mine.or_else(|| cached.cloned())
    }

    /// Records the status written to schedule `uid` (resourceVersion `rv` after it).
    pub fn wrote(&self, uid: Option<&str>, rv: Option<String>, status: LocustScheduleStatus) {
        self.update(uid, |slot| {
            slot.get_or_insert_with(Pending::default).written = Some((rv, status, Instant::now()));
        });
    }

    /// Records a test created for schedule `uid`.
    pub fn created(&self, uid: Option<&str>, test: OwnedTest) {
        self.update(uid, |slot| {
            let p = slot.get_or_insert_with(Pending::default);
            p.deleted.remove(&test.name);
            p.created.insert(test.name.clone(), (test, Instant::now()));
        });
    }

    /// Records a test deleted for schedule `uid`.
    pub fn deleted(&self, uid: Option<&str>, name: &str) {
        self.update(uid, |slot| {
            let p = slot.get_or_insert_with(Pending::default);
            p.created.remove(name);
            p.deleted.insert(name.to_owned(), Instant::now());
        });
    }

    /// The tests of schedule `uid` as this process knows them: `cached` (as
    /// the cache shows them) without the ones it deleted, with the ones it
    /// created. Entries the cache caught up with, or older than
    /// [`PENDING_TTL`], are dropped.
    pub fn owned(&self, uid: Option<&str>, mut cached: Vec<OwnedTest>) -> Vec<OwnedTest> {
        self.update(uid, |slot| {
            let Some(p) = slot.as_mut() else {
                return;
            };
            let shown = |name: &str| cached.iter().any(|t| t.name == name);
            p.deleted
                .retain(|name, at| shown(name) && at.elapsed() < PENDING_TTL);
            p.created
                .retain(|name, (_, at)| !shown(name) && at.elapsed() < PENDING_TTL);
            cached.retain(|t| !p.deleted.contains_key(&t.name));
            cached.extend(p.created.values().map(|(t, _)| t.clone()));
            if p.written.is_none() && p.created.is_empty() && p.deleted.is_empty() {
                *slot = None;
            }
        });
        cached.sort_by(|a, b| a.name.cmp(&b.name));
        cached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(name: &str) -> OwnedTest {
        OwnedTest {
            name: name.into(),
            ..OwnedTest::default()
        }
    }

    #[test]
    fn pending_writes_stand_in_until_the_caches_show_them() {
        let pending = Pendings::default();
        let cached = LocustScheduleStatus::default();
        let mine = LocustScheduleStatus {
            active_count: Some(1),
            ..LocustScheduleStatus::default()
        };
        pending.wrote(Some("u"), Some("11".into()), mine.clone());
        assert_eq!(
            pending.status(Some("u"), Some("10"), Some(&cached)),
            Some(mine.clone())
        );
        assert_eq!(
            pending.status(Some("v"), Some("10"), Some(&cached)),
            Some(cached.clone())
        );
        assert_eq!(
            pending.status(Some("u"), Some("12"), Some(&cached)),
            Some(cached.clone())
        );
        assert_eq!(
            pending.status(Some("u"), Some("10"), None),
            None,
            "forgotten once seen"
        );

        pending.created(Some("u"), test("a"));
        pending.deleted(Some("u"), "b");
        let owned = pending.owned(Some("u"), vec![test("b"), test("c")]);
        let names: Vec<&str> = owned.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        // The cache caught up: both entries go, and the schedule's entry with them.
        let owned = pending.owned(Some("u"), vec![test("a"), test("c")]);
        assert_eq!(owned.len(), 2);
        assert!(pending.is_empty());
        assert!(caught_up(Some("x"), Some("x")) && !caught_up(Some("x"), Some("y")));
        assert!(!caught_up(None, Some("1")));
    }
}

//! The "write status" step of a reconcile: derive the status with the pure
//! phase machine, write it (a JSON merge patch of the status subresource)
//! only when it changed, publish the transition Events, and remember the
//! write until the watch cache shows it.

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;
use tracing::{debug, info};

use crate::api::LocustTest;

use super::context::{Context, Error, publish};
use super::observe::Seen;
use super::state::{self, TestView};

/// A JSON merge patch turning `current` into `desired`: the desired status,
/// plus an explicit `null` for every top-level field `desired` no longer has
/// (a merge patch cannot remove a field by omitting it). Used for the
/// status of LocustSchedule too.
pub(crate) fn status_merge_patch<S: serde::Serialize>(
    current: Option<&S>,
    desired: &S,
) -> serde_json::Value {
    let mut body = serde_json::to_value(desired).unwrap_or_else(|_| json!({}));
    if let (Some(cur), serde_json::Value::Object(map)) = (
        current.and_then(|c| serde_json::to_value(c).ok()),
        &mut body,
    ) && let serde_json::Value::Object(cur) = cur
    {
        for key in cur.keys() {
            if !map.contains_key(key) {
                map.insert(key.clone(), serde_json::Value::Null);
            }
        }
    }
    body
}

/// The write-status step: derives the status from `seen`, writes it when
/// it differs from the current one, publishes the transition Events, and
/// says when to look again.
pub(super) async fn write_status(
    ctx: &Context,
    test: &LocustTest,
    seen: &Seen,
) -> Result<Action, Error> {
    let (ns, name) = (seen.ns.as_str(), seen.name.as_str());
    let status = seen.status.as_ref();
    let view = TestView {
        generation: test.metadata.generation,
        expected_workers: test.spec.worker.replicas,
        spec_hash: &seen.spec_hash,
        status,
        thresholds: test.spec.thresholds.as_ref(),
    };
    let derived = state::derive(&view, &seen.obs, Timestamp::now(), ctx.config.grace_period);

    if Some(&derived.status) != status {
        let api: Api<LocustTest> = Api::namespaced(ctx.client.clone(), ns);
        let patch = json!({ "status": status_merge_patch(status, &derived.status) });
        let written = api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::PatchStatus)?;
        ctx.written.record(
            seen.uid.as_deref(),
            written.metadata.resource_version,
            derived.status.clone(),
        );
        if derived.status.phase != status.and_then(|s| s.phase) {
            info!(%ns, %name, phase = ?derived.status.phase, "phase changed");
        }
    } else {
        debug!(%ns, %name, "status unchanged");
    }
    for ev in derived.events {
        publish(ctx, test, ev.warning, ev.reason, ev.message).await;
    }

    Ok(match derived.requeue_after {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{LocustTestStatus, Phase};
    use crate::controller::memory::WRITTEN_TTL;
    use crate::controller::memory::{WrittenStatus, WrittenStatuses};
    use std::time::Instant;

    #[test]
    fn written_status_stands_in_until_the_cache_shows_it() {
        let written = WrittenStatuses::default();
        let running = LocustTestStatus {
            phase: Some(Phase::Running),
            ..Default::default()
        };
        assert_eq!(written.current(Some("u1"), Some("10")), None);
        written.record(Some("u1"), Some("11".into()), running.clone());
        // The cache still shows the object before the write.
        assert_eq!(
            written.current(Some("u1"), Some("10")),
            Some(running.clone())
        );
        // Another test, or no uid: nothing.
        assert_eq!(written.current(Some("u2"), Some("10")), None);
        assert_eq!(written.current(None, Some("10")), None);
        // The cache caught up: the entry goes.
        assert_eq!(written.current(Some("u1"), Some("11")), None);
        assert!(written.is_empty());
        // A write without a resourceVersion never stands in.
        written.record(Some("u1"), None, running.clone());
        assert_eq!(written.current(Some("u1"), Some("10")), None);
        written.record(Some("u1"), Some("12".into()), running.clone());
        assert_eq!(written.len(), 1);
        written.forget(Some("u1"));
        assert!(written.is_empty());
        written.record(None, Some("13".into()), LocustTestStatus::default());
        assert!(written.is_empty());
        // An old write no longer stands in.
        written.insert(
            Some("u1"),
            WrittenStatus {
                resource_version: Some("14".into()),
                status: running,
                at: Instant::now() - WRITTEN_TTL,
            },
        );
        assert_eq!(written.current(Some("u1"), Some("10")), None);
        assert!(written.is_empty());
    }

    #[test]
    fn merge_patch_removes_fields_the_desired_status_dropped() {
        let current = LocustTestStatus {
            phase: Some(Phase::Running),
            connected_workers: Some(2),
            ..Default::default()
        };
        let desired = LocustTestStatus {
            phase: Some(Phase::Succeeded),
            ..Default::default()
        };
        let patch = status_merge_patch(Some(&current), &desired);
        assert_eq!(patch["phase"], "Succeeded");
        assert!(patch["connectedWorkers"].is_null());
        assert!(
            patch
                .as_object()
                .is_some_and(|m| m.contains_key("connectedWorkers"))
        );
        let fresh = status_merge_patch(None, &desired);
        assert!(
            !fresh
                .as_object()
                .is_some_and(|m| m.contains_key("connectedWorkers"))
        );
    }
}

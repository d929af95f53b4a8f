//! The test's children (master Service, master Job, worker Job) and the
//! "ensure children" step of a reconcile: create the ones that are missing,
//! unless the test is over or its spec drifted since they were built.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, PostParams};
use tracing::{info, warn};

use crate::api::{LocustTest, event_reason};
use crate::resources::{self, Children, labels};

use super::context::{Context, Error, publish};
use super::model::Child;
use super::model::Observed;
use super::observe::Seen;

impl Child {
    /// Creates it from `built` in `ns`.
    async fn create(
        self,
        client: Client,
        ns: &str,
        pp: &PostParams,
        built: &Children,
    ) -> Result<(), kube::Error> {
        match self {
            Child::MasterService => Api::<Service>::namespaced(client, ns)
                .create(pp, &built.service)
                .await
                .map(drop),
            Child::MasterJob => Api::<Job>::namespaced(client, ns)
                .create(pp, &built.master_job)
                .await
                .map(drop),
            Child::WorkerJob => Api::<Job>::namespaced(client, ns)
                .create(pp, &built.worker_job)
                .await
                .map(drop),
        }
    }
}

/// What the ensure step does.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Every child exists, or the test is over.
    Nothing,
    /// Children are missing but the spec drifted since the others were
    /// built: recreating them would apply the change, so they are reported.
    Report(Vec<Child>),
    /// Create these.
    Create(Vec<Child>),
}

fn plan(terminal: bool, obs: &Observed, spec_hash: &str) -> Plan {
    let missing: Vec<Child> = Child::ALL.into_iter().filter(|c| !c.exists(obs)).collect();
    if terminal || missing.is_empty() {
        Plan::Nothing
    } else if obs
        .children_spec_hash
        .as_deref()
        .is_some_and(|h| h != spec_hash)
    {
        Plan::Report(missing)
    } else {
        Plan::Create(missing)
    }
}

/// The Event for children just created: `(warning, reason, note)`.
/// `recreated` when the test had a status already (its children were
/// created before and someone deleted these).
fn creation_event(
    created: &[Child],
    recreated: bool,
    test_name: &str,
) -> (bool, &'static str, String) {
    if recreated {
        let labels: Vec<&str> = created.iter().map(|c| c.label()).collect();
        (
            true,
            event_reason::CHILD_RECREATED,
            format!("recreated {} deleted during the run", labels.join(", ")),
        )
    } else {
        (
            false,
            event_reason::CREATED,
            format!(
                "created Service {}, Jobs {} and {}",
                Child::MasterService.name(test_name),
                Child::MasterJob.name(test_name),
                Child::WorkerJob.name(test_name)
            ),
        )
    }
}

/// The ensure step: creates the missing children (at once: a Service create
/// waits for its ClusterIP allocation, which need not hold up the Jobs and
/// their pods), records them as expected until the caches show them, and
/// publishes `Created` or `ChildRecreated`. Missing children that must not
/// be recreated are recorded in `seen.obs.missing_not_recreated`.
pub(super) async fn ensure(ctx: &Context, test: &LocustTest, seen: &mut Seen) -> Result<(), Error> {
    let missing = match plan(seen.terminal(), &seen.obs, &seen.spec_hash) {
        Plan::Nothing => return Ok(()),
        Plan::Report(missing) => {
            seen.obs.missing_not_recreated = missing;
            return Ok(());
        }
        Plan::Create(missing) => missing,
    };
    let built = resources::build_children(test, &ctx.config)?;
    let pp = PostParams {
        field_manager: Some(labels::OPERATOR_NAME.into()),
        ..PostParams::default()
    };
    let (ns, name, uid) = (seen.ns.as_str(), seen.name.as_str(), seen.uid.as_deref());
    let results = futures::future::join_all(
        missing
            .iter()
            .map(|c| c.create(ctx.client.clone(), ns, &pp, &built)),
    )
    .await;
    let mut created = Vec::new();
    let mut failure = None;
    for (child, res) in missing.iter().zip(results) {
        match res {
            Ok(()) => {
                ctx.expectations.expect(uid, *child);
                created.push(*child);
            }
            // Created earlier and not in the cache yet.
            Err(kube::Error::Api(s)) if s.code == 409 => ctx.expectations.expect(uid, *child),
            Err(source) => {
                failure.get_or_insert(Error::Create {
                    kind: child.kind(),
                    name: child.name(name),
                    source,
                });
            }
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    if created.is_empty() {
        return Ok(());
    }
    for child in Child::ALL {
        child.set_exists(&mut seen.obs);
    }
    seen.obs.children_spec_hash = Some(seen.spec_hash.clone());
    let recreated = seen.status.as_ref().is_some_and(|s| s.phase.is_some());
    let (warning, reason, note) = creation_event(&created, recreated, name);
    if warning {
        warn!(%ns, %name, "{note}");
    } else {
        info!(%ns, %name, "created master Service, master Job and worker Job");
    }
    publish(ctx, test, warning, reason, note).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::memory::EXPECTATION_TTL;
    use crate::controller::memory::{Expectations, Expected};
    use crate::controller::state::tests::created;
    use std::collections::BTreeMap;
    use std::time::Instant;

    #[test]
    fn children_have_fixed_names_kinds_and_labels() {
        let names: Vec<_> = Child::ALL.iter().map(|c| c.name("t")).collect();
        assert_eq!(names, ["t-master", "t-master", "t-worker"]);
        let kinds: Vec<_> = Child::ALL.iter().map(|c| c.kind()).collect();
        assert_eq!(kinds, ["Service", "Job", "Job"]);
        let labels: Vec<_> = Child::ALL.iter().map(|c| c.label()).collect();
        assert_eq!(labels, ["master Service", "master Job", "worker Job"]);
    }

    #[test]
    fn missing_children_are_created_unless_over_or_drifted() {
        assert_eq!(plan(false, &created(), "h1"), Plan::Nothing);
        let obs = Observed {
            service_exists: false,
            worker_job_exists: false,
            ..created()
        };
        assert_eq!(
            plan(false, &obs, "h1"),
            Plan::Create(vec![Child::MasterService, Child::WorkerJob])
        );
        assert_eq!(plan(true, &obs, "h1"), Plan::Nothing, "terminal");
        assert_eq!(
            plan(false, &obs, "h2"),
            Plan::Report(vec![Child::MasterService, Child::WorkerJob]),
            "drifted"
        );
        // A new test: no child, no hash to drift from.
        assert_eq!(
            plan(false, &Observed::default(), "h1"),
            Plan::Create(Child::ALL.to_vec())
        );
    }

    #[test]
    fn creation_events_tell_first_creation_from_recreation() {
        let (warning, reason, note) = creation_event(&Child::ALL, false, "t");
        assert!(!warning);
        assert_eq!(reason, "Created");
        assert_eq!(note, "created Service t-master, Jobs t-master and t-worker");
        let (warning, reason, note) =
            creation_event(&[Child::MasterService, Child::WorkerJob], true, "t");
        assert!(warning);
        assert_eq!(reason, "ChildRecreated");
        assert_eq!(
            note,
            "recreated master Service, worker Job deleted during the run"
        );
    }

    #[test]
    fn expected_children_stand_in_until_seen() {
        let exp = Expectations::default();
        assert!(!exp.expected(Some("u1"), Child::MasterJob));
        exp.expect(Some("u1"), Child::MasterJob);
        exp.expect(Some("u1"), Child::WorkerJob);
        assert!(exp.expected(Some("u1"), Child::MasterJob));
        assert!(!exp.expected(Some("u1"), Child::MasterService));
        assert!(!exp.expected(Some("u2"), Child::MasterJob), "per test");
        assert!(!exp.expected(None, Child::MasterJob));
        exp.seen(Some("u1"), Child::MasterJob);
        assert!(!exp.expected(Some("u1"), Child::MasterJob));
        assert_eq!(exp.len(), 1);
        exp.seen(Some("u1"), Child::WorkerJob);
        assert!(exp.is_empty(), "an empty entry goes");
        // Expired entries go.
        exp.update(Some("u3"), |slot| {
            *slot = Some(Expected(BTreeMap::from([(
                Child::MasterJob,
                Instant::now() - EXPECTATION_TTL,
            )])));
        });
        assert!(!exp.expected(Some("u3"), Child::MasterJob));
        assert!(exp.is_empty());
    }
}

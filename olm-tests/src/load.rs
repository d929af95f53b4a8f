//! Load helpers: many LocustTests at once against a local cluster.
//!
//! Shared by the benchmark ([`crate::bench`]) and by fault/soak tests: make
//! test objects, create them concurrently, wait (with one watch, bounded in
//! time) until they all reach a phase, finish their pods as the kubelet would,
//! and check every test has exactly its children (no duplicates, no orphans).
//!
//! Every function is bounded: waits take a timeout, concurrency is explicit,
//! and nothing polls faster than every 200 ms.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, ResourceExt};
use locust_operator::api::{LocustTest, Phase};
use locust_operator::resources::labels;

use crate::cluster::{Cluster, pod_phase};

/// The committed v2 sample every load test starts from.
const SAMPLE_V2: &str = include_str!("../../operator/samples/locusttest-v2.yaml");

/// Children every LocustTest has: the master and the worker Job.
pub const JOBS_PER_TEST: usize = 2;
/// Children every LocustTest has: the master Service.
pub const SERVICES_PER_TEST: usize = 1;

/// A LocustTest named `name` (no namespace set) from
/// `operator/samples/locusttest-v2.yaml` with one worker replica, as the
/// benchmark uses: the sample's image, commands and test files, so the
/// children are what a real user's test gets.
///
/// The sample is compiled in; a unit test checks it parses, so this cannot
/// fail at run time.
pub fn test_object(name: &str) -> LocustTest {
    let mut test: LocustTest = crate::yaml::from_str(SAMPLE_V2)
        .expect("operator/samples/locusttest-v2.yaml parses (checked by a unit test)");
    test.metadata = ObjectMeta {
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    };
    test.spec.worker.replicas = 1;
    test
}

/// `n` test names `<prefix>-0000`, `<prefix>-0001`, …, sorted, zero-padded to
/// at least four digits.
pub fn test_names(prefix: &str, n: usize) -> Vec<String> {
    let width = n.saturating_sub(1).to_string().len().max(4);
    (0..n).map(|i| format!("{prefix}-{i:0width$}")).collect()
}

/// Creates one [`test_object`] per name in namespace `ns`, at most
/// `concurrency` requests in flight (at least 1), and returns how long that
/// took. Any failure (including "already exists") fails the whole call after
/// the requests in flight finish; the error names the test.
pub async fn create_tests(
    client: &Client,
    ns: &str,
    names: &[String],
    concurrency: usize,
) -> Result<Duration> {
    let api: Api<LocustTest> = Api::namespaced(client.clone(), ns);
    let started = Instant::now();
    stream::iter(names.iter())
        .map(|name| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &test_object(name))
                    .await
                    .with_context(|| format!("creating LocustTest {ns}/{name}"))
                    .map(drop)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(started.elapsed())
}

/// Whether a test in phase `current` counts as having reached `target`:
/// the same phase, or `Succeeded` when waiting for `Running` (a test may pass
/// through Running between two watch events).
fn reached(current: Phase, target: Phase) -> bool {
    current == target || (target == Phase::Running && current == Phase::Succeeded)
}

/// Whether a test in phase `current` can never reach `target`: it is in
/// another terminal phase.
fn unreachable(current: Phase, target: Phase) -> bool {
    current.is_terminal() && !reached(current, target)
}

/// Waits, with one watch on the LocustTests of `ns`, until every test in
/// `names` has phase `phase` (for `Running`, `Succeeded` also counts), and
/// returns how long the wait took. Fails after `timeout`, naming how many
/// tests got there and a few that did not, and fails at once when a test
/// lands in a terminal phase other than `phase` (it can never get there).
pub async fn wait_all_phase(
    client: &Client,
    ns: &str,
    names: &[String],
    phase: Phase,
    timeout: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    let wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let mut phases: BTreeMap<String, Option<Phase>> = BTreeMap::new();
    let api: Api<LocustTest> = Api::namespaced(client.clone(), ns);
    let events = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(events);

    let done = |phases: &BTreeMap<String, Option<Phase>>| {
        wanted.iter().all(|n| {
            phases
                .get(*n)
                .copied()
                .flatten()
                .is_some_and(|p| reached(p, phase))
        })
    };
    let outcome = tokio::time::timeout(timeout, async {
        let mut synced = false;
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    tracing::debug!(%error, "LocustTest watch error (retried)");
                    continue;
                }
            };
            match event {
                watcher::Event::Init => phases.clear(),
                watcher::Event::InitApply(t) | watcher::Event::Apply(t) => {
                    let current = t.status.as_ref().and_then(|s| s.phase);
                    let name = t.name_any();
                    if let Some(p) = current
                        && wanted.contains(name.as_str())
                        && unreachable(p, phase)
                    {
                        bail!("LocustTest {ns}/{name} is {p}, so it can never be {phase}");
                    }
                    phases.insert(name, current);
                }
                watcher::Event::Delete(t) => {
                    phases.remove(&t.name_any());
                }
                watcher::Event::InitDone => synced = true,
            }
            if synced && done(&phases) {
                return Ok(());
            }
        }
        bail!("the LocustTest watch ended")
    })
    .await;
    match outcome {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(error)) => Err(error),
        Err(_) => {
            let behind: Vec<String> = wanted
                .iter()
                .filter(|n| {
                    !phases
                        .get(**n)
                        .copied()
                        .flatten()
                        .is_some_and(|p| reached(p, phase))
                })
                .map(|n| match phases.get(*n) {
                    Some(Some(p)) => format!("{n} ({p})"),
                    Some(None) => format!("{n} (no phase)"),
                    None => format!("{n} (not found)"),
                })
                .collect();
            bail!(
                "timed out after {timeout:?}: {}/{} LocustTests in {ns} are {phase}; not yet: {}{}",
                wanted.len() - behind.len(),
                wanted.len(),
                behind
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if behind.len() > 5 { ", …" } else { "" }
            )
        }
    }
}

/// Ends every not yet finished pod of namespace `ns` that the operator
/// manages (label `app.kubernetes.io/managed-by=locust-k8s-operator`) with
/// exit code 0, as the kubelet would when Locust exits, with at most
/// `concurrency` pods in flight; returns how many pods it completed.
pub async fn complete_all_pods(cluster: &Cluster, ns: &str, concurrency: usize) -> Result<usize> {
    complete_pods(cluster, ns, labels::MANAGED_BY_SELECTOR, concurrency).await
}

/// Like [`complete_all_pods`], for the pods matching `label_selector` (e.g.
/// `app.kubernetes.io/component=master` to finish only the masters).
pub async fn complete_pods(
    cluster: &Cluster,
    ns: &str,
    label_selector: &str,
    concurrency: usize,
) -> Result<usize> {
    let pods = cluster.list_pods(ns, label_selector).await?;
    let open: Vec<String> = pods
        .iter()
        .filter(|p| !matches!(pod_phase(p), "Succeeded" | "Failed"))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(Pod::name_any)
        .collect();
    let count = open.len();
    stream::iter(open)
        .map(|name| async move { cluster.complete_pod(ns, &name, 0).await.map(drop) })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(count)
}

/// The children of one LocustTest, counted by their controller owner reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildCounts {
    /// Jobs owned by the test (expected: [`JOBS_PER_TEST`]).
    pub jobs: usize,
    /// Services owned by the test (expected: [`SERVICES_PER_TEST`]).
    pub services: usize,
}

impl ChildCounts {
    /// Exactly the expected children.
    pub fn is_exact(&self) -> bool {
        self.jobs == JOBS_PER_TEST && self.services == SERVICES_PER_TEST
    }
}

/// Every LocustTest of a namespace with its children, and the children nobody
/// owns any more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChildrenReport {
    /// Per existing LocustTest (by name; tests without children appear with 0).
    pub per_test: BTreeMap<String, ChildCounts>,
    /// Operator-managed Jobs and Services (`Job/<name>`, `Service/<name>`)
    /// whose controller owner is no existing LocustTest, or that have none.
    /// Right after a test is deleted its children are orphans until the
    /// garbage collector removes them.
    pub orphans: Vec<String>,
}

impl ChildrenReport {
    /// Tests with more children than expected, sorted.
    pub fn duplicates(&self) -> Vec<String> {
        self.per_test
            .iter()
            .filter(|(_, c)| c.jobs > JOBS_PER_TEST || c.services > SERVICES_PER_TEST)
            .map(|(n, c)| format!("{n} ({} Jobs, {} Services)", c.jobs, c.services))
            .collect()
    }

    /// Tests with fewer children than expected, sorted.
    pub fn missing(&self) -> Vec<String> {
        self.per_test
            .iter()
            .filter(|(_, c)| c.jobs < JOBS_PER_TEST || c.services < SERVICES_PER_TEST)
            .map(|(n, c)| format!("{n} ({} Jobs, {} Services)", c.jobs, c.services))
            .collect()
    }

    /// Total Jobs and Services counted (owned and orphaned).
    pub fn total_children(&self) -> usize {
        self.per_test
            .values()
            .map(|c| c.jobs + c.services)
            .sum::<usize>()
            + self.orphans.len()
    }

    /// `Ok` when every test has exactly its children and nothing is orphaned;
    /// otherwise an error listing (up to 10 of) each kind of problem.
    pub fn ensure_exact(&self) -> Result<()> {
        let list = |v: &[String]| {
            let mut s = v.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
            if v.len() > 10 {
                s.push_str(", …");
            }
            s
        };
        let duplicates = self.duplicates();
        let missing = self.missing();
        ensure!(
            duplicates.is_empty() && missing.is_empty() && self.orphans.is_empty(),
            "children of {} LocustTests: {} with duplicates [{}], {} with missing children [{}], {} orphans [{}]",
            self.per_test.len(),
            duplicates.len(),
            list(&duplicates),
            missing.len(),
            list(&missing),
            self.orphans.len(),
            list(&self.orphans)
        );
        Ok(())
    }
}

fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == "LocustTest")
        .map(|o| o.uid.as_str())
}

/// Counts, for every LocustTest of `ns`, the operator-managed Jobs and
/// Services it controls (metadata-only lists: three list calls in all), and
/// lists the orphans. Use [`ChildrenReport::ensure_exact`] to assert.
pub async fn children_report(client: &Client, ns: &str) -> Result<ChildrenReport> {
    let owned = ListParams::default().labels(labels::MANAGED_BY_SELECTOR);
    let tests = Api::<LocustTest>::namespaced(client.clone(), ns)
        .list_metadata(&ListParams::default())
        .await
        .with_context(|| format!("listing LocustTests in {ns}"))?
        .items;
    let jobs = Api::<Job>::namespaced(client.clone(), ns)
        .list_metadata(&owned)
        .await
        .with_context(|| format!("listing Jobs in {ns}"))?
        .items;
    let services = Api::<Service>::namespaced(client.clone(), ns)
        .list_metadata(&owned)
        .await
        .with_context(|| format!("listing Services in {ns}"))?
        .items;

    let by_uid: BTreeMap<String, String> = tests
        .iter()
        .filter_map(|t| Some((t.metadata.uid.clone()?, t.name_any())))
        .collect();
    let mut report = ChildrenReport {
        per_test: tests
            .iter()
            .map(|t| (t.name_any(), ChildCounts::default()))
            .collect(),
        orphans: Vec::new(),
    };
    let children = jobs
        .iter()
        .map(|j| ("Job", &j.metadata))
        .chain(services.iter().map(|s| ("Service", &s.metadata)));
    for (kind, meta) in children {
        let owner = controller_uid(meta).and_then(|uid| by_uid.get(uid));
        match owner.and_then(|name| report.per_test.get_mut(name)) {
            Some(counts) if kind == "Job" => counts.jobs += 1,
            Some(counts) => counts.services += 1,
            None => report.orphans.push(format!(
                "{kind}/{}",
                meta.name.as_deref().unwrap_or_default()
            )),
        }
    }
    report.orphans.sort();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_object_is_the_sample_with_one_worker() {
        let t = test_object("bench-0001");
        assert_eq!(t.metadata.name.as_deref(), Some("bench-0001"));
        assert_eq!(t.metadata.namespace, None);
        assert_eq!(t.spec.worker.replicas, 1);
        assert!(t.spec.image.contains("locust"));
        assert!(t.status.is_none());
    }

    #[test]
    fn names_are_sorted_and_padded() {
        assert_eq!(test_names("b", 3), ["b-0000", "b-0001", "b-0002"]);
        let many = test_names("b", 12_000);
        assert_eq!(many[0], "b-00000");
        assert_eq!(many[11_999], "b-11999");
        let mut sorted = many.clone();
        sorted.sort();
        assert_eq!(sorted, many);
        assert!(test_names("b", 0).is_empty());
    }

    #[test]
    fn phases_reached_and_unreachable() {
        assert!(reached(Phase::Running, Phase::Running));
        assert!(reached(Phase::Succeeded, Phase::Running));
        assert!(!reached(Phase::Pending, Phase::Running));
        assert!(!reached(Phase::Failed, Phase::Running));
        assert!(!reached(Phase::Running, Phase::Succeeded));
        assert!(unreachable(Phase::Failed, Phase::Running));
        assert!(unreachable(Phase::Failed, Phase::Succeeded));
        assert!(unreachable(Phase::Succeeded, Phase::Failed));
        assert!(!unreachable(Phase::Pending, Phase::Succeeded));
        assert!(!unreachable(Phase::Failed, Phase::Failed));
    }

    #[test]
    fn report_finds_duplicates_missing_and_orphans() {
        let mut report = ChildrenReport::default();
        report.per_test.insert(
            "ok".into(),
            ChildCounts {
                jobs: 2,
                services: 1,
            },
        );
        assert!(report.ensure_exact().is_ok());
        assert_eq!(report.total_children(), 3);
        report.per_test.insert(
            "dup".into(),
            ChildCounts {
                jobs: 3,
                services: 1,
            },
        );
        report.per_test.insert(
            "short".into(),
            ChildCounts {
                jobs: 2,
                services: 0,
            },
        );
        report.orphans.push("Job/gone-master".into());
        assert_eq!(report.duplicates(), ["dup (3 Jobs, 1 Services)"]);
        assert_eq!(report.missing(), ["short (2 Jobs, 0 Services)"]);
        let text = format!("{:#}", report.ensure_exact().unwrap_err());
        assert!(text.contains("1 with duplicates [dup"), "{text}");
        assert!(text.contains("1 orphans [Job/gone-master]"), "{text}");
    }

    #[test]
    fn controller_owner_is_a_locusttest() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
        let owner = |kind: &str, controller| OwnerReference {
            api_version: "locust.io/v2".into(),
            kind: kind.into(),
            name: "t".into(),
            uid: format!("uid-{kind}"),
            controller: Some(controller),
            ..OwnerReference::default()
        };
        let meta = ObjectMeta {
            owner_references: Some(vec![owner("Other", true), owner("LocustTest", true)]),
            ..ObjectMeta::default()
        };
        assert_eq!(controller_uid(&meta), Some("uid-LocustTest"));
        let not_controller = ObjectMeta {
            owner_references: Some(vec![owner("LocustTest", false)]),
            ..ObjectMeta::default()
        };
        assert_eq!(controller_uid(&not_controller), None);
    }
}

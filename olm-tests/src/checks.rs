//! Assertions and waits shared by the end-to-end and reliability tests:
//! a LocustTest's phase, its children, the leader lease, the operator's
//! `/readyz` and the Events it wrote.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams};
use locust_operator::api::{LocustTest, Phase};

use crate::load;
use crate::operator::{self, OperatorProcess};
use crate::wait_for;

/// Name of the operator's leader Lease (its `--leader-election-id` default).
pub const LEASE: &str = "locust-k8s-operator.locust.io";

/// The sample v2 LocustTest of `operator/samples/`, renamed to `name`.
pub fn sample(name: &str) -> Result<LocustTest> {
    let path = operator::workspace_root().join("operator/samples/locusttest-v2.yaml");
    let mut t: LocustTest = crate::yaml::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("parsing {}", path.display()))?;
    t.metadata.name = Some(name.into());
    Ok(t)
}

/// The phase of a LocustTest (`None`: no status yet).
pub fn phase_of(test: &LocustTest) -> Option<Phase> {
    test.status.as_ref().and_then(|s| s.phase)
}

/// Waits (bounded by `timeout`, polling every 200 ms) until test `name`
/// reaches `phase`; returns the test as last read.
pub async fn wait_phase(
    api: &Api<LocustTest>,
    name: &str,
    phase: Phase,
    timeout: Duration,
) -> Result<LocustTest> {
    wait_for(timeout, Duration::from_millis(200), || async {
        let t = api.get(name).await?;
        Ok((phase_of(&t) == Some(phase)).then_some(t))
    })
    .await
    .with_context(|| format!("{name}: waiting for phase {phase}"))
}

/// Fails unless `test` has exactly its two Jobs and one Service (counted by
/// controller owner reference, see [`load::children_report`]).
pub async fn assert_children_once(client: &Client, ns: &str, test: &str) -> Result<()> {
    let report = load::children_report(client, ns).await?;
    let counts = report.per_test.get(test).copied().unwrap_or_default();
    ensure!(
        counts.is_exact(),
        "{test}: {} Jobs, {} Services (want 2 Jobs, 1 Service)",
        counts.jobs,
        counts.services
    );
    Ok(())
}

/// The current holder of the operator's leader Lease in `locust-system`.
pub async fn lease_holder(client: &Client) -> Result<Option<String>> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), operator::OPERATOR_NAMESPACE);
    Ok(leases
        .get_opt(LEASE)
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

/// Waits until `/readyz` of `op` answers `code` with a body containing
/// `needle`; returns the time waited and the body.
pub async fn wait_readyz(
    op: &OperatorProcess,
    code: u16,
    needle: &str,
    timeout: Duration,
) -> Result<(Duration, String)> {
    let start = Instant::now();
    let body = wait_for(timeout, Duration::from_millis(100), || async {
        let (c, body) = op.health("/readyz").await?;
        Ok((c == code && body.contains(needle)).then_some(body))
    })
    .await
    .with_context(|| format!("waiting for /readyz {code} containing {needle:?}"))?;
    Ok((start.elapsed(), body))
}

/// The Events (`events.k8s.io/v1`) in `ns` regarding the object `name`.
pub async fn events_for(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Vec<k8s_openapi::api::events::v1::Event>> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect())
}

/// Events in `ns` about LocustTests, as (test, reason) → summed `count`
/// (an Event repeated by the recorder is one object with a higher count).
pub async fn events_by_test(client: &Client, ns: &str) -> Result<BTreeMap<(String, String), i32>> {
    let mut out = BTreeMap::new();
    for ev in Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?
    {
        if ev.involved_object.kind.as_deref() != Some("LocustTest") {
            continue;
        }
        let key = (
            ev.involved_object.name.clone().unwrap_or_default(),
            ev.reason.clone().unwrap_or_default(),
        );
        let series = ev.series.as_ref().and_then(|s| s.count).unwrap_or(0);
        *out.entry(key).or_default() += ev.count.unwrap_or(1).max(series).max(1);
    }
    Ok(out)
}

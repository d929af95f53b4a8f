//! Wires the schedule controller to the API: a watch of LocustSchedules and
//! one of the LocustTests they created (label `locust.io/schedule`, managed
//! fields dropped), a kube-runtime `Controller` that owns the tests. Started
//! by [`crate::controller::run::run`] next to the LocustTest controller, so
//! it leads and stops with it.
//!
//! A cluster without the LocustSchedule CRD (an install older than the
//! kind), or RBAC without its rules, does not stop the operator: the first
//! list answers 404 (or 403), which is logged once, and the controller is
//! not started.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::api::LocustTest;
use crate::api::schedule::LocustSchedule;
use crate::health::poll_ready;
use crate::schedule::{SCHEDULE_LABEL, SystemClock};

use super::context::Context;
use super::reconcile::{error_policy, reconcile};

/// Page size of the schedule controller's lists (schedules, and the tests
/// they created). A page is decoded whole before it is trimmed for the cache,
/// and the allocator keeps much of that transient memory (see
/// [`crate::controller::run::LIST_PAGE_SIZE`]); schedules are few and change
/// rarely, so small pages cost a few round trips at start-up only.
pub const SCHEDULE_LIST_PAGE_SIZE: u32 = 10;

/// Schedule reconciles in flight. Each one may hold an API connection of its
/// own, which the client then keeps open while idle; schedules are rarely due
/// in the same second and a reconcile is a few API calls, so two suffice (and
/// one slow call does not hold the others back).
///
/// Measured with 100 suspended schedules (idle RSS after their first status,
/// `bench --sizes 20 --no-floor --idle-secs 20`, before [`crate::heap`]):
/// unlimited reconciles and pages of 100, 22.1 MiB; 4 in flight, 17.4 MiB;
/// 1 in flight, 16.8 MiB; 4 and pages of 10, 16.7 MiB. With two in flight,
/// pages of 10 and [`crate::heap::scavenge`], `make bench` measured 16.0 MiB
/// (docs/performance.md).
pub const MAX_CONCURRENT_SCHEDULE_RECONCILES: u16 = 2;

/// Where the controller runs: the client, the namespace it watches (`None`:
/// all), the Event reporter's instance.
pub struct Scope {
    pub client: Client,
    pub namespace: Option<String>,
    pub instance: String,
}

impl Scope {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        let client = self.client.clone();
        self.namespace.as_deref().map_or_else(
            || Api::all(client.clone()),
            |ns| Api::namespaced(client.clone(), ns),
        )
    }
}

/// Whether the API serves LocustSchedules to this operator.
enum Served {
    Yes,
    /// Not served (404) or not allowed (403): the status code.
    No(u16),
}

/// Lists one schedule until the API answers (retrying every 5 s on other
/// errors, until `shutdown`): served, or not (404, 403).
async fn served(api: &Api<LocustSchedule>, shutdown: impl Future<Output = ()>) -> Option<Served> {
    let attempts = async {
        loop {
            match api.list_metadata(&ListParams::default().limit(1)).await {
                Ok(_) => return Served::Yes,
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 403 => {
                    return Served::No(s.code);
                }
                Err(e) => {
                    warn!(error = %e, "listing LocustSchedules failed; retrying in 5 s");
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                }
            }
        }
    };
    tokio::select! {
        served = attempts => Some(served),
        () = shutdown => None,
    }
}

/// The schedule controller, not started: the future that runs it until
/// `shutdown` resolves, and a receiver that turns `true` once its caches
/// have synced (or once it knows it will not run).
pub fn controller<S>(scope: Scope, shutdown: S) -> (watch::Receiver<bool>, impl Future<Output = ()>)
where
    S: Future<Output = ()> + Clone + Send + Sync + 'static,
{
    let (synced_tx, synced_rx) = watch::channel(false);
    (synced_rx, run(scope, shutdown, synced_tx))
}

async fn run<S>(scope: Scope, shutdown: S, synced: watch::Sender<bool>)
where
    S: Future<Output = ()> + Clone + Send + Sync + 'static,
{
    let schedules_api = scope.api::<LocustSchedule>();
    match served(&schedules_api, shutdown.clone()).await {
        Some(Served::Yes) => {}
        Some(Served::No(code)) => {
            info!(
                code,
                "LocustSchedules are not served to the operator (CRD not installed, or no RBAC for them): the schedule controller does not run"
            );
            synced.send_replace(true);
            return;
        }
        None => return,
    }
    let (schedules, schedules_w) = reflector::store::<LocustSchedule>();
    let schedules_stream = watcher(
        schedules_api,
        watcher::Config::default().page_size(SCHEDULE_LIST_PAGE_SIZE),
    )
    .default_backoff()
    .modify(|s| s.managed_fields_mut().clear())
    .reflect(schedules_w)
    .touched_objects();
    let (tests, tests_w) = reflector::store::<LocustTest>();
    let tests_stream = watcher(
        scope.api::<LocustTest>(),
        watcher::Config::default()
            .labels(SCHEDULE_LABEL)
            .page_size(SCHEDULE_LIST_PAGE_SIZE),
    )
    .default_backoff()
    .modify(|t| {
        t.managed_fields_mut().clear();
        if let Some(status) = t.status.as_mut() {
            status.live = None;
        }
    })
    .reflect(tests_w)
    .touched_objects();

    let ctx = Arc::new(Context {
        client: scope.client.clone(),
        tests: tests.clone(),
        synced: synced.subscribe(),
        recorder: Recorder::new(
            scope.client.clone(),
            Reporter {
                controller: "locust-k8s-operator".into(),
                instance: Some(scope.instance.clone()),
            },
        ),
        clock: Arc::new(SystemClock),
        pending: Default::default(),
        error_events: Default::default(),
    });

    let sync = {
        let (schedules, tests) = (schedules.clone(), tests.clone());
        async move {
            let ready = poll_ready(|| async {
                schedules.wait_until_ready().await.is_ok() && tests.wait_until_ready().await.is_ok()
            })
            .await;
            if ready {
                info!("schedule caches synced");
                synced.send_replace(true);
            }
        }
    };
    let controller = Controller::for_stream(schedules_stream, schedules)
        .with_config(ControllerConfig::default().concurrency(MAX_CONCURRENT_SCHEDULE_RECONCILES))
        .owns_stream(tests_stream)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .filter_map(|res| std::future::ready(res.err()))
        .for_each(|e| {
            tracing::debug!(error = %e, "schedule reconcile loop error");
            std::future::ready(())
        });
    let sync = tokio::spawn(sync);
    controller.await;
    sync.abort();
    info!("schedule controller stopped");
}

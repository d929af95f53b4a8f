//! `locust-k8s-operator`: the operator process, plus `render`, `validate` and
//! `convert` subcommands that work without a cluster (for users' CI).

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::{Client, ResourceExt};
use locust_operator::api::schedule::LocustSchedule;
use locust_operator::api::{v1, v2};
use locust_operator::config::{LOCUST_IMAGE_UID, LogFormat, OperatorConfig, WebhookCertMode};
use locust_operator::conversion::ApiVersion;
use locust_operator::health::{self, Readiness};
use locust_operator::heap;
use locust_operator::leader::{LeaderElector, Timing};
use locust_operator::metrics::{self, Metrics};
use locust_operator::metrics_auth::Authorizer;
use locust_operator::metrics_tls;
use locust_operator::migration::{self, Difference};
use locust_operator::server::BindError;
use locust_operator::webhook::certs;
use locust_operator::{
    api, controller, conversion, resources, schedule, validation, webhook, yaml,
};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Kubernetes operator for distributed Locust load tests.
#[derive(Parser, Debug)]
#[command(
    name = "locust-k8s-operator",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: OperatorConfig,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the operator (the default when no subcommand is given).
    Run {
        #[command(flatten)]
        config: OperatorConfig,
    },
    /// Print the Service and Jobs the operator would create for each LocustTest in a file (v1 or
    /// v2); for a LocustSchedule, the LocustTest it would create next, then that test's.
    Render {
        /// YAML file with one or more LocustTests or LocustSchedules (`-` for stdin).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Namespace to assume for tests that have none.
        #[arg(long, default_value = "default")]
        namespace: String,
        #[command(flatten)]
        config: OperatorConfig,
    },
    /// Print every admission error of each LocustTest and LocustSchedule in a file, and on
    /// stderr where a valid test behaves differently than under the Go operator; exits non-zero
    /// on an error only.
    Validate {
        /// YAML file with one or more LocustTests or LocustSchedules (`-` for stdin).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
    /// Convert LocustTests between locust.io/v1 and locust.io/v2.
    Convert {
        /// YAML file with one or more LocustTests (`-` for stdin).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Target version.
        #[arg(long, value_enum)]
        to: Version,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Version {
    V1,
    V2,
}

fn read_docs(file: &PathBuf) -> Result<Vec<serde_json::Value>, String> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading stdin: {e}"))?;
    } else {
        text = std::fs::read_to_string(file)
            .map_err(|e| format!("reading {}: {e}", file.display()))?;
    }
    let source = if file.as_os_str() == "-" {
        "<stdin>".to_owned()
    } else {
        file.display().to_string()
    };
    yaml::documents(&text).map_err(|e| yaml::describe(&e, &source))
}

/// What `render` reads.
const RENDER_READS: Reads = Reads {
    kinds: &[api::KIND, api::SCHEDULE_KIND],
    other_locust_kinds: false,
};
/// What `validate` reads: every kind the operator serves, and any other kind
/// of its group, reported as unknown.
const VALIDATE_READS: Reads = Reads {
    kinds: RENDER_READS.kinds,
    other_locust_kinds: true,
};
/// What `convert` reads.
const CONVERT_READS: Reads = Reads {
    kinds: &[api::KIND],
    other_locust_kinds: false,
};

/// Which documents a subcommand reads.
struct Reads<'a> {
    /// The kinds it handles.
    kinds: &'a [&'a str],
    /// Whether other kinds of the `locust.io` group are kept too (for
    /// `validate` to report them) rather than passed over.
    other_locust_kinds: bool,
}

/// The documents of `file` that `reads` asks for (and those that claim no
/// kind, to be reported as such), with the items of a `List` (`kubectl get
/// -o yaml`) taken one by one: other kinds, such as the locustfile's
/// ConfigMap kept in the same file, are passed over with a note on stderr.
fn read_objects(file: &PathBuf, reads: &Reads) -> Result<Vec<serde_json::Value>, String> {
    let mut objects = Vec::new();
    let mut docs = read_docs(file)?;
    docs.reverse();
    while let Some(mut doc) = docs.pop() {
        let keep_as_ours = reads.other_locust_kinds
            && doc
                .get("apiVersion")
                .and_then(|v| v.as_str())
                .is_some_and(|v| v.starts_with(&format!("{}/", api::GROUP)));
        match doc.get("kind").and_then(|k| k.as_str()) {
            Some("List") if doc.get("items").is_some_and(|i| i.is_array()) => {
                if let Some(serde_json::Value::Array(items)) =
                    doc.get_mut("items").map(std::mem::take)
                {
                    docs.extend(items.into_iter().rev());
                }
            }
            Some(kind) if !reads.kinds.contains(&kind) && !keep_as_ours => {
                eprintln!(
                    "note: {kind} {}: not a {}, skipped",
                    doc_name(&doc),
                    reads.kinds.join(" or ")
                );
            }
            _ => objects.push(doc),
        }
    }
    Ok(objects)
}

fn is_schedule(doc: &serde_json::Value) -> bool {
    doc.get("kind").and_then(|k| k.as_str()) == Some(api::SCHEDULE_KIND)
}

/// Where the test `doc` (valid) behaves differently than under the Go operator.
fn go_operator_differences(doc: &serde_json::Value) -> Vec<Difference> {
    let written = doc
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .and_then(ApiVersion::parse);
    match (written, to_v2(doc.clone())) {
        (Some(written), Ok(test)) => migration::go_operator_differences(&test, written),
        _ => Vec::new(),
    }
}

fn doc_name(doc: &serde_json::Value) -> String {
    doc.pointer("/metadata/name")
        .and_then(|v| v.as_str())
        .unwrap_or("<unnamed>")
        .to_owned()
}

fn to_v2(doc: serde_json::Value) -> Result<v2::LocustTest, String> {
    let v2 =
        conversion::convert_value(doc, conversion::V2_API_VERSION).map_err(|e| e.to_string())?;
    serde_json::from_value(v2).map_err(|e| e.to_string())
}

fn print_yaml<T: serde::Serialize>(obj: &T) -> Result<(), String> {
    let text = yaml::to_string(obj).map_err(|e| e.to_string())?;
    print!("---\n{text}");
    Ok(())
}

/// Prints what the operator would create, with the defaults it applies on a
/// cluster that is not OpenShift ([`OperatorConfig::with_default_run_as_user`]).
fn render(file: &PathBuf, namespace: &str, config: &OperatorConfig) -> Result<(), String> {
    config.validate().map_err(|e| e.to_string())?;
    let config = &config.clone().with_default_run_as_user();
    for doc in read_objects(file, &RENDER_READS)? {
        let name = doc_name(&doc);
        let mut test = if is_schedule(&doc) {
            let test = next_scheduled_test(doc, namespace).map_err(|e| format!("{name}: {e}"))?;
            print_yaml(&test)?;
            test
        } else {
            to_v2(doc).map_err(|e| format!("{name}: {e}"))?
        };
        assume_identity(&mut test.metadata, namespace);
        let children =
            resources::build_children(&test, config).map_err(|e| format!("{name}: {e}"))?;
        print_yaml(&children.service)?;
        print_yaml(&children.master_job)?;
        print_yaml(&children.worker_job)?;
    }
    Ok(())
}

/// A namespace and a placeholder uid where `meta` has none, as the API
/// server would assign them.
fn assume_identity(meta: &mut ObjectMeta, namespace: &str) {
    meta.namespace.get_or_insert_with(|| namespace.to_owned());
    meta.uid
        .get_or_insert_with(|| "00000000-0000-0000-0000-000000000000".to_owned());
}

/// The LocustTest the schedule `doc` would create next after now
/// ([`schedule::next_test`]); a note on stderr when the schedule is suspended.
fn next_scheduled_test(doc: serde_json::Value, namespace: &str) -> Result<v2::LocustTest, String> {
    let mut schedule: LocustSchedule = serde_json::from_value(doc).map_err(|e| e.to_string())?;
    assume_identity(&mut schedule.metadata, namespace);
    if schedule.spec.suspend {
        eprintln!(
            "note: {} is suspended: it creates no test until spec.suspend is false; the next would be:",
            schedule.name_any()
        );
    }
    schedule::next_test(&schedule, schedule::Timestamp::now()).map_err(|e| e.to_string())
}

fn validate_file(file: &PathBuf) -> Result<usize, String> {
    let mut errors = 0;
    for doc in read_objects(file, &VALIDATE_READS)? {
        let name = doc_name(&doc);
        if doc.get("apiVersion").and_then(|v| v.as_str()) == Some(conversion::V1_API_VERSION) {
            eprintln!("{name}: warning: {}", v1::DEPRECATION_WARNING);
        }
        // The same checks, in the same order, as the API server's schema and
        // CEL rules followed by the validating webhook.
        let problems = validation::validate_value(&doc);
        if problems.is_empty() {
            println!("{name}: valid");
            // The migration check (tests only): warnings, the exit status stays.
            let differences = if is_schedule(&doc) {
                Vec::new()
            } else {
                go_operator_differences(&doc)
            };
            for difference in differences {
                eprintln!("{name}: warning: {difference}");
            }
        }
        for p in &problems {
            println!("{name}: {p}");
        }
        errors += problems.len();
    }
    Ok(errors)
}

fn convert_file(file: &PathBuf, to: Version) -> Result<(), String> {
    let target = match to {
        Version::V1 => conversion::V1_API_VERSION,
        Version::V2 => conversion::V2_API_VERSION,
    };
    for doc in read_objects(file, &CONVERT_READS)? {
        let name = doc_name(&doc);
        let out = conversion::convert_value(doc, target).map_err(|e| format!("{name}: {e}"))?;
        print_yaml(&out)?;
    }
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,kube=warn,hyper=warn,rustls=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn lease_namespace(config: &OperatorConfig, client: &Client) -> String {
    match config.lease_namespace() {
        Some(ns) => ns.to_owned(),
        None => operator_namespace(client),
    }
}

/// The operator pod's namespace: `POD_NAMESPACE`, else the ServiceAccount's,
/// else the client's default.
fn operator_namespace(client: &Client) -> String {
    if let Ok(ns) = std::env::var("POD_NAMESPACE")
        && !ns.is_empty()
    {
        return ns;
    }
    if let Ok(ns) =
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    {
        let ns = ns.trim();
        if !ns.is_empty() {
            return ns.to_owned();
        }
    }
    client.default_namespace().to_owned()
}

fn identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "locust-k8s-operator".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{base}_{:08x}", nanos ^ std::process::id())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => info!("SIGTERM received, shutting down"),
        _ = tokio::signal::ctrl_c() => info!("interrupt received, shutting down"),
    }
}

/// The Locust pods' `runAsUser` when `--pod-run-as-user` is not set: none on
/// OpenShift (its `restricted-v2` SCC assigns a UID from the namespace's
/// range), else [`LOCUST_IMAGE_UID`] (see there). OpenShift is recognised by
/// its `security.openshift.io` API group (discovery is open to every client).
async fn default_pod_run_as_user(client: &Client) -> Option<i64> {
    for attempt in 1..=3 {
        match client.list_api_groups().await {
            Ok(groups) => {
                let openshift = groups
                    .groups
                    .iter()
                    .any(|g| g.name == "security.openshift.io");
                return if openshift {
                    info!(
                        "OpenShift detected: Locust pods get no fixed runAsUser (the SCC assigns one)"
                    );
                    None
                } else {
                    info!(
                        uid = LOCUST_IMAGE_UID,
                        "not OpenShift: Locust pods run as this UID unless --pod-run-as-user says otherwise"
                    );
                    Some(LOCUST_IMAGE_UID)
                };
            }
            Err(e) if attempt < 3 => {
                warn!(error = %e, attempt, "API discovery failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                warn!(error = %e, "API discovery failed: Locust pods get no fixed runAsUser");
            }
        }
    }
    None
}

/// How often the API server's health is probed for `/readyz`.
const APISERVER_PROBE_PERIOD: Duration = Duration::from_secs(2);
/// How long one probe may take before the API server counts as unreachable.
const APISERVER_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

async fn run_operator(mut config: OperatorConfig) -> ExitCode {
    // One TLS provider for the API client and the webhook server (ring; no aws-lc).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = Metrics::new();
    let readiness = Readiness::new(!config.disable_webhooks);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    tokio::spawn(heap::scavenge(heap::SCAVENGE_PERIOD, stopped()));

    // Health and metrics come up first so probes answer during start-up.
    let bound = health::bind_health(
        config.health_probe_bind_address,
        readiness.clone(),
        stopped(),
    )
    .await;
    let Some(health) = spawn_bound(bound, "health probes", "health") else {
        return ExitCode::FAILURE;
    };
    let mut webhook_task = if config.disable_webhooks {
        None
    } else {
        let cfg = webhook::WebhookConfig::new(
            config.webhook_socket_addr(),
            config.webhook_cert_dir.clone(),
        )
        .with_readiness(readiness.clone())
        .with_metrics(metrics.clone());
        let fut = webhook::serve(cfg, stopped());
        Some(tokio::spawn(fut))
    };

    let client = match Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "cannot build a Kubernetes client");
            return ExitCode::FAILURE;
        }
    };

    if !config.disable_webhooks && config.webhook_cert_mode == WebhookCertMode::SelfManaged {
        let namespace = operator_namespace(&client);
        let settings = certs::Settings {
            names: certs::serving_names(
                &config.webhook_service_name,
                &namespace,
                &config.webhook_cert_extra_names,
            ),
            namespace,
            secret_name: config.webhook_cert_secret.clone(),
            crd_name: api::CRD_NAME.to_owned(),
            webhook_configuration_name: config.webhook_configuration_name.clone(),
            cert_dir: config.webhook_cert_dir.clone(),
            policy: certs::Policy {
                ca_validity: config.webhook_ca_validity,
                cert_validity: config.webhook_cert_validity,
            },
            check_interval: config.webhook_cert_check_interval,
        };
        info!(
            secret = %settings.secret_name,
            namespace = %settings.namespace,
            names = ?settings.names,
            "self-managed webhook certificates"
        );
        tokio::spawn(certs::SelfManagedCerts::new(client.clone(), settings).run(stopped()));
    }

    // Metrics need the client to authorize each scrape (unless plain HTTP).
    let access = if config.metrics_secure {
        match metrics_tls::server_config(config.metrics_cert_dir.as_deref()).await {
            Ok((tls, reloader)) => {
                if let Some(reloader) = reloader {
                    tokio::spawn(reloader.run(stopped()));
                }
                metrics::Access::Secure {
                    tls,
                    authorizer: Arc::new(Authorizer::new(client.clone(), metrics::METRICS_PATH)),
                }
            }
            Err(e) => {
                error!(error = %e, "cannot serve metrics over HTTPS");
                return ExitCode::FAILURE;
            }
        }
    } else {
        metrics::Access::Plain
    };
    let bound = metrics::bind_metrics(
        config.metrics_bind_address,
        metrics.clone(),
        access,
        stopped(),
    )
    .await;
    let Some(metrics_srv) = spawn_bound(bound, "metrics", "metrics") else {
        return ExitCode::FAILURE;
    };

    if config.pod_run_as_user.is_none() {
        config.pod_run_as_user = default_pod_run_as_user(&client).await;
    }

    // API server health, for /readyz: the apiserver's own /readyz (readable
    // by every client through system:public-info-viewer), which also fails
    // while etcd is down — unlike /version, which the apiserver answers
    // without its storage.
    {
        let client = client.clone();
        let readiness = readiness.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(APISERVER_PROBE_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let ok = match http::Request::get("/readyz").body(Vec::new()) {
                    Ok(req) => {
                        tokio::time::timeout(APISERVER_PROBE_TIMEOUT, client.request_text(req))
                            .await
                            .is_ok_and(|r| r.is_ok())
                    }
                    Err(_) => false,
                };
                readiness.set_apiserver_ok(ok);
            }
        });
    }

    let mut signal = tokio::spawn(shutdown_signal());
    let mut code = ExitCode::SUCCESS;
    let mut elector = config.leader_elect.then(|| {
        let ns = lease_namespace(&config, &client);
        let api: Api<Lease> = Api::namespaced(client.clone(), &ns);
        let timing = Timing {
            lease_duration: config.lease_duration,
            renew_deadline: config.renew_deadline,
            retry_period: config.retry_period,
        };
        info!(lease = %config.leader_election_id, namespace = %ns, "leader election on");
        LeaderElector::new(api, &config.leader_election_id, &identity(), timing)
    });

    // Stand by for the lease, lead until it is lost, stand by again: losing
    // the lease (e.g. during an API server outage longer than the renew
    // deadline) stops reconciling at once but does not restart the process,
    // so webhooks keep being served and the caches are rebuilt on takeover.
    loop {
        if let Some(le) = elector.as_mut() {
            // A standby replica is ready: it serves webhooks and waits for the lease.
            readiness.set_caches_synced(true);
            info!(identity = le.identity(), "waiting to become leader");
            tokio::select! {
                res = le.acquire() => {
                    if let Err(e) = res {
                        error!(error = %e, reason = e.reason(), "leader election failed");
                        code = ExitCode::FAILURE;
                        break;
                    }
                }
                _ = &mut signal => break,
                res = webhook_stopped(&mut webhook_task) => {
                    report_webhook_stop(res);
                    code = ExitCode::FAILURE;
                    break;
                }
            }
            readiness.set_caches_synced(false);
        }
        metrics.leader_acquired();

        let (leading_tx, leading_rx) = watch::channel(false);
        let leading_stopped = {
            let global = stopped();
            let mut rx = leading_rx;
            async move {
                tokio::select! {
                    _ = global => {}
                    _ = rx.wait_for(|s| *s) => {}
                }
            }
        };
        let controller = controller::run::run(
            client.clone(),
            config.clone(),
            metrics.clone(),
            readiness.clone(),
            leading_stopped,
        );
        tokio::pin!(controller);
        tokio::select! {
            _ = &mut controller => {
                break;
            }
            _ = &mut signal => {
                let _ = stop_tx.send(true);
                // Let in-flight reconciles finish (bounded).
                let _ = tokio::time::timeout(Duration::from_secs(10), &mut controller).await;
                break;
            }
            res = webhook_stopped(&mut webhook_task) => {
                report_webhook_stop(res);
                code = ExitCode::FAILURE;
                break;
            }
            lost = async {
                match elector.as_mut() {
                    Some(le) => le.hold().await,
                    None => std::future::pending().await,
                }
            } => {
                error!(error = %lost, reason = lost.reason(), "leadership lost; reconciling stopped, standing by for the lease");
                metrics.leader_lost();
                let _ = leading_tx.send(true);
                // Dropping the controller cancels in-flight reconciles at
                // their next await: another replica may already lead.
            }
        }
        readiness.set_caches_synced(false);
    }
    let _ = stop_tx.send(true);
    if let Some(le) = &elector
        && code == ExitCode::SUCCESS
        && let Err(e) = le.release().await
    {
        warn!(error = %e, "releasing the leader lease failed");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = health.await;
        let _ = metrics_srv.await;
        if let Some(w) = webhook_task {
            let _ = w.await;
        }
    })
    .await;
    code
}

/// Spawns the plain HTTP server that `bound` holds (logging `"{listening}
/// listening"`), or logs why the `name` address could not be bound.
fn spawn_bound(
    bound: Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), BindError>,
    listening: &str,
    name: &str,
) -> Option<tokio::task::JoinHandle<()>> {
    match bound {
        Ok((addr, fut)) => {
            info!(%addr, "{listening} listening");
            Some(tokio::spawn(fut))
        }
        Err(e) => {
            error!(error = %e, "cannot bind the {name} address");
            None
        }
    }
}

type WebhookTask = tokio::task::JoinHandle<Result<(), webhook::WebhookError>>;

/// Resolves when the webhook server task ends (never, when webhooks are off
/// or the task was already reported); takes the task so it is reported once.
async fn webhook_stopped(
    task: &mut Option<WebhookTask>,
) -> Result<Result<(), webhook::WebhookError>, tokio::task::JoinError> {
    match task.as_mut() {
        Some(h) => {
            let res = h.await;
            *task = None;
            res
        }
        None => std::future::pending().await,
    }
}

fn report_webhook_stop(res: Result<Result<(), webhook::WebhookError>, tokio::task::JoinError>) {
    match res {
        Ok(Ok(())) => error!("webhook server stopped unexpectedly"),
        Ok(Err(e)) => error!(error = %e, reason = e.reason(), "webhook server failed"),
        Err(e) => error!(error = %e, "webhook server task failed"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run { config: cli.config });
    match command {
        Command::Run { config } => {
            if let Err(e) = config.validate() {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
            init_tracing(config.log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(run_operator(config))
        }
        Command::Render {
            file,
            namespace,
            config,
        } => match render(&file, &namespace, &config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Validate { file } => match validate_file(&file) {
            Ok(0) => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Convert { file, to } => match convert_file(&file, to) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

//! Installing the operator from its catalog through a real OLM (the `olm` and
//! `catalog` operators of operator-lifecycle-manager) on a local cluster
//! with a real node, the way a cluster does it: the release's operator,
//! bundle and catalog images in the local registry, a CatalogSource with
//! `spec.image` (OLM's registry pod serving the catalog image on the real
//! node), the bundle unpacked by OLM's unpack Job from the bundle image,
//! then Subscription → InstallPlan → CSV `Succeeded`, with
//! OLM's webhook wiring, the operator Deployment's pods running the operator
//! image built here on the real node and serving conversion and admission
//! through the webhook Service, then uninstalling. Sequential on one
//! cluster: a package can only be installed once per OperatorGroup.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use locust_operator::api::LocustTest;
use olm_tests::metrics_client::{reader_token, scrape_at};
use olm_tests::olm::{self, Approval, OPERATORS_NAMESPACE, Olm, csv_name};
use olm_tests::registry::Registry;
use olm_tests::{Cluster, ClusterOptions, wait_for};
use olm_tests::{images, operator};

const INSTALL: Duration = Duration::from_secs(180);
const CATALOG: &str = "locust-catalog";

fn sample_v2(name: &str) -> Result<LocustTest> {
    let path = operator::workspace_root().join("operator/samples/locusttest-v2.yaml");
    let mut t: LocustTest = olm_tests::yaml::from_str(&std::fs::read_to_string(&path)?)?;
    t.metadata.name = Some(name.to_owned());
    t.metadata.namespace = None;
    // Pods really start here: the Locust image built here, not Docker Hub's.
    t.spec.image = images::locust_image();
    Ok(t)
}

/// Checks what OLM created for the CSV.
async fn check_install(olm: &Olm, csv: &kube::api::DynamicObject) -> Result<()> {
    let client = olm.client().clone();
    let ns = OPERATORS_NAMESPACE;

    // The CRD: OLM's conversion webhook, CA injected, pointing at the operator's Service.
    olm::wait_webhooks_wired(&client, INSTALL).await?;
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get(olm::CRD_NAME)
        .await?;
    let conversion = crd.spec.conversion.context("CRD without conversion")?;
    ensure!(
        conversion.strategy == "Webhook",
        "strategy {}",
        conversion.strategy
    );
    let cc = conversion
        .webhook
        .and_then(|w| w.client_config)
        .context("CRD conversion without clientConfig")?;
    ensure!(
        cc.ca_bundle.as_ref().is_some_and(|b| !b.0.is_empty()),
        "CRD conversion caBundle empty"
    );
    let svc = cc
        .service
        .context("conversion clientConfig without service")?;
    ensure!(
        svc.name == olm::WEBHOOK_SERVICE && svc.namespace == ns,
        "{svc:?}"
    );
    ensure!(svc.path.as_deref() == Some("/convert"), "{svc:?}");

    // The validating webhook with our rules and OLM's CA.
    let vwcs = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let hook = vwcs
        .items
        .iter()
        .flat_map(|c| c.webhooks.iter().flatten())
        .find(|w| w.name.starts_with("vlocusttest.locust.io"))
        .context("no ValidatingWebhookConfiguration for vlocusttest.locust.io")?;
    ensure!(hook.failure_policy.as_deref() == Some("Fail"));
    ensure!(
        hook.client_config
            .ca_bundle
            .as_ref()
            .is_some_and(|b| !b.0.is_empty()),
        "validating webhook caBundle empty"
    );
    let hsvc = hook
        .client_config
        .service
        .as_ref()
        .context("validating webhook without service")?;
    ensure!(hsvc.name == olm::WEBHOOK_SERVICE, "{hsvc:?}");
    ensure!(
        hsvc.path.as_deref() == Some("/validate-locust-io-v2-locusttest"),
        "{hsvc:?}"
    );
    let rules = hook.rules.clone().unwrap_or_default();
    ensure!(
        rules.iter().any(|r| {
            r.api_groups.as_deref() == Some(&["locust.io".to_owned()][..])
                && r.api_versions.as_deref() == Some(&["v2".to_owned()][..])
                && r.resources.as_deref() == Some(&["locusttests".to_owned()][..])
                && r.operations.as_ref().is_some_and(|o| {
                    o.contains(&"CREATE".to_owned()) && o.contains(&"UPDATE".to_owned())
                })
        }),
        "rules: {rules:?}"
    );

    // The Deployment: 2 replicas, Available through the real controllers and
    // the real node, OLM's certificate mounted where the operator reads it.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let dep = wait_for(INSTALL, Duration::from_millis(250), || {
        let deployments = deployments.clone();
        async move {
            let d = deployments.get(olm::DEPLOYMENT).await?;
            let available = d
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "Available" && c.status == "True")
                });
            let ready = d.status.as_ref().and_then(|s| s.ready_replicas) == Some(2);
            Ok((available && ready).then_some(d))
        }
    })
    .await
    .context("operator Deployment Available with 2 ready replicas")?;
    let spec = dep.spec.context("deployment spec")?;
    ensure!(spec.replicas == Some(2), "replicas {:?}", spec.replicas);
    let pod = spec.template.spec.context("pod spec")?;
    ensure!(pod.service_account_name.as_deref() == Some(olm::DEPLOYMENT));
    let volumes = pod.volumes.unwrap_or_default();
    let cert_volumes: Vec<String> = volumes
        .iter()
        .filter(|v| {
            v.secret
                .as_ref()
                .is_some_and(|s| s.secret_name.as_deref() == Some(olm::WEBHOOK_CERT_SECRET))
        })
        .map(|v| v.name.clone())
        .collect();
    ensure!(
        !cert_volumes.is_empty(),
        "no volume of Secret {}: {volumes:?}",
        olm::WEBHOOK_CERT_SECRET
    );
    let container = pod
        .containers
        .iter()
        .find(|c| c.name == "operator")
        .context("no operator container")?;
    let mounted = container.volume_mounts.iter().flatten().any(|m| {
        cert_volumes.contains(&m.name)
            && m.mount_path.trim_end_matches('/') == "/tmp/k8s-webhook-server/serving-certs"
    });
    ensure!(
        mounted,
        "OLM's certificate is not mounted at /tmp/k8s-webhook-server/serving-certs: {:?}",
        container.volume_mounts
    );
    let version = olm::current_version()?;
    let pods = olm::wait_operator_running(&client, &olm::operator_image(&version), INSTALL).await?;
    ensure!(pods.len() == 2);
    for pod in &pods {
        ensure!(
            pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
                == Some(olm_tests::cluster::REAL_NODE_NAME),
            "operator pod {} not on the real node",
            pod.name_any()
        );
    }

    // ServiceAccount and RBAC as the CSV describes.
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .get(olm::DEPLOYMENT)
        .await
        .context("operator ServiceAccount")?;
    let bound_to_sa = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| {
        subjects.iter().flatten().any(|s| {
            s.kind == "ServiceAccount"
                && s.name == olm::DEPLOYMENT
                && s.namespace.as_deref() == Some(ns)
        })
    };
    let crbs = Api::<ClusterRoleBinding>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    ensure!(
        crbs.items.iter().any(|b| bound_to_sa(&b.subjects)),
        "no ClusterRoleBinding for the operator's ServiceAccount"
    );
    let rbs = Api::<RoleBinding>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?;
    ensure!(
        rbs.items.iter().any(|b| bound_to_sa(&b.subjects)),
        "no RoleBinding for the operator's ServiceAccount"
    );
    ensure!(olm::field(csv, "/status/phase") == "Succeeded");
    Ok(())
}

/// The bundle's metrics Service and metrics-reader ClusterRole exist, and a
/// ServiceAccount bound to that role scrapes an operator pod's secure
/// `/metrics` (its self-signed certificate unverified, as the ServiceMonitor
/// does); without a token the pod answers 401.
async fn check_metrics(olm: &Olm) -> Result<()> {
    use k8s_openapi::api::core::v1::{Pod, Service};
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let client = olm.client().clone();
    let ns = OPERATORS_NAMESPACE;
    let svc = Api::<Service>::namespaced(client.clone(), ns)
        .get(&manifests_gen::monitoring::service_name())
        .await
        .context("the bundle's metrics Service")?;
    let selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
    let (key, value) = manifests_gen::deployment::SELECTOR_LABEL;
    ensure!(
        selector.get(key).map(String::as_str) == Some(value),
        "{selector:?}"
    );
    Api::<ClusterRole>::all(client.clone())
        .get(locust_operator::rbac::METRICS_READER_ROLE)
        .await
        .context("the bundle's metrics-reader ClusterRole")?;
    let token = reader_token(&client).await?;
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{key}={value}")))
        .await?;
    let ip = pods
        .items
        .iter()
        .find_map(|p| p.status.as_ref()?.pod_ip.as_deref()?.parse().ok())
        .context("no operator pod IP")?;
    let port = locust_operator::config::OperatorConfig::default()
        .metrics_bind_address
        .port();
    let addr = std::net::SocketAddr::new(ip, port);
    let (code, body) = scrape_at(olm.net(), addr, Some(&token), None).await?;
    ensure!(
        code == 200 && body.contains("locust_operator_reconciles_total"),
        "scraping {addr} with the reader's token: {code} {body:.200}"
    );
    let (code, _) = scrape_at(olm.net(), addr, None, None).await?;
    ensure!(code == 401, "scraping {addr} without a token: {code}");
    Ok(())
}

/// `bundle`: the bundle image as the catalog names it (by digest).
async fn install_channel(olm: &Olm, channel: &str, bundle: &str, full_checks: bool) -> Result<()> {
    let version = olm::current_version()?;
    let sub = format!("locust-{channel}");
    olm.subscribe(&sub, CATALOG, channel, Approval::Automatic, None)
        .await?;
    let csv = olm
        .wait_installed(&sub, &csv_name(&version), INSTALL)
        .await?;
    let plan_name = {
        let s = olm::subscriptions(olm.client(), OPERATORS_NAMESPACE)
            .get(&sub)
            .await?;
        olm::field(&s, "/status/installPlanRef/name").to_owned()
    };
    olm.wait_plan_complete(&plan_name, INSTALL).await?;
    // The bundle came from its image, pinned by digest in the catalog as a
    // release pins it: OLM's unpack Job pulled exactly that digest.
    olm::ensure_unpacked(olm.client(), olm::OLM_NAMESPACE, bundle).await?;
    if let Err(e) = check_install(olm, &csv).await {
        return Err(olm.fail(e).await);
    }
    if !full_checks {
        return olm.uninstall(&sub).await;
    }
    if let Err(e) = check_metrics(olm).await {
        return Err(olm.fail(e).await);
    }

    // A user's LocustTest, admitted by the operator pods' webhook and
    // reconciled by their leader.
    operator::create_namespace(olm.client(), "team-a", &[]).await?;
    let tests: Api<LocustTest> = Api::namespaced(olm.client().clone(), "team-a");
    olm::create_when_admitted(&tests, &sample_v2("kept")?, OPERATORS_NAMESPACE, INSTALL).await?;
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(olm.client().clone(), "team-a");
    wait_for(INSTALL, Duration::from_millis(250), || {
        let services = services.clone();
        let name = locust_operator::resources::names::service_name("kept");
        async move { Ok(services.get_opt(&name).await?.map(drop)) }
    })
    .await
    .context("the operator pods' leader reconciles the LocustTest (master Service)")?;
    let mut invalid = sample_v2("invalid")?;
    invalid.spec.worker.replicas = 0;
    ensure!(
        tests
            .create(&PostParams::default(), &invalid)
            .await
            .is_err(),
        "the validating webhook admitted 0 workers"
    );

    olm.uninstall(&sub).await?;
    // The CRD and users' LocustTests stay.
    Api::<CustomResourceDefinition>::all(olm.client().clone())
        .get(olm::CRD_NAME)
        .await
        .context("the CRD must stay after uninstall")?;
    let kept = tests
        .get("kept")
        .await
        .context("LocustTest kept after uninstall")?;
    ensure!(kept.name_any() == "kept");
    let deployments: Api<Deployment> = Api::namespaced(olm.client().clone(), OPERATORS_NAMESPACE);
    ensure!(deployments.get_opt(olm::DEPLOYMENT).await?.is_none());
    Ok(())
}

/// Alpha (installed and uninstalled), then stable with every check, a
/// user's LocustTest and an uninstall that keeps the CRD and the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_from_catalog_alpha_then_stable() -> Result<()> {
    let Some((tools, images)) =
        images::tools_and_images_or_skip("install_from_catalog_alpha_then_stable")
    else {
        return Ok(());
    };
    let cluster =
        Cluster::start(ClusterOptions::real_node_from(tools.clone(), "olm-install")).await?;
    let registry = Registry::start(&cluster, &tools).await?;
    // What the release publishes, from the committed release list.
    let version: semver::Version = olm::current_version()?.parse()?;
    let published = registry.publish_release(
        &tools,
        &images,
        &manifests_gen::Options::new(operator::workspace_root()),
        std::slice::from_ref(&version),
    )?;
    let bundle = published.bundle_by_digest(&version)?;
    let mut olm = Olm::start(&cluster, &tools).await?;
    olm.catalog_from_image(CATALOG, &published.catalog).await?;
    let result = async {
        // Alpha first: once LocustTests exist, reinstalling needs the
        // conversion webhook (OLM lists them in every served version).
        install_channel(&olm, "alpha", &bundle, false).await?;
        install_channel(&olm, "stable", &bundle, true).await
    }
    .await;
    if result.is_err() {
        cluster.mark_failed();
    }
    olm.ensure_running()?;
    result
}

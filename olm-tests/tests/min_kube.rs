//! The CSV's `minKubeVersion` is honest: on the oldest Kubernetes it names
//! (the control plane `olm-tests/tools/kube-min` pins, kwok nodes), the
//! operator installs as the bundle installs it, the apiserver keeps every CEL
//! rule of the CRD with its `reason` and `fieldPath`, the invalid-spec corpus
//! is rejected (and the valid one accepted) with the same messages as on the
//! current release, a v1 test is converted, and a LocustTest runs to
//! `Succeeded`.
//!
//! Why this release and not an older one: docs/install.md ("Supported
//! Kubernetes versions") records what the previous minor does with the CRD.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::{Client, ResourceExt};
use locust_operator::api::{LocustTest, Phase, condition_type as ct};
use olm_tests::checks::{sample, wait_phase};
use olm_tests::corpus::check_corpus;
use olm_tests::operator::{self, LocalWebhookOperator};
use olm_tests::{Cluster, ClusterOptions, ControlPlane, e2e};

const T: Duration = Duration::from_secs(90);
const NS: &str = "min-kube";

/// `major.minor` of a version such as `1.28.0` or `v1.28.15`.
fn minor_of(version: &str) -> Result<(u32, u32)> {
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next().context("no major")?.parse()?;
    let minor = parts
        .next()
        .context("no minor")?
        .trim_end_matches('+')
        .parse()?;
    Ok((major, minor))
}

/// How often `needle` occurs in the JSON of a CRD's spec.
fn occurrences(crd: &CustomResourceDefinition, needle: &str) -> Result<usize> {
    Ok(serde_json::to_string(&crd.spec)?.matches(needle).count())
}

/// The bundle's CRD, served by the local webhook, is stored with every CEL
/// rule, `reason` and `fieldPath` it has (an apiserver that does not know a
/// field drops it silently).
async fn install_bundle_crd(client: &Client, webhook: &LocalWebhookOperator) -> Result<String> {
    let bundle = operator::bundle_crd()?;
    let crd = operator::with_local_conversion_webhook(bundle.clone(), webhook.port, &webhook.ca);
    operator::install_crd(client, &crd).await?;
    let stored = Api::<CustomResourceDefinition>::all(client.clone())
        .get("locusttests.locust.io")
        .await?;
    let mut kept = Vec::new();
    for needle in [
        "\"x-kubernetes-validations\"",
        "\"rule\"",
        "\"reason\"",
        "\"fieldPath\"",
        "\"messageExpression\"",
    ] {
        let (want, got) = (occurrences(&bundle, needle)?, occurrences(&stored, needle)?);
        ensure!(
            want == got,
            "the apiserver stored {got} of the bundle CRD's {want} {needle}"
        );
        kept.push(format!("{want} {}", needle.trim_matches('"')));
    }
    Ok(kept.join(", "))
}

/// The sample test runs (kwok pods) and succeeds when its master exits 0;
/// the v1 sample is converted by the webhook and read back as v2.
async fn run_one_test(cluster: &Cluster) -> Result<()> {
    let client = cluster.admin_client();
    operator::create_namespace(
        &client,
        NS,
        &[
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/enforce-version", "latest"),
        ],
    )
    .await?;
    let tests: Api<LocustTest> = Api::namespaced(client.clone(), NS);
    tests
        .create(&PostParams::default(), &sample("demo")?)
        .await?;
    wait_phase(&tests, "demo", Phase::Running, T).await?;
    let masters = cluster
        .wait_for_running_pods(NS, "job-name=demo-master", 1, T)
        .await?;
    cluster
        .wait_for_running_pods(NS, "job-name=demo-worker", 2, T)
        .await?;
    cluster.complete_pod(NS, &masters[0].name_any(), 0).await?;
    let done = wait_phase(&tests, "demo", Phase::Succeeded, T).await?;
    let completed = done
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == ct::TEST_COMPLETED))
        .context("no TestCompleted condition")?;
    ensure!(
        completed.status == "True" && completed.reason == "TestSucceeded",
        "TestCompleted: {completed:?}"
    );

    // v1 in, v2 out, through the conversion webhook.
    let v1: DynamicObject = olm_tests::yaml::from_str(&std::fs::read_to_string(
        operator::workspace_root().join("operator/samples/locusttest-v1.yaml"),
    )?)?;
    let v1_api = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        NS,
        &ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "locust.io",
            "v1",
            "LocustTest",
        )),
    );
    v1_api.create(&PostParams::default(), &v1).await?;
    let as_v2 = tests.get(&v1.name_any()).await?;
    ensure!(
        as_v2.spec.worker.replicas == 2,
        "v1 workerReplicas converted: {:?}",
        as_v2.spec.worker
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oldest_supported_kubernetes() -> Result<()> {
    let options = ClusterOptions {
        control_plane: ControlPlane::OldestSupported,
        ..ClusterOptions::named("min-kube")
    };
    let Some(cluster) = e2e::kwok_cluster_with("oldest_supported_kubernetes", options).await?
    else {
        return Ok(());
    };
    let client = cluster.admin_client();

    // The control plane is the release the CSV names.
    let served = client.apiserver_version().await?;
    let claimed = manifests_gen::csv::MIN_KUBE_VERSION;
    ensure!(
        minor_of(&served.git_version)? == minor_of(claimed)?,
        "the oldest control plane is {} but the CSV's minKubeVersion is {claimed}",
        served.git_version
    );

    let webhook = operator::start_local_webhook_operator(&cluster, "min-kube").await?;
    let result = async {
        let corpus = check_corpus(&cluster, &webhook).await?;
        let kept = install_bundle_crd(&client, &webhook).await?;
        run_one_test(&cluster).await?;
        eprintln!(
            "min kube: apiserver {} (minKubeVersion {claimed}); CRD stored with {kept}; corpus: {corpus}; \
             demo Succeeded, v1 sample converted",
            served.git_version
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    e2e::with_operator_log(&cluster, &webhook.process, 60, result)
}

#[test]
fn minor_of_parses_both_spellings() {
    assert_eq!(minor_of("1.28.0").unwrap(), (1, 28));
    assert_eq!(minor_of("v1.28.15").unwrap(), (1, 28));
    assert!(minor_of("v1").is_err());
}

//! Self-managed webhook certificates through a real kube-apiserver: the CRD
//! (conversion webhook by URL) and the ValidatingWebhookConfiguration are
//! installed without any `caBundle`; the operator, under exactly its RBAC
//! plus `rbac::self_managed_cert_rules`, makes the CA and serving
//! certificate, stores them in a Secret and fills in both caBundles. Then
//! v1 → v2 conversion and validation work; a second replica and a restart
//! adopt the Secret without writing anything; a deleted Secret is made again
//! and the caBundles follow.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use locust_operator::api::{CRD_NAME, v1, v2};
use locust_operator::conversion;
use locust_operator::crd::{ConversionTarget, crd_without_cel, set_webhook_conversion};
use locust_operator::rbac;
use locust_operator::webhook::certs::{CA_CERT_KEY, DEFAULT_SECRET_NAME};
use olm_tests::cluster::Cluster;
use olm_tests::operator::{self, OPERATOR_NAMESPACE, OperatorProcess, SERVICE_ACCOUNT};
use olm_tests::{e2e, wait_for};

const NS: &str = "certs";
const CHECK_INTERVAL: &str = "1s";

/// Replica `tag` of the operator on webhook port `port` with certificate
/// directory `dir`, once ready.
async fn replica(
    cluster: &Cluster,
    kubeconfig: &Path,
    tag: &str,
    port: u16,
    dir: &Path,
) -> Result<OperatorProcess> {
    let op = OperatorProcess::spawn(cluster, kubeconfig, tag, &args(port, dir))?;
    op.wait_ready(Duration::from_secs(60)).await?;
    Ok(op)
}

fn args(port: u16, cert_dir: &Path) -> Vec<String> {
    vec![
        "--leader-elect=false".into(),
        "--webhook-bind-address=127.0.0.1".into(),
        format!("--webhook-port={port}"),
        format!("--webhook-cert-dir={}", cert_dir.display()),
        "--webhook-cert-mode=self-managed".into(),
        "--webhook-cert-extra-names=127.0.0.1,localhost".into(),
        format!("--webhook-cert-check-interval={CHECK_INTERVAL}"),
    ]
}

/// The objects the operator may write, by resourceVersion.
#[derive(Debug, PartialEq, Eq)]
struct Versions {
    secret: Option<String>,
    crd: Option<String>,
    vwc: Option<String>,
}

struct Apis {
    secrets: Api<Secret>,
    crds: Api<CustomResourceDefinition>,
    vwcs: Api<ValidatingWebhookConfiguration>,
    v1: Api<v1::LocustTest>,
    v2: Api<v2::LocustTest>,
}

impl Apis {
    /// After three checks, `op` has issued and patched nothing and no object
    /// changed from `before`.
    async fn wrote_nothing(
        &self,
        op: &OperatorProcess,
        before: &Versions,
        who: &str,
    ) -> Result<()> {
        let_it_check(3).await;
        ensure!(issued(op) == 0 && patched(op) == 0, "{who} wrote nothing");
        ensure!(
            self.versions().await? == *before,
            "no object changed after {who} started"
        );
        Ok(())
    }

    async fn versions(&self) -> Result<Versions> {
        Ok(Versions {
            secret: self
                .secrets
                .get(DEFAULT_SECRET_NAME)
                .await?
                .resource_version(),
            crd: self.crds.get(CRD_NAME).await?.resource_version(),
            vwc: self
                .vwcs
                .get(operator::VALIDATING_WEBHOOK)
                .await?
                .resource_version(),
        })
    }

    /// The Secret's `ca.crt` once it exists (and differs from `not`).
    async fn wait_secret(&self, not: Option<&[u8]>) -> Result<Vec<u8>> {
        wait_for(
            Duration::from_secs(60),
            Duration::from_millis(250),
            || async {
                let Some(secret) = self.secrets.get_opt(DEFAULT_SECRET_NAME).await? else {
                    return Ok(None);
                };
                let ca = secret
                    .data
                    .and_then(|d| d.get(CA_CERT_KEY).map(|b| b.0.clone()))
                    .filter(|ca| !ca.is_empty() && Some(ca.as_slice()) != not);
                Ok(ca)
            },
        )
        .await
        .context("waiting for the certificate Secret")
    }

    /// Waits until the CRD's conversion caBundle and every webhook's
    /// caBundle are `ca`.
    async fn wait_bundles(&self, ca: &[u8]) -> Result<()> {
        wait_for(
            Duration::from_secs(30),
            Duration::from_millis(250),
            || async {
                let crd = self.crds.get(CRD_NAME).await?;
                let crd_ca = crd
                    .spec
                    .conversion
                    .and_then(|c| c.webhook)
                    .and_then(|w| w.client_config)
                    .and_then(|c| c.ca_bundle)
                    .map(|b| b.0);
                let vwc = self.vwcs.get(operator::VALIDATING_WEBHOOK).await?;
                let hooks = vwc.webhooks.unwrap_or_default();
                let vwc_ok = !hooks.is_empty()
                    && hooks.iter().all(|h| {
                        h.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) == Some(ca)
                    });
                Ok((crd_ca.as_deref() == Some(ca) && vwc_ok).then_some(()))
            },
        )
        .await
        .context("waiting for both caBundles to be the Secret's CA")
    }

    /// Creates the v1 sample as `name` (retried: the apiserver may still
    /// hold the previous caBundle for a moment) and checks its v2 view.
    async fn v1_read_as_v2(&self, name: &str) -> Result<()> {
        let path = operator::workspace_root().join("operator/samples/locusttest-v1.yaml");
        let mut sample: v1::LocustTest =
            olm_tests::yaml::from_str(&std::fs::read_to_string(path)?)?;
        sample.metadata.name = Some(name.into());
        let created = wait_for(
            Duration::from_secs(30),
            Duration::from_millis(250),
            || async { Ok(Some(self.v1.create(&PostParams::default(), &sample).await?)) },
        )
        .await
        .with_context(|| format!("creating v1 test {name}"))?;
        let as_v2 = self.v2.get(name).await?;
        let expected = conversion::v1_to_v2(&created).object;
        ensure!(
            as_v2.spec == expected.spec,
            "v1 {name} read as v2: {:#?}",
            as_v2.spec
        );
        Ok(())
    }

    /// An invalid v2 test (empty image) is rejected by the webhook (the
    /// CRD has no CEL rules) with the rule's message.
    async fn invalid_rejected(&self) -> Result<()> {
        let message = locust_operator::validation::RULES
            .iter()
            .find(|r| r.id == "image-required")
            .map(|r| r.message)
            .context("no rule image-required")?;
        let path = operator::workspace_root().join("operator/samples/locusttest-v2.yaml");
        let mut t: v2::LocustTest = olm_tests::yaml::from_str(&std::fs::read_to_string(path)?)?;
        t.metadata.name = Some("bad-image".into());
        t.spec.image = String::new();
        wait_for(
            Duration::from_secs(30),
            Duration::from_millis(250),
            || async {
                match self.v2.create(&PostParams::default(), &t).await {
                    Ok(_) => {
                        let _ = self.v2.delete("bad-image", &DeleteParams::default()).await;
                        bail!("an empty image was accepted")
                    }
                    Err(kube::Error::Api(s)) if s.message.contains(message) => Ok(Some(())),
                    Err(e) => Err(e.into()),
                }
            },
        )
        .await
        .context("the webhook rejects an invalid v2 test")
    }
}

fn issued(op: &OperatorProcess) -> usize {
    op.log().matches("webhook certificate issued").count()
}

fn patched(op: &OperatorProcess) -> usize {
    op.log().matches("webhook caBundle updated").count()
}

fn modified(path: &Path) -> Result<SystemTime> {
    Ok(std::fs::metadata(path)?.modified()?)
}

/// Waits until `op` has run at least `checks` certificate checks after now
/// (the check interval is [`CHECK_INTERVAL`]).
async fn let_it_check(checks: u64) {
    tokio::time::sleep(Duration::from_secs(checks) + Duration::from_millis(500)).await;
}

async fn scenario(
    cluster: &Cluster,
    kubeconfig: &Path,
    apis: &Apis,
    ops: &mut Vec<OperatorProcess>,
) -> Result<()> {
    let port_a = operator::free_port()?;
    let dir_a = cluster.dir().join("certs-a");
    // The CRD converts through the webhook (by URL, as envtest does) with no
    // caBundle; no CEL rules, so only the webhook can reject.
    let mut crd = crd_without_cel();
    set_webhook_conversion(
        &mut crd,
        ConversionTarget::Url(format!("https://127.0.0.1:{port_a}/convert")),
        None,
    );
    let client = cluster.admin_client();
    operator::install_crd(&client, &crd).await?;
    operator::install_local_validating_webhook(&client, port_a, "").await?;
    ensure!(
        apis.crds
            .get(CRD_NAME)
            .await?
            .spec
            .conversion
            .and_then(|c| c.webhook)
            .and_then(|w| w.client_config)
            .and_then(|c| c.ca_bundle)
            .is_none(),
        "the CRD starts without a caBundle"
    );

    // First replica: the Secret appears, both caBundles follow.
    ops.push(OperatorProcess::spawn(
        cluster,
        kubeconfig,
        "a",
        &args(port_a, &dir_a),
    )?);
    let ca = apis.wait_secret(None).await?;
    apis.wait_bundles(&ca).await?;
    ops[0].wait_ready(Duration::from_secs(60)).await?;
    ensure!(issued(&ops[0]) == 1, "one certificate issued");
    let secret = apis.secrets.get(DEFAULT_SECRET_NAME).await?;
    ensure!(
        secret.type_.as_deref() == Some("kubernetes.io/tls"),
        "a TLS Secret"
    );
    let tls_crt = secret
        .data
        .as_ref()
        .and_then(|d| d.get("tls.crt"))
        .map(|b| b.0.clone())
        .context("tls.crt in the Secret")?;
    ensure!(
        std::fs::read(dir_a.join("tls.crt"))? == tls_crt,
        "replica a serves the Secret's certificate"
    );

    // Conversion and validation work through the self-managed CA.
    apis.v1_read_as_v2("converted").await?;
    apis.invalid_rejected().await?;

    // A second replica adopts the Secret: no new certificate, no write.
    let before = apis.versions().await?;
    let dir_b = cluster.dir().join("certs-b");
    ops.push(replica(cluster, kubeconfig, "b", operator::free_port()?, &dir_b).await?);
    apis.wrote_nothing(&ops[1], &before, "a second replica")
        .await?;
    ensure!(
        std::fs::read(dir_b.join("tls.crt"))? == tls_crt,
        "replica b serves the same certificate"
    );
    ops[1].terminate();

    // A restart of replica a, everything current: no writes at all.
    ops[0].terminate();
    let crt_written = modified(&dir_a.join("tls.crt"))?;
    ops.push(replica(cluster, kubeconfig, "a2", port_a, &dir_a).await?);
    apis.wrote_nothing(&ops[2], &before, "the restarted replica")
        .await?;
    ensure!(
        modified(&dir_a.join("tls.crt"))? == crt_written,
        "the certificate file was not rewritten"
    );

    // The Secret deleted while two replicas run: one new CA and certificate
    // (whichever replica wins; the other adopts it), the caBundles follow,
    // both replicas serve it, and conversion and validation work with it.
    ops.push(replica(cluster, kubeconfig, "b2", operator::free_port()?, &dir_b).await?);
    apis.secrets
        .delete(DEFAULT_SECRET_NAME, &DeleteParams::default())
        .await?;
    let deleted = tokio::time::Instant::now();
    let new_ca = apis.wait_secret(Some(&ca)).await?;
    apis.wait_bundles(&new_ca).await?;
    let took = deleted.elapsed();
    ensure!(
        took < Duration::from_secs(30),
        "regenerated and repatched in {took:?}"
    );
    let new_crt = apis
        .secrets
        .get(DEFAULT_SECRET_NAME)
        .await?
        .data
        .and_then(|d| d.get("tls.crt").map(|b| b.0.clone()))
        .context("tls.crt in the new Secret")?;
    wait_for(
        Duration::from_secs(20),
        Duration::from_millis(250),
        || async {
            let a = std::fs::read(dir_a.join("tls.crt"))?;
            let b = std::fs::read(dir_b.join("tls.crt"))?;
            Ok((a == new_crt && b == new_crt).then_some(()))
        },
    )
    .await
    .context("both replicas serve the new certificate")?;
    let_it_check(2).await;
    ensure!(
        issued(&ops[2]) + issued(&ops[3]) == 1,
        "one new certificate issued between the two replicas ({} + {})",
        issued(&ops[2]),
        issued(&ops[3])
    );
    ensure!(
        apis.secrets
            .get(DEFAULT_SECRET_NAME)
            .await?
            .data
            .and_then(|d| d.get("tls.crt").map(|b| b.0.clone()))
            == Some(new_crt),
        "the Secret stayed the one both replicas adopted"
    );
    apis.v1_read_as_v2("converted-again").await?;
    apis.invalid_rejected().await?;

    // No key material in any log (the operators log at debug level).
    let data = apis
        .secrets
        .get(DEFAULT_SECRET_NAME)
        .await?
        .data
        .unwrap_or_default();
    for key in ["tls.key", "ca.key"] {
        let pem = String::from_utf8(data.get(key).map(|b| b.0.clone()).unwrap_or_default())?;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        ensure!(body.len() > 40, "{key} has a body");
        for op in ops.iter() {
            let log = op.log();
            ensure!(
                !log.contains("PRIVATE KEY") && !log.contains(&body[..40]),
                "{} logs key material",
                op.log_path.display()
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_managed_certificates() -> Result<()> {
    let Some(cluster) = e2e::kwok_cluster("self_managed_certificates", "e2e-selfcerts").await?
    else {
        return Ok(());
    };
    let client = cluster.admin_client();
    let extra = rbac::self_managed_cert_rules(DEFAULT_SECRET_NAME, operator::VALIDATING_WEBHOOK);
    operator::install_rbac_as(
        &client,
        SERVICE_ACCOUNT,
        [rbac::cluster_rules(), extra.cluster].concat(),
        [rbac::namespaced_rules(), extra.namespaced].concat(),
    )
    .await?;
    let kubeconfig = operator::operator_kubeconfig(&cluster, SERVICE_ACCOUNT).await?;
    operator::create_namespace(&client, NS, &[]).await?;
    let apis = Apis {
        secrets: Api::namespaced(client.clone(), OPERATOR_NAMESPACE),
        crds: Api::all(client.clone()),
        vwcs: Api::all(client.clone()),
        v1: Api::namespaced(client.clone(), NS),
        v2: Api::namespaced(client.clone(), NS),
    };
    let mut ops = Vec::new();
    let result = scenario(&cluster, &kubeconfig, &apis, &mut ops).await;
    let result = match result {
        Ok(()) => Ok(()),
        Err(e) => {
            cluster.mark_failed();
            let logs: Vec<String> = ops
                .iter()
                .map(|op| format!("--- {} ---\n{}", op.log_path.display(), op.log_tail(30)))
                .collect();
            Err(e.context(logs.join("\n")))
        }
    };
    for op in &mut ops {
        op.terminate();
    }
    result
}

//! The secure `/metrics` on a real API server: HTTPS, and only a bearer
//! token whose user may `get /metrics` reads it (TokenReview and
//! SubjectAccessReview, the RBAC of `locust-k8s-operator-metrics-reader`).
//! Once with the operator's self-signed certificate (the default; the
//! scraper skips verification as the shipped ServiceMonitor does), once with
//! `--metrics-cert-dir` (the scraper verifies the server against its CA).

use std::time::Duration;

use anyhow::{Result, ensure};
use olm_tests::e2e;
use olm_tests::metrics_client::{reader_token, scrape};
use olm_tests::operator::{self, OPERATOR_NAMESPACE, OperatorProcess};

const TOKEN_TTL: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_metrics_need_a_token_allowed_to_read_them() -> Result<()> {
    let Some((cluster, kubeconfig)) = e2e::operator_cluster(
        "secure_metrics_need_a_token_allowed_to_read_them",
        "metrics",
    )
    .await?
    else {
        return Ok(());
    };
    let client = cluster.admin_client();
    // A scraper bound to the metrics-reader rules, and one bound to nothing.
    let reader = reader_token(&client).await?;
    operator::install_rbac_as(&client, "nobody", vec![], vec![]).await?;
    let nobody = cluster
        .service_account_token(OPERATOR_NAMESPACE, "nobody", TOKEN_TTL)
        .await?;

    let cert_dir = cluster.dir().join("metrics-certs");
    let ca = operator::write_webhook_cert(&cert_dir)?;
    let base = [
        "--leader-elect=false".to_owned(),
        "--disable-webhooks".to_owned(),
    ];
    let self_signed = OperatorProcess::spawn(
        &cluster,
        &kubeconfig,
        "self-signed",
        &[&base[..], &["--metrics-secure=true".to_owned()]].concat(),
    )?;
    let with_cert = OperatorProcess::spawn(
        &cluster,
        &kubeconfig,
        "cert-dir",
        &[
            &base[..],
            &[
                "--metrics-secure=true".to_owned(),
                format!("--metrics-cert-dir={}", cert_dir.display()),
            ],
        ]
        .concat(),
    )?;
    for op in [&self_signed, &with_cert] {
        op.wait_ready(Duration::from_secs(60)).await?;
    }

    let mut report = Vec::new();
    for (what, op, ca) in [
        ("self-signed", &self_signed, None),
        ("--metrics-cert-dir", &with_cert, Some(ca.as_str())),
    ] {
        let (net, port) = (op.net(), op.metrics_port);
        let (code, body) = scrape(net, port, None, ca).await?;
        ensure!(code == 401, "{what}: no token: {code} {body}");
        let (code, body) = scrape(net, port, Some("not-a-token"), ca).await?;
        ensure!(code == 401, "{what}: a bad token: {code} {body}");
        let (code, body) = scrape(net, port, Some(&nobody), ca).await?;
        ensure!(
            code == 403 && body.contains("system:serviceaccount:locust-system:nobody"),
            "{what}: a user without the role: {code} {body}"
        );
        let (code, body) = scrape(net, port, Some(&reader), ca).await?;
        ensure!(
            code == 200 && body.contains("locust_operator_reconciles_total"),
            "{what}: the metrics reader: {code} {body:.300}"
        );
        // The decision is cached: the same token again is answered alike.
        let (code, _) = scrape(net, port, Some(&reader), ca).await?;
        ensure!(code == 200, "{what}: the reader again: {code}");
        report.push(format!("{what}: 401/401/403/200"));
    }
    // Plain HTTP is refused on the HTTPS port, and the CA of the cert-dir
    // pair does not vouch for the self-signed one.
    ensure!(
        self_signed.metrics().await.is_err()
            || !self_signed
                .metrics()
                .await
                .unwrap_or_default()
                .contains("locust_operator"),
        "plain HTTP read the secure metrics"
    );
    ensure!(
        scrape(
            self_signed.net(),
            self_signed.metrics_port,
            Some(&reader),
            Some(&ca)
        )
        .await
        .is_err(),
        "the self-signed certificate passed verification against another CA"
    );
    eprintln!("secure metrics: {}", report.join(", "));
    Ok(())
}

//! A scraper of the operator's secure `/metrics` for tests: HTTPS in the
//! cluster's network namespace, with a bearer token, verifying the server
//! against a CA, or not at all (as a ServiceMonitor with `insecureSkipVerify`
//! does for the operator's self-signed certificate).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::cluster::ClusterNet;
use crate::operator::{self, OPERATOR_NAMESPACE};

/// The ServiceAccount [`reader_token`] makes.
pub const READER: &str = "prometheus";

/// A token of ServiceAccount `prometheus` (in the operator's namespace),
/// bound to the operator's metrics-reader rules: what Prometheus scrapes with.
pub async fn reader_token(client: &Client) -> Result<String> {
    operator::install_rbac_as(
        client,
        READER,
        locust_operator::rbac::metrics_reader_rules(),
        vec![],
    )
    .await?;
    Api::<ServiceAccount>::namespaced(client.clone(), OPERATOR_NAMESPACE)
        .create_token_request(READER, &PostParams::default(), &TokenRequest::default())
        .await?
        .status
        .map(|s| s.token)
        .context("the TokenRequest returned no token")
}

/// Accepts any server certificate, still checking the handshake signatures.
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config(ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let config = match ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(cert.context("parsing the CA certificate")?)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerify(provider)))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `GET /metrics` over HTTPS on 127.0.0.1:`port` in `net`, with `token` as
/// bearer token (if any), verifying the server for `localhost` against
/// `ca_pem` (or not at all): the status code and body.
pub async fn scrape(
    net: &ClusterNet,
    port: u16,
    token: Option<&str>,
    ca_pem: Option<&str>,
) -> Result<(u16, String)> {
    scrape_at(net, SocketAddr::from(([127, 0, 0, 1], port)), token, ca_pem).await
}

/// [`scrape`] at `addr` (a pod's IP, in the cluster's network namespace).
pub async fn scrape_at(
    net: &ClusterNet,
    addr: SocketAddr,
    token: Option<&str>,
    ca_pem: Option<&str>,
) -> Result<(u16, String)> {
    let tls = client_config(ca_pem)?;
    tokio::time::timeout(Duration::from_secs(10), async {
        let tcp = net.connect(addr).await?;
        let name = ServerName::try_from("localhost")?;
        let mut stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {addr}"))?;
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let req = format!("GET /metrics HTTP/1.0\r\nHost: localhost\r\n{auth}\r\n");
        stream.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        // A TLS peer may close without close_notify after HTTP/1.0.
        let _ = stream.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .with_context(|| format!("no HTTP status line in {text:?}"))?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((code, body))
    })
    .await
    .context("GET https /metrics timed out")?
}

//! The TLS side of the secure metrics endpoint: the certificate pair of
//! `--metrics-cert-dir` (`tls.crt`, `tls.key`, reloaded when it is renewed,
//! like the webhook's), or, without one, a self-signed certificate made in
//! memory at start-up (what controller-runtime does). Scrapers then skip the
//! server's verification (`insecureSkipVerify`, as the shipped
//! ServiceMonitor does) while the API server still checks who they are;
//! give a certificate from cert-manager or the OpenShift service CA to have
//! them verify it.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;

use crate::webhook::tls::{self, CertError, CertPaths, CertReloader, ReloadingCertResolver};

/// Names the self-signed certificate is made for.
pub const SELF_SIGNED_NAMES: [&str; 2] = ["localhost", "locust-k8s-operator-metrics"];

/// Why the metrics endpoint has no certificate.
#[derive(Debug, thiserror::Error)]
pub enum MetricsTlsError {
    #[error("metrics certificate: {0}")]
    Cert(#[from] CertError),
    #[error("generating the self-signed metrics certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The server configuration, and the reloader to run when the pair comes
/// from a directory.
pub async fn server_config(
    cert_dir: Option<&Path>,
) -> Result<(Arc<ServerConfig>, Option<CertReloader>), MetricsTlsError> {
    let provider = tls::crypto_provider();
    match cert_dir {
        Some(dir) => {
            let paths = CertPaths::in_dir(dir);
            let loaded = tls::load(&paths, &provider).await?;
            let resolver = Arc::new(ReloadingCertResolver::new(loaded.key));
            let config = tls::server_config(Arc::clone(&resolver))?;
            let reloader = CertReloader::new(paths, resolver, loaded.fingerprint);
            Ok((Arc::new(config), Some(reloader)))
        }
        None => {
            let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| (*n).to_owned()).collect();
            let generated = rcgen::generate_simple_self_signed(names)?;
            let paths = CertPaths::in_dir(Path::new("(self-signed)"));
            let key = tls::parse_pair(
                &paths,
                generated.cert.pem().as_bytes(),
                generated.signing_key.serialize_pem().as_bytes(),
                &provider,
            )?;
            let resolver = Arc::new(ReloadingCertResolver::new(Arc::new(key)));
            Ok((Arc::new(tls::server_config(resolver)?), None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_self_signed_certificate_is_made_without_a_directory() {
        let (config, reloader) = server_config(None).await.expect("self-signed");
        assert!(reloader.is_none());
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[tokio::test]
    async fn a_missing_directory_is_an_error_naming_it() {
        let err = server_config(Some(Path::new("/nonexistent/metrics-certs")))
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/nonexistent/metrics-certs"), "{err}");
    }
}

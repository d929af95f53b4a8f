//! Writing self-contained kubeconfig files (credentials embedded).

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::json;

use super::pki::write_file;

/// How a kubeconfig user authenticates.
pub(crate) enum Credentials<'a> {
    /// TLS client certificate and key (PEM).
    ClientCertificate { cert_pem: &'a str, key_pem: &'a str },
    /// Bearer token.
    Token(&'a str),
}

/// Renders a kubeconfig with one cluster, user and context (all called
/// `name`), pointing at `server` and trusting `ca_pem`.
pub(crate) fn render(
    name: &str,
    server: &str,
    ca_pem: &str,
    credentials: &Credentials<'_>,
) -> Result<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let user = match credentials {
        Credentials::ClientCertificate { cert_pem, key_pem } => json!({
            "client-certificate-data": b64(cert_pem),
            "client-key-data": b64(key_pem),
        }),
        Credentials::Token(token) => json!({ "token": token }),
    };
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": name,
            "cluster": {
                "server": server,
                "certificate-authority-data": b64(ca_pem),
            },
        }],
        "users": [{ "name": name, "user": user }],
        "contexts": [{
            "name": name,
            "context": { "cluster": name, "user": name },
        }],
        "current-context": name,
        "preferences": {},
    });
    crate::yaml::to_string(&doc).context("serializing a kubeconfig")
}

/// Writes a kubeconfig (mode 0600: it holds credentials).
pub(crate) fn write(
    path: &Path,
    name: &str,
    server: &str,
    ca_pem: &str,
    credentials: &Credentials<'_>,
) -> Result<()> {
    let text = render(name, server, ca_pem, credentials)?;
    write_file(path, text.as_bytes(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_parses_the_rendered_kubeconfig() {
        let text = render(
            "local",
            "https://127.0.0.1:6443",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            &Credentials::Token("abc"),
        )
        .unwrap();
        let config = kube::config::Kubeconfig::from_yaml(&text).unwrap();
        assert_eq!(config.current_context.as_deref(), Some("local"));
        assert_eq!(
            config.clusters[0]
                .cluster
                .as_ref()
                .unwrap()
                .server
                .as_deref(),
            Some("https://127.0.0.1:6443")
        );
        let user = config.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.token.is_some());
    }
}

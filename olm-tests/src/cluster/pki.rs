//! Certificates and keys of a local cluster, generated in Rust (rcgen, ring).
//!
//! All keys are ECDSA P-256 (PKCS#8 PEM), which every Kubernetes component
//! accepts, including as the ServiceAccount token signing key (ES256).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate and its private key, PEM encoded.
#[derive(Clone)]
pub(crate) struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAndKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Everything the control plane needs, in memory.
#[derive(Debug)]
pub(crate) struct Pki {
    /// Cluster CA (signs serving and client certificates; also the
    /// controller-manager's CSR signer).
    pub ca: CertAndKey,
    /// kube-apiserver serving certificate.
    pub apiserver: CertAndKey,
    /// Serving certificate of kube-controller-manager and kube-scheduler.
    pub components_serving: CertAndKey,
    /// Admin client (O=system:masters).
    pub admin: CertAndKey,
    /// kube-controller-manager client (CN=system:kube-controller-manager).
    pub controller_manager: CertAndKey,
    /// kube-scheduler client (CN=system:kube-scheduler).
    pub scheduler: CertAndKey,
    /// kwok client (O=system:masters: it writes node and pod status of every
    /// fake node, which the Node authorizer would not allow a single node).
    pub kwok: CertAndKey,
    /// Front-proxy CA (request-header authentication of aggregated APIs).
    pub front_proxy_ca: CertAndKey,
    /// Front-proxy client (CN=front-proxy-client), used by the apiserver when
    /// proxying to aggregated API servers.
    pub front_proxy_client: CertAndKey,
    /// The apiserver's client certificate towards kubelets
    /// (`--kubelet-client-certificate`; O=system:masters).
    pub apiserver_kubelet_client: CertAndKey,
    /// The real node's kubelet: serving certificate (its IP and name) ...
    pub kubelet_serving: CertAndKey,
    /// ... and client certificate (CN=system:node:<node>, O=system:nodes),
    /// so the Node authorizer and NodeRestriction apply to it.
    pub kubelet_client: CertAndKey,
    /// kube-proxy client (CN=system:kube-proxy, bound to system:node-proxier).
    pub kube_proxy: CertAndKey,
    /// CoreDNS client (CN=system:coredns; the harness binds its ClusterRole).
    pub coredns: CertAndKey,
    /// The local OCI registry's serving certificate (the node IP, localhost).
    pub registry_serving: CertAndKey,
    /// ServiceAccount token signing key (PKCS#8 PEM).
    pub sa_private_key_pem: String,
    /// ServiceAccount token verification key (SPKI PEM).
    pub sa_public_key_pem: String,
}

/// Paths of the PKI files written by [`Pki::write`].
#[derive(Clone, Debug)]
pub(crate) struct PkiFiles {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub apiserver_cert: PathBuf,
    pub apiserver_key: PathBuf,
    pub components_cert: PathBuf,
    pub components_key: PathBuf,
    pub front_proxy_ca_cert: PathBuf,
    pub front_proxy_client_cert: PathBuf,
    pub front_proxy_client_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
    pub kubelet_client_cert: PathBuf,
    pub kubelet_client_key: PathBuf,
    pub kubelet_serving_cert: PathBuf,
    pub kubelet_serving_key: PathBuf,
    pub registry_cert: PathBuf,
    pub registry_key: PathBuf,
}

struct Ca {
    pair: CertAndKey,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

enum Usage {
    Server,
    Client,
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365);
}

fn new_ca(common_name: &str) -> Result<Ca> {
    let key = KeyPair::generate().context("generating a CA key")?;
    let key_pem = key.serialize_pem();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params);
    let issuer = CertifiedIssuer::self_signed(params, key)
        .with_context(|| format!("self-signing the {common_name} CA"))?;
    Ok(Ca {
        pair: CertAndKey {
            cert_pem: issuer.pem(),
            key_pem,
        },
        issuer,
    })
}

fn leaf(
    ca: &Ca,
    common_name: &str,
    organization: Option<&str>,
    usage: Usage,
    dns_names: &[&str],
    ips: &[IpAddr],
) -> Result<CertAndKey> {
    let key = KeyPair::generate().context("generating a key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    params.distinguished_name = dn;
    for name in dns_names {
        params.subject_alt_names.push(SanType::DnsName(
            (*name)
                .try_into()
                .with_context(|| format!("invalid DNS name {name}"))?,
        ));
    }
    params
        .subject_alt_names
        .extend(ips.iter().copied().map(SanType::IpAddress));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match usage {
        Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params);
    let cert = params
        .signed_by(&key, &ca.issuer)
        .with_context(|| format!("signing the {common_name} certificate"))?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

impl Pki {
    /// Generates a fresh PKI. `service_ip` (the first address of the service
    /// range, i.e. the `kubernetes` Service's ClusterIP) is added to the
    /// apiserver's serving certificate, with the node address the apiserver
    /// advertises and the real node's kubelet serves on ([`super::network::NODE_IP`]).
    pub fn generate(service_ip: Option<IpAddr>) -> Result<Self> {
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let node_ip = IpAddr::V4(super::network::NODE_IP);
        let ca = new_ca("locust-local-cluster-ca")?;
        let mut apiserver_ips = vec![localhost, node_ip];
        apiserver_ips.extend(service_ip);
        let apiserver = leaf(
            &ca,
            "kube-apiserver",
            None,
            Usage::Server,
            &[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            &apiserver_ips,
        )?;
        let components_serving = leaf(
            &ca,
            "local-cluster-components",
            None,
            Usage::Server,
            &["localhost"],
            &[localhost],
        )?;
        let admin = leaf(
            &ca,
            "local-cluster-admin",
            Some("system:masters"),
            Usage::Client,
            &[],
            &[],
        )?;
        let controller_manager = leaf(
            &ca,
            "system:kube-controller-manager",
            None,
            Usage::Client,
            &[],
            &[],
        )?;
        let scheduler = leaf(&ca, "system:kube-scheduler", None, Usage::Client, &[], &[])?;
        let kwok = leaf(
            &ca,
            "kwok-controller",
            Some("system:masters"),
            Usage::Client,
            &[],
            &[],
        )?;
        let front_proxy_ca = new_ca("locust-local-cluster-front-proxy-ca")?;
        let front_proxy_client = leaf(
            &front_proxy_ca,
            "front-proxy-client",
            None,
            Usage::Client,
            &[],
            &[],
        )?;
        let node = super::network::REAL_NODE_NAME;
        let apiserver_kubelet_client = leaf(
            &ca,
            "kube-apiserver-kubelet-client",
            Some("system:masters"),
            Usage::Client,
            &[],
            &[],
        )?;
        let kubelet_serving = leaf(&ca, node, None, Usage::Server, &[node], &[node_ip])?;
        let kubelet_client = leaf(
            &ca,
            &format!("system:node:{node}"),
            Some("system:nodes"),
            Usage::Client,
            &[],
            &[],
        )?;
        let kube_proxy = leaf(&ca, "system:kube-proxy", None, Usage::Client, &[], &[])?;
        let coredns = leaf(&ca, "system:coredns", None, Usage::Client, &[], &[])?;
        let registry_serving = leaf(
            &ca,
            "local-registry",
            None,
            Usage::Server,
            &["localhost"],
            &[node_ip, localhost],
        )?;
        let sa_key = KeyPair::generate().context("generating the ServiceAccount signing key")?;
        Ok(Self {
            apiserver_kubelet_client,
            kubelet_serving,
            kubelet_client,
            kube_proxy,
            coredns,
            registry_serving,
            ca: ca.pair,
            apiserver,
            components_serving,
            admin,
            controller_manager,
            scheduler,
            kwok,
            front_proxy_ca: front_proxy_ca.pair,
            front_proxy_client,
            sa_private_key_pem: sa_key.serialize_pem(),
            sa_public_key_pem: sa_key.public_key_pem(),
        })
    }

    /// Writes the files the components read into `dir` (keys mode 0600).
    pub fn write(&self, dir: &Path) -> Result<PkiFiles> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = PkiFiles {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            apiserver_cert: dir.join("apiserver.crt"),
            apiserver_key: dir.join("apiserver.key"),
            components_cert: dir.join("components.crt"),
            components_key: dir.join("components.key"),
            front_proxy_ca_cert: dir.join("front-proxy-ca.crt"),
            front_proxy_client_cert: dir.join("front-proxy-client.crt"),
            front_proxy_client_key: dir.join("front-proxy-client.key"),
            sa_key: dir.join("sa.key"),
            sa_pub: dir.join("sa.pub"),
            kubelet_client_cert: dir.join("apiserver-kubelet-client.crt"),
            kubelet_client_key: dir.join("apiserver-kubelet-client.key"),
            kubelet_serving_cert: dir.join("kubelet.crt"),
            kubelet_serving_key: dir.join("kubelet.key"),
            registry_cert: dir.join("registry.crt"),
            registry_key: dir.join("registry.key"),
        };
        // Certificates are public; keys are written mode 0600.
        let pairs: [(&Path, &Path, &CertAndKey); 7] = [
            (
                &files.registry_cert,
                &files.registry_key,
                &self.registry_serving,
            ),
            (
                &files.kubelet_client_cert,
                &files.kubelet_client_key,
                &self.apiserver_kubelet_client,
            ),
            (
                &files.kubelet_serving_cert,
                &files.kubelet_serving_key,
                &self.kubelet_serving,
            ),
            (&files.ca_cert, &files.ca_key, &self.ca),
            (&files.apiserver_cert, &files.apiserver_key, &self.apiserver),
            (
                &files.components_cert,
                &files.components_key,
                &self.components_serving,
            ),
            (
                &files.front_proxy_client_cert,
                &files.front_proxy_client_key,
                &self.front_proxy_client,
            ),
        ];
        for (cert, key, pair) in pairs {
            write_file(cert, pair.cert_pem.as_bytes(), false)?;
            write_file(key, pair.key_pem.as_bytes(), true)?;
        }
        let cert = self.front_proxy_ca.cert_pem.as_bytes();
        write_file(&files.front_proxy_ca_cert, cert, false)?;
        write_file(&files.sa_key, self.sa_private_key_pem.as_bytes(), true)?;
        write_file(&files.sa_pub, self.sa_public_key_pem.as_bytes(), false)?;
        Ok(files)
    }
}

/// Writes `contents` to `path` (mode 0600 when `secret`, else 0644).
pub(crate) fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_parseable_pems() {
        let pki = Pki::generate(Some("127.64.0.1".parse().unwrap())).unwrap();
        for pair in [&pki.ca, &pki.apiserver, &pki.admin, &pki.front_proxy_client] {
            assert!(pair.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(pair.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        }
        assert!(
            pki.sa_public_key_pem
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        assert!(!format!("{:?}", pki.admin).contains("PRIVATE KEY"));
    }

    #[test]
    fn server_certificate_verifies_against_the_ca_for_ip_and_dns() {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
        let pki = Pki::generate(None).unwrap();
        let der = |pem_text: &str| CertificateDer::from(pem_der(pem_text));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(&pki.ca.cert_pem)).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
        for name in ["127.0.0.1", "localhost", "kubernetes.default.svc"] {
            verifier
                .verify_server_cert(
                    &der(&pki.apiserver.cert_pem),
                    &[],
                    &ServerName::try_from(name).unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // The admin certificate is a client certificate: not valid for serving.
        assert!(
            verifier
                .verify_server_cert(
                    &der(&pki.admin.cert_pem),
                    &[],
                    &ServerName::try_from("127.0.0.1").unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .is_err()
        );
    }

    fn pem_der(text: &str) -> Vec<u8> {
        use base64::Engine;
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }
}

//! The webhook's serving certificate: loading `tls.crt`/`tls.key`, swapping in
//! a renewed pair without a restart, and the rustls server configuration
//! (ring provider, TLS 1.2 and 1.3 only, HTTP/1.1 ALPN).
//!
//! Reload: a [`CertReloader`] polls both files every [`RELOAD_INTERVAL`]. When
//! the SHA-256 of their *content* changes (mtime alone is not trusted: secret
//! volumes swap symlinks, and copies may keep the mtime) and the new pair
//! parses and matches, it replaces the key in the [`ReloadingCertResolver`];
//! new handshakes use it at once, open connections keep theirs. A missing,
//! partial or mismatched pair keeps the previous certificate and logs a
//! warning naming the file and the problem, never key material.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use ring::digest::{SHA256, digest};
use rustls::ServerConfig;
use rustls::SupportedProtocolVersion;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tracing::{info, warn};

/// File name of the PEM certificate chain (leaf first) in the certificate directory.
pub const CERT_FILE: &str = "tls.crt";
/// File name of the PEM private key in the certificate directory.
pub const KEY_FILE: &str = "tls.key";
/// Largest certificate or key file read.
pub const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;
/// How often the certificate files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);
/// The only protocol versions the webhook server accepts.
pub static PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
/// ALPN protocol offered: HTTP/1.1 only.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Errors loading the serving certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than [`MAX_PEM_FILE_BYTES`].
    #[error("{path} is larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{path} holds no PEM certificate")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The certificate file holds malformed PEM.
    #[error("{path} holds malformed PEM certificate data: {detail}")]
    InvalidCertificate {
        /// The file.
        path: PathBuf,
        /// What the PEM parser reported.
        detail: String,
    },
    /// The key file holds no usable private key. The parser's detail is
    /// deliberately dropped: it could quote key material.
    #[error("{path} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    InvalidKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is unsupported or does not belong to the certificate.
    #[error("certificate and private key do not form a usable pair: {0}")]
    Pair(#[source] rustls::Error),
    /// rustls refused the server configuration.
    #[error("building the TLS server configuration failed: {0}")]
    Config(#[source] rustls::Error),
}

impl CertError {
    /// CamelCase reason, for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            CertError::Read { .. } => "CertificateUnreadable",
            CertError::TooLarge { .. } => "CertificateFileTooLarge",
            CertError::NoCertificate { .. } => "NoCertificate",
            CertError::InvalidCertificate { .. } => "InvalidCertificate",
            CertError::InvalidKey { .. } => "InvalidPrivateKey",
            CertError::Pair(_) => "CertificateKeyMismatch",
            CertError::Config(_) => "TlsConfigFailed",
        }
    }
}

/// Where the certificate and key files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl CertPaths {
    /// `tls.crt` and `tls.key` in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            cert: dir.join(CERT_FILE),
            key: dir.join(KEY_FILE),
        }
    }
}

/// SHA-256 over the content of both files; identifies a certificate/key pair
/// as written on disk.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Fingerprint of a certificate file and a key file's contents.
    pub fn of(cert_pem: &[u8], key_pem: &[u8]) -> Self {
        let mut input = Vec::with_capacity(8 + cert_pem.len() + key_pem.len());
        // Length prefix so that moving bytes from one file to the other changes the digest.
        input.extend_from_slice(&(cert_pem.len() as u64).to_be_bytes());
        input.extend_from_slice(cert_pem);
        input.extend_from_slice(key_pem);
        let d = digest(&SHA256, &input);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The digest covers the key file: show only enough to tell pairs apart.
        write!(f, "Fingerprint({})", hex(&self.0[..4]))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of the leaf certificate (DER), as hex: the usual public
/// certificate fingerprint, safe to log.
pub fn leaf_sha256(key: &CertifiedKey) -> String {
    key.cert
        .first()
        .map(|c| hex(digest(&SHA256, c.as_ref()).as_ref()))
        .unwrap_or_default()
}

/// The crypto provider used by the webhook: ring.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

async fn read_capped(path: &Path) -> Result<Vec<u8>, CertError> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|source| CertError::Read {
            path: path.to_owned(),
            source,
        })?;
    if meta.len() > MAX_PEM_FILE_BYTES {
        return Err(CertError::TooLarge {
            path: path.to_owned(),
            max: MAX_PEM_FILE_BYTES,
        });
    }
    tokio::fs::read(path)
        .await
        .map_err(|source| CertError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Reads both files; returns their contents (certificate, key).
pub async fn read_pair(paths: &CertPaths) -> Result<(Vec<u8>, Vec<u8>), CertError> {
    let cert = read_capped(&paths.cert).await?;
    let key = read_capped(&paths.key).await?;
    Ok((cert, key))
}

/// Parses a PEM certificate chain and private key and checks that they belong
/// together.
pub fn parse_pair(
    paths: &CertPaths,
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, CertError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| CertError::InvalidCertificate {
            path: paths.cert.clone(),
            detail: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CertError::NoCertificate {
            path: paths.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| CertError::InvalidKey {
        path: paths.key.clone(),
    })?;
    let certified = CertifiedKey::from_der(certs, key, provider).map_err(CertError::Pair)?;
    Ok(certified)
}

/// A loaded certificate pair and the fingerprint of the files it came from.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    /// The parsed pair.
    pub key: Arc<CertifiedKey>,
    /// Fingerprint of the file contents.
    pub fingerprint: Fingerprint,
}

/// Reads and parses the pair at `paths`.
pub async fn load(paths: &CertPaths, provider: &CryptoProvider) -> Result<LoadedCert, CertError> {
    let (cert, key) = read_pair(paths).await?;
    let fingerprint = Fingerprint::of(&cert, &key);
    let certified = parse_pair(paths, &cert, &key, provider)?;
    Ok(LoadedCert {
        key: Arc::new(certified),
        fingerprint,
    })
}

/// Serves whatever certificate is current; [`CertReloader`] replaces it.
pub struct ReloadingCertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ReloadingCertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCertResolver")
            .field("leaf_sha256", &leaf_sha256(&self.current()))
            .finish()
    }
}

impl ReloadingCertResolver {
    /// A resolver serving `initial`.
    pub fn new(initial: Arc<CertifiedKey>) -> Self {
        Self {
            current: RwLock::new(initial),
        }
    }

    /// The certificate new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Makes `key` the certificate for new handshakes.
    pub fn replace(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
    }
}

impl ResolvesServerCert for ReloadingCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The rustls server configuration: ring, TLS 1.3 and 1.2 only, no client
/// authentication, ALPN `http/1.1`, certificate from `resolver`.
pub fn server_config(resolver: Arc<ReloadingCertResolver>) -> Result<ServerConfig, CertError> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(CertError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(config)
}

/// What one [`CertReloader::poll`] did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The files did not change.
    Unchanged,
    /// A new pair was loaded and is now served.
    Reloaded,
    /// The files changed (or could not be read) but the pair is unusable; the
    /// previous certificate is still served.
    Kept(CertError),
}

/// Watches the certificate files and swaps renewed pairs into a resolver.
#[derive(Debug)]
pub struct CertReloader {
    paths: CertPaths,
    resolver: Arc<ReloadingCertResolver>,
    provider: Arc<CryptoProvider>,
    last_seen: Fingerprint,
    last_warning: Option<String>,
}

impl CertReloader {
    /// A reloader for `paths` that starts from the pair with `loaded` fingerprint.
    pub fn new(
        paths: CertPaths,
        resolver: Arc<ReloadingCertResolver>,
        loaded: Fingerprint,
    ) -> Self {
        Self {
            paths,
            resolver,
            provider: crypto_provider(),
            last_seen: loaded,
            last_warning: None,
        }
    }

    /// Checks the files once and swaps in a new, valid pair.
    pub async fn poll(&mut self) -> ReloadOutcome {
        let (cert, key) = match read_pair(&self.paths).await {
            Ok(pair) => pair,
            Err(err) => return ReloadOutcome::Kept(err),
        };
        let fingerprint = Fingerprint::of(&cert, &key);
        if fingerprint == self.last_seen {
            return ReloadOutcome::Unchanged;
        }
        // Remember the content even when it is bad: the same bytes would fail
        // the same way, so they are retried only once they change again.
        self.last_seen = fingerprint;
        match parse_pair(&self.paths, &cert, &key, &self.provider) {
            Ok(certified) => {
                self.resolver.replace(Arc::new(certified));
                ReloadOutcome::Reloaded
            }
            Err(err) => ReloadOutcome::Kept(err),
        }
    }

    /// Polls every [`RELOAD_INTERVAL`] until `stop` completes, logging each
    /// reload and each new problem (a repeated problem is logged once).
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut ticker = tokio::time::interval(RELOAD_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once; the pair was just loaded.
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = ticker.tick() => {}
            }
            match self.poll().await {
                ReloadOutcome::Unchanged => {}
                ReloadOutcome::Reloaded => {
                    self.last_warning = None;
                    info!(
                        cert = %self.paths.cert.display(),
                        leaf_sha256 = %leaf_sha256(&self.resolver.current()),
                        "webhook serving certificate reloaded"
                    );
                }
                ReloadOutcome::Kept(err) => {
                    let message = err.to_string();
                    if self.last_warning.as_deref() != Some(message.as_str()) {
                        warn!(
                            error = %message,
                            reason = err.reason(),
                            "webhook serving certificate not reloaded; keeping the previous one"
                        );
                        self.last_warning = Some(message);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(dir: &Path, cert: &str, key: &str) {
        std::fs::write(dir.join(CERT_FILE), cert).unwrap();
        std::fs::write(dir.join(KEY_FILE), key).unwrap();
    }

    #[test]
    fn fingerprint_depends_on_both_files_and_the_split() {
        assert_eq!(Fingerprint::of(b"ab", b"c"), Fingerprint::of(b"ab", b"c"));
        assert_ne!(Fingerprint::of(b"ab", b"c"), Fingerprint::of(b"a", b"bc"));
        assert_ne!(Fingerprint::of(b"ab", b"c"), Fingerprint::of(b"ab", b"d"));
        assert_eq!(
            format!("{:?}", Fingerprint::of(b"", b"")).len(),
            "Fingerprint(01234567)".len()
        );
    }

    #[test]
    fn parse_errors_name_the_file_but_not_the_key() {
        let paths = CertPaths::in_dir(Path::new("/certs"));
        let provider = crypto_provider();
        let (cert, key) = pair();
        let (other_cert, _) = pair();

        let err = parse_pair(&paths, b"", key.as_bytes(), &provider).unwrap_err();
        assert_eq!(err.reason(), "NoCertificate");
        assert!(err.to_string().contains("/certs/tls.crt"));

        let secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0IGtleSBtYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
        let err = parse_pair(&paths, cert.as_bytes(), secret.as_bytes(), &provider).unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");

        let err = parse_pair(&paths, cert.as_bytes(), b"garbage", &provider).unwrap_err();
        assert_eq!(err.reason(), "InvalidPrivateKey");

        let err = parse_pair(&paths, other_cert.as_bytes(), key.as_bytes(), &provider).unwrap_err();
        assert_eq!(err.reason(), "CertificateKeyMismatch");

        assert!(parse_pair(&paths, cert.as_bytes(), key.as_bytes(), &provider).is_ok());
    }

    #[tokio::test]
    async fn reloader_swaps_only_valid_new_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let paths = CertPaths::in_dir(dir.path());
        let (cert, key) = pair();
        write(dir.path(), &cert, &key);
        let loaded = load(&paths, &crypto_provider()).await.unwrap();
        let first = leaf_sha256(&loaded.key);
        let resolver = Arc::new(ReloadingCertResolver::new(loaded.key));
        let mut reloader =
            CertReloader::new(paths.clone(), Arc::clone(&resolver), loaded.fingerprint);

        assert!(matches!(reloader.poll().await, ReloadOutcome::Unchanged));

        // New certificate, old key: a half-written rotation is kept out.
        let (cert2, key2) = pair();
        write(dir.path(), &cert2, &key);
        assert!(matches!(
            reloader.poll().await,
            ReloadOutcome::Kept(CertError::Pair(_))
        ));
        assert_eq!(leaf_sha256(&resolver.current()), first);
        // Same bad bytes are not retried.
        assert!(matches!(reloader.poll().await, ReloadOutcome::Unchanged));

        std::fs::remove_file(&paths.key).unwrap();
        assert!(matches!(
            reloader.poll().await,
            ReloadOutcome::Kept(CertError::Read { .. })
        ));
        assert_eq!(leaf_sha256(&resolver.current()), first);

        write(dir.path(), &cert2, &key2);
        assert!(matches!(reloader.poll().await, ReloadOutcome::Reloaded));
        assert_ne!(leaf_sha256(&resolver.current()), first);
        assert!(matches!(reloader.poll().await, ReloadOutcome::Unchanged));
    }

    #[tokio::test]
    async fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair();
        let huge = "x".repeat(MAX_PEM_FILE_BYTES as usize + 1);
        write(dir.path(), &huge, &key);
        let err = load(&CertPaths::in_dir(dir.path()), &crypto_provider())
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "CertificateFileTooLarge");
        write(dir.path(), &cert, &key);
        assert!(
            load(&CertPaths::in_dir(dir.path()), &crypto_provider())
                .await
                .is_ok()
        );
    }

    #[test]
    fn server_config_offers_http11_only() {
        let (cert, key) = pair();
        let paths = CertPaths::in_dir(Path::new("/certs"));
        let certified =
            parse_pair(&paths, cert.as_bytes(), key.as_bytes(), &crypto_provider()).unwrap();
        let config =
            server_config(Arc::new(ReloadingCertResolver::new(Arc::new(certified)))).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}

//! Self-managed webhook certificates (`--webhook-cert-mode=self-managed`):
//! without OLM or cert-manager, the operator keeps its own CA and serving
//! certificate in a Secret and puts the CA bundle into the CRD's conversion
//! webhook and the ValidatingWebhookConfiguration, as OPA Gatekeeper's
//! cert-controller does.
//!
//! Every replica, at start-up and every check interval:
//! 1. reads the Secret and [`assess`]es it: missing, unparsable, a key that
//!    does not match its certificate, a serving certificate not signed by the
//!    CA or not made for the wanted names, or less than
//!    1/[`RENEW_DENOMINATOR`] of a certificate's validity left: a new CA
//!    and serving certificate ([`Verdict::RenewAll`]) or a new serving
//!    certificate under the same CA ([`Verdict::RenewServing`]);
//! 2. writes a renewed Secret with optimistic concurrency (create, or replace
//!    at the resourceVersion it read); a replica that loses the race reads
//!    the winner's Secret again, so all replicas converge on one Secret;
//! 3. patches `caBundle` of the CRD's conversion webhook and of every webhook
//!    of the ValidatingWebhookConfiguration where it differs (nothing is
//!    written when it is equal);
//! 4. writes `tls.crt`/`tls.key` into the certificate directory when they
//!    differ, where the webhook server's reloader ([`super::tls`]) picks
//!    them up: the same path as a mounted Secret.
//!
//! CA rotation: the bundle (`ca.crt` of the Secret, and the `caBundle`s) is
//! the new CA followed by every previous CA that has not expired, so a
//! replica still serving a certificate signed by the previous CA stays
//! trusted until it picks up the new one. Keys are never logged.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use serde_json::{Value, json};
use tracing::{info, warn};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::tls::{CERT_FILE, KEY_FILE};

/// Default name of the Secret holding the CA and the serving certificate.
pub const DEFAULT_SECRET_NAME: &str = "locust-k8s-operator-webhook-cert";
/// Default name of the webhook Service (what OLM names it after the
/// Deployment: `<deployment>-service`).
pub const DEFAULT_SERVICE_NAME: &str = "locust-k8s-operator-service";
/// Secret key of the CA bundle (current CA first, then unexpired previous ones).
pub const CA_CERT_KEY: &str = "ca.crt";
/// Secret key of the current CA's private key.
pub const CA_KEY_KEY: &str = "ca.key";
/// A certificate is renewed when less than `1/RENEW_DENOMINATOR` of its
/// validity is left.
pub const RENEW_DENOMINATOR: u32 = 3;
/// Certificates start this long before they are made, for clock skew
/// between replicas and the API server.
pub const BACKDATE: Duration = Duration::from_secs(3600);
/// How often a lost optimistic-concurrency race is retried in one check.
pub const MAX_CONFLICT_RETRIES: usize = 3;
/// Pause before the next check after a failed one (when shorter than the
/// check interval).
pub const ERROR_BACKOFF: Duration = Duration::from_secs(5);
/// Common name of the generated CA.
pub const CA_COMMON_NAME: &str = "locust-k8s-operator-webhook-ca";
/// Common name of the generated serving certificate.
pub const SERVING_COMMON_NAME: &str = "locust-k8s-operator-webhook";
/// Label set on the Secret the operator writes.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "locust-k8s-operator");
/// Field manager of the operator's patches.
pub const FIELD_MANAGER: &str = "locust-k8s-operator-certs";

/// Errors of the self-managed certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// rcgen could not make or sign a certificate.
    #[error("generating a certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A validity does not fit the certificate's time fields.
    #[error("validity {0:?} is out of range")]
    Validity(Duration),
    /// The stored CA could not be used to sign (checked before, so a race).
    #[error("the stored CA is unusable: {0}")]
    StoredCa(&'static str),
    /// A request to the API server failed.
    #[error("{action} {what}: {source}")]
    Api {
        /// What was tried (`get`, `create`, `replace`, `patch`).
        action: &'static str,
        /// The object (`Secret ns/name`, ...).
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Other replicas kept winning the race for the Secret.
    #[error("Secret {0}: still conflicting after {MAX_CONFLICT_RETRIES} attempts")]
    Conflict(String),
    /// The certificate directory could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl CertsError {
    /// CamelCase reason, for logs and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            CertsError::Generate(_) => "CertificateGenerationFailed",
            CertsError::Validity(_) => "InvalidValidity",
            CertsError::StoredCa(_) => "StoredCaUnusable",
            CertsError::Api { .. } => "ApiRequestFailed",
            CertsError::Conflict(_) => "SecretConflict",
            CertsError::Write { .. } => "CertificateWriteFailed",
        }
    }
}

/// How long certificates are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Validity of a new CA.
    pub ca_validity: Duration,
    /// Validity of a new serving certificate (cut to the CA's end).
    pub cert_validity: Duration,
}

/// The names a serving certificate is made for: `<service>.<namespace>.svc`,
/// `<service>.<namespace>.svc.cluster.local` and `extra` (DNS names or IP
/// addresses), sorted, without duplicates.
pub fn serving_names(service: &str, namespace: &str, extra: &[String]) -> Vec<String> {
    let mut names = BTreeSet::new();
    names.insert(format!("{service}.{namespace}.svc"));
    names.insert(format!("{service}.{namespace}.svc.cluster.local"));
    for name in extra {
        let name = name.trim();
        if !name.is_empty() {
            names.insert(name.to_owned());
        }
    }
    names.into_iter().collect()
}

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The Secret is usable as it is.
    Current,
    /// A new serving certificate under the stored CA; the reason.
    RenewServing(&'static str),
    /// A new CA and serving certificate; the reason.
    RenewAll(&'static str),
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Whether a certificate valid from `not_before` to `not_after` (Unix
/// seconds) must be replaced at `now`: not yet valid, expired, or less than
/// 1/[`RENEW_DENOMINATOR`] of its validity left.
pub fn due(not_before: i64, not_after: i64, now: i64) -> bool {
    if now < not_before || now >= not_after {
        return true;
    }
    let total = i128::from(not_after) - i128::from(not_before);
    let left = i128::from(not_after) - i128::from(now);
    left * i128::from(RENEW_DENOMINATOR) < total
}

fn value<'a>(data: &'a BTreeMap<String, ByteString>, key: &str) -> Option<&'a [u8]> {
    data.get(key)
        .map(|b| b.0.as_slice())
        .filter(|b| !b.is_empty())
}

/// The DER certificates of a PEM text (`None` if any block is malformed or
/// there is none).
fn pem_certs(pem_text: &[u8]) -> Option<Vec<Vec<u8>>> {
    let blocks = pem::parse_many(pem_text).ok()?;
    let ders: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect();
    (!ders.is_empty()).then_some(ders)
}

fn parse_der(der: &[u8]) -> Option<X509Certificate<'_>> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, cert)| cert)
}

fn key_matches(key_pem: &[u8], cert: &X509Certificate<'_>) -> bool {
    std::str::from_utf8(key_pem)
        .ok()
        .and_then(|text| KeyPair::from_pem(text).ok())
        .is_some_and(|key| {
            key.der_bytes() == &*cert.tbs_certificate.subject_pki.subject_public_key.data
        })
}

/// The DNS names and IP addresses of a certificate's subjectAltName, sorted.
fn san_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut names = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    names.insert((*dns).to_owned());
                }
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        names.insert(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    names.into_iter().collect()
}

fn validity(cert: &X509Certificate<'_>) -> (i64, i64) {
    (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    )
}

/// Decides what the Secret's `data` (`None`: no Secret) needs at `now` for a
/// serving certificate made for `names` (see [`serving_names`]).
pub fn assess(
    data: Option<&BTreeMap<String, ByteString>>,
    names: &[String],
    now: SystemTime,
) -> Verdict {
    let now = unix_seconds(now);
    let Some(data) = data else {
        return Verdict::RenewAll("SecretMissing");
    };
    let Some(ca_ders) = value(data, CA_CERT_KEY).and_then(pem_certs) else {
        return Verdict::RenewAll("CaMissingOrInvalid");
    };
    let Some(ca) = ca_ders.first().and_then(|d| parse_der(d)) else {
        return Verdict::RenewAll("CaMissingOrInvalid");
    };
    if !ca.is_ca() {
        return Verdict::RenewAll("CaNotACertificateAuthority");
    }
    if !value(data, CA_KEY_KEY).is_some_and(|k| key_matches(k, &ca)) {
        return Verdict::RenewAll("CaKeyMissingOrMismatched");
    }
    let (nb, na) = validity(&ca);
    if due(nb, na, now) {
        return Verdict::RenewAll("CaDueForRenewal");
    }
    let Some(leaf_ders) = value(data, CERT_FILE).and_then(pem_certs) else {
        return Verdict::RenewServing("ServingCertMissingOrInvalid");
    };
    let Some(leaf) = leaf_ders.first().and_then(|d| parse_der(d)) else {
        return Verdict::RenewServing("ServingCertMissingOrInvalid");
    };
    if !value(data, KEY_FILE).is_some_and(|k| key_matches(k, &leaf)) {
        return Verdict::RenewServing("ServingKeyMissingOrMismatched");
    }
    if leaf.verify_signature(Some(ca.public_key())).is_err() {
        return Verdict::RenewServing("ServingCertNotSignedByCa");
    }
    if san_names(&leaf) != names {
        return Verdict::RenewServing("ServingNamesChanged");
    }
    let (nb, na) = validity(&leaf);
    if due(nb, na, now) {
        return Verdict::RenewServing("ServingCertDueForRenewal");
    }
    Verdict::Current
}

fn offset_time(t: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(t)
}

fn params(common_name: &str, not_before: SystemTime, not_after: SystemTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.not_before = offset_time(not_before);
    params.not_after = offset_time(not_after);
    params
}

fn add(t: SystemTime, d: Duration) -> Result<SystemTime, CertsError> {
    t.checked_add(d).ok_or(CertsError::Validity(d))
}

fn pem_of(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// The previous CAs of a bundle worth keeping at `now`: every certificate
/// that parses and has not expired, as PEM, in bundle order.
fn unexpired(bundle: &[u8], now: i64) -> Vec<String> {
    pem_certs(bundle)
        .unwrap_or_default()
        .iter()
        .filter(|der| parse_der(der).is_some_and(|c| validity(&c).1 > now))
        .map(|der| pem_of(der))
        .collect()
}

/// Joins PEM certificates into one bundle, dropping repeats.
pub fn bundle(pems: &[String]) -> String {
    let mut seen = BTreeSet::new();
    let mut out = String::new();
    for p in pems {
        if seen.insert(p.trim().to_owned()) {
            out.push_str(p.trim_end());
            out.push('\n');
        }
    }
    out
}

/// The Secret data after `verdict`: a new CA for [`Verdict::RenewAll`] (the
/// previous, unexpired CAs of `stored` stay in the bundle after it) or the
/// stored one for [`Verdict::RenewServing`], and a new serving certificate
/// for `names`. [`Verdict::Current`] is never renewed by the loop; given
/// here, it is treated as [`Verdict::RenewAll`].
pub fn issue(
    verdict: Verdict,
    stored: Option<&BTreeMap<String, ByteString>>,
    names: &[String],
    now: SystemTime,
    policy: Policy,
) -> Result<BTreeMap<String, ByteString>, CertsError> {
    let start = now.checked_sub(BACKDATE).unwrap_or(now);
    let old_bundle = stored.and_then(|d| value(d, CA_CERT_KEY)).unwrap_or(&[]);
    let kept = unexpired(old_bundle, unix_seconds(now));

    let (issuer, ca_key_pem, bundle_pems, ca_end) = match verdict {
        Verdict::RenewServing(_) => {
            let Some(first) = pem_certs(old_bundle).and_then(|c| c.into_iter().next()) else {
                return Err(CertsError::StoredCa("no CA certificate"));
            };
            let Some(key_pem) = stored
                .and_then(|d| value(d, CA_KEY_KEY))
                .and_then(|k| std::str::from_utf8(k).ok())
            else {
                return Err(CertsError::StoredCa("no CA key"));
            };
            let ca_end = parse_der(&first)
                .map(|c| validity(&c).1)
                .ok_or(CertsError::StoredCa("unparsable CA certificate"))?;
            let key = KeyPair::from_pem(key_pem).map_err(|_| CertsError::StoredCa("bad CA key"))?;
            let issuer = Issuer::from_ca_cert_der(
                &rustls::pki_types::CertificateDer::from(first.as_slice()),
                key,
            )?;
            let mut pems = vec![pem_of(&first)];
            pems.extend(kept);
            let key_pem = key_pem.to_owned();
            (issuer, key_pem, pems, ca_end)
        }
        Verdict::RenewAll(_) | Verdict::Current => {
            let key = KeyPair::generate()?;
            let key_pem = key.serialize_pem();
            let end = add(now, policy.ca_validity)?;
            let mut ca = params(CA_COMMON_NAME, start, end);
            ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            ca.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let certified = CertifiedIssuer::self_signed(ca.clone(), key)?;
            let mut pems = vec![certified.pem()];
            pems.extend(kept);
            let issuer = Issuer::new(ca, KeyPair::from_pem(&key_pem)?);
            (issuer, key_pem, pems, unix_seconds(end))
        }
    };

    let leaf_key = KeyPair::generate()?;
    let wanted_end = add(now, policy.cert_validity)?;
    let end = if unix_seconds(wanted_end) > ca_end {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(ca_end).unwrap_or(0))
    } else {
        wanted_end
    };
    let mut leaf = params(SERVING_COMMON_NAME, start, end);
    leaf.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let cert = leaf.signed_by(&leaf_key, &issuer)?;

    let mut data = BTreeMap::new();
    data.insert(
        CA_CERT_KEY.to_owned(),
        ByteString(bundle(&bundle_pems).into_bytes()),
    );
    data.insert(CA_KEY_KEY.to_owned(), ByteString(ca_key_pem.into_bytes()));
    data.insert(CERT_FILE.to_owned(), ByteString(cert.pem().into_bytes()));
    data.insert(
        KEY_FILE.to_owned(),
        ByteString(leaf_key.serialize_pem().into_bytes()),
    );
    Ok(data)
}

/// The merge patch that sets the CRD's conversion `caBundle` to `ca_bundle`
/// (guarded by the resourceVersion read), or `None` when it already is, or
/// when the CRD converts without a webhook (there is nothing to trust).
pub fn crd_patch(crd: &CustomResourceDefinition, ca_bundle: &[u8]) -> Option<Value> {
    let conversion = crd.spec.conversion.as_ref()?;
    if conversion.strategy != "Webhook" {
        return None;
    }
    let current = conversion
        .webhook
        .as_ref()
        .and_then(|w| w.client_config.as_ref())
        .and_then(|c| c.ca_bundle.as_ref());
    if current.is_some_and(|b| b.0 == ca_bundle) {
        return None;
    }
    Some(json!({
        "metadata": {"resourceVersion": crd.metadata.resource_version},
        "spec": {"conversion": {"webhook": {"clientConfig": {
            "caBundle": ByteString(ca_bundle.to_vec()),
        }}}},
    }))
}

/// The merge patch that sets `caBundle` of every webhook of `vwc` to
/// `ca_bundle` (the whole list, guarded by the resourceVersion read), or
/// `None` when every one already has it.
pub fn vwc_patch(vwc: &ValidatingWebhookConfiguration, ca_bundle: &[u8]) -> Option<Value> {
    let mut webhooks = vwc.webhooks.clone().unwrap_or_default();
    let mut changed = false;
    for w in &mut webhooks {
        if w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) != Some(ca_bundle) {
            w.client_config.ca_bundle = Some(ByteString(ca_bundle.to_vec()));
            changed = true;
        }
    }
    changed.then(|| {
        json!({
            "metadata": {"resourceVersion": vwc.metadata.resource_version},
            "webhooks": webhooks,
        })
    })
}

/// Where and for what the certificates are managed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Namespace of the Secret (the operator's).
    pub namespace: String,
    /// Name of the Secret.
    pub secret_name: String,
    /// Names of the serving certificate ([`serving_names`]).
    pub names: Vec<String>,
    /// The CRD whose conversion webhook gets the bundle.
    pub crd_name: String,
    /// The ValidatingWebhookConfiguration whose webhooks get the bundle.
    pub webhook_configuration_name: String,
    /// Where the webhook server reads `tls.crt`/`tls.key`.
    pub cert_dir: PathBuf,
    /// Validity of new certificates.
    pub policy: Policy,
    /// Time between two checks.
    pub check_interval: Duration,
}

/// What one [`SelfManagedCerts::check`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Why the Secret was written (`None`: it was current, or another
    /// replica's was adopted).
    pub secret_written: Option<&'static str>,
    /// Whether the CRD's caBundle was patched.
    pub crd_patched: bool,
    /// Whether the ValidatingWebhookConfiguration was patched.
    pub webhook_configuration_patched: bool,
    /// Whether the certificate files were (re)written.
    pub files_written: bool,
}

/// Patches object `name` with `patch(object, ca_bundle)` (guarded by the
/// resourceVersion it read) unless that is `None`: whether it wrote.
async fn patch_ca_bundle<K>(
    api: &Api<K>,
    name: &str,
    ca_bundle: &[u8],
    patch: fn(&K, &[u8]) -> Option<Value>,
) -> Result<bool, CertsError>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let what = format!("{} {name}", K::kind(&()));
    for _ in 0..MAX_CONFLICT_RETRIES {
        let object = api.get(name).await.map_err(api_err("get", what.clone()))?;
        let Some(body) = patch(&object, ca_bundle) else {
            return Ok(false);
        };
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => return Ok(true),
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(api_err("patch", what)(e)),
        }
    }
    Err(CertsError::Conflict(what))
}

/// The self-managed certificate loop of one replica.
#[derive(Clone)]
pub struct SelfManagedCerts {
    secrets: Api<Secret>,
    crds: Api<CustomResourceDefinition>,
    vwcs: Api<ValidatingWebhookConfiguration>,
    settings: Settings,
}

fn api_err(action: &'static str, what: String) -> impl FnOnce(kube::Error) -> CertsError {
    move |source| CertsError::Api {
        action,
        what,
        source,
    }
}

fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409)
}

impl SelfManagedCerts {
    /// The loop for `settings`, talking to the API server through `client`.
    pub fn new(client: Client, settings: Settings) -> Self {
        Self {
            secrets: Api::namespaced(client.clone(), &settings.namespace),
            crds: Api::all(client.clone()),
            vwcs: Api::all(client),
            settings,
        }
    }

    fn secret_ref(&self) -> String {
        format!(
            "Secret {}/{}",
            self.settings.namespace, self.settings.secret_name
        )
    }

    /// Reads the Secret and renews it when [`assess`] says so; returns its
    /// data and why it was written.
    async fn ensure_secret(
        &self,
    ) -> Result<(BTreeMap<String, ByteString>, Option<&'static str>), CertsError> {
        let name = &self.settings.secret_name;
        for _ in 0..MAX_CONFLICT_RETRIES {
            let current = self
                .secrets
                .get_opt(name)
                .await
                .map_err(api_err("get", self.secret_ref()))?;
            let data = current.as_ref().and_then(|s| s.data.as_ref());
            let now = SystemTime::now();
            let verdict = assess(data, &self.settings.names, now);
            let reason = match verdict {
                Verdict::Current => return Ok((data.cloned().unwrap_or_default(), None)),
                Verdict::RenewServing(r) | Verdict::RenewAll(r) => r,
            };
            let new_data = issue(
                verdict,
                data,
                &self.settings.names,
                now,
                self.settings.policy,
            )?;
            let mut metadata = current.map(|s| s.metadata).unwrap_or_default();
            metadata.name = Some(name.clone());
            metadata.namespace = Some(self.settings.namespace.clone());
            metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(MANAGED_BY_LABEL.0.to_owned(), MANAGED_BY_LABEL.1.to_owned());
            let secret = Secret {
                metadata,
                type_: Some("kubernetes.io/tls".to_owned()),
                data: Some(new_data.clone()),
                ..Secret::default()
            };
            let pp = PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PostParams::default()
            };
            let written = if secret.metadata.resource_version.is_some() {
                self.secrets.replace(name, &pp, &secret).await
            } else {
                self.secrets.create(&pp, &secret).await
            };
            match written {
                Ok(_) => {
                    info!(secret = %self.secret_ref(), reason, "webhook certificate issued");
                    return Ok((new_data, Some(reason)));
                }
                Err(e) if is_conflict(&e) || matches!(&e, kube::Error::Api(s) if s.code == 404) => {
                    info!(secret = %self.secret_ref(), "another replica wrote the webhook certificate first; reading it");
                }
                Err(e) => return Err(api_err("write", self.secret_ref())(e)),
            }
        }
        Err(CertsError::Conflict(self.secret_ref()))
    }

    async fn patch_crd(&self, ca_bundle: &[u8]) -> Result<bool, CertsError> {
        patch_ca_bundle(&self.crds, &self.settings.crd_name, ca_bundle, crd_patch).await
    }

    /// Patches the ValidatingWebhookConfiguration; with no name (the
    /// validating webhook is not installed) there is none to patch.
    async fn patch_vwc(&self, ca_bundle: &[u8]) -> Result<bool, CertsError> {
        let name = &self.settings.webhook_configuration_name;
        if name.is_empty() {
            return Ok(false);
        }
        patch_ca_bundle(&self.vwcs, name, ca_bundle, vwc_patch).await
    }

    /// One check: the Secret, the two caBundles, then the files. A failed
    /// patch does not keep the files from being written (the server needs a
    /// certificate to start); the first error is returned after both.
    pub async fn check(&self) -> Result<CheckReport, CertsError> {
        let (data, secret_written) = self.ensure_secret().await?;
        let ca_bundle = value(&data, CA_CERT_KEY).unwrap_or(&[]).to_vec();
        let crd = self.patch_crd(&ca_bundle).await;
        let vwc = self.patch_vwc(&ca_bundle).await;
        let files = write_pair(
            &self.settings.cert_dir,
            value(&data, CERT_FILE).unwrap_or(&[]),
            value(&data, KEY_FILE).unwrap_or(&[]),
        )
        .await;
        let report = CheckReport {
            secret_written,
            crd_patched: *crd.as_ref().unwrap_or(&false),
            webhook_configuration_patched: *vwc.as_ref().unwrap_or(&false),
            files_written: *files.as_ref().unwrap_or(&false),
        };
        crd?;
        vwc?;
        files?;
        Ok(report)
    }

    /// Checks at once, then every check interval (sooner after a failure),
    /// until `stop` completes.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut last_error: Option<String> = None;
        loop {
            let wait = match self.check().await {
                Ok(report) => {
                    last_error = None;
                    if report.crd_patched || report.webhook_configuration_patched {
                        info!(
                            crd = report.crd_patched,
                            webhook_configuration = report.webhook_configuration_patched,
                            "webhook caBundle updated"
                        );
                    }
                    self.settings.check_interval
                }
                Err(e) => {
                    let message = e.to_string();
                    if last_error.as_deref() != Some(message.as_str()) {
                        warn!(error = %message, reason = e.reason(), "webhook certificate check failed");
                        last_error = Some(message);
                    }
                    self.settings.check_interval.min(ERROR_BACKOFF)
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

async fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| CertsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let _ = tokio::fs::remove_file(&tmp).await;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(mode);
    let file = tokio::fs::OpenOptions::from(options)
        .open(&tmp)
        .await
        .map_err(err)?;
    let mut file = file;
    tokio::io::AsyncWriteExt::write_all(&mut file, bytes)
        .await
        .map_err(err)?;
    file.sync_all().await.map_err(err)?;
    drop(file);
    tokio::fs::rename(&tmp, path).await.map_err(err)
}

/// Writes `tls.crt` and `tls.key` into `dir` (created if needed) unless they
/// already hold these bytes; each file is replaced by a rename, the key
/// readable by the owner only. Returns whether anything was written.
pub async fn write_pair(dir: &Path, cert: &[u8], key: &[u8]) -> Result<bool, CertsError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| CertsError::Write {
            path: dir.to_owned(),
            source,
        })?;
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let same = |p: &Path, want: &[u8]| std::fs::read(p).is_ok_and(|have| have == want);
    if same(&cert_path, cert) && same(&key_path, key) {
        return Ok(false);
    }
    // Key first: a reader that sees the new certificate also sees its key
    // (a mismatched pair is kept out by the reloader anyway).
    write_file(&key_path, key, 0o600).await?;
    write_file(&cert_path, cert, 0o644).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::admissionregistration::v1::{ValidatingWebhook, WebhookClientConfig};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
        CustomResourceConversion, WebhookConversion,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);
    const POLICY: Policy = Policy {
        ca_validity: Duration::from_secs(300 * 86_400),
        cert_validity: Duration::from_secs(90 * 86_400),
    };

    fn names() -> Vec<String> {
        serving_names("svc", "ops", &["127.0.0.1".to_owned()])
    }

    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn fresh() -> BTreeMap<String, ByteString> {
        renew(Verdict::RenewAll("test"), None, t0())
    }

    /// [`issue`] for [`names`] with [`POLICY`].
    fn renew(
        verdict: Verdict,
        old: Option<&BTreeMap<String, ByteString>>,
        at: SystemTime,
    ) -> BTreeMap<String, ByteString> {
        issue(verdict, old, &names(), at, POLICY).unwrap()
    }

    fn text(data: &BTreeMap<String, ByteString>, key: &str) -> String {
        String::from_utf8(data[key].0.clone()).unwrap()
    }

    fn ca_count(data: &BTreeMap<String, ByteString>) -> usize {
        pem_certs(&data[CA_CERT_KEY].0).unwrap().len()
    }

    #[test]
    fn names_are_the_service_names_and_extras_sorted_once() {
        assert_eq!(
            serving_names(
                "svc",
                "ops",
                &["svc.ops.svc".into(), " ".into(), "10.0.0.1".into()]
            ),
            vec!["10.0.0.1", "svc.ops.svc", "svc.ops.svc.cluster.local"]
        );
    }

    #[test]
    fn due_when_a_third_or_less_is_left_or_outside_validity() {
        assert!(!due(0, 300, 0));
        assert!(!due(0, 300, 200));
        assert!(due(0, 300, 201));
        assert!(due(0, 300, 300));
        assert!(due(10, 300, 9));
    }

    #[test]
    fn a_fresh_secret_is_current_until_its_renewal_window() {
        let data = fresh();
        assert_eq!(assess(Some(&data), &names(), t0()), Verdict::Current);
        // The serving certificate (90 days, backdated an hour) is renewed
        // once less than 30 days are left; the CA stays.
        assert_eq!(
            assess(Some(&data), &names(), t0() + 59 * DAY),
            Verdict::Current
        );
        assert_eq!(
            assess(Some(&data), &names(), t0() + 61 * DAY),
            Verdict::RenewServing("ServingCertDueForRenewal")
        );
        // The CA (300 days) is renewed once less than 100 days are left.
        assert_eq!(
            assess(Some(&data), &names(), t0() + 201 * DAY),
            Verdict::RenewAll("CaDueForRenewal")
        );
        assert_eq!(
            assess(Some(&data), &names(), t0() + 400 * DAY),
            Verdict::RenewAll("CaDueForRenewal")
        );
    }

    #[test]
    fn other_names_renew_the_serving_certificate() {
        let data = fresh();
        let other = serving_names("svc", "other-ns", &[]);
        assert_eq!(
            assess(Some(&data), &other, t0()),
            Verdict::RenewServing("ServingNamesChanged")
        );
    }

    #[test]
    fn missing_or_garbage_secrets_are_replaced() {
        assert_eq!(
            assess(None, &names(), t0()),
            Verdict::RenewAll("SecretMissing")
        );
        assert_eq!(
            assess(Some(&BTreeMap::new()), &names(), t0()),
            Verdict::RenewAll("CaMissingOrInvalid")
        );
        let good = fresh();
        let other = fresh();
        let with = |key: &str, bytes: &[u8]| {
            let mut d = good.clone();
            d.insert(key.to_owned(), ByteString(bytes.to_vec()));
            d
        };
        let garbage = b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        for (data, want) in [
            (
                with(CA_CERT_KEY, garbage),
                Verdict::RenewAll("CaMissingOrInvalid"),
            ),
            (
                with(CA_CERT_KEY, b"hello"),
                Verdict::RenewAll("CaMissingOrInvalid"),
            ),
            (
                with(CA_KEY_KEY, b""),
                Verdict::RenewAll("CaKeyMissingOrMismatched"),
            ),
            (
                with(CA_KEY_KEY, &other[CA_KEY_KEY].0),
                Verdict::RenewAll("CaKeyMissingOrMismatched"),
            ),
            // A serving certificate is not a CA.
            (
                with(CA_CERT_KEY, &good[CERT_FILE].0),
                Verdict::RenewAll("CaNotACertificateAuthority"),
            ),
            (
                with(CERT_FILE, garbage),
                Verdict::RenewServing("ServingCertMissingOrInvalid"),
            ),
            (
                with(KEY_FILE, b"junk"),
                Verdict::RenewServing("ServingKeyMissingOrMismatched"),
            ),
            (
                with(KEY_FILE, &other[KEY_FILE].0),
                Verdict::RenewServing("ServingKeyMissingOrMismatched"),
            ),
        ] {
            assert_eq!(assess(Some(&data), &names(), t0()), want);
        }
        // Another CA's serving certificate with its own key.
        let mut foreign = good.clone();
        foreign.insert(CERT_FILE.to_owned(), other[CERT_FILE].clone());
        foreign.insert(KEY_FILE.to_owned(), other[KEY_FILE].clone());
        assert_eq!(
            assess(Some(&foreign), &names(), t0()),
            Verdict::RenewServing("ServingCertNotSignedByCa")
        );
    }

    #[test]
    fn serving_renewal_keeps_the_ca_and_the_bundle() {
        let data = fresh();
        let later = t0() + 61 * DAY;
        let renewed = renew(Verdict::RenewServing("test"), Some(&data), later);
        assert_eq!(renewed[CA_CERT_KEY], data[CA_CERT_KEY]);
        assert_eq!(renewed[CA_KEY_KEY], data[CA_KEY_KEY]);
        assert_ne!(renewed[CERT_FILE], data[CERT_FILE]);
        assert_eq!(assess(Some(&renewed), &names(), later), Verdict::Current);
        assert!(text(&renewed, KEY_FILE).contains("PRIVATE KEY"));
    }

    #[test]
    fn a_serving_certificate_never_outlives_its_ca() {
        let long = Policy {
            ca_validity: 10 * DAY,
            cert_validity: 100 * DAY,
        };
        let data = issue(Verdict::RenewAll("test"), None, &names(), t0(), long).unwrap();
        let ca = pem_certs(&data[CA_CERT_KEY].0).unwrap();
        let leaf = pem_certs(&data[CERT_FILE].0).unwrap();
        let ca_end = validity(&parse_der(&ca[0]).unwrap()).1;
        let leaf_end = validity(&parse_der(&leaf[0]).unwrap()).1;
        assert_eq!(leaf_end, ca_end);
    }

    #[test]
    fn ca_rotation_keeps_the_previous_ca_until_it_expires() {
        let old = fresh();
        let rotate_at = t0() + 201 * DAY;
        let new = renew(Verdict::RenewAll("CaDueForRenewal"), Some(&old), rotate_at);
        assert_eq!(ca_count(&new), 2);
        let bundle = pem_certs(&new[CA_CERT_KEY].0).unwrap();
        let old_ca = pem_certs(&old[CA_CERT_KEY].0).unwrap();
        assert_ne!(bundle[0], old_ca[0], "the new CA comes first");
        assert_eq!(bundle[1], old_ca[0], "the previous CA follows");
        assert_ne!(new[CA_KEY_KEY], old[CA_KEY_KEY]);
        assert_eq!(assess(Some(&new), &names(), rotate_at), Verdict::Current);
        // The old serving certificate is still trusted through the bundle.
        let old_leaf_der = pem_certs(&old[CERT_FILE].0).unwrap();
        let old_leaf = parse_der(&old_leaf_der[0]).unwrap();
        let old_ca_cert = parse_der(&bundle[1]).unwrap();
        assert!(
            old_leaf
                .verify_signature(Some(old_ca_cert.public_key()))
                .is_ok()
        );

        // Once the previous CA has expired, the next write drops it.
        let after = t0() + 301 * DAY;
        let renewed = renew(Verdict::RenewServing("test"), Some(&new), after);
        assert_eq!(ca_count(&renewed), 1);
        assert_eq!(pem_certs(&renewed[CA_CERT_KEY].0).unwrap()[0], bundle[0]);
    }

    #[test]
    fn bundles_drop_repeats() {
        let a = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned();
        let b = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----".to_owned();
        assert_eq!(
            bundle(&[a.clone(), b.clone(), a.clone()]),
            format!("{a}{b}\n")
        );
    }

    fn crd(strategy: &str, ca: Option<&[u8]>) -> CustomResourceDefinition {
        let mut crd = CustomResourceDefinition::default();
        crd.metadata.resource_version = Some("42".into());
        crd.spec.conversion = Some(CustomResourceConversion {
            strategy: strategy.into(),
            webhook: (strategy == "Webhook").then(|| WebhookConversion {
                client_config: Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::WebhookClientConfig {
                    ca_bundle: ca.map(|c| ByteString(c.to_vec())),
                    url: Some("https://127.0.0.1:1/convert".into()),
                    ..Default::default()
                }),
                conversion_review_versions: vec!["v1".into()],
            }),
        });
        crd
    }

    #[test]
    fn the_crd_is_patched_only_when_its_bundle_differs() {
        assert_eq!(crd_patch(&crd("Webhook", Some(b"CA")), b"CA"), None);
        assert_eq!(crd_patch(&crd("None", None), b"CA"), None);
        assert_eq!(crd_patch(&CustomResourceDefinition::default(), b"CA"), None);
        for current in [None, Some(&b"OLD"[..])] {
            let patch = crd_patch(&crd("Webhook", current), b"CA").unwrap();
            assert_eq!(patch["metadata"]["resourceVersion"], "42");
            assert_eq!(
                patch["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"],
                "Q0E="
            );
        }
    }

    fn vwc(bundles: &[Option<&[u8]>]) -> ValidatingWebhookConfiguration {
        ValidatingWebhookConfiguration {
            metadata: ObjectMeta {
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            webhooks: Some(
                bundles
                    .iter()
                    .enumerate()
                    .map(|(i, b)| ValidatingWebhook {
                        name: format!("w{i}.locust.io"),
                        client_config: WebhookClientConfig {
                            ca_bundle: b.map(|b| ByteString(b.to_vec())),
                            ..WebhookClientConfig::default()
                        },
                        ..ValidatingWebhook::default()
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn the_webhook_configuration_is_patched_only_when_a_bundle_differs() {
        assert_eq!(vwc_patch(&vwc(&[Some(b"CA"), Some(b"CA")]), b"CA"), None);
        assert_eq!(vwc_patch(&vwc(&[]), b"CA"), None);
        let patch = vwc_patch(&vwc(&[Some(b"CA"), None]), b"CA").unwrap();
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        let hooks = patch["webhooks"].as_array().unwrap();
        assert_eq!(hooks.len(), 2);
        for (i, h) in hooks.iter().enumerate() {
            assert_eq!(h["name"], format!("w{i}.locust.io"));
            assert_eq!(h["clientConfig"]["caBundle"], "Q0E=");
        }
    }

    #[tokio::test]
    async fn the_pair_is_written_once_with_a_private_key_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("certs");
        assert!(write_pair(&sub, b"CERT", b"KEY").await.unwrap());
        assert!(!write_pair(&sub, b"CERT", b"KEY").await.unwrap());
        assert_eq!(std::fs::read(sub.join(CERT_FILE)).unwrap(), b"CERT");
        let mode = std::fs::metadata(sub.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(write_pair(&sub, b"CERT2", b"KEY").await.unwrap());
        assert_eq!(std::fs::read(sub.join(CERT_FILE)).unwrap(), b"CERT2");
    }
}

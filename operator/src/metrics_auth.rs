//! Who may read `/metrics`: the bearer token of each request is checked by
//! the API server, the way controller-runtime's secure metrics and
//! kube-rbac-proxy do. A `TokenReview` says who the token belongs to, a
//! `SubjectAccessReview` whether that user may `get` the non-resource URL
//! `/metrics` (granted by the `locust-k8s-operator-metrics-reader`
//! ClusterRole). Decisions are cached for [`DECISION_TTL`] by the token's
//! SHA-256 (never the token itself), so a scrape every few seconds costs the
//! API server two reviews a minute; the cache holds at most
//! [`MAX_CACHED_DECISIONS`] tokens.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::header::{AUTHORIZATION, HeaderMap};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};
use tracing::debug;

/// How long a decision about a token is reused.
pub const DECISION_TTL: Duration = Duration::from_secs(60);
/// Most tokens whose decision is cached.
pub const MAX_CACHED_DECISIONS: usize = 256;

/// What a request may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Read the metrics.
    Allowed,
    /// No bearer token, or one the API server does not accept (HTTP 401).
    Unauthenticated,
    /// A known user without the permission (HTTP 403); who it is.
    Forbidden(String),
}

/// A review that could not be made (HTTP 500; never cached).
#[derive(Debug, thiserror::Error)]
#[error("reviewing the token failed: {0}")]
pub struct ReviewError(#[source] kube::Error);

/// The bearer token of `headers`, if there is one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

type Digest = [u8; 32];

fn digest(token: &str) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Decisions by token digest, each kept for a TTL.
#[derive(Debug, Default)]
pub struct DecisionCache {
    entries: Mutex<BTreeMap<Digest, (Instant, Decision)>>,
}

impl DecisionCache {
    /// The decision about `token` made less than `ttl` ago.
    pub fn get(&self, token: &str, ttl: Duration) -> Option<Decision> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, decision) = entries.get(&digest(token))?;
        (at.elapsed() < ttl).then(|| decision.clone())
    }

    /// Remembers `decision` about `token`, dropping expired entries first and,
    /// when still full, the oldest.
    pub fn put(&self, token: &str, decision: Decision, ttl: Duration) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (at, _)| at.elapsed() < ttl);
        while entries.len() >= MAX_CACHED_DECISIONS {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => entries.remove(&k),
                None => break,
            };
        }
        entries.insert(digest(token), (Instant::now(), decision));
    }

    /// Tokens with a cached decision.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks tokens against the API server, with a [`DecisionCache`].
pub struct Authorizer {
    client: Client,
    cache: DecisionCache,
    path: &'static str,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("path", &self.path)
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl Authorizer {
    /// Authorizes `get` on the non-resource URL `path` through `client`.
    pub fn new(client: Client, path: &'static str) -> Self {
        Self {
            client,
            cache: DecisionCache::default(),
            path,
        }
    }

    /// The decision for a request with `headers`.
    pub async fn check(&self, headers: &HeaderMap) -> Result<Decision, ReviewError> {
        let Some(token) = bearer_token(headers) else {
            return Ok(Decision::Unauthenticated);
        };
        if let Some(d) = self.cache.get(token, DECISION_TTL) {
            return Ok(d);
        }
        let decision = self.review(token).await?;
        self.cache.put(token, decision.clone(), DECISION_TTL);
        Ok(decision)
    }

    /// Creates a review (cluster-scoped, answered in the response).
    async fn create<K>(&self, review: &K) -> Result<K, ReviewError>
    where
        K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        Api::<K>::all(self.client.clone())
            .create(&PostParams::default(), review)
            .await
            .map_err(ReviewError)
    }

    async fn review(&self, token: &str) -> Result<Decision, ReviewError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                ..TokenReviewSpec::default()
            },
            ..TokenReview::default()
        };
        let reviewed = self.create(&review).await?;
        let status = reviewed.status.unwrap_or_default();
        let Some(user) = status.user.filter(|_| status.authenticated == Some(true)) else {
            debug!("metrics request with a token the API server does not accept");
            return Ok(Decision::Unauthenticated);
        };
        let name = user.username.clone().unwrap_or_default();
        let access = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(self.path.to_owned()),
                    verb: Some("get".to_owned()),
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let decided = self.create(&access).await?;
        if decided.status.is_some_and(|s| s.allowed) {
            Ok(Decision::Allowed)
        } else {
            debug!(user = %name, "metrics request from a user without get on {}", self.path);
            Ok(Decision::Forbidden(name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(
                AUTHORIZATION,
                HeaderValue::from_str(a).unwrap_or(HeaderValue::from_static("")),
            );
        }
        h
    }

    #[test]
    fn bearer_tokens_are_found_and_nothing_else() {
        assert_eq!(
            bearer_token(&headers(Some("Bearer abc.def"))),
            Some("abc.def")
        );
        assert_eq!(bearer_token(&headers(Some("bearer  xyz "))), Some("xyz"));
        assert_eq!(bearer_token(&headers(Some("Basic dXNlcjpwdw=="))), None);
        assert_eq!(bearer_token(&headers(Some("Bearer "))), None);
        assert_eq!(bearer_token(&headers(Some("Bearer"))), None);
        assert_eq!(bearer_token(&headers(None)), None);
    }

    #[test]
    fn decisions_are_cached_by_digest_for_the_ttl_and_bounded() {
        let cache = DecisionCache::default();
        let ttl = Duration::from_millis(200);
        assert_eq!(cache.get("t1", ttl), None);
        cache.put("t1", Decision::Allowed, ttl);
        cache.put(
            "t2",
            Decision::Forbidden("system:serviceaccount:a:b".into()),
            ttl,
        );
        assert_eq!(cache.get("t1", ttl), Some(Decision::Allowed));
        assert_eq!(
            cache.get("t2", ttl),
            Some(Decision::Forbidden("system:serviceaccount:a:b".into()))
        );
        // The token itself is never kept.
        assert!(!format!("{cache:?}").contains("t1"));
        std::thread::sleep(ttl);
        assert_eq!(cache.get("t1", ttl), None, "expired");
        cache.put("t3", Decision::Unauthenticated, ttl);
        assert_eq!(cache.len(), 1, "expired entries are dropped on insert");
        for i in 0..(MAX_CACHED_DECISIONS + 10) {
            cache.put(
                &format!("token-{i}"),
                Decision::Allowed,
                Duration::from_secs(60),
            );
        }
        assert_eq!(cache.len(), MAX_CACHED_DECISIONS);
        assert_eq!(
            cache.get(
                &format!("token-{}", MAX_CACHED_DECISIONS + 9),
                Duration::from_secs(60)
            ),
            Some(Decision::Allowed),
            "the newest stays"
        );
        assert_eq!(
            cache.get("token-0", Duration::from_secs(60)),
            None,
            "the oldest goes"
        );
    }
}

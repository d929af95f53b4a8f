//! Lease-based leader election (coordination.k8s.io/v1), with client-go's
//! semantics: a candidate takes over a lease only after it has seen the lease
//! unchanged for a full lease duration (robust against clock skew), or at once
//! when the holder released it on shutdown. Optimistic concurrency (the
//! resourceVersion) decides races between candidates.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tracing::{debug, info, warn};

/// Leader election failures.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election API call failed: {0}")]
    Api(#[from] kube::Error),
    #[error("lost the leader lease {0}: not renewed within the renew deadline")]
    Lost(String),
}

impl LeaderError {
    /// CamelCase reason for Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            LeaderError::Api(_) => "LeaseApiError",
            LeaderError::Lost(_) => "LeaseLost",
        }
    }
}

/// Lease timing, as in client-go (15s / 10s / 2s by default).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// One candidate for the lease.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    observed: Option<(Option<String>, Option<MicroTime>, Option<String>)>,
    observed_at: Instant,
}

enum Attempt {
    Leader,
    Follower { holder: String },
}

impl LeaderElector {
    /// A candidate for lease `name` in the namespace of `api`.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, timing: Timing) -> Self {
        Self {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            timing,
            observed: None,
            observed_at: Instant::now(),
        }
    }

    /// This candidate's identity (pod name + random suffix).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Waits until this candidate holds the lease.
    pub async fn acquire(&mut self) -> Result<(), LeaderError> {
        let mut logged_holder: Option<String> = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leader) => {
                    info!(lease = %self.name, identity = %self.identity, "acquired leader lease");
                    return Ok(());
                }
                Ok(Attempt::Follower { holder }) => {
                    if logged_holder.as_deref() != Some(holder.as_str()) {
                        info!(lease = %self.name, %holder, "waiting for the leader lease");
                        logged_holder = Some(holder);
                    }
                }
                Err(e) => warn!(lease = %self.name, error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
    }

    /// Renews the lease every retry period; returns when it could not be renewed
    /// within the renew deadline (the caller must stop reconciling at once).
    pub async fn hold(&mut self) -> LeaderError {
        let mut last_renew = Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry_period).await;
            // A renewal that hangs (an apiserver that accepts connections but
            // does not answer) must not outlive the renew deadline either.
            let left = self
                .timing
                .renew_deadline
                .saturating_sub(last_renew.elapsed())
                .max(self.timing.retry_period);
            let attempt = tokio::time::timeout(left, self.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(Attempt::Leader)) => last_renew = Instant::now(),
                Ok(Ok(Attempt::Follower { holder })) => {
                    return LeaderError::Lost(format!("{} (now held by {holder})", self.name));
                }
                Ok(Err(e)) => {
                    warn!(lease = %self.name, error = %e, "renewing the leader lease failed");
                }
                Err(_) => {
                    warn!(lease = %self.name, timeout = ?left, "renewing the leader lease timed out");
                }
            }
            if last_renew.elapsed() >= self.timing.renew_deadline {
                return LeaderError::Lost(self.name.clone());
            }
        }
    }

    /// Gives the lease up so another replica can take over without waiting.
    pub async fn release(&self) -> Result<(), LeaderError> {
        let mut lease = self.api.get(&self.name).await?;
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        info!(lease = %self.name, "released leader lease");
        Ok(())
    }

    fn lease_secs(&self) -> i32 {
        i32::try_from(self.timing.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, LeaderError> {
        let now = MicroTime(Timestamp::now());
        let existing = self.api.get_opt(&self.name).await?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.lease_secs()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leader),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::Follower {
                    holder: "another candidate".into(),
                }),
                Err(e) => Err(e.into()),
            };
        };

        let spec = lease.spec.clone().unwrap_or_default();
        let record = (
            spec.holder_identity.clone(),
            spec.renew_time.clone(),
            lease.metadata.resource_version.clone(),
        );
        if self.observed.as_ref() != Some(&record) {
            self.observed = Some(record);
            self.observed_at = Instant::now();
        }
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let held_by_me = holder.as_deref() == Some(self.identity.as_str());
        let duration = Duration::from_secs(
            u64::try_from(
                spec.lease_duration_seconds
                    .unwrap_or(self.lease_secs())
                    .max(0),
            )
            .unwrap_or(0),
        );
        let expired = self.observed_at.elapsed() >= duration;
        if let Some(h) = &holder
            && !held_by_me
            && !expired
        {
            return Ok(Attempt::Follower { holder: h.clone() });
        }

        let mut new_spec = spec.clone();
        if !held_by_me {
            new_spec.acquire_time = Some(now.clone());
            new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        new_spec.holder_identity = Some(self.identity.clone());
        new_spec.lease_duration_seconds = Some(self.lease_secs());
        new_spec.renew_time = Some(now);
        lease.spec = Some(new_spec);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                let spec = updated.spec.clone().unwrap_or_default();
                self.observed = Some((
                    spec.holder_identity,
                    spec.renew_time,
                    updated.metadata.resource_version,
                ));
                self.observed_at = Instant::now();
                Ok(Attempt::Leader)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                debug!(lease = %self.name, "lost a race for the leader lease");
                Ok(Attempt::Follower {
                    holder: holder.unwrap_or_else(|| "another candidate".into()),
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}

//! Leader election on a `coordination.k8s.io/v1` Lease, so that with several
//! operator replicas exactly one reconciles (all of them serve the webhook).
//!
//! The usual client-go scheme: a holder renews `renewTime` every `renew`
//! interval; anyone may take a Lease whose `renewTime + leaseDurationSeconds`
//! has passed. Writes carry the read `resourceVersion`, so two candidates can
//! never both win. A leader that finds the Lease taken stops leading at once.
//! One that cannot reach the API server (a restart of it, a network blip)
//! keeps retrying until its renew deadline (two thirds of the lease
//! duration, as client-go's 10 s of 15 s) and stops leading only then, well
//! before anyone else may take the Lease over.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::build::FIELD_MANAGER;

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("{verb} Lease {namespace}/{name}: {source}")]
    Kube {
        verb: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("lost the leadership of Lease {namespace}/{name} to {holder:?}")]
    Lost {
        namespace: String,
        name: String,
        holder: Option<String>,
    },
    #[error(
        "could not renew Lease {namespace}/{name} within {deadline:?} of its last renewal (last error: {last})"
    )]
    RenewDeadline {
        namespace: String,
        name: String,
        deadline: Duration,
        last: String,
    },
}

impl LeaderError {
    /// Someone else holds the Lease now (rather than: we could not reach it).
    pub fn is_lost(&self) -> bool {
        matches!(self, LeaderError::Lost { .. })
    }
}

/// One candidate for one Lease.
pub struct Elector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    /// How long a renewal is valid for others.
    pub lease_duration: Duration,
    /// How often the holder renews.
    pub renew_every: Duration,
}

impl Elector {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }

    fn err(&self, verb: &'static str) -> impl FnOnce(kube::Error) -> LeaderError + '_ {
        move |source| LeaderError::Kube {
            verb,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source: Box::new(source),
        }
    }

    /// Try once to become (or stay) the holder. `Ok(false)`: someone else holds it.
    pub async fn try_acquire(&self) -> Result<bool, LeaderError> {
        let now = jiff::Timestamp::now();
        let Some(lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(self.err("get"))?
        else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(self.held_spec(now, 0, None)),
            };
            return match self.api.create(&post_params(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(self.err("create")(e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if !can_acquire(&spec, &self.identity, now) {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let (transitions, acquired) =
            if spec.holder_identity.as_deref() == Some(self.identity.as_str()) {
                (transitions, spec.acquire_time.clone())
            } else {
                (transitions + 1, None)
            };
        let mut updated = lease;
        updated.spec = Some(self.held_spec(now, transitions, acquired));
        // replace() sends the resourceVersion we read: a concurrent winner makes this 409.
        match self.api.replace(&self.name, &post_params(), &updated).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.err("update")(e)),
        }
    }

    fn held_spec(
        &self,
        now: jiff::Timestamp,
        transitions: i32,
        acquired: Option<MicroTime>,
    ) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// How long after its last renewal a leader that cannot renew stops
    /// leading: two thirds of the lease duration, so it has stopped before
    /// the Lease expires for the others.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration * 2 / 3
    }

    /// Pause between attempts after a failed one.
    fn retry_every(&self) -> Duration {
        self.renew_every.min(Duration::from_secs(2))
    }

    /// [`Self::try_acquire`] that gives up after `limit`: a request to an API
    /// server that accepted the connection and went away would otherwise
    /// wait for the client's read timeout, minutes past any lease.
    async fn try_acquire_within(&self, limit: Duration) -> Result<bool, String> {
        match tokio::time::timeout(limit, self.try_acquire()).await {
            Ok(Ok(acquired)) => Ok(acquired),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {limit:?} from the API server for Lease {}/{}",
                self.namespace, self.name
            )),
        }
    }

    /// Wait until this candidate holds the Lease. API errors (the server
    /// unreachable at start, or restarting) are retried, never fatal.
    pub async fn acquire(&self) {
        let mut failing = false;
        loop {
            match self.try_acquire_within(self.renew_deadline()).await {
                Ok(true) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "became the leader");
                    return;
                }
                Ok(false) => failing = false,
                Err(e) if !failing => {
                    tracing::warn!(lease = %self.name, "trying to take the leader Lease: {e}; retrying");
                    failing = true;
                }
                Err(e) => {
                    tracing::debug!(lease = %self.name, "trying to take the leader Lease: {e}")
                }
            }
            let pause = if failing {
                self.retry_every()
            } else {
                self.renew_every
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// Renew until leadership ends; returns why: the Lease was taken
    /// ([`LeaderError::Lost`]), or it could not be renewed within
    /// [`Self::renew_deadline`] ([`LeaderError::RenewDeadline`]).
    pub async fn keep(&self) -> LeaderError {
        let mut renewed = Instant::now();
        let mut pause = self.renew_every;
        let mut last_error = None;
        loop {
            tokio::time::sleep(pause).await;
            let Some(left) = self.renew_deadline().checked_sub(renewed.elapsed()) else {
                return self.deadline_passed(
                    last_error.unwrap_or_else(|| "no renewal attempt in time".into()),
                );
            };
            match self.try_acquire_within(left).await {
                Ok(true) => {
                    renewed = Instant::now();
                    pause = self.renew_every;
                    last_error = None;
                }
                Err(e) => {
                    if renewed.elapsed() >= self.renew_deadline() {
                        return self.deadline_passed(e);
                    }
                    tracing::warn!(
                        lease = %self.name,
                        "renewing the leader Lease: {e}; retrying, still leading for {:?}",
                        self.renew_deadline().saturating_sub(renewed.elapsed())
                    );
                    pause = self.retry_every();
                    last_error = Some(e);
                }
                Ok(false) => {
                    let holder =
                        tokio::time::timeout(self.retry_every(), self.api.get_opt(&self.name))
                            .await
                            .ok()
                            .and_then(Result::ok)
                            .flatten()
                            .and_then(|l| l.spec)
                            .and_then(|s| s.holder_identity);
                    return LeaderError::Lost {
                        namespace: self.namespace.clone(),
                        name: self.name.clone(),
                        holder,
                    };
                }
            }
        }
    }

    fn deadline_passed(&self, last: String) -> LeaderError {
        LeaderError::RenewDeadline {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            deadline: self.renew_deadline(),
            last,
        }
    }

    /// Give the Lease up (on shutdown) so a successor need not wait for expiry.
    pub async fn release(&self) -> Result<(), LeaderError> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(self.err("get"))?
        else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        match self.api.replace(&self.name, &post_params(), &lease).await {
            Ok(_) | Err(kube::Error::Api(_)) => Ok(()),
            Err(e) => Err(self.err("release")(e)),
        }
    }
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// May `identity` take or keep a Lease in this state at `now`?
pub fn can_acquire(spec: &LeaseSpec, identity: &str, now: jiff::Timestamp) -> bool {
    match spec.holder_identity.as_deref() {
        None | Some("") => true,
        Some(holder) if holder == identity => true,
        Some(_) => {
            let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
            match &spec.renew_time {
                Some(MicroTime(renewed)) => {
                    renewed.as_second().saturating_add(duration) < now.as_second()
                }
                None => true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(second).expect("valid timestamp")
    }

    fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(at(renewed))),
            ..Default::default()
        }
    }

    #[test]
    fn free_own_and_expired_leases_can_be_taken() {
        assert!(can_acquire(&LeaseSpec::default(), "a", at(100)));
        assert!(
            can_acquire(&held_by("a", 99), "a", at(100)),
            "the holder keeps it"
        );
        assert!(
            !can_acquire(&held_by("b", 90), "a", at(100)),
            "b renewed 10 s ago"
        );
        assert!(
            !can_acquire(&held_by("b", 85), "a", at(100)),
            "exactly at expiry is still b's"
        );
        assert!(can_acquire(&held_by("b", 84), "a", at(100)), "expired");
    }
}

//! Leader election on a `coordination.k8s.io/v1` Lease, so that with several
//! operator replicas exactly one reconciles (all of them serve the webhook).
//!
//! The client-go scheme: a holder renews `renewTime` every `renew` interval.
//! A candidate never compares the holder's `renewTime` with its own clock
//! (clock skew between nodes would make two leaders): it notes when *it*
//! saw the holder's record change, and takes the Lease only once the record
//! stayed the same for `leaseDurationSeconds` of its own monotonic time.
//! Writes carry the read `resourceVersion`, so two candidates can never both
//! win. Every call has a time limit. A leader stops leading (steps down —
//! the process and its webhook stay) when the Lease is taken or when it could
//! not renew within its renew deadline (two thirds of the lease duration, as
//! client-go's 10 s of 15 s), well before anyone else may take it over; and
//! [`Leadership`] makes every API write of the controller check, just before
//! it is sent, that the last renewal is still within that deadline — so a
//! leader that was frozen (SIGSTOP, a VM pause) and wakes up after its
//! successor took over writes nothing.
//!
//! Why not a crate: kube-lease-manager 0.13 (the one maintained crate for
//! kube 5) renews and force-releases with unconditional patches (no
//! resourceVersion precondition), keeps reporting leadership while renewals
//! fail, and compares the holder's `renewTime` with the local clock; each is
//! a way to two leaders this module exists to rule out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// May the controller write now? Shared by the elector (which extends it on
/// every renewal) and the write path (which checks it before every write).
/// Without leader election it always may.
#[derive(Clone, Debug)]
pub struct Leadership(Arc<LeadershipState>);

#[derive(Debug)]
struct LeadershipState {
    elected: bool,
    base: Instant,
    /// Milliseconds after `base` until which writes are allowed (0: none).
    until_ms: AtomicU64,
}

impl Default for Leadership {
    fn default() -> Self {
        Self::unelected()
    }
}

impl Leadership {
    /// No election: the only replica always writes.
    pub fn unelected() -> Self {
        Self::new(false)
    }

    /// Under election: no writes until the first renewal.
    pub fn elected() -> Self {
        Self::new(true)
    }

    fn new(elected: bool) -> Self {
        Self(Arc::new(LeadershipState {
            elected,
            base: Instant::now(),
            until_ms: AtomicU64::new(0),
        }))
    }

    /// Writes are allowed until `until`.
    fn extend(&self, until: Instant) {
        let ms = u64::try_from(until.saturating_duration_since(self.0.base).as_millis())
            .unwrap_or(u64::MAX);
        self.0.until_ms.store(ms, Ordering::SeqCst);
    }

    /// No more writes (stepped down).
    pub fn revoke(&self) {
        self.0.until_ms.store(0, Ordering::SeqCst);
    }

    /// May the controller write now?
    pub fn may_write(&self) -> bool {
        if !self.0.elected {
            return true;
        }
        let now = u64::try_from(self.0.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        now < self.0.until_ms.load(Ordering::SeqCst)
    }
}

/// The holder's record as last seen, and when this candidate saw it change.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    at: Instant,
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
    /// Extended on every renewal; checked before every write.
    pub leadership: Leadership,
    seen: Mutex<Option<Seen>>,
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
            leadership: Leadership::elected(),
            seen: Mutex::new(None),
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
        let verdict = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let (verdict, next) = judge(&spec, &self.identity, seen.as_ref(), Instant::now());
            *seen = next;
            verdict
        };
        if verdict == Verdict::HeldByOther {
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
        let sent = Instant::now();
        match tokio::time::timeout(limit, self.try_acquire()).await {
            Ok(Ok(true)) => {
                // Others may take the Lease `lease_duration` after they saw
                // this renewal, which is after it was sent: stop writing
                // well before that.
                self.leadership.extend(sent + self.renew_deadline());
                Ok(true)
            }
            Ok(Ok(false)) => Ok(false),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {limit:?} from the API server for Lease {}/{}",
                self.namespace, self.name
            )),
        }
    }

    /// Wait until this candidate holds the Lease; `answered` is called each
    /// time the API server answered. API errors (the server unreachable at
    /// start, or restarting) are retried, never fatal.
    pub async fn acquire(&self, answered: impl Fn()) {
        let mut failing = false;
        loop {
            match self.try_acquire_within(self.renew_deadline()).await {
                Ok(true) => {
                    answered();
                    tracing::info!(lease = %self.name, identity = %self.identity, "became the leader");
                    return;
                }
                Ok(false) => {
                    answered();
                    failing = false;
                }
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
        let why = self.renew_until_lost().await;
        self.leadership.revoke();
        why
    }

    async fn renew_until_lost(&self) -> LeaderError {
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
        self.leadership.revoke();
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

/// What a candidate may do with a Lease it just read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Free, ours, or its holder's record has not changed for a lease
    /// duration of our own time: take or renew it.
    Take,
    /// Someone else's, renewed (as far as we can tell) within its duration.
    HeldByOther,
}

/// Judge `spec` for `identity` at `now`, given what was seen before; returns
/// the verdict and what to remember. Only our own monotonic clock is used.
fn judge(
    spec: &LeaseSpec,
    identity: &str,
    seen: Option<&Seen>,
    now: Instant,
) -> (Verdict, Option<Seen>) {
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let Some(other) = holder.as_deref().filter(|h| *h != identity) else {
        return (Verdict::Take, None);
    };
    let lease_duration =
        Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(15)).unwrap_or(15));
    let same_record =
        seen.is_some_and(|s| s.holder.as_deref() == Some(other) && s.renew_time == spec.renew_time);
    let first_seen = match seen {
        Some(s) if same_record => s.at,
        _ => now,
    };
    let remembered = Seen {
        holder: holder.clone(),
        renew_time: spec.renew_time.clone(),
        at: first_seen,
    };
    if same_record && now.saturating_duration_since(first_seen) > lease_duration {
        (Verdict::Take, Some(remembered))
    } else {
        (Verdict::HeldByOther, Some(remembered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(
                jiff::Timestamp::from_second(renewed).expect("timestamp"),
            )),
            ..Default::default()
        }
    }

    #[test]
    fn free_and_own_leases_are_taken_at_once() {
        let now = Instant::now();
        assert_eq!(
            judge(&LeaseSpec::default(), "a", None, now).0,
            Verdict::Take
        );
        assert_eq!(judge(&held_by("a", 1), "a", None, now).0, Verdict::Take);
        let released = LeaseSpec {
            holder_identity: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(judge(&released, "a", None, now).0, Verdict::Take);
    }

    #[test]
    fn another_holder_expires_only_after_a_lease_duration_of_our_own_time() {
        let start = Instant::now();
        // Its renewTime is far in the past by our clock (skew): irrelevant.
        let lease = held_by("b", 0);
        let (verdict, seen) = judge(&lease, "a", None, start);
        assert_eq!(verdict, Verdict::HeldByOther, "first sight never expires");
        let at = |secs| start + Duration::from_secs(secs);
        let (verdict, seen) = judge(&lease, "a", seen.as_ref(), at(15));
        assert_eq!(
            verdict,
            Verdict::HeldByOther,
            "exactly the duration: still b's"
        );
        let (verdict, _) = judge(&lease, "a", seen.as_ref(), at(16));
        assert_eq!(
            verdict,
            Verdict::Take,
            "unchanged for longer than the duration"
        );
        // A renewal restarts our count.
        let (_, seen) = judge(&lease, "a", None, start);
        let renewed = held_by("b", 5);
        let (verdict, seen) = judge(&renewed, "a", seen.as_ref(), at(10));
        assert_eq!(verdict, Verdict::HeldByOther);
        let (verdict, _) = judge(&renewed, "a", seen.as_ref(), at(20));
        assert_eq!(
            verdict,
            Verdict::HeldByOther,
            "10 s after we saw it renewed"
        );
        // Even a renewTime in our future (skew the other way) counts from sight.
        let (verdict, _) = judge(&held_by("b", i64::from(i32::MAX)), "a", None, at(30));
        assert_eq!(verdict, Verdict::HeldByOther);
    }

    #[test]
    fn leadership_allows_writes_until_the_deadline_only() {
        assert!(Leadership::unelected().may_write());
        let elected = Leadership::elected();
        assert!(!elected.may_write(), "no writes before the first renewal");
        elected.extend(Instant::now() + Duration::from_secs(10));
        assert!(elected.may_write());
        elected.extend(Instant::now());
        assert!(!elected.may_write(), "past the deadline");
        elected.extend(Instant::now() + Duration::from_secs(10));
        elected.revoke();
        assert!(!elected.may_write());
    }
}

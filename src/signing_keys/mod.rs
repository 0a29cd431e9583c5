//! The JWT signing key set of an app (`spec.identity.jwt`): which keys the
//! Secret holds, when they rotate, and when a retired key may go. Pure: the
//! clock and the key generator are arguments, the controller does the I/O.
//!
//! Three kinds of key, one Secret:
//! - the **active** key signs (its private key is mounted into the pods);
//! - the **next** key is published in the JWKS from the moment it is made, a
//!   whole rotation period before it signs, so every pod can verify its
//!   tokens before any pod issues one (Secret volumes take a while to update:
//!   [`Policy::propagation`]);
//! - **retired** keys stay in the JWKS until every token they signed has
//!   expired: the token lifetime after they last signed, plus the
//!   propagation time during which slow pods may still sign with them.
//!
//! The schedule (key ids, algorithms and times: nothing secret) is also kept
//! in an annotation of the Secret, so that a reconcile decides from the
//! cached metadata that nothing is due, without reading the Secret. Private
//! keys of retired keys are dropped at once: nothing signs with them again.

pub mod keys;

use std::collections::BTreeMap;

use std::sync::LazyLock;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::crd::identity::DURATION_PATTERN;
use crate::crd::{JwtAlgorithm, JwtSpec};
pub use keys::{Generated, PrivateMaterial};

/// Annotation of the Secret: its [`Schedule`], as JSON.
pub const SCHEDULE_ANNOTATION: &str = "stateless.dev/signing-keys";
/// Annotation of a StatelessApp: a new value rotates its keys once, now.
pub const ROTATE_ANNOTATION: &str = "stateless.dev/rotate-signing-keys";

/// Keys of the Secret.
pub mod files {
    /// The public keys (JWKS, RFC 7517): active, next and retired.
    pub const JWKS: &str = "jwks.json";
    /// The active private key, PKCS#8 PEM.
    pub const SIGNING_KEY: &str = "signing-key.pem";
    /// The active private key as a JWK.
    pub const SIGNING_JWK: &str = "signing-key.jwk";
    /// The active key's id.
    pub const KEY_ID: &str = "kid";
    /// The next key's private PEM: kept for its turn, never mounted.
    pub const NEXT_KEY: &str = "next-signing-key.pem";
    /// The next key's private JWK: kept for its turn, never mounted.
    pub const NEXT_JWK: &str = "next-signing-key.jwk";
    /// What the pods get.
    pub const MOUNTED: [&str; 4] = [JWKS, SIGNING_KEY, SIGNING_JWK, KEY_ID];
}

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error(
        "identity.jwt.{field} {value:?} is not a duration of hours, minutes and seconds such as 720h or 1h30m"
    )]
    BadDuration { field: &'static str, value: String },
    #[error(
        "identity.jwt.rotationPeriod {value} is out of range: it must be at least 1h and at most 8760h"
    )]
    PeriodOutOfRange { value: String },
    #[error("identity.jwt.tokenLifetime {value} is out of range: it must be at least 1s")]
    LifetimeOutOfRange { value: String },
    #[error(
        "identity.jwt.tokenLifetime {lifetime} is longer than rotationPeriod {period}: a token must not outlive more than one rotation; shorten tokenLifetime or raise rotationPeriod"
    )]
    LifetimeLongerThanPeriod { lifetime: String, period: String },
    #[error("generating a {algorithm} signing key: {message}")]
    Generate {
        algorithm: JwtAlgorithm,
        message: String,
    },
    /// What is wrong with the Secret holding the keys.
    #[error("{0}")]
    Unreadable(String),
}

/// The key set's settings, from the spec, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub algorithm: JwtAlgorithm,
    pub rotation_period: SignedDuration,
    pub token_lifetime: SignedDuration,
    /// How long a Secret's new content may take to reach every pod's volume
    /// (the kubelet's sync period plus its cache TTL): a new next key waits
    /// this long before it may sign, and a retired key is kept this much
    /// longer.
    pub propagation: SignedDuration,
}

const MIN_PERIOD: SignedDuration = SignedDuration::from_hours(1);
const MAX_PERIOD: SignedDuration = SignedDuration::from_hours(8760);
const MIN_LIFETIME: SignedDuration = SignedDuration::from_secs(1);

impl Policy {
    /// The CRD's CEL rules check the same; this is for objects that predate
    /// them and for `lint`, which has no API server.
    pub fn from_spec(spec: &JwtSpec, propagation: SignedDuration) -> Result<Self, SigningKeyError> {
        let period = parse_duration("rotationPeriod", spec.rotation_period())?;
        let lifetime = parse_duration("tokenLifetime", spec.token_lifetime())?;
        if !(MIN_PERIOD..=MAX_PERIOD).contains(&period) {
            return Err(SigningKeyError::PeriodOutOfRange {
                value: spec.rotation_period().into(),
            });
        }
        if lifetime < MIN_LIFETIME {
            return Err(SigningKeyError::LifetimeOutOfRange {
                value: spec.token_lifetime().into(),
            });
        }
        if lifetime > period {
            return Err(SigningKeyError::LifetimeLongerThanPeriod {
                lifetime: spec.token_lifetime().into(),
                period: spec.rotation_period().into(),
            });
        }
        Ok(Self {
            algorithm: spec.algorithm,
            rotation_period: period,
            token_lifetime: lifetime,
            propagation,
        })
    }
}

/// [`DURATION_PATTERN`], the CRD's own pattern, with a group per unit.
static DURATION: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(DURATION_PATTERN).ok());

/// A duration as the CRD accepts it ([`DURATION_PATTERN`]): hours, minutes
/// and seconds, each optional, in that order, as Go writes them.
pub fn parse_duration(field: &'static str, value: &str) -> Result<SignedDuration, SigningKeyError> {
    let bad = || SigningKeyError::BadDuration {
        field,
        value: value.into(),
    };
    let units = DURATION
        .as_ref()
        .and_then(|re| re.captures(value))
        .filter(|_| !value.is_empty())
        .ok_or_else(bad)?;
    let mut total: i64 = 0;
    for (group, seconds) in [(1, 3600), (2, 60), (3, 1)] {
        if let Some(unit) = units.get(group) {
            // The pattern allows at most six digits and the unit letter.
            let digits = unit.as_str().trim_end_matches(['h', 'm', 's']);
            total += digits.parse::<i64>().map_err(|_| bad())? * seconds;
        }
    }
    Ok(SignedDuration::from_secs(total))
}

/// Which keys the Secret holds and since when. Public: it is the Secret's
/// annotation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub active: ActiveKey,
    pub next: NextKey,
    #[serde(default)]
    pub retired: Vec<RetiredKey>,
    /// The last value of [`ROTATE_ANNOTATION`] acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_request: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActiveKey {
    pub kid: String,
    pub alg: JwtAlgorithm,
    /// When it started to sign.
    pub activated: Timestamp,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NextKey {
    pub kid: String,
    pub alg: JwtAlgorithm,
    /// When it was made, and published.
    pub created: Timestamp,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetiredKey {
    pub kid: String,
    pub alg: JwtAlgorithm,
    /// When it stopped signing.
    pub retired: Timestamp,
}

/// What is due at some instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Retired keys whose tokens have all expired.
    pub drop: Vec<String>,
    /// The next key is of another algorithm than the spec's.
    pub replace_next: bool,
    /// The next key takes over now.
    pub rotate: bool,
    /// A rotation is wanted (period over, or asked for) but the next key is
    /// too new to sign: pods may not know it yet.
    pub rotation_waits: bool,
    /// When to look again (the earliest future instant something is due).
    pub wake_at: Option<Timestamp>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && !self.replace_next && !self.rotate
    }
}

impl Schedule {
    /// When the active key's period ends and the next key may sign.
    pub fn next_rotation(&self, policy: &Policy) -> Timestamp {
        let due = after(self.active.activated, policy.rotation_period);
        due.max(after(self.next.created, policy.propagation))
    }

    /// When a retired key may go: its last tokens have expired everywhere.
    fn expiry(key: &RetiredKey, policy: &Policy) -> Timestamp {
        after(
            after(key.retired, policy.token_lifetime),
            policy.propagation,
        )
    }

    pub fn plan(&self, policy: &Policy, now: Timestamp, request: Option<&str>) -> Plan {
        let mut plan = Plan::default();
        let mut wake = Vec::new();
        for key in &self.retired {
            let expiry = Self::expiry(key, policy);
            if expiry <= now {
                plan.drop.push(key.kid.clone());
            } else {
                wake.push(expiry);
            }
        }
        plan.replace_next = self.next.alg != policy.algorithm;
        let asked = request.is_some() && request != self.rotation_request.as_deref();
        let period_end = after(self.active.activated, policy.rotation_period);
        let next_known = if plan.replace_next {
            after(now, policy.propagation)
        } else {
            after(self.next.created, policy.propagation)
        };
        if asked || period_end <= now {
            if next_known <= now {
                plan.rotate = true;
            } else {
                plan.rotation_waits = true;
                wake.push(next_known);
            }
        } else {
            wake.push(period_end.max(next_known));
        }
        plan.wake_at = wake.into_iter().filter(|t| *t > now).min();
        plan
    }
}

/// `t + d`, or the end of time.
fn after(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(Timestamp::MAX)
}

/// The whole key set: the schedule, the two private keys still needed, and
/// the published public keys.
#[derive(Clone, Debug, PartialEq)]
pub struct KeySet {
    pub schedule: Schedule,
    active: PrivateMaterial,
    next: PrivateMaterial,
    /// Public JWKs of every key in the schedule, by kid.
    public: BTreeMap<String, Value>,
}

impl KeySet {
    /// A new key set: an active key that signs from `now`, and its successor.
    pub fn new(
        policy: &Policy,
        now: Timestamp,
        request: Option<&str>,
        generate: &mut impl FnMut(JwtAlgorithm) -> Result<Generated, SigningKeyError>,
    ) -> Result<Self, SigningKeyError> {
        let active = generate(policy.algorithm)?;
        let next = generate(policy.algorithm)?;
        Ok(Self {
            schedule: Schedule {
                active: ActiveKey {
                    kid: active.kid.clone(),
                    alg: policy.algorithm,
                    activated: now,
                },
                next: NextKey {
                    kid: next.kid.clone(),
                    alg: policy.algorithm,
                    created: now,
                },
                retired: Vec::new(),
                rotation_request: request.map(str::to_string),
            },
            public: BTreeMap::from([
                (active.kid.clone(), active.public_jwk),
                (next.kid.clone(), next.public_jwk),
            ]),
            active: active.private,
            next: next.private,
        })
    }

    /// Carry out `plan` (from [`Schedule::plan`] at `now`); a description of
    /// each change, for the app's Event.
    pub fn advance(
        &mut self,
        plan: &Plan,
        policy: &Policy,
        now: Timestamp,
        request: Option<&str>,
        generate: &mut impl FnMut(JwtAlgorithm) -> Result<Generated, SigningKeyError>,
    ) -> Result<Vec<String>, SigningKeyError> {
        let mut changes = Vec::new();
        let schedule = &mut self.schedule;
        if !plan.drop.is_empty() {
            schedule.retired.retain(|k| !plan.drop.contains(&k.kid));
            for kid in &plan.drop {
                self.public.remove(kid);
            }
            changes.push(format!(
                "unpublished retired signing key {} (its tokens have expired)",
                plan.drop.join(", ")
            ));
        }
        if plan.replace_next {
            let fresh = generate(policy.algorithm)?;
            self.public.remove(&schedule.next.kid);
            changes.push(format!(
                "replaced the next signing key {} ({}) by {} ({}): it signs from the next rotation",
                schedule.next.kid, schedule.next.alg, fresh.kid, policy.algorithm
            ));
            schedule.next = NextKey {
                kid: fresh.kid.clone(),
                alg: policy.algorithm,
                created: now,
            };
            self.public.insert(fresh.kid, fresh.public_jwk);
            self.next = fresh.private;
        }
        if plan.rotate {
            let fresh = generate(policy.algorithm)?;
            let retired = std::mem::replace(
                &mut schedule.active,
                ActiveKey {
                    kid: schedule.next.kid.clone(),
                    alg: schedule.next.alg,
                    activated: now,
                },
            );
            changes.push(format!(
                "rotated the signing keys: {} signs now, {} is retired (published for the token lifetime), {} is next",
                schedule.active.kid, retired.kid, fresh.kid
            ));
            schedule.retired.insert(
                0,
                RetiredKey {
                    kid: retired.kid,
                    alg: retired.alg,
                    retired: now,
                },
            );
            schedule.next = NextKey {
                kid: fresh.kid.clone(),
                alg: policy.algorithm,
                created: now,
            };
            self.public.insert(fresh.kid, fresh.public_jwk);
            self.active = std::mem::replace(&mut self.next, fresh.private);
            schedule.rotation_request = request.map(str::to_string);
        }
        Ok(changes)
    }

    /// The JWKS: active first, then next, then retired newest first.
    pub fn jwks(&self) -> Value {
        let s = &self.schedule;
        let order = [&s.active.kid, &s.next.kid]
            .into_iter()
            .chain(s.retired.iter().map(|k| &k.kid));
        let keys: Vec<Value> = order
            .filter_map(|kid| self.public.get(kid).cloned())
            .collect();
        json!({ "keys": keys })
    }

    pub fn annotation(&self) -> String {
        serde_json::to_string(&self.schedule).unwrap_or_default()
    }

    /// The Secret's data.
    pub fn secret_data(&self) -> BTreeMap<String, ByteString> {
        let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
        BTreeMap::from([
            (files::JWKS.to_string(), bytes(&self.jwks().to_string())),
            (files::SIGNING_KEY.to_string(), bytes(&self.active.pem)),
            (files::SIGNING_JWK.to_string(), bytes(&self.active.jwk)),
            (files::KEY_ID.to_string(), bytes(&self.schedule.active.kid)),
            (files::NEXT_KEY.to_string(), bytes(&self.next.pem)),
            (files::NEXT_JWK.to_string(), bytes(&self.next.jwk)),
        ])
    }

    /// Read back what [`Self::annotation`] and [`Self::secret_data`] wrote.
    pub fn from_secret(
        annotation: Option<&str>,
        data: &BTreeMap<String, ByteString>,
    ) -> Result<Self, SigningKeyError> {
        let schedule = parse_schedule(annotation)?;
        let text = |key: &str| -> Result<String, SigningKeyError> {
            let value = data
                .get(key)
                .ok_or_else(|| SigningKeyError::Unreadable(format!("it has no key {key}")))?;
            String::from_utf8(value.0.clone())
                .map_err(|_| SigningKeyError::Unreadable(format!("its key {key} is not UTF-8")))
        };
        let jwks: Value = serde_json::from_str(&text(files::JWKS)?).map_err(|e| {
            SigningKeyError::Unreadable(format!("{} is not JSON: {e}", files::JWKS))
        })?;
        let mut public = BTreeMap::new();
        for key in jwks["keys"].as_array().into_iter().flatten() {
            if let Some(kid) = key["kid"].as_str() {
                public.insert(kid.to_string(), key.clone());
            }
        }
        let wanted = [&schedule.active.kid, &schedule.next.kid]
            .into_iter()
            .chain(schedule.retired.iter().map(|k| &k.kid));
        for kid in wanted {
            if !public.contains_key(kid) {
                return Err(SigningKeyError::Unreadable(format!(
                    "{} lacks key {kid} of its schedule",
                    files::JWKS
                )));
            }
        }
        if text(files::KEY_ID)? != schedule.active.kid {
            return Err(SigningKeyError::Unreadable(format!(
                "{} is not the active key {} of its schedule",
                files::KEY_ID,
                schedule.active.kid
            )));
        }
        Ok(Self {
            active: PrivateMaterial {
                pem: text(files::SIGNING_KEY)?,
                jwk: text(files::SIGNING_JWK)?,
            },
            next: PrivateMaterial {
                pem: text(files::NEXT_KEY)?,
                jwk: text(files::NEXT_JWK)?,
            },
            public,
            schedule,
        })
    }
}

/// The schedule from the Secret's annotation.
pub fn parse_schedule(annotation: Option<&str>) -> Result<Schedule, SigningKeyError> {
    let text = annotation.ok_or_else(|| {
        SigningKeyError::Unreadable(format!("it has no annotation {SCHEDULE_ANNOTATION}"))
    })?;
    serde_json::from_str(text).map_err(|e| {
        SigningKeyError::Unreadable(format!(
            "its annotation {SCHEDULE_ANNOTATION} is unreadable: {e}"
        ))
    })
}

#[cfg(test)]
mod tests;

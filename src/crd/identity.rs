//! `spec.identity`: the keys every replica signs and verifies tokens with,
//! so identity travels in a signed token instead of in one pod's memory.
//!
//! The operator generates the keys, keeps them in one Secret per app and
//! rotates them on a schedule (see [`crate::signing_keys`]); the pods read
//! them from files that update in place, so a rotation restarts nothing.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Where the key files are mounted in every container.
pub const JWT_MOUNT_PATH: &str = "/var/run/secrets/stateless.dev/jwt";

/// Environment variables the operator sets in every container when
/// `identity.jwt` is configured. Each names a file, never a key: the files
/// change at a rotation, a variable would not.
pub mod env {
    /// The public keys that verify tokens (a JWKS: the active, the next and the retired keys).
    pub const JWKS_FILE: &str = "JWT_JWKS_FILE";
    /// The active private key, PKCS#8 PEM.
    pub const SIGNING_KEY_FILE: &str = "JWT_SIGNING_KEY_FILE";
    /// The active private key as a JWK (with its `kid` and `alg`).
    pub const SIGNING_JWK_FILE: &str = "JWT_SIGNING_JWK_FILE";
    /// The `kid` of the active key, to put in the header of every token signed.
    pub const KEY_ID_FILE: &str = "JWT_KEY_ID_FILE";
}

/// Shared identity for every replica: the keys that sign and verify tokens.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySpec {
    /// A signing key set for JSON Web Tokens, generated and rotated by the operator and mounted into every container. Unset creates none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtSpec>,
}

/// Durations are Go durations of hours, minutes and seconds, e.g. `720h` or `1h30m`.
pub const DURATION_PATTERN: &str = r"^([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,6}s)?$";

/// The signing keys of an app. The operator keeps three kinds in one Secret named `<name>-jwt`: the active key, which signs; the next key, published in the JWKS a whole rotation period before it signs, so that every pod knows it first; and retired keys, published until the last token they signed has expired. Files are mounted at /var/run/secrets/stateless.dev/jwt (jwks.json, signing-key.pem, signing-key.jwk, kid) and named by JWT_JWKS_FILE, JWT_SIGNING_KEY_FILE, JWT_SIGNING_JWK_FILE and JWT_KEY_ID_FILE. Read the files at each use or on change: they update in place at a rotation, without a restart. The annotation stateless.dev/rotate-signing-keys on the StatelessApp, set to a new value, rotates once at once (after a suspected leak, say), keeping the old key published for the token lifetime.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.rotationPeriod) || duration(self.rotationPeriod) >= duration('1h')").message("identity.jwt.rotationPeriod must be at least 1h: pods learn a new key through a Secret volume, which takes minutes; use e.g. 720h (30 days)"),
    validation = Rule::new("!has(self.rotationPeriod) || duration(self.rotationPeriod) <= duration('8760h')").message("identity.jwt.rotationPeriod must be at most 8760h (a year): a key that signs for longer gives a leak more time"),
    validation = Rule::new("!has(self.tokenLifetime) || duration(self.tokenLifetime) >= duration('1s')").message("identity.jwt.tokenLifetime must be at least 1s: it is how long the tokens the app issues stay valid"),
    validation = Rule::new("duration(has(self.tokenLifetime) ? self.tokenLifetime : '24h') <= duration(has(self.rotationPeriod) ? self.rotationPeriod : '720h')").message("identity.jwt.tokenLifetime must not be longer than rotationPeriod (defaults 24h and 720h): a retired key stays published for the token lifetime, and a token must not outlive more than one rotation; shorten tokenLifetime or raise rotationPeriod"),
)]
pub struct JwtSpec {
    /// Signing algorithm of new keys: EdDSA (Ed25519, the default: small, fast, no parameters to get wrong), ES256 (ECDSA P-256) or RS256 (RSA 2048, for verifiers that know nothing else). A change applies from the next rotation: the next key is replaced by one of the new algorithm at once, and signs when the active key's period ends.
    #[serde(default)]
    pub algorithm: JwtAlgorithm,

    /// How long one key signs before the next takes over, as a Go duration (hours, minutes, seconds), e.g. `720h`. At least 1h, at most 8760h. Default 720h (30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(min = 2, max = 24))]
    pub rotation_period: Option<String>,

    /// The longest lifetime (exp - iat) of any token the app signs, as a Go duration, e.g. `1h`. A retired key stays in the JWKS this long after it last signed (plus the time a Secret takes to reach every pod), so that every token it signed still verifies. At most rotationPeriod. Default 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(min = 2, max = 24))]
    pub token_lifetime: Option<String>,
}

/// Default rotation period: 30 days.
pub const DEFAULT_ROTATION_PERIOD: &str = "720h";
/// Default token lifetime: a day.
pub const DEFAULT_TOKEN_LIFETIME: &str = "24h";

impl JwtSpec {
    pub fn rotation_period(&self) -> &str {
        self.rotation_period
            .as_deref()
            .unwrap_or(DEFAULT_ROTATION_PERIOD)
    }

    pub fn token_lifetime(&self) -> &str {
        self.token_lifetime
            .as_deref()
            .unwrap_or(DEFAULT_TOKEN_LIFETIME)
    }
}

/// A JWS signing algorithm (RFC 7518 names).
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    schemars::JsonSchema,
)]
pub enum JwtAlgorithm {
    /// Ed25519 signatures (RFC 8037).
    #[default]
    EdDSA,
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
}

impl JwtAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }
}

impl std::fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

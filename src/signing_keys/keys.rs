//! Generating one signing key: its private key as PKCS#8 PEM and as a JWK,
//! its public JWK, and its key id.
//!
//! The keys come from RustCrypto's `ed25519-dalek`, `p256` and `rsa`: pure
//! Rust (no C toolchain in the image), audited or widely reviewed, and the
//! same stack `jsonwebtoken` verifies with, which the tests use to prove the
//! files are standard. The JWKs themselves are a few base64url fields
//! (RFC 7517/7518/8037), written here rather than through a JOSE crate,
//! none of which covers all three key types on this RustCrypto release.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use p256::elliptic_curve::sec1::ToSec1Point;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::SigningKeyError;
use crate::crd::JwtAlgorithm;

/// Size of generated RSA keys: the common minimum (NIST SP 800-57 to 2030).
pub const RSA_BITS: usize = 2048;

/// One freshly generated key.
#[derive(Clone, Debug)]
pub struct Generated {
    /// RFC 7638 thumbprint of the public key: stable, and the same whoever computes it.
    pub kid: String,
    pub public_jwk: Value,
    pub private: PrivateMaterial,
}

/// A private key in the two forms the pods get.
#[derive(Clone, PartialEq)]
pub struct PrivateMaterial {
    /// PKCS#8 PEM, what most JWT libraries load.
    pub pem: String,
    /// The private JWK (RFC 7517), with `kid`, `alg` and `use`.
    pub jwk: String,
}

// Never print a private key, not even in a Debug of a larger value.
impl std::fmt::Debug for PrivateMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateMaterial(..)")
    }
}

/// Generate a key of `algorithm` from the operating system's random source.
pub fn generate(algorithm: JwtAlgorithm) -> Result<Generated, SigningKeyError> {
    let failed = |message: String| SigningKeyError::Generate { algorithm, message };
    let (public, private_members, pem) = match algorithm {
        JwtAlgorithm::EdDSA => {
            let key = ed25519_dalek::SigningKey::from_bytes(&random_32(algorithm)?);
            let public = json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(key.verifying_key().as_bytes()),
            });
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| failed(e.to_string()))?;
            (public, json!({"d": b64(&key.to_bytes())}), pem.to_string())
        }
        JwtAlgorithm::ES256 => {
            // A uniformly random 32-byte string is a valid P-256 scalar but
            // for a chance of about 2^-32 (zero or not below the order).
            let key = loop {
                if let Ok(key) = p256::SecretKey::from_slice(&random_32(algorithm)?) {
                    break key;
                }
            };
            let point = key.public_key().to_sec1_point(false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else {
                return Err(failed("the public point has no coordinates".into()));
            };
            let public = json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)});
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| failed(e.to_string()))?;
            (public, json!({"d": b64(&key.to_bytes())}), pem.to_string())
        }
        JwtAlgorithm::RS256 => {
            let key = rsa::PrivateKey::new(&mut getrandom::SysRng, RSA_BITS)
                .map_err(|e| failed(e.to_string()))?;
            let [p, q] = key.primes() else {
                return Err(failed("the key does not have two primes".into()));
            };
            let (Some(dp), Some(dq), Some(qi)) = (key.dp(), key.dq(), key.crt_coefficient()) else {
                return Err(failed("the key has no CRT values".into()));
            };
            let public = json!({
                "kty": "RSA",
                "n": uint(&key.n().to_be_bytes()),
                "e": uint(&key.e().to_be_bytes()),
            });
            let private = json!({
                "d": uint(&key.d().to_be_bytes()),
                "p": uint(&p.to_be_bytes()),
                "q": uint(&q.to_be_bytes()),
                "dp": uint(&dp.to_be_bytes()),
                "dq": uint(&dq.to_be_bytes()),
                "qi": uint(&qi.to_be_bytes()),
            });
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| failed(e.to_string()))?;
            (public, private, pem.to_string())
        }
    };
    let kid = thumbprint(&public)?;
    let mut public_jwk = public;
    if let Value::Object(members) = &mut public_jwk {
        members.insert("kid".into(), json!(kid));
        members.insert("alg".into(), json!(algorithm.as_str()));
        members.insert("use".into(), json!("sig"));
    }
    let mut private_jwk = public_jwk.clone();
    if let (Value::Object(members), Value::Object(extra)) = (&mut private_jwk, private_members) {
        members.extend(extra);
    }
    Ok(Generated {
        kid,
        public_jwk,
        private: PrivateMaterial {
            pem,
            jwk: private_jwk.to_string(),
        },
    })
}

/// RFC 7638: base64url SHA-256 of the required public members, in
/// lexicographic order, without whitespace.
pub fn thumbprint(public: &Value) -> Result<String, SigningKeyError> {
    let required: &[&str] = match public.get("kty").and_then(Value::as_str) {
        Some("OKP") => &["crv", "kty", "x"],
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("RSA") => &["e", "kty", "n"],
        other => {
            return Err(SigningKeyError::Unreadable(format!(
                "a public key of unknown type {other:?}"
            )));
        }
    };
    // serde_json's Map is ordered by key (no preserve_order feature), so
    // this serializes in the order RFC 7638 asks for.
    let mut members = Map::new();
    for name in required {
        let value = public.get(*name).cloned().ok_or_else(|| {
            SigningKeyError::Unreadable(format!("a public key without its {name:?} member"))
        })?;
        members.insert((*name).to_string(), value);
    }
    let canonical = Value::Object(members).to_string();
    Ok(b64(&Sha256::digest(canonical.as_bytes())))
}

fn random_32(algorithm: JwtAlgorithm) -> Result<[u8; 32], SigningKeyError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SigningKeyError::Generate {
        algorithm,
        message: format!("reading the operating system's random number generator: {e}"),
    })?;
    Ok(bytes)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An unsigned integer as JWK's Base64urlUInt: big-endian, no leading zeros.
fn uint(be: &[u8]) -> String {
    let start = be
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(be.len().saturating_sub(1));
    b64(&be[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // The RSA key of RFC 7638 section 3.1, and its thumbprint.
        let key = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&key).expect("thumbprint"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_public_key_missing_a_required_member_has_no_thumbprint() {
        let ec_without_y = json!({"kty": "EC", "crv": "P-256", "x": "AA"});
        let err = thumbprint(&ec_without_y).expect_err("refused");
        assert!(err.to_string().contains("\"y\""), "{err}");
        assert!(thumbprint(&json!({"kty": "oct", "k": "AA"})).is_err());
    }

    #[test]
    fn base64url_uint_has_no_leading_zeros() {
        assert_eq!(uint(&[0, 0, 0, 1, 0, 1]), "AQAB");
        assert_eq!(uint(&[0, 0]), "AA");
    }

    #[test]
    fn every_algorithm_gives_a_public_and_a_private_jwk_with_its_kid() {
        for algorithm in [
            JwtAlgorithm::EdDSA,
            JwtAlgorithm::ES256,
            JwtAlgorithm::RS256,
        ] {
            let key = generate(algorithm).expect("generate");
            assert_eq!(key.public_jwk["kid"], json!(key.kid));
            assert_eq!(key.public_jwk["alg"], json!(algorithm.as_str()));
            assert_eq!(key.public_jwk["use"], json!("sig"));
            assert!(
                key.public_jwk.get("d").is_none(),
                "{algorithm}: public JWK has d"
            );
            let private: Value = serde_json::from_str(&key.private.jwk).expect("private JWK");
            assert!(
                private.get("d").is_some(),
                "{algorithm}: private JWK without d"
            );
            assert_eq!(private["kid"], json!(key.kid));
            assert!(key.private.pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            assert_eq!(thumbprint(&private).expect("thumbprint"), key.kid);
            assert_eq!(format!("{:?}", key.private), "PrivateMaterial(..)");
        }
        assert_ne!(
            generate(JwtAlgorithm::EdDSA).expect("a").kid,
            generate(JwtAlgorithm::EdDSA).expect("b").kid
        );
    }
}

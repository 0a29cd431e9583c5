//! Secret `<name>-redis` (keys `password` and `url`) and its password.
//!
//! The controller creates this Secret once, when it does not exist, and
//! never rebuilds it: a new password would lock out the running Redis.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::REDIS_PORT;
use crate::build::{BuildError, Context, labels, names};
use crate::crd::StatelessApp;

/// Key of the Redis password in the Secret.
pub const PASSWORD_KEY: &str = "password";
/// Key of the full connection URL in the Secret (what the app receives).
pub const URL_KEY: &str = "url";
/// Random bytes in a generated password (256 bits).
const PASSWORD_BYTES: usize = 32;

/// The Secret of the managed Redis for `app`, holding `password` and the
/// `url` the app receives: `redis://:PASSWORD@<name>-redis.<ns>.svc:6379/0`.
pub fn redis_secret(app: &StatelessApp, password: &str) -> Result<Secret, BuildError> {
    let ctx = Context::new(app)?;
    let url = redis_url(ctx.name, ctx.namespace, password);
    Ok(Secret {
        metadata: ctx.meta(names::redis_secret(ctx.name), labels::redis(ctx.name)),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (
                PASSWORD_KEY.to_string(),
                ByteString(password.as_bytes().to_vec()),
            ),
            (URL_KEY.to_string(), ByteString(url.into_bytes())),
        ])),
        ..Secret::default()
    })
}

/// The URL of the managed Redis of app `name` in `namespace`. The password is
/// percent-encoded, so any password yields a valid URL.
pub fn redis_url(name: &str, namespace: &str, password: &str) -> String {
    format!(
        "redis://:{}@{}.{namespace}.svc:{REDIS_PORT}/0",
        percent_encode(password),
        names::redis(name)
    )
}

/// A new Redis password: 32 bytes from the operating system's CSPRNG,
/// hex-encoded (64 characters, URL- and shell-safe).
pub fn generate_password() -> Result<String, BuildError> {
    let mut bytes = [0u8; PASSWORD_BYTES];
    getrandom::fill(&mut bytes).map_err(BuildError::Random)?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::test_support::*;
    use serde_json::json;

    #[test]
    fn whole_secret() {
        let secret = redis_secret(&basic(), "s3cret").expect("builds");
        // `data` is base64 on the wire.
        assert_eq!(
            to_json(&secret),
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "shop-redis",
                    "namespace": "prod",
                    "labels": redis_labels(),
                    "ownerReferences": owner()
                },
                "type": "Opaque",
                "data": {
                    "password": "czNjcmV0",
                    "url": "cmVkaXM6Ly86czNjcmV0QHNob3AtcmVkaXMucHJvZC5zdmM6NjM3OS8w"
                }
            })
        );
        let data = secret.data.expect("data");
        assert_eq!(
            data[URL_KEY].0,
            b"redis://:s3cret@shop-redis.prod.svc:6379/0".to_vec()
        );
    }

    #[test]
    fn url_percent_encodes_the_password() {
        assert_eq!(
            redis_url("shop", "prod", "a b@c/d:e%"),
            "redis://:a%20b%40c%2Fd%3Ae%25@shop-redis.prod.svc:6379/0"
        );
    }

    #[test]
    fn secret_needs_an_identity() {
        let mut app = basic();
        app.metadata.uid = None;
        assert!(matches!(
            redis_secret(&app, "x"),
            Err(BuildError::MissingUid { .. })
        ));
    }

    #[test]
    fn generated_passwords_are_long_hex_and_distinct() {
        let a = generate_password().expect("CSPRNG");
        let b = generate_password().expect("CSPRNG");
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
        assert_eq!(
            redis_url("s", "n", &a),
            format!("redis://:{a}@s-redis.n.svc:6379/0")
        );
    }
}

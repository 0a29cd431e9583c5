//! Secret `<name>-redis`: `password`, and what is derived from it — the
//! `url` the app receives and `users.acl`, the ACL file Redis loads.
//!
//! The controller creates this Secret once and never replaces it: a new
//! password would lock out the running Redis. To rotate, write a new
//! `password` into it; the controller derives `url` and `users.acl` again
//! ([`derived_data`]), which restarts Redis and rolls the app's pods.
//!
//! Redis users: `default` is disabled (no unauthenticated access), and the
//! app's user [`REDIS_USER`] may run every command except the `@dangerous`
//! and `@admin` ones (CONFIG, FLUSHALL, SHUTDOWN, REPLICAOF, DEBUG, MODULE,
//! ACL, KEYS, ...). The ACL file holds only the SHA-256 of the password.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

use super::REDIS_PORT;
use crate::build::{BuildError, Context, labels, names};
use crate::crd::StatelessApp;

/// Key of the Redis password in the Secret.
pub const PASSWORD_KEY: &str = "password";
/// Key of the full connection URL in the Secret (what the app receives).
pub const URL_KEY: &str = "url";
/// Key of the ACL file in the Secret (mounted into the Redis pod).
pub const ACL_KEY: &str = "users.acl";
/// The Redis user the app (and the readiness probe) authenticates as.
pub const REDIS_USER: &str = "app";
/// What [`REDIS_USER`] may do: all but the dangerous and admin commands.
pub const REDIS_USER_PERMISSIONS: &str = "~* &* +@all -@dangerous -@admin";
/// Random bytes in a generated password (256 bits).
const PASSWORD_BYTES: usize = 32;

/// The Secret of the managed Redis for `app`, holding `password` and what
/// derives from it (see [`derived_data`]).
pub fn redis_secret(app: &StatelessApp, password: &str) -> Result<Secret, BuildError> {
    let ctx = Context::new(app)?;
    let mut data = derived_data(ctx.name, ctx.namespace, password);
    data.insert(
        PASSWORD_KEY.to_string(),
        ByteString(password.as_bytes().to_vec()),
    );
    Ok(Secret {
        metadata: ctx.meta(names::redis_secret(ctx.name), labels::redis(ctx.name)),
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    })
}

/// The staged copy of the password, `<name>-redis-next` with the key
/// `password` only (the rest follows from it), while the managed Secret is
/// replaced.
pub fn redis_secret_staged(app: &StatelessApp, password: &str) -> Result<Secret, BuildError> {
    let ctx = Context::new(app)?;
    Ok(Secret {
        metadata: ctx.meta(
            names::redis_secret_staged(ctx.name),
            labels::redis(ctx.name),
        ),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            PASSWORD_KEY.to_string(),
            ByteString(password.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    })
}

/// The keys derived from the password: `url` and `users.acl`.
pub fn derived_data(name: &str, namespace: &str, password: &str) -> BTreeMap<String, ByteString> {
    BTreeMap::from([
        (
            URL_KEY.to_string(),
            ByteString(redis_url(name, namespace, password).into_bytes()),
        ),
        (
            ACL_KEY.to_string(),
            ByteString(acl_file(password).into_bytes()),
        ),
    ])
}

/// The ACL file: `default` off (with no password, so protected mode does
/// not refuse remote clients), the app's user by the password's SHA-256.
pub fn acl_file(password: &str) -> String {
    let digest = Sha256::digest(password.as_bytes());
    format!(
        "user default off resetpass resetkeys resetchannels -@all\n\
         user {REDIS_USER} on #{} {REDIS_USER_PERMISSIONS}\n",
        hex(&digest)
    )
}

/// The URL of the managed Redis of app `name` in `namespace`, as user
/// [`REDIS_USER`]. The password is percent-encoded, so any password yields a
/// valid URL.
pub fn redis_url(name: &str, namespace: &str, password: &str) -> String {
    format!(
        "redis://{REDIS_USER}:{}@{}:{REDIS_PORT}/0",
        percent_encode(password),
        names::redis_host(name, namespace)
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
        let text = |key: &str| {
            String::from_utf8(secret.data.as_ref().expect("data")[key].0.clone()).expect("utf-8")
        };
        assert_eq!(text(PASSWORD_KEY), "s3cret");
        assert_eq!(
            text(URL_KEY),
            "redis://app:s3cret@shop-redis.prod.svc:6379/0"
        );
        assert_eq!(text(ACL_KEY), acl_file("s3cret"));
        let mut json = to_json(&secret);
        json["data"] = json!(null);
        assert_eq!(
            json,
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
                "data": null
            })
        );
    }

    #[test]
    fn the_acl_file_holds_no_password_and_disables_default() {
        let acl = acl_file("s3cret");
        assert!(!acl.contains("s3cret"), "{acl}");
        // SHA-256("s3cret"), as `echo -n s3cret | sha256sum` prints it.
        assert!(
            acl.contains(&format!("#{}", hex(&Sha256::digest(b"s3cret")))),
            "{acl}"
        );
        assert!(acl.starts_with("user default off resetpass"), "{acl}");
        assert_eq!(acl.lines().count(), 2);
    }

    #[test]
    fn url_percent_encodes_the_password() {
        assert_eq!(
            redis_url("shop", "prod", "a b@c/d:e%"),
            "redis://app:a%20b%40c%2Fd%3Ae%25@shop-redis.prod.svc:6379/0"
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
            format!("redis://app:{a}@s-redis.n.svc:6379/0")
        );
    }
}

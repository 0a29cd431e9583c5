//! The config hash: a digest of every ConfigMap and Secret an app's pods
//! reference, written into the pod template so that a change rolls the pods.
//!
//! Pod templates are readable by whoever may read Deployments, often more
//! people than may read Secrets; a plain hash of a weak Secret could be
//! brute-forced offline. So the digest is an HMAC-SHA-256 keyed by 32 random
//! bytes in one operator-owned Secret ([`HashKey::ensure`]), created on first
//! start and shared by every replica. Deleting that Secret gives a new key,
//! which rolls every app's pods once.

use hmac::{Hmac, Mac};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use sha2::Sha256;

use std::sync::Arc;

use super::Error;
use super::apply::hex;
use super::observe::Content;
use crate::build::{FIELD_MANAGER, labels};
use crate::crd::ConfigRef;

/// Key in the key Secret's data.
pub const KEY_FIELD: &str = "key";
/// Length of a generated key.
const KEY_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Where the key lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySecret {
    pub namespace: String,
    pub name: String,
}

impl Default for KeySecret {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            name: "stateless-operator-config-hash-key".into(),
        }
    }
}

/// The HMAC key. Its bytes never leave this module (no Debug of them).
#[derive(Clone)]
pub struct HashKey(Vec<u8>);

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    /// A fixed key, for tests and benchmarks.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// Read the key Secret, creating it with a random key when missing. Two
    /// replicas starting at once: the create of the second fails with 409 and
    /// it reads the winner's key.
    pub async fn ensure(client: &Client, at: &KeySecret) -> Result<Self, Error> {
        let api: Api<Secret> = Api::namespaced(client.clone(), &at.namespace);
        let kube_err = |verb| Error::kube(verb, "Secret", &at.namespace, &at.name);
        for _ in 0..2 {
            if let Some(secret) = api.get_opt(&at.name).await.map_err(kube_err("get"))? {
                return Self::from_secret(&secret, at);
            }
            let mut key = vec![0u8; KEY_BYTES];
            getrandom::fill(&mut key)
                .map_err(|e| Error::Build(crate::build::BuildError::Random(e)))?;
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(at.name.clone()),
                    namespace: Some(at.namespace.clone()),
                    labels: Some(
                        [
                            (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
                            (labels::COMPONENT.to_string(), "config-hash-key".to_string()),
                        ]
                        .into(),
                    ),
                    ..Default::default()
                },
                data: Some([(KEY_FIELD.to_string(), ByteString(key.clone()))].into()),
                immutable: Some(true),
                ..Default::default()
            };
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            match api.create(&params, &secret).await {
                Ok(_) => {
                    tracing::info!(secret = %at.name, namespace = %at.namespace, "created the config-hash key");
                    return Ok(Self(key));
                }
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(kube_err("create")(e)),
            }
        }
        Err(Error::HashKeyUnusable {
            namespace: at.namespace.clone(),
            name: at.name.clone(),
            why: "it was created and deleted again while being read".into(),
        })
    }

    fn from_secret(secret: &Secret, at: &KeySecret) -> Result<Self, Error> {
        match secret.data.as_ref().and_then(|d| d.get(KEY_FIELD)) {
            Some(ByteString(key)) if key.len() >= 16 => Ok(Self(key.clone())),
            _ => Err(Error::HashKeyUnusable {
                namespace: at.namespace.clone(),
                name: at.name.clone(),
                why: format!(
                    "data.{KEY_FIELD} is missing or shorter than 16 bytes; delete the Secret and the operator creates a new key (every app's pods then roll once)"
                ),
            }),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length; this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"))
    }
}

/// Feeds the keyed digest; fields are NUL-separated so that no two
/// different inputs concatenate alike.
pub struct Digest(HmacSha256);

impl Digest {
    pub fn new(key: &HashKey) -> Self {
        Self(key.mac())
    }

    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(bytes);
        self.0.update(&[0]);
        self
    }

    /// The key/value pairs of a Secret's data (sorted: a BTreeMap).
    pub fn secret(&mut self, secret: &Secret) -> &mut Self {
        for (key, value) in secret.data.iter().flatten() {
            self.field(key.as_bytes()).field(&value.0);
        }
        self
    }

    pub fn config_map(&mut self, cm: &ConfigMap) -> &mut Self {
        for (k, v) in cm.data.iter().flatten() {
            self.field(k.as_bytes()).field(v.as_bytes());
        }
        for (k, v) in cm.binary_data.iter().flatten() {
            self.field(k.as_bytes()).field(&v.0);
        }
        self
    }

    /// 128 bits, hex: enough to tell versions apart, short in annotations.
    pub fn finish(self) -> String {
        hex(&self.0.finalize().into_bytes()[..16])
    }
}

/// The keyed digest of one Secret's data (also the managed Redis's
/// `secret-hash`, whose change restarts Redis with the new password).
pub fn of_secret(key: &HashKey, secret: &Secret) -> String {
    let mut digest = Digest::new(key);
    digest.secret(secret);
    digest.finish()
}

/// The keyed digest of one ConfigMap's data.
pub fn of_config_map(key: &HashKey, cm: &ConfigMap) -> String {
    let mut digest = Digest::new(key);
    digest.config_map(cm);
    digest.finish()
}

/// Digest of every ConfigMap and Secret the pods reference (sorted by kind and
/// name), over each one's own keyed digest. A missing object hashes as
/// missing, so creating it later also rolls the pods.
pub fn of_referenced_config(
    key: &HashKey,
    referenced: &[(ConfigRef, Option<Arc<Content>>)],
) -> String {
    let mut digest = Digest::new(key);
    for (reference, content) in referenced {
        digest.field(reference.to_string().as_bytes());
        match content {
            Some(content) => digest.field(content.digest.as_bytes()),
            None => digest.field(b"<missing>"),
        };
    }
    digest.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(value: &[u8]) -> Secret {
        Secret {
            data: Some([("password".to_string(), ByteString(value.to_vec()))].into()),
            ..Default::default()
        }
    }

    #[test]
    fn digest_depends_on_key_and_content_and_is_not_the_plain_hash() {
        let a = HashKey::from_bytes(&[1; 32]);
        let b = HashKey::from_bytes(&[2; 32]);
        let s = secret(b"hunter2");
        assert_eq!(of_secret(&a, &s), of_secret(&a, &s));
        assert_ne!(of_secret(&a, &s), of_secret(&b, &s), "keyed");
        assert_ne!(of_secret(&a, &s), of_secret(&a, &secret(b"hunter3")));
        assert_eq!(of_secret(&a, &s).len(), 32);
        // The unkeyed SHA-256 the annotation used to carry is not what is written.
        use sha2::Digest as _;
        let mut plain = Sha256::new();
        plain.update(b"password\0hunter2\0");
        assert_ne!(of_secret(&a, &s), hex(&plain.finalize()[..16]));
    }

    #[test]
    fn fields_do_not_run_together() {
        let key = HashKey::from_bytes(b"0123456789abcdef");
        let mut ab = Digest::new(&key);
        ab.field(b"ab").field(b"c");
        let mut a = Digest::new(&key);
        a.field(b"a").field(b"bc");
        assert_ne!(ab.finish(), a.finish());
    }

    #[test]
    fn short_or_missing_keys_are_refused_with_the_fix() {
        let at = KeySecret::default();
        let err = HashKey::from_secret(&Secret::default(), &at).expect_err("no data");
        assert!(err.to_string().contains("delete the Secret"), "{err}");
        let short = Secret {
            data: Some([(KEY_FIELD.to_string(), ByteString(vec![1; 8]))].into()),
            ..Default::default()
        };
        assert!(HashKey::from_secret(&short, &at).is_err());
        assert!(format!("{:?}", HashKey::from_bytes(&[7; 32])).contains(".."));
    }
}

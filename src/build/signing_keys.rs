//! The JWT signing key Secret (`identity.jwt`) and how the pods see it: a
//! Secret volume of the files in [`files::MOUNTED`] at [`JWT_MOUNT_PATH`],
//! and env vars naming those files. The keys themselves come from
//! [`crate::signing_keys`]; the controller decides when to write them.
//!
//! The volume is a whole-Secret volume without `subPath`, so the kubelet
//! updates its files in place when the Secret is replaced at a rotation: no
//! pod restarts, and the Secret is not part of the config hash.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    EnvVar, KeyToPath, Secret, SecretVolumeSource, Volume, VolumeMount,
};

use super::{BuildError, Context, labels};
use crate::crd::StatelessApp;
use crate::crd::identity::{JWT_MOUNT_PATH, env};
use crate::signing_keys::{KeySet, SCHEDULE_ANNOTATION, files};

/// Name of the pod volume holding the key files.
pub const SIGNING_KEYS_VOLUME: &str = "stateless-jwt";

/// Read-only for every user of the container. Secret volume files belong to
/// root (and to the pod's fsGroup, which the operator does not set), so the
/// app's non-root user reads them only through the "other" bits; the
/// container holds the app alone.
const FILE_MODE: i32 = 0o444;

/// The Secret `name` holding `keys`: their files as data, their schedule (key
/// ids and times, nothing secret) as an annotation.
pub fn secret(app: &StatelessApp, name: String, keys: &KeySet) -> Result<Secret, BuildError> {
    let ctx = Context::new(app)?;
    let mut metadata = ctx.meta(name, labels::signing_keys(ctx.name));
    metadata.annotations = Some([(SCHEDULE_ANNOTATION.to_string(), keys.annotation())].into());
    Ok(Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(keys.secret_data()),
        ..Secret::default()
    })
}

/// A copy of `source`'s keys and schedule under `name` (the staged copy, and
/// the main Secret restored from it).
pub fn secret_like(
    app: &StatelessApp,
    name: String,
    source: &Secret,
) -> Result<Secret, BuildError> {
    let ctx = Context::new(app)?;
    let mut metadata = ctx.meta(name, labels::signing_keys(ctx.name));
    let schedule = source
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SCHEDULE_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    metadata.annotations = Some([(SCHEDULE_ANNOTATION.to_string(), schedule)].into());
    let data: std::collections::BTreeMap<String, ByteString> =
        source.data.clone().unwrap_or_default();
    Ok(Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    })
}

/// The volume, mount and env vars of the app's container, when the app has
/// `identity.jwt`.
pub(crate) struct Projection {
    pub volume: Volume,
    pub mount: VolumeMount,
    pub env: Vec<EnvVar>,
}

pub(crate) fn projection(ctx: &Context<'_>) -> Option<Projection> {
    ctx.app.spec.identity.as_ref()?.jwt.as_ref()?;
    let secret_name = super::names::signing_keys(ctx.name);
    let items = files::MOUNTED
        .iter()
        .map(|file| KeyToPath {
            key: (*file).to_string(),
            path: (*file).to_string(),
            mode: None,
        })
        .collect();
    let file = |name: &str, file: &str| EnvVar {
        name: name.to_string(),
        value: Some(format!("{JWT_MOUNT_PATH}/{file}")),
        value_from: None,
    };
    Some(Projection {
        volume: Volume {
            name: SIGNING_KEYS_VOLUME.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret_name),
                items: Some(items),
                default_mode: Some(FILE_MODE),
                optional: Some(false),
            }),
            ..Volume::default()
        },
        mount: VolumeMount {
            name: SIGNING_KEYS_VOLUME.into(),
            mount_path: JWT_MOUNT_PATH.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        env: vec![
            file(env::JWKS_FILE, files::JWKS),
            file(env::SIGNING_KEY_FILE, files::SIGNING_KEY),
            file(env::SIGNING_JWK_FILE, files::SIGNING_JWK),
            file(env::KEY_ID_FILE, files::KEY_ID),
        ],
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::build::test_support::{app, owner, to_json};
    use crate::build::{BuildInputs, children};

    fn pod_spec(spec: serde_json::Value) -> serde_json::Value {
        let built = children(&app(spec), &BuildInputs::default()).expect("builds");
        to_json(&built.deployment)["spec"]["template"]["spec"].clone()
    }

    #[test]
    fn jwt_mounts_the_key_files_and_names_them_in_env() {
        let spec = pod_spec(json!({
            "image": "shop:1",
            "identity": {"jwt": {}},
        }));
        let volumes = spec["volumes"].as_array().expect("volumes");
        assert_eq!(
            volumes.last(),
            Some(&json!({
                "name": "stateless-jwt",
                "secret": {
                    "secretName": "shop-jwt",
                    "items": [
                        {"key": "jwks.json", "path": "jwks.json"},
                        {"key": "signing-key.pem", "path": "signing-key.pem"},
                        {"key": "signing-key.jwk", "path": "signing-key.jwk"},
                        {"key": "kid", "path": "kid"},
                    ],
                    "defaultMode": 0o444,
                    "optional": false,
                },
            }))
        );
        let container = &spec["containers"][0];
        let mounts = container["volumeMounts"].as_array().expect("mounts");
        assert_eq!(
            mounts.last(),
            Some(&json!({
                "name": "stateless-jwt",
                "mountPath": "/var/run/secrets/stateless.dev/jwt",
                "readOnly": true,
            }))
        );
        let env: Vec<_> = container["env"]
            .as_array()
            .expect("env")
            .iter()
            .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with("JWT_")))
            .cloned()
            .collect();
        assert_eq!(
            env,
            vec![
                json!({"name": "JWT_JWKS_FILE", "value": "/var/run/secrets/stateless.dev/jwt/jwks.json"}),
                json!({"name": "JWT_SIGNING_KEY_FILE", "value": "/var/run/secrets/stateless.dev/jwt/signing-key.pem"}),
                json!({"name": "JWT_SIGNING_JWK_FILE", "value": "/var/run/secrets/stateless.dev/jwt/signing-key.jwk"}),
                json!({"name": "JWT_KEY_ID_FILE", "value": "/var/run/secrets/stateless.dev/jwt/kid"}),
            ]
        );
    }

    #[test]
    fn without_jwt_nothing_is_mounted() {
        for identity in [json!(null), json!({})] {
            let spec = pod_spec(json!({"image": "shop:1", "identity": identity}));
            let text = spec.to_string();
            assert!(!text.contains("stateless-jwt"), "{text}");
            assert!(!text.contains("JWT_"), "{text}");
        }
    }

    #[test]
    fn the_secret_holds_the_files_and_the_schedule_and_is_owned_by_the_app() {
        let policy = crate::signing_keys::Policy::from_spec(
            &crate::crd::JwtSpec {
                algorithm: Default::default(),
                rotation_period: None,
                token_lifetime: None,
            },
            jiff::SignedDuration::from_secs(60),
        )
        .expect("defaults are valid");
        let keys = KeySet::new(&policy, jiff::Timestamp::UNIX_EPOCH, None, &mut |alg| {
            crate::signing_keys::keys::generate(alg)
        })
        .expect("keys");
        let app = app(json!({"image": "shop:1", "identity": {"jwt": {}}}));
        let secret = to_json(&secret(&app, "shop-jwt".into(), &keys).expect("secret"));
        assert_eq!(secret["metadata"]["name"], "shop-jwt");
        assert_eq!(secret["metadata"]["ownerReferences"], owner());
        assert_eq!(
            secret["metadata"]["labels"]["app.kubernetes.io/component"],
            "identity"
        );
        assert_eq!(
            secret["metadata"]["annotations"][SCHEDULE_ANNOTATION],
            keys.annotation()
        );
        let data = secret["data"].as_object().expect("data");
        let mut names: Vec<_> = data.keys().cloned().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "jwks.json",
                "kid",
                "next-signing-key.jwk",
                "next-signing-key.pem",
                "signing-key.jwk",
                "signing-key.pem"
            ]
        );
        let staged = secret_like(
            &app,
            "shop-jwt-next".into(),
            &serde_json::from_value(secret.clone()).expect("a Secret"),
        )
        .expect("staged");
        let staged = to_json(&staged);
        assert_eq!(staged["metadata"]["name"], "shop-jwt-next");
        assert_eq!(staged["data"], secret["data"]);
        assert_eq!(
            staged["metadata"]["annotations"],
            secret["metadata"]["annotations"]
        );
    }
}

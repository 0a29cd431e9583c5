//! The service bindings of the app's pods (servicebinding.io workload
//! projection): one projected volume at `serviceBindings.root`, a directory
//! per binding, a file per entry.
//!
//! Secret entries (passwords, URLs with a password, access keys) are items of
//! their Secrets, by reference: nothing is copied, and the kubelet follows a
//! rotated Secret by itself. The other entries (type, host, bucket, ...) are
//! pod-template annotations the volume reads through the downward API, so a
//! binding needs no object of its own.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    DownwardAPIProjection, DownwardAPIVolumeFile, KeyToPath, ObjectFieldSelector,
    ProjectedVolumeSource, SecretProjection, Volume, VolumeMount, VolumeProjection,
};

use super::redis::{PASSWORD_KEY, REDIS_PORT, REDIS_USER, URL_KEY};
use super::{BuildError, Context, names};
use crate::crd::bindings::{OBJECT_STORAGE_BINDING, SESSION_STORE_BINDING};
use crate::crd::{ObjectStorageSpec, SessionStoreType};

/// Name of the projected volume.
pub const BINDINGS_VOLUME: &str = "stateless-bindings";
/// Prefix of the pod-template annotations holding the non-secret entries
/// (`bindings.stateless.dev/<binding>.<entry>`).
pub const ENTRY_ANNOTATION_PREFIX: &str = "bindings.stateless.dev/";
/// The variable naming the bindings' directory.
pub const ROOT_ENV: &str = "SERVICE_BINDING_ROOT";
/// `provider` of the managed Redis's binding.
pub const MANAGED_PROVIDER: &str = "stateless-operator";

/// What the bindings add to the pod template.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    /// The non-secret entries, as template annotations.
    pub annotations: BTreeMap<String, String>,
    pub volume: Volume,
    /// Read-only, at the root.
    pub mount: VolumeMount,
    /// `serviceBindings.root`, also [`ROOT_ENV`].
    pub root: String,
}

enum Source {
    Value(String),
    Secret { name: String, key: String },
}

struct Entry {
    binding: &'static str,
    name: &'static str,
    source: Source,
}

impl Entry {
    fn value(binding: &'static str, name: &'static str, value: impl Into<String>) -> Self {
        let source = Source::Value(value.into());
        Self {
            binding,
            name,
            source,
        }
    }

    fn secret(binding: &'static str, name: &'static str, secret: &str, key: &str) -> Self {
        let source = Source::Secret {
            name: secret.to_string(),
            key: key.to_string(),
        };
        Self {
            binding,
            name,
            source,
        }
    }

    fn path(&self) -> String {
        format!("{}/{}", self.binding, self.name)
    }

    fn annotation(&self) -> String {
        format!("{ENTRY_ANNOTATION_PREFIX}{}.{}", self.binding, self.name)
    }
}

/// The bindings of the app, if `serviceBindings` is set and there is
/// anything to bind.
pub(crate) fn projection(ctx: &Context<'_>) -> Result<Option<Projection>, BuildError> {
    let Some(spec) = &ctx.app.spec.service_bindings else {
        return Ok(None);
    };
    let mut entries = session_store_entries(ctx)?;
    if let Some(storage) = &ctx.app.spec.object_storage {
        entries.extend(object_storage_entries(storage));
    }
    if entries.is_empty() {
        return Ok(None);
    }

    let mut annotations = BTreeMap::new();
    let mut fields = Vec::new();
    // One projection per Secret, in the order the entries name them.
    let mut secrets: Vec<(String, Vec<KeyToPath>)> = Vec::new();
    for entry in &entries {
        match &entry.source {
            Source::Value(value) => {
                let annotation = entry.annotation();
                fields.push(DownwardAPIVolumeFile {
                    path: entry.path(),
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!("metadata.annotations['{annotation}']"),
                    }),
                    ..DownwardAPIVolumeFile::default()
                });
                annotations.insert(annotation, value.clone());
            }
            Source::Secret { name, key } => {
                let item = KeyToPath {
                    key: key.clone(),
                    path: entry.path(),
                    mode: None,
                };
                match secrets.iter_mut().find(|(n, _)| n == name) {
                    Some((_, items)) => items.push(item),
                    None => secrets.push((name.clone(), vec![item])),
                }
            }
        }
    }
    let mut sources = vec![VolumeProjection {
        downward_api: Some(DownwardAPIProjection {
            items: Some(fields),
        }),
        ..VolumeProjection::default()
    }];
    sources.extend(secrets.into_iter().map(|(name, items)| VolumeProjection {
        secret: Some(SecretProjection {
            name,
            items: Some(items),
            optional: None,
        }),
        ..VolumeProjection::default()
    }));
    Ok(Some(Projection {
        annotations,
        volume: Volume {
            name: BINDINGS_VOLUME.into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(sources),
                default_mode: None,
            }),
            ..Volume::default()
        },
        mount: VolumeMount {
            name: BINDINGS_VOLUME.into(),
            mount_path: spec.root.clone(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        root: spec.root.clone(),
    }))
}

fn session_store_entries(ctx: &Context<'_>) -> Result<Vec<Entry>, BuildError> {
    const B: &str = SESSION_STORE_BINDING;
    let spec = &ctx.app.spec;
    Ok(match spec.session_store_type() {
        SessionStoreType::None => Vec::new(),
        SessionStoreType::Managed => {
            let secret = names::redis_secret(ctx.name);
            let host = names::redis_host(ctx.name, ctx.namespace);
            vec![
                Entry::value(B, "type", "redis"),
                Entry::value(B, "provider", MANAGED_PROVIDER),
                Entry::value(B, "host", host),
                Entry::value(B, "port", REDIS_PORT.to_string()),
                Entry::value(B, "username", REDIS_USER),
                Entry::value(B, "database", "0"),
                Entry::secret(B, "password", &secret, PASSWORD_KEY),
                Entry::secret(B, "uri", &secret, URL_KEY),
            ]
        }
        SessionStoreType::External => {
            let reference = spec.external_session_secret().ok_or_else(|| {
                BuildError::MissingExternalSecret {
                    namespace: ctx.namespace.to_string(),
                    name: ctx.name.to_string(),
                }
            })?;
            vec![
                Entry::value(B, "type", "redis"),
                Entry::secret(B, "uri", &reference.name, &reference.key),
            ]
        }
    })
}

fn object_storage_entries(storage: &ObjectStorageSpec) -> Vec<Entry> {
    const B: &str = OBJECT_STORAGE_BINDING;
    let credentials = &storage.credentials;
    let secret = &credentials.secret_name;
    let mut entries = vec![
        Entry::value(B, "type", "s3"),
        Entry::value(B, "bucket", storage.bucket.clone()),
    ];
    if let Some(endpoint) = &storage.endpoint {
        entries.push(Entry::value(B, "endpoint", endpoint.clone()));
    }
    if let Some(region) = &storage.region {
        entries.push(Entry::value(B, "region", region.clone()));
    }
    if storage.force_path_style {
        entries.push(Entry::value(B, "force-path-style", "true"));
    }
    entries.push(Entry::secret(
        B,
        "access-key-id",
        secret,
        &credentials.access_key_id_key,
    ));
    entries.push(Entry::secret(
        B,
        "secret-access-key",
        secret,
        &credentials.secret_access_key_key,
    ));
    entries
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{BuildInputs, children};
    use serde_json::{Value, json};

    fn template(spec: Value) -> Value {
        let app = app(spec);
        let deployment = children(&app, &BuildInputs::default())
            .expect("builds")
            .deployment;
        to_json(&deployment)["spec"]["template"].clone()
    }

    fn field(binding: &str, entry: &str) -> Value {
        json!({
            "path": format!("{binding}/{entry}"),
            "fieldRef": {"fieldPath": format!("metadata.annotations['bindings.stateless.dev/{binding}.{entry}']")}
        })
    }

    #[test]
    fn managed_store_and_object_storage_whole_projection() {
        let got = template(json!({
            "image": "x",
            "objectStorage": {
                "bucket": "shop-uploads",
                "region": "eu-west-1",
                "credentials": {"secretName": "shop-s3"}
            },
            "serviceBindings": {}
        }));
        assert_eq!(
            got["metadata"]["annotations"],
            json!({
                "bindings.stateless.dev/object-storage.bucket": "shop-uploads",
                "bindings.stateless.dev/object-storage.region": "eu-west-1",
                "bindings.stateless.dev/object-storage.type": "s3",
                "bindings.stateless.dev/session-store.database": "0",
                "bindings.stateless.dev/session-store.host": "shop-redis.prod.svc",
                "bindings.stateless.dev/session-store.port": "6379",
                "bindings.stateless.dev/session-store.provider": "stateless-operator",
                "bindings.stateless.dev/session-store.type": "redis",
                "bindings.stateless.dev/session-store.username": "app"
            })
        );
        let volumes = got["spec"]["volumes"].as_array().expect("volumes");
        assert_eq!(
            volumes.last(),
            Some(&json!({
                "name": "stateless-bindings",
                "projected": {"sources": [
                    {"downwardAPI": {"items": [
                        field("session-store", "type"),
                        field("session-store", "provider"),
                        field("session-store", "host"),
                        field("session-store", "port"),
                        field("session-store", "username"),
                        field("session-store", "database"),
                        field("object-storage", "type"),
                        field("object-storage", "bucket"),
                        field("object-storage", "region")
                    ]}},
                    {"secret": {"name": "shop-redis", "items": [
                        {"key": "password", "path": "session-store/password"},
                        {"key": "url", "path": "session-store/uri"}
                    ]}},
                    {"secret": {"name": "shop-s3", "items": [
                        {"key": "AWS_ACCESS_KEY_ID", "path": "object-storage/access-key-id"},
                        {"key": "AWS_SECRET_ACCESS_KEY", "path": "object-storage/secret-access-key"}
                    ]}}
                ]}
            }))
        );
        let container = &got["spec"]["containers"][0];
        assert_eq!(
            container["volumeMounts"].as_array().and_then(|m| m.last()),
            Some(
                &json!({"name": "stateless-bindings", "mountPath": "/bindings", "readOnly": true})
            )
        );
        let env = container["env"].as_array().expect("env");
        assert_eq!(
            env.last(),
            Some(&json!({"name": "SERVICE_BINDING_ROOT", "value": "/bindings"}))
        );
        // Nothing secret is in the template: only references to the Secrets.
        assert!(!got.to_string().contains("redis://"), "{got}");
    }

    #[test]
    fn an_external_store_binds_its_uri_and_the_root_is_the_users_choice() {
        let got = template(json!({
            "image": "x",
            "env": [{"name": "SERVICE_BINDING_ROOT", "value": "/old"}],
            "sessionStore": {
                "type": "external",
                "external": {"secretRef": {"name": "elasticache", "key": "primary"}}
            },
            "serviceBindings": {"root": "/var/run/bindings"}
        }));
        assert_eq!(
            got["spec"]["volumes"].as_array().and_then(|v| v.last()),
            Some(&json!({
                "name": "stateless-bindings",
                "projected": {"sources": [
                    {"downwardAPI": {"items": [field("session-store", "type")]}},
                    {"secret": {"name": "elasticache", "items": [
                        {"key": "primary", "path": "session-store/uri"}
                    ]}}
                ]}
            }))
        );
        let env: Vec<&Value> = got["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .filter(|e| e["name"] == "SERVICE_BINDING_ROOT")
            .collect();
        assert_eq!(
            env,
            [&json!({"name": "SERVICE_BINDING_ROOT", "value": "/var/run/bindings"})]
        );
    }

    #[test]
    fn nothing_to_bind_or_bindings_off_projects_nothing() {
        for spec in [
            json!({"image": "x", "sessionStore": {"type": "none"}, "serviceBindings": {}}),
            json!({"image": "x"}),
        ] {
            let got = template(spec.clone());
            let text = got.to_string();
            assert!(!text.contains("stateless-bindings"), "{spec}: {text}");
            assert!(!text.contains("SERVICE_BINDING_ROOT"), "{spec}: {text}");
            assert!(!text.contains("bindings.stateless.dev"), "{spec}: {text}");
        }
    }
}

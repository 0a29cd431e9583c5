//! The ConfigMaps and Secrets an app's pods read.
//!
//! Pods read env vars once at start and may cache mounted files, so the
//! controller hashes the data of every referenced object into a pod-template
//! annotation: a change to any of them rolls the Deployment.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar, Volume};

use super::spec::StatelessAppSpec;
use super::{SessionStoreType, StatelessApp};

/// Kind of a referenced configuration object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigKind {
    /// A core/v1 ConfigMap.
    ConfigMap,
    /// A core/v1 Secret.
    Secret,
}

impl ConfigKind {
    /// The Kubernetes kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKind::ConfigMap => "ConfigMap",
            ConfigKind::Secret => "Secret",
        }
    }
}

impl fmt::Display for ConfigKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A ConfigMap or Secret, in the app's namespace, that the app's pods read.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigRef {
    /// ConfigMap or Secret.
    pub kind: ConfigKind,
    /// Object name, in the StatelessApp's namespace.
    pub name: String,
}

impl ConfigRef {
    /// A ConfigMap reference.
    pub fn config_map(name: impl Into<String>) -> Self {
        Self {
            kind: ConfigKind::ConfigMap,
            name: name.into(),
        }
    }

    /// A Secret reference.
    pub fn secret(name: impl Into<String>) -> Self {
        Self {
            kind: ConfigKind::Secret,
            name: name.into(),
        }
    }
}

impl fmt::Display for ConfigRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

impl StatelessApp {
    /// Every ConfigMap and Secret the app's pods reference, sorted by kind
    /// then name, without duplicates: env `valueFrom`, `envFrom`, `configMap`,
    /// `secret` and `projected` volumes, the object storage credentials, and
    /// the Secret holding the session store URL (`<name>-redis` when
    /// managed, `external.secretRef` when external). References marked
    /// `optional` are listed too; a missing optional object simply hashes as
    /// absent.
    pub fn referenced_config(&self) -> Vec<ConfigRef> {
        let mut refs = self.spec.referenced_config_set();
        match self.spec.session_store_type() {
            SessionStoreType::Managed => {
                if let Some(name) = self.metadata.name.as_deref() {
                    refs.insert(ConfigRef::secret(crate::build::names::redis(name)));
                }
            }
            SessionStoreType::External => {
                if let Some(secret) = self.spec.external_session_secret() {
                    refs.insert(ConfigRef::secret(secret.name.clone()));
                }
            }
            SessionStoreType::None => {}
        }
        refs.into_iter().collect()
    }
}

impl StatelessAppSpec {
    /// ConfigMaps and Secrets named in `env`, `envFrom`, `volumes` and
    /// `objectStorage.credentials` (not the session store Secret, which
    /// depends on the app's name).
    pub fn referenced_config_set(&self) -> BTreeSet<ConfigRef> {
        let mut refs = BTreeSet::new();
        if let Some(storage) = &self.object_storage {
            refs.insert(ConfigRef::secret(storage.credentials.secret_name.clone()));
        }
        self.env.iter().for_each(|e| env_refs(e, &mut refs));
        self.env_from
            .iter()
            .for_each(|e| env_from_refs(e, &mut refs));
        self.volumes.iter().for_each(|v| volume_refs(v, &mut refs));
        refs
    }
}

fn env_refs(env: &EnvVar, refs: &mut BTreeSet<ConfigRef>) {
    let Some(source) = &env.value_from else {
        return;
    };
    if let Some(cm) = &source.config_map_key_ref {
        refs.insert(ConfigRef::config_map(cm.name.clone()));
    }
    if let Some(secret) = &source.secret_key_ref {
        refs.insert(ConfigRef::secret(secret.name.clone()));
    }
}

fn env_from_refs(env_from: &EnvFromSource, refs: &mut BTreeSet<ConfigRef>) {
    if let Some(cm) = &env_from.config_map_ref {
        refs.insert(ConfigRef::config_map(cm.name.clone()));
    }
    if let Some(secret) = &env_from.secret_ref {
        refs.insert(ConfigRef::secret(secret.name.clone()));
    }
}

fn volume_refs(volume: &Volume, refs: &mut BTreeSet<ConfigRef>) {
    if let Some(cm) = &volume.config_map {
        refs.insert(ConfigRef::config_map(cm.name.clone()));
    }
    if let Some(secret) = volume.secret.as_ref().and_then(|s| s.secret_name.as_ref()) {
        refs.insert(ConfigRef::secret(secret.clone()));
    }
    let sources = volume
        .projected
        .as_ref()
        .and_then(|p| p.sources.as_ref())
        .into_iter()
        .flatten();
    for source in sources {
        if let Some(cm) = &source.config_map {
            refs.insert(ConfigRef::config_map(cm.name.clone()));
        }
        if let Some(secret) = &source.secret {
            refs.insert(ConfigRef::secret(secret.name.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ExternalSessionStore, SecretKeyRef, SessionStoreSpec};
    use serde_json::json;

    fn app(spec: serde_json::Value) -> StatelessApp {
        let mut app = StatelessApp::new(
            "shop",
            serde_json::from_value(spec).expect("test spec deserializes"),
        );
        app.metadata.namespace = Some("prod".into());
        app
    }

    #[test]
    fn lists_every_reference_sorted_and_deduplicated() {
        let app = app(json!({
            "image": "example/shop:1",
            "env": [
                {"name": "A", "value": "literal"},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "b"}}},
                {"name": "C", "valueFrom": {"secretKeyRef": {"name": "sec-env", "key": "c"}}},
                {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "E", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "e"}}}
            ],
            "envFrom": [
                {"configMapRef": {"name": "cm-from"}},
                {"secretRef": {"name": "sec-from", "optional": true}}
            ],
            "volumes": [
                {"name": "v1", "configMap": {"name": "cm-vol"}},
                {"name": "v2", "secret": {"secretName": "sec-vol"}},
                {"name": "v3", "projected": {"sources": [
                    {"configMap": {"name": "cm-proj"}},
                    {"secret": {"name": "sec-proj"}},
                    {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}
                ]}},
                {"name": "v4", "emptyDir": {}}
            ]
        }));
        let names: Vec<String> = app
            .referenced_config()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            names,
            vec![
                "ConfigMap/cm-env",
                "ConfigMap/cm-from",
                "ConfigMap/cm-proj",
                "ConfigMap/cm-vol",
                "Secret/sec-env",
                "Secret/sec-from",
                "Secret/sec-proj",
                "Secret/sec-vol",
                "Secret/shop-redis",
            ]
        );
    }

    #[test]
    fn external_store_secret_is_referenced() {
        let mut app = app(json!({"image": "example/shop:1"}));
        app.spec.session_store = SessionStoreSpec {
            type_: SessionStoreType::External,
            external: Some(ExternalSessionStore {
                secret_ref: SecretKeyRef {
                    name: "redis-url".into(),
                    key: "url".into(),
                },
            }),
            ..SessionStoreSpec::default()
        };
        assert_eq!(
            app.referenced_config(),
            vec![ConfigRef::secret("redis-url")]
        );
    }

    #[test]
    fn no_session_store_no_references() {
        let app = app(json!({"image": "example/shop:1", "sessionStore": {"type": "none"}}));
        assert!(app.referenced_config().is_empty());
    }
}

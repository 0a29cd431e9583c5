//! Pure builders: a [`StatelessApp`] in, whole child objects out. No client,
//! no I/O (except [`generate_password`], which reads the OS CSPRNG).
//!
//! Every object is meant to be server-side applied with [`FIELD_MANAGER`]:
//! it carries name, namespace, the common [`labels`], a controller
//! ownerReference to the StatelessApp, and only the fields the operator means
//! to own (no status, no server defaults it does not care about). Lists are
//! built in a fixed order and maps are `BTreeMap`s, so the same spec always
//! produces byte-identical objects and an unchanged app causes no writes.
//!
//! One module per child kind: [`deployment`], [`service`], [`hpa`], [`pdb`]
//! for the app itself, [`cronjob`] for its schedules, [`worker`] for its
//! workers, [`redis`] for the
//! managed session store; [`bindings`]
//! is the part of the app's pod template that projects service bindings.

pub mod bindings;
pub mod cronjob;
pub mod deployment;
pub mod hpa;
pub mod labels;
pub mod names;
pub mod pdb;
pub mod redis;
pub mod service;
pub mod signing_keys;
pub mod worker;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use std::collections::BTreeMap;

use crate::crd::{AppPort, DEFAULT_REDIS_IMAGE, StatelessApp};

pub use redis::{generate_password, redis_secret};
pub use worker::Worker;

/// Field manager for server-side apply of every child object.
pub const FIELD_MANAGER: &str = "stateless-operator";

/// Pod-template annotation holding the hex digest of the referenced
/// ConfigMaps/Secrets (app) or of `redis.conf` (managed Redis): changing it
/// rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "stateless.dev/config-hash";

/// What the builders need besides the StatelessApp itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInputs {
    /// Hex digest of the data of [`StatelessApp::referenced_config`], computed
    /// by the controller. Set as [`CONFIG_HASH_ANNOTATION`] on the app's pod
    /// template when present.
    pub config_hash: Option<String>,
    /// Image of the managed Redis for apps that leave
    /// `sessionStore.managed.image` unset: the operator's
    /// `--session-store-image`, so one installation can point every app at
    /// its own registry.
    pub session_store_image: String,
}

impl Default for BuildInputs {
    fn default() -> Self {
        Self {
            config_hash: None,
            session_store_image: DEFAULT_REDIS_IMAGE.to_string(),
        }
    }
}

/// Every child object of a StatelessApp, as the operator wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    /// The app Deployment `<name>` (without `spec.replicas`: the HPA owns it).
    pub deployment: Deployment,
    /// The app Service `<name>`.
    pub service: Service,
    /// The autoscaling/v2 HorizontalPodAutoscaler `<name>`.
    pub hpa: HorizontalPodAutoscaler,
    /// The policy/v1 PodDisruptionBudget `<name>`.
    pub pdb: PodDisruptionBudget,
    /// The managed Redis, only when `sessionStore.type` is managed.
    pub session_store: Option<ManagedRedis>,
    /// The CronJob `<name>-<schedule>` of each of `spec.schedules`, in order.
    pub schedules: Vec<CronJob>,
    /// The Deployment, HPA and PDB `<name>-<worker>` of each of `spec.workers`, in order.
    pub workers: Vec<Worker>,
}

/// The objects of the operator-managed Redis session store. Its Secret is not
/// here: it is created once by the controller with [`redis_secret`].
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedRedis {
    /// ConfigMap `<name>-redis` holding `redis.conf`.
    pub config: ConfigMap,
    /// Deployment `<name>-redis` (one replica, Recreate).
    pub deployment: Deployment,
    /// Service `<name>-redis` on port 6379.
    pub service: Service,
    /// NetworkPolicy `<name>-redis`: only the app's pods may reach 6379.
    pub network_policy: NetworkPolicy,
    /// PersistentVolumeClaim `<name>-redis-data`, only with persistence enabled.
    pub pvc: Option<PersistentVolumeClaim>,
}

/// A child object could not be built from the StatelessApp.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The StatelessApp has no name.
    #[error("the StatelessApp has no metadata.name")]
    MissingName,
    /// The StatelessApp has no namespace.
    #[error("StatelessApp {name} has no metadata.namespace")]
    MissingNamespace {
        /// Name of the StatelessApp.
        name: String,
    },
    /// The StatelessApp has no uid, so no ownerReference can point at it.
    #[error(
        "StatelessApp {namespace}/{name} has no metadata.uid: children need an ownerReference, build them from the object as read from the API server"
    )]
    MissingUid {
        /// Namespace of the StatelessApp.
        namespace: String,
        /// Name of the StatelessApp.
        name: String,
    },
    /// `spec.ports` is empty (the CRD rejects this; seen only when bypassed).
    #[error(
        "StatelessApp {namespace}/{name}: spec.ports is empty, but the first port is the Service target and probe port"
    )]
    NoPorts {
        /// Namespace of the StatelessApp.
        namespace: String,
        /// Name of the StatelessApp.
        name: String,
    },
    /// `sessionStore.type` is external without a Secret reference.
    #[error(
        "StatelessApp {namespace}/{name}: sessionStore.type is external but sessionStore.external.secretRef is missing"
    )]
    MissingExternalSecret {
        /// Namespace of the StatelessApp.
        namespace: String,
        /// Name of the StatelessApp.
        name: String,
    },
    /// `sessionStore.managed.maxMemory` is not a Redis memory size.
    #[error(
        "StatelessApp {namespace}/{name}: sessionStore.managed.maxMemory {value:?} is not a Redis memory size like 64mb: {reason}"
    )]
    InvalidMaxMemory {
        /// Namespace of the StatelessApp.
        namespace: String,
        /// Name of the StatelessApp.
        name: String,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `spec.volumes` asks for volumes the CRD refuses (seen only for apps
    /// stored before the CRD refused them, or when it is bypassed).
    #[error("StatelessApp {namespace}/{name}: {}", refused.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    RefusedVolumes {
        /// Namespace of the StatelessApp.
        namespace: String,
        /// Name of the StatelessApp.
        name: String,
        /// The refused volumes, with what to use instead.
        refused: Vec<crate::crd::volumes::RefusedVolume>,
    },
    /// The OS random number generator failed.
    /// (`getrandom::Error` is not a `std::error::Error` without getrandom's
    /// `std` feature, hence in the message rather than as the source.)
    #[error("reading the operating system's random number generator for the Redis password: {0}")]
    Random(getrandom::Error),
}

/// Build every child of `app`.
///
/// `app` must come from the API server (it needs namespace and uid for the
/// ownerReferences).
pub fn children(app: &StatelessApp, inputs: &BuildInputs) -> Result<Children, BuildError> {
    let ctx = Context::new(app)?;
    let refused = crate::crd::volumes::refused_volumes(&app.spec);
    if !refused.is_empty() {
        return Err(BuildError::RefusedVolumes {
            namespace: ctx.namespace.to_string(),
            name: ctx.name.to_string(),
            refused,
        });
    }
    Ok(Children {
        deployment: deployment::build(&ctx, inputs)?,
        service: service::build(&ctx)?,
        hpa: hpa::build(&ctx),
        pdb: pdb::build(&ctx),
        session_store: redis::build(&ctx, inputs)?,
        schedules: app
            .spec
            .schedules
            .iter()
            .map(|schedule| cronjob::build(&ctx, inputs, schedule))
            .collect::<Result<_, _>>()?,
        workers: app
            .spec
            .workers
            .iter()
            .map(|worker| worker::build(&ctx, inputs, worker))
            .collect::<Result<_, _>>()?,
    })
}

/// True when `meta` has a controller ownerReference to `app` (same uid).
///
/// Child names are derived from the app name, so two apps can collide (app
/// `shop-redis` and the managed Redis of app `shop`); the controller should
/// not overwrite an existing object controlled by someone else.
pub fn is_controlled_by(meta: &ObjectMeta, app: &StatelessApp) -> bool {
    let Some(uid) = app.metadata.uid.as_deref() else {
        return false;
    };
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == uid)
}

/// What every builder needs from the StatelessApp, checked once.
pub(crate) struct Context<'a> {
    pub(crate) app: &'a StatelessApp,
    pub(crate) name: &'a str,
    pub(crate) namespace: &'a str,
    owner: OwnerReference,
}

impl<'a> Context<'a> {
    pub(crate) fn new(app: &'a StatelessApp) -> Result<Self, BuildError> {
        let name = app
            .metadata
            .name
            .as_deref()
            .ok_or(BuildError::MissingName)?;
        let namespace =
            app.metadata
                .namespace
                .as_deref()
                .ok_or_else(|| BuildError::MissingNamespace {
                    name: name.to_string(),
                })?;
        let owner = app
            .controller_owner_ref(&())
            .map(|owner| OwnerReference {
                block_owner_deletion: Some(true),
                ..owner
            })
            .ok_or_else(|| BuildError::MissingUid {
                namespace: namespace.to_string(),
                name: name.to_string(),
            })?;
        Ok(Self {
            app,
            name,
            namespace,
            owner,
        })
    }

    /// Metadata of a child object: name, namespace, labels, owner.
    pub(crate) fn meta(&self, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.to_string()),
            labels: Some(labels),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }

    /// The first port (Service target, default probe port).
    pub(crate) fn primary_port(&self) -> Result<&'a AppPort, BuildError> {
        self.app
            .spec
            .primary_port()
            .ok_or_else(|| BuildError::NoPorts {
                namespace: self.namespace.to_string(),
                name: self.name.to_string(),
            })
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Fixtures shared by the builder tests.

    use serde_json::{Value, json};

    use crate::crd::StatelessApp;

    pub const UID: &str = "0b9e3c2e-6f1a-4c43-9b7e-3f1d2a0c5e11";

    /// A StatelessApp `shop` in `prod` as read from the API server, with `spec`.
    pub fn app(spec: Value) -> StatelessApp {
        let mut app = StatelessApp::new(
            "shop",
            serde_json::from_value(spec).expect("test spec deserializes"),
        );
        app.metadata.namespace = Some("prod".into());
        app.metadata.uid = Some(UID.into());
        app
    }

    /// The minimal spec: only an image, everything else defaulted.
    pub fn basic() -> StatelessApp {
        app(json!({"image": "example/shop:1.0"}))
    }

    /// The ownerReference every child carries.
    pub fn owner() -> Value {
        json!([{
            "apiVersion": "stateless.dev/v1alpha1",
            "kind": "StatelessApp",
            "name": "shop",
            "uid": UID,
            "controller": true,
            "blockOwnerDeletion": true
        }])
    }

    /// Labels of the app's own objects.
    pub fn app_labels() -> Value {
        json!({
            "app.kubernetes.io/component": "app",
            "app.kubernetes.io/instance": "shop",
            "app.kubernetes.io/managed-by": "stateless-operator",
            "app.kubernetes.io/name": "shop",
            "app.kubernetes.io/part-of": "shop"
        })
    }

    /// Selector labels of the app's pods.
    pub fn app_selector() -> Value {
        json!({
            "app.kubernetes.io/component": "app",
            "app.kubernetes.io/instance": "shop",
            "app.kubernetes.io/name": "shop"
        })
    }

    /// Labels of the managed Redis objects.
    pub fn redis_labels() -> Value {
        json!({
            "app.kubernetes.io/component": "session-store",
            "app.kubernetes.io/instance": "shop",
            "app.kubernetes.io/managed-by": "stateless-operator",
            "app.kubernetes.io/name": "redis",
            "app.kubernetes.io/part-of": "shop"
        })
    }

    /// Selector labels of the managed Redis pod.
    pub fn redis_selector() -> Value {
        json!({
            "app.kubernetes.io/component": "session-store",
            "app.kubernetes.io/instance": "shop",
            "app.kubernetes.io/name": "redis"
        })
    }

    /// Serialize a built object the way it is sent to the API server.
    pub fn to_json<T: serde::Serialize>(object: &T) -> Value {
        serde_json::to_value(object).expect("built objects serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn every_child_is_owned_labelled_and_namespaced() {
        let children = children(&basic(), &BuildInputs::default()).expect("builds");
        let redis = children.session_store.expect("managed by default");
        let metas = [
            ("Deployment", "shop", to_json(&children.deployment)),
            ("Service", "shop", to_json(&children.service)),
            ("HorizontalPodAutoscaler", "shop", to_json(&children.hpa)),
            ("PodDisruptionBudget", "shop", to_json(&children.pdb)),
            ("ConfigMap", "shop-redis", to_json(&redis.config)),
            ("Deployment", "shop-redis", to_json(&redis.deployment)),
            ("Service", "shop-redis", to_json(&redis.service)),
            (
                "NetworkPolicy",
                "shop-redis",
                to_json(&redis.network_policy),
            ),
        ];
        for (kind, name, object) in metas {
            assert_eq!(object["kind"], kind, "{object}");
            assert!(object["apiVersion"].is_string(), "{object}");
            assert_eq!(object["metadata"]["name"], name, "{object}");
            assert_eq!(object["metadata"]["namespace"], "prod", "{object}");
            assert_eq!(object["metadata"]["ownerReferences"], owner(), "{object}");
            let expected_labels = if name == "shop" {
                app_labels()
            } else {
                redis_labels()
            };
            assert_eq!(object["metadata"]["labels"], expected_labels, "{object}");
            assert!(object.get("status").is_none(), "{object}");
        }
        assert!(redis.pvc.is_none());
    }

    #[test]
    fn building_twice_gives_identical_objects() {
        let app = app(json!({
            "image": "example/shop:1.0",
            "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
            "sessionStore": {"managed": {"persistence": {"enabled": true}}}
        }));
        let inputs = BuildInputs {
            config_hash: Some("abc".into()),
            ..BuildInputs::default()
        };
        let first = children(&app, &inputs).expect("builds");
        let second = children(&app, &inputs).expect("builds");
        assert_eq!(first, second);
        assert_eq!(
            serde_json::to_string(&first.deployment).expect("serializes"),
            serde_json::to_string(&second.deployment).expect("serializes")
        );
    }

    #[test]
    fn full_example_builds_every_child() {
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(include_str!("../../examples/full.yaml")).expect("parses");
        let spec = docs
            .into_iter()
            .find(|d| d["kind"] == "StatelessApp")
            .expect("a StatelessApp")["spec"]
            .clone();
        let children = children(
            &app(spec),
            &BuildInputs {
                config_hash: Some("0123abcd".into()),
                ..BuildInputs::default()
            },
        )
        .expect("builds");
        let deployment = to_json(&children.deployment);
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsUser"], 10001);
        assert_eq!(
            pod["containers"][0]["env"][2],
            json!({
                "name": "SESSION_REDIS_URL",
                "valueFrom": {"secretKeyRef": {"name": "shop-redis", "key": "url"}}
            })
        );
        assert_eq!(to_json(&children.hpa)["spec"]["maxReplicas"], 6);
        assert_eq!(
            to_json(&children.service)["spec"]["ports"],
            json!([{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}])
        );
        let redis = children.session_store.expect("managed");
        assert!(redis.pvc.is_none());
        let redis_deployment = to_json(&redis.deployment);
        assert_eq!(
            redis_deployment["spec"]["template"]["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"memory": "96Mi"}})
        );
    }

    #[test]
    fn missing_identity_is_an_error() {
        let mut app = basic();
        app.metadata.uid = None;
        let err = children(&app, &BuildInputs::default()).expect_err("no uid");
        assert!(matches!(err, BuildError::MissingUid { .. }), "{err}");
        assert!(err.to_string().contains("prod/shop"), "{err}");

        let mut app = basic();
        app.metadata.namespace = None;
        let err = children(&app, &BuildInputs::default()).expect_err("no namespace");
        assert!(matches!(err, BuildError::MissingNamespace { .. }), "{err}");

        let mut app = basic();
        app.metadata.name = None;
        let err = children(&app, &BuildInputs::default()).expect_err("no name");
        assert!(matches!(err, BuildError::MissingName), "{err}");
    }

    #[test]
    fn empty_ports_is_an_error_not_a_panic() {
        let mut app = basic();
        app.spec.ports.clear();
        let err = children(&app, &BuildInputs::default()).expect_err("no ports");
        assert!(matches!(err, BuildError::NoPorts { .. }), "{err}");
    }

    #[test]
    fn refused_volumes_build_nothing() {
        let mut app = basic();
        app.spec.volumes = serde_json::from_value(serde_json::json!([
            {"name": "data", "hostPath": {"path": "/srv/app"}}
        ]))
        .expect("volumes");
        let err = children(&app, &BuildInputs::default()).expect_err("hostPath");
        assert!(matches!(err, BuildError::RefusedVolumes { .. }), "{err}");
        assert!(
            err.to_string().contains("spec.volumes data uses hostPath"),
            "{err}"
        );
    }

    #[test]
    fn controlled_by_checks_the_uid() {
        let app = basic();
        let children = children(&app, &BuildInputs::default()).expect("builds");
        assert!(is_controlled_by(&children.deployment.metadata, &app));
        let mut other = basic();
        other.metadata.uid = Some("another-uid".into());
        assert!(!is_controlled_by(&children.deployment.metadata, &other));
        assert!(!is_controlled_by(&ObjectMeta::default(), &app));
    }
}

//! The app Deployment `<name>`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, TCPSocketAction, TopologySpreadConstraint, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::bindings::{self, Projection};
use super::signing_keys;
use super::{BuildError, BuildInputs, CONFIG_HASH_ANNOTATION, Context, labels, names};
use crate::crd::object_storage::env as storage_env;
use crate::crd::{AppPort, ObjectStorageSpec, Protocol, SessionStoreType};

/// Name of the application container.
pub const APP_CONTAINER: &str = "app";
/// Name of the writable scratch volume mounted at [`TMP_MOUNT_PATH`].
pub const TMP_VOLUME: &str = "stateless-tmp";
/// Where the scratch volume is mounted (the root filesystem is read-only).
pub const TMP_MOUNT_PATH: &str = "/tmp";
/// Size limit of the scratch volume: enough for temp files, too small to
/// quietly keep state on the node.
pub const TMP_SIZE_LIMIT: &str = "64Mi";

/// Build the app Deployment.
pub(crate) fn build(ctx: &Context<'_>, inputs: &BuildInputs) -> Result<Deployment, BuildError> {
    let selector = labels::app_selector(ctx.name);
    let shared = shared(ctx, inputs)?;
    Ok(Deployment {
        metadata: ctx.meta(names::app(ctx.name), labels::app(ctx.name)),
        spec: Some(DeploymentSpec {
            // No `replicas`: the HorizontalPodAutoscaler owns the replica
            // count. If the operator applied it too, every reconcile would
            // reset what the HPA scaled to. On create Kubernetes defaults it
            // to 1 and the HPA raises it to `replicas.min` within its sync
            // period (15s by default).
            replicas: None,
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                match_expressions: None,
            },
            // Never drop below the current ready count during a rollout.
            strategy: Some(rolling_update()),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels::app(ctx.name)),
                    annotations: shared.annotations.clone(),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(ctx, selector, shared)?),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    })
}

/// What every pod of the app gets, whatever it runs: the template's
/// annotations (the bindings' values, the config hash), the volumes and
/// mounts (scratch `/tmp`, the user's, the bindings, the signing keys) and
/// the env.
pub(crate) struct Shared {
    pub annotations: Option<BTreeMap<String, String>>,
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
    pub env: Vec<EnvVar>,
}

pub(crate) fn shared(ctx: &Context<'_>, inputs: &BuildInputs) -> Result<Shared, BuildError> {
    let spec = &ctx.app.spec;
    let bindings = bindings::projection(ctx)?;
    let mut annotations = bindings
        .as_ref()
        .map(|b| b.annotations.clone())
        .unwrap_or_default();
    if let Some(hash) = &inputs.config_hash {
        annotations.insert(CONFIG_HASH_ANNOTATION.to_string(), hash.clone());
    }
    // The user may bring their own /tmp; otherwise give the read-only root
    // filesystem a small writable scratch space.
    let own_tmp = !spec
        .volume_mounts
        .iter()
        .any(|m| m.mount_path.trim_end_matches('/') == TMP_MOUNT_PATH);

    let mut volumes = Vec::with_capacity(spec.volumes.len() + 1);
    let mut mounts = Vec::with_capacity(spec.volume_mounts.len() + 1);
    if own_tmp {
        volumes.push(Volume {
            name: TMP_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: None,
                size_limit: Some(Quantity(TMP_SIZE_LIMIT.into())),
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: TMP_VOLUME.into(),
            mount_path: TMP_MOUNT_PATH.into(),
            ..VolumeMount::default()
        });
    }
    volumes.extend(spec.volumes.iter().cloned());
    mounts.extend(spec.volume_mounts.iter().cloned());
    if let Some(bindings) = &bindings {
        volumes.push(bindings.volume.clone());
        mounts.push(bindings.mount.clone());
    }
    let signing_keys = signing_keys::projection(ctx);
    if let Some(keys) = &signing_keys {
        volumes.push(keys.volume.clone());
        mounts.push(keys.mount.clone());
    }
    Ok(Shared {
        annotations: (!annotations.is_empty()).then_some(annotations),
        volumes,
        mounts,
        env: env(ctx, bindings.as_ref(), signing_keys.as_ref())?,
    })
}

fn pod_spec(
    ctx: &Context<'_>,
    selector: BTreeMap<String, String>,
    shared: Shared,
) -> Result<PodSpec, BuildError> {
    let spec = &ctx.app.spec;
    let primary = ctx.primary_port()?;
    let container = Container {
        name: APP_CONTAINER.into(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_string()),
        command: spec.command.clone(),
        args: spec.args.clone(),
        ports: Some(spec.ports.iter().map(container_port).collect()),
        env: non_empty(shared.env),
        env_from: non_empty(spec.env_from.clone()),
        resources: spec.resources.as_deref().cloned(),
        readiness_probe: Some(
            spec.readiness_probe
                .as_deref()
                .cloned()
                .unwrap_or_else(|| default_readiness_probe(primary)),
        ),
        liveness_probe: Some(
            spec.liveness_probe
                .as_deref()
                .cloned()
                .unwrap_or_else(|| default_liveness_probe(primary)),
        ),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: non_empty(shared.mounts),
        ..Container::default()
    };

    Ok(PodSpec {
        containers: vec![container],
        security_context: Some(pod_security_context(ctx)),
        topology_spread_constraints: Some(vec![spread_over_nodes(selector)]),
        volumes: non_empty(shared.volumes),
        ..PodSpec::default()
    })
}

/// Spread the pods `selector` picks over nodes, so one node failure does not
/// take them all; ScheduleAnyway keeps small clusters schedulable.
/// `pod-template-hash` makes the spread per ReplicaSet, so a rollout's new
/// pods are spread among themselves.
pub(crate) fn spread_over_nodes(selector: BTreeMap<String, String>) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        max_skew: 1,
        topology_key: "kubernetes.io/hostname".into(),
        when_unsatisfiable: "ScheduleAnyway".into(),
        label_selector: Some(LabelSelector {
            match_labels: Some(selector),
            match_expressions: None,
        }),
        match_label_keys: Some(vec!["pod-template-hash".into()]),
        ..TopologySpreadConstraint::default()
    }
}

/// The never-shrinking rollout of the app's and the workers' Deployments:
/// surge one new pod, retire an old one only once it is ready.
pub(crate) fn rolling_update() -> DeploymentStrategy {
    DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::Int(1)),
            max_unavailable: Some(IntOrString::Int(0)),
        }),
    }
}

/// What a container that runs something else than the web tier (a worker,
/// a scheduled job) sets of its own; the rest comes from the app.
pub(crate) struct Workload<'a> {
    pub image: Option<&'a String>,
    pub command: Option<&'a Vec<String>>,
    pub args: Option<&'a Vec<String>>,
    pub resources: Option<&'a ResourceRequirements>,
}

/// The container of a worker or a scheduled job: the app's image unless the
/// workload names its own, the app's env and mounts, and none of the web
/// tier's ports or probes. A command of its own, or an image of its own,
/// replaces the app's command and args alike, as in a container: args
/// written for one command rarely suit another.
pub(crate) fn workload_container(
    ctx: &Context<'_>,
    workload: Workload<'_>,
    env: Vec<EnvVar>,
    mounts: Vec<VolumeMount>,
) -> Container {
    let spec = &ctx.app.spec;
    let (command, args) = match (workload.command, workload.image) {
        (Some(command), _) => (Some(command.clone()), workload.args.cloned()),
        (None, Some(_)) => (None, workload.args.cloned()),
        (None, None) => (
            spec.command.clone(),
            workload.args.cloned().or_else(|| spec.args.clone()),
        ),
    };
    Container {
        name: APP_CONTAINER.into(),
        image: Some(workload.image.unwrap_or(&spec.image).clone()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_string()),
        command,
        args,
        env: non_empty(env),
        env_from: non_empty(spec.env_from.clone()),
        resources: workload.resources.or(spec.resources.as_deref()).cloned(),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: non_empty(mounts),
        ..Container::default()
    }
}

/// The user's env, then the session store URL, the object storage variables,
/// the bindings' root and the signing key files. A user variable with the
/// name of one the operator sets is dropped: the session store, object
/// storage, bindings and identity configuration is authoritative.
fn env(
    ctx: &Context<'_>,
    bindings: Option<&Projection>,
    signing_keys: Option<&signing_keys::Projection>,
) -> Result<Vec<EnvVar>, BuildError> {
    let spec = &ctx.app.spec;
    let mut injected = Vec::new();
    if let Some((secret_name, key)) = session_secret(ctx)? {
        injected.push(from_secret(spec.session_url_env_var(), secret_name, key));
    }
    if let Some(storage) = &spec.object_storage {
        injected.extend(object_storage_env(storage));
    }
    if let Some(bindings) = bindings {
        injected.push(value(bindings::ROOT_ENV, &bindings.root));
    }
    if let Some(keys) = signing_keys {
        injected.extend(keys.env.iter().cloned());
    }
    let mut env: Vec<EnvVar> = spec
        .env
        .iter()
        .filter(|e| !injected.iter().any(|i| i.name == e.name))
        .cloned()
        .collect();
    env.extend(injected);
    Ok(env)
}

/// The Secret and key holding the session store URL, if there is a store.
fn session_secret(ctx: &Context<'_>) -> Result<Option<(String, String)>, BuildError> {
    let spec = &ctx.app.spec;
    Ok(match spec.session_store_type() {
        SessionStoreType::None => None,
        SessionStoreType::Managed => Some((names::redis_secret(ctx.name), "url".to_string())),
        SessionStoreType::External => {
            let secret = spec.external_session_secret().ok_or_else(|| {
                BuildError::MissingExternalSecret {
                    namespace: ctx.namespace.to_string(),
                    name: ctx.name.to_string(),
                }
            })?;
            Some((secret.name.clone(), secret.key.clone()))
        }
    })
}

/// The variables S3 SDKs read: the key pair from its Secret, the rest as
/// values (a bucket, an endpoint and a region are not secrets).
fn object_storage_env(storage: &ObjectStorageSpec) -> Vec<EnvVar> {
    let credentials = &storage.credentials;
    let secret = &credentials.secret_name;
    let mut env = vec![
        from_secret(
            storage_env::ACCESS_KEY_ID,
            secret.clone(),
            credentials.access_key_id_key.clone(),
        ),
        from_secret(
            storage_env::SECRET_ACCESS_KEY,
            secret.clone(),
            credentials.secret_access_key_key.clone(),
        ),
    ];
    if let Some(region) = &storage.region {
        env.push(value(storage_env::REGION, region));
        env.push(value(storage_env::DEFAULT_REGION, region));
    }
    if let Some(endpoint) = &storage.endpoint {
        env.push(value(storage_env::ENDPOINT_URL_S3, endpoint));
        env.push(value(storage_env::ENDPOINT, endpoint));
    }
    env.push(value(storage_env::BUCKET, &storage.bucket));
    if storage.force_path_style {
        env.push(value(storage_env::FORCE_PATH_STYLE, "true"));
    }
    env
}

fn from_secret(name: &str, secret_name: String, key: String) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret_name,
                key,
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn value(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    }
}

fn container_port(port: &AppPort) -> ContainerPort {
    ContainerPort {
        name: Some(port.name.clone()),
        container_port: port.container_port,
        // Explicit: `protocol` is part of the list-map key under server-side apply.
        protocol: Some(port.protocol.unwrap_or(Protocol::Tcp).as_str().into()),
        ..ContainerPort::default()
    }
}

/// Default readiness probe: the first port accepts TCP connections.
pub fn default_readiness_probe(port: &AppPort) -> Probe {
    Probe {
        tcp_socket: Some(tcp_socket(port)),
        period_seconds: Some(10),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// Default liveness probe: like readiness but slower, after a grace period,
/// so a busy pod is taken out of rotation long before it is restarted.
pub fn default_liveness_probe(port: &AppPort) -> Probe {
    Probe {
        tcp_socket: Some(tcp_socket(port)),
        initial_delay_seconds: Some(15),
        period_seconds: Some(20),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

fn tcp_socket(port: &AppPort) -> TCPSocketAction {
    TCPSocketAction {
        host: None,
        port: IntOrString::String(port.name.clone()),
    }
}

/// Container security context of the restricted Pod Security Standard.
/// The restricted Pod Security Standard for every pod of the app: non-root
/// (the user's uid, if set), the runtime's default seccomp profile.
pub(crate) fn pod_security_context(ctx: &Context<'_>) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: ctx.app.spec.run_as_user,
        seccomp_profile: Some(runtime_default_seccomp()),
        ..PodSecurityContext::default()
    }
}

pub(crate) fn restricted_container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            add: None,
            drop: Some(vec!["ALL".into()]),
        }),
        ..SecurityContext::default()
    }
}

pub(crate) fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

pub(crate) fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{BuildInputs, children};
    use serde_json::json;

    fn deployment(app: &crate::crd::StatelessApp, inputs: &BuildInputs) -> serde_json::Value {
        to_json(&children(app, inputs).expect("builds").deployment)
    }

    #[test]
    fn basic_spec_whole_object() {
        let got = deployment(&basic(), &BuildInputs::default());
        let expected = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "shop",
                "namespace": "prod",
                "labels": app_labels(),
                "ownerReferences": owner()
            },
            "spec": {
                "selector": {"matchLabels": app_selector()},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}
                },
                "template": {
                    "metadata": {"labels": app_labels()},
                    "spec": {
                        "containers": [{
                            "name": "app",
                            "image": "example/shop:1.0",
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                            "env": [{
                                "name": "REDIS_URL",
                                "valueFrom": {"secretKeyRef": {"name": "shop-redis", "key": "url"}}
                            }],
                            "readinessProbe": {
                                "tcpSocket": {"port": "http"},
                                "periodSeconds": 10,
                                "timeoutSeconds": 2,
                                "failureThreshold": 3
                            },
                            "livenessProbe": {
                                "tcpSocket": {"port": "http"},
                                "initialDelaySeconds": 15,
                                "periodSeconds": 20,
                                "timeoutSeconds": 2,
                                "failureThreshold": 3
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]}
                            },
                            "volumeMounts": [{"name": "stateless-tmp", "mountPath": "/tmp"}]
                        }],
                        "securityContext": {
                            "runAsNonRoot": true,
                            "seccompProfile": {"type": "RuntimeDefault"}
                        },
                        "topologySpreadConstraints": [{
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": app_selector()},
                            "matchLabelKeys": ["pod-template-hash"]
                        }],
                        "volumes": [{"name": "stateless-tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
                    }
                }
            }
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn deployment_never_sets_replicas() {
        for spec in [
            json!({"image": "x"}),
            json!({"image": "x", "replicas": {"min": 5, "max": 9}}),
        ] {
            let got = deployment(&app(spec), &BuildInputs::default());
            assert!(got["spec"].get("replicas").is_none(), "{got}");
        }
    }

    #[test]
    fn config_hash_is_a_pod_template_annotation() {
        let inputs = BuildInputs {
            config_hash: Some("3f2a".into()),
            ..BuildInputs::default()
        };
        let got = deployment(&basic(), &inputs);
        assert_eq!(
            got["spec"]["template"]["metadata"],
            json!({
                "labels": app_labels(),
                "annotations": {"stateless.dev/config-hash": "3f2a"}
            })
        );
        // Not on the Deployment itself: only a pod-template change rolls pods.
        assert!(got["metadata"].get("annotations").is_none());
    }

    #[test]
    fn full_spec_whole_pod_template() {
        let app = app(json!({
            "image": "example/shop:2.0",
            "imagePullPolicy": "IfNotPresent",
            "command": ["/shop"],
            "args": ["--listen=:9898"],
            "ports": [
                {"name": "web", "containerPort": 9898},
                {"name": "metrics", "containerPort": 9797, "protocol": "TCP"}
            ],
            "env": [
                {"name": "LOG_LEVEL", "value": "debug"},
                {"name": "SESSIONS", "value": "overridden by the operator"},
                {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "shop-config", "key": "greeting"}}}
            ],
            "envFrom": [{"configMapRef": {"name": "shop-config"}}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "web"}, "periodSeconds": 5},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "web"}},
            "volumes": [{"name": "config", "configMap": {"name": "shop-config"}}],
            "volumeMounts": [{"name": "config", "mountPath": "/etc/shop", "readOnly": true}],
            "runAsUser": 10001,
            "sessionStore": {"type": "managed", "urlEnvVar": "SESSIONS"}
        }));
        let inputs = BuildInputs {
            config_hash: Some("abc123".into()),
            ..BuildInputs::default()
        };
        let got = deployment(&app, &inputs);
        let expected = json!({
            "metadata": {
                "labels": app_labels(),
                "annotations": {"stateless.dev/config-hash": "abc123"}
            },
            "spec": {
                "containers": [{
                    "name": "app",
                    "image": "example/shop:2.0",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["/shop"],
                    "args": ["--listen=:9898"],
                    "ports": [
                        {"name": "web", "containerPort": 9898, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9797, "protocol": "TCP"}
                    ],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "debug"},
                        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "shop-config", "key": "greeting"}}},
                        {"name": "SESSIONS", "valueFrom": {"secretKeyRef": {"name": "shop-redis", "key": "url"}}}
                    ],
                    "envFrom": [{"configMapRef": {"name": "shop-config"}}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "web"}, "periodSeconds": 5},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "web"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]}
                    },
                    "volumeMounts": [
                        {"name": "stateless-tmp", "mountPath": "/tmp"},
                        {"name": "config", "mountPath": "/etc/shop", "readOnly": true}
                    ]
                }],
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"}
                },
                "topologySpreadConstraints": [{
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": app_selector()},
                    "matchLabelKeys": ["pod-template-hash"]
                }],
                "volumes": [
                    {"name": "stateless-tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    {"name": "config", "configMap": {"name": "shop-config"}}
                ]
            }
        });
        assert_eq!(got["spec"]["template"], expected);
    }

    #[test]
    fn external_session_store_env_comes_from_the_referenced_secret() {
        let app = app(json!({
            "image": "x",
            "sessionStore": {
                "type": "external",
                "urlEnvVar": "SESSION_URL",
                "external": {"secretRef": {"name": "elasticache", "key": "primary"}}
            }
        }));
        let got = deployment(&app, &BuildInputs::default());
        assert_eq!(
            got["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{
                "name": "SESSION_URL",
                "valueFrom": {"secretKeyRef": {"name": "elasticache", "key": "primary"}}
            }])
        );
    }

    #[test]
    fn external_session_store_without_secret_is_an_error() {
        let app = app(json!({"image": "x", "sessionStore": {"type": "external"}}));
        let err = children(&app, &BuildInputs::default()).expect_err("no secretRef");
        assert!(
            matches!(err, super::super::BuildError::MissingExternalSecret { .. }),
            "{err}"
        );
    }

    #[test]
    fn no_session_store_injects_nothing_and_keeps_user_env() {
        let app = app(json!({
            "image": "x",
            "env": [{"name": "REDIS_URL", "value": "redis://cache:6379"}],
            "sessionStore": {"type": "none"}
        }));
        let got = deployment(&app, &BuildInputs::default());
        assert_eq!(
            got["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name": "REDIS_URL", "value": "redis://cache:6379"}])
        );
    }

    #[test]
    fn object_storage_env_is_the_sdk_variables_with_keys_from_the_secret() {
        let app = app(json!({
            "image": "x",
            "env": [
                {"name": "S3_BUCKET", "value": "old"},
                {"name": "AWS_REGION", "value": "us-east-1"},
                {"name": "LOG_LEVEL", "value": "info"}
            ],
            "sessionStore": {"type": "none"},
            "objectStorage": {
                "bucket": "shop-uploads",
                "endpoint": "http://minio.storage:9000",
                "region": "eu-west-1",
                "forcePathStyle": true,
                "credentials": {"secretName": "shop-s3", "accessKeyIdKey": "id"}
            }
        }));
        let got = deployment(&app, &BuildInputs::default());
        let key = |name: &str, key: &str| {
            json!({
                "name": name,
                "valueFrom": {"secretKeyRef": {"name": "shop-s3", "key": key}}
            })
        };
        let value = |name: &str, value: &str| json!({"name": name, "value": value});
        assert_eq!(
            got["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([
                value("LOG_LEVEL", "info"),
                key("AWS_ACCESS_KEY_ID", "id"),
                key("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
                value("AWS_REGION", "eu-west-1"),
                value("AWS_DEFAULT_REGION", "eu-west-1"),
                value("AWS_ENDPOINT_URL_S3", "http://minio.storage:9000"),
                value("S3_ENDPOINT", "http://minio.storage:9000"),
                value("S3_BUCKET", "shop-uploads"),
                value("S3_FORCE_PATH_STYLE", "true")
            ])
        );
    }

    #[test]
    fn object_storage_without_endpoint_or_region_keeps_the_users_region() {
        let app = app(json!({
            "image": "x",
            "env": [{"name": "AWS_REGION", "value": "us-east-2"}],
            "objectStorage": {"bucket": "uploads", "credentials": {"secretName": "s3"}}
        }));
        let got = deployment(&app, &BuildInputs::default());
        let names: Vec<&str> = got["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "AWS_REGION",
                "REDIS_URL",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "S3_BUCKET"
            ]
        );
    }

    #[test]
    fn no_session_store_and_no_env_omits_env() {
        let app = app(json!({"image": "x", "sessionStore": {"type": "none"}}));
        let got = deployment(&app, &BuildInputs::default());
        assert!(
            got["spec"]["template"]["spec"]["containers"][0]
                .get("env")
                .is_none()
        );
    }

    #[test]
    fn user_tmp_mount_replaces_the_scratch_volume() {
        let app = app(json!({
            "image": "x",
            "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}],
            "volumeMounts": [{"name": "scratch", "mountPath": "/tmp/"}]
        }));
        let got = deployment(&app, &BuildInputs::default());
        let pod = &got["spec"]["template"]["spec"];
        assert_eq!(
            pod["volumes"],
            json!([{"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}])
        );
        assert_eq!(
            pod["containers"][0]["volumeMounts"],
            json!([{"name": "scratch", "mountPath": "/tmp/"}])
        );
    }
}

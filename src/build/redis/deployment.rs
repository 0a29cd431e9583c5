//! Deployment `<name>-redis`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    ExecAction, KeyToPath, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SecretKeySelector, SecretVolumeSource,
    TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};

use super::config::{ACL_DIR, max_memory_bytes};
use super::{
    ACL_KEY, PASSWORD_KEY, REDIS_CONF_KEY, REDIS_GID, REDIS_PORT, REDIS_PORT_NAME, REDIS_UID,
    REDIS_USER,
};
use crate::build::deployment::{
    non_empty, restricted_container_security_context, runtime_default_seccomp,
};
use crate::build::{BuildError, BuildInputs, CONFIG_HASH_ANNOTATION, Context, labels, names};
use crate::crd::ManagedSessionStore;

const CONFIG_VOLUME: &str = "config";
const ACL_VOLUME: &str = "acl";
const CONFIG_DIR: &str = "/etc/redis";
const DATA_VOLUME: &str = "data";
const DATA_DIR: &str = "/data";
/// Without persistence Redis writes nothing to /data; the limit only keeps a
/// misconfiguration from filling the node's disk.
const DATA_SIZE_LIMIT: &str = "64Mi";
/// Floor of the default memory request/limit.
const MIN_MEMORY_MIB: u64 = 64;

pub(super) fn build(
    ctx: &Context<'_>,
    settings: &ManagedSessionStore,
    inputs: &BuildInputs,
    conf: &str,
) -> Result<Deployment, BuildError> {
    let selector = labels::redis_selector(ctx.name);
    let resources = match &settings.resources {
        Some(resources) => resources.clone(),
        None => default_resources(max_memory_bytes(ctx, settings)?),
    };
    let password = |name: &str| EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: names::redis_secret(ctx.name),
                key: PASSWORD_KEY.into(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
    };
    let data_volume = if settings.persistence.enabled {
        Volume {
            name: DATA_VOLUME.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: names::redis_data(ctx.name),
                read_only: None,
            }),
            ..Volume::default()
        }
    } else {
        Volume {
            name: DATA_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: None,
                size_limit: Some(Quantity(DATA_SIZE_LIMIT.into())),
            }),
            ..Volume::default()
        }
    };

    let container = Container {
        name: "redis".into(),
        // The app's own image wins over the operator's default.
        image: Some(settings.image_or(&inputs.session_store_image).to_string()),
        // No password on the command line (readable in /proc by anything
        // that shares the node's process view): the users come from the ACL
        // file that redis.conf names.
        command: Some(vec!["redis-server".into()]),
        args: Some(vec![format!("{CONFIG_DIR}/{REDIS_CONF_KEY}")]),
        // REDISCLI_AUTH lets the readiness probe's redis-cli authenticate as
        // the app's user without the password on its command line.
        env: Some(vec![password("REDISCLI_AUTH")]),
        ports: Some(vec![ContainerPort {
            name: Some(REDIS_PORT_NAME.into()),
            container_port: REDIS_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        resources: Some(resources),
        // Ready only when Redis answers PING (not while loading its data).
        readiness_probe: Some(Probe {
            exec: Some(ExecAction {
                command: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    format!(
                        "redis-cli --user {REDIS_USER} -h 127.0.0.1 -p {REDIS_PORT} ping | grep -q PONG"
                    ),
                ]),
            }),
            period_seconds: Some(10),
            timeout_seconds: Some(2),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        // Alive while it accepts connections, so loading a large append-only
        // file does not get it restarted.
        liveness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                host: None,
                port: IntOrString::String(REDIS_PORT_NAME.into()),
            }),
            initial_delay_seconds: Some(10),
            period_seconds: Some(20),
            timeout_seconds: Some(2),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: CONFIG_VOLUME.into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: ACL_VOLUME.into(),
                mount_path: ACL_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: DATA_VOLUME.into(),
                mount_path: DATA_DIR.into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };

    Ok(Deployment {
        metadata: ctx.meta(names::redis(ctx.name), labels::redis(ctx.name)),
        spec: Some(DeploymentSpec {
            // One instance: sessions are a cache of logins, not replicated data.
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            },
            // Recreate: two Redis pods must never share the volume, and a
            // ReadWriteOnce claim could not be attached twice anyway.
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                rolling_update: None,
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels::redis(ctx.name)),
                    // A redis.conf change (maxmemory, policy, persistence)
                    // restarts Redis, which only reads it at start.
                    annotations: Some(BTreeMap::from([(
                        CONFIG_HASH_ANNOTATION.to_string(),
                        sha256_hex(conf),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    // Redis never talks to the Kubernetes API.
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(REDIS_UID),
                        run_as_group: Some(REDIS_GID),
                        // The redis group reads the ACL file (mode 0440) and
                        // writes the claim's files.
                        fs_group: Some(REDIS_GID),
                        seccomp_profile: Some(runtime_default_seccomp()),
                        ..PodSecurityContext::default()
                    }),
                    volumes: non_empty(vec![
                        Volume {
                            name: CONFIG_VOLUME.into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: names::redis(ctx.name),
                                ..ConfigMapVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: ACL_VOLUME.into(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(names::redis_secret(ctx.name)),
                                items: Some(vec![KeyToPath {
                                    key: ACL_KEY.into(),
                                    path: ACL_KEY.into(),
                                    mode: None,
                                }]),
                                default_mode: Some(0o440),
                                optional: None,
                            }),
                            ..Volume::default()
                        },
                        data_volume,
                    ]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    })
}

/// 50m CPU requested (no CPU limit: throttling a session store only adds
/// latency), memory request = limit = twice maxmemory, at least 64Mi: Redis
/// needs room beyond maxmemory for buffers, fragmentation and forks.
fn default_resources(max_memory: u64) -> ResourceRequirements {
    const MIB: u64 = 1 << 20;
    let mib = max_memory
        .saturating_mul(2)
        .div_ceil(MIB)
        .max(MIN_MEMORY_MIB);
    let memory = Quantity(format!("{mib}Mi"));
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("50m".into())),
            ("memory".to_string(), memory.clone()),
        ])),
        limits: Some(BTreeMap::from([("memory".to_string(), memory)])),
        ..ResourceRequirements::default()
    }
}

fn sha256_hex(data: &str) -> String {
    Sha256::digest(data.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::test_support::*;
    use crate::build::{BuildInputs, children};
    use serde_json::json;

    fn redis(app: &crate::crd::StatelessApp) -> crate::build::ManagedRedis {
        redis_with(app, &BuildInputs::default())
    }

    fn redis_with(
        app: &crate::crd::StatelessApp,
        inputs: &BuildInputs,
    ) -> crate::build::ManagedRedis {
        children(app, inputs)
            .expect("builds")
            .session_store
            .expect("managed")
    }

    /// The operator's `--session-store-image` in the tests below.
    const OPERATOR_IMAGE: &str = "mirror.example/library/redis:7.4.6-alpine";

    fn operator_inputs() -> BuildInputs {
        BuildInputs {
            session_store_image: OPERATOR_IMAGE.into(),
            ..BuildInputs::default()
        }
    }

    /// The whole Redis Deployment of app `shop` with default settings,
    /// running `image`; `conf` is the redis.conf it was built with.
    fn default_deployment(conf: &str, image: &str) -> serde_json::Value {
        let secret_env = |name: &str| json!({"name": name, "valueFrom": {"secretKeyRef": {"name": "shop-redis", "key": "password"}}});
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "shop-redis",
                "namespace": "prod",
                "labels": redis_labels(),
                "ownerReferences": owner()
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": redis_selector()},
                "strategy": {"type": "Recreate"},
                "template": {
                    "metadata": {
                        "labels": redis_labels(),
                        "annotations": {"stateless.dev/config-hash": sha256_hex(conf)}
                    },
                    "spec": {
                        "automountServiceAccountToken": false,
                        "securityContext": {
                            "runAsNonRoot": true,
                            "runAsUser": 999,
                            "runAsGroup": 1000,
                            "fsGroup": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}
                        },
                        "containers": [{
                            "name": "redis",
                            "image": image,
                            "command": ["redis-server"],
                            "args": ["/etc/redis/redis.conf"],
                            "env": [secret_env("REDISCLI_AUTH")],
                            "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "128Mi"},
                                "limits": {"memory": "128Mi"}
                            },
                            "readinessProbe": {
                                "exec": {"command": ["sh", "-c", "redis-cli --user app -h 127.0.0.1 -p 6379 ping | grep -q PONG"]},
                                "periodSeconds": 10,
                                "timeoutSeconds": 2,
                                "failureThreshold": 3
                            },
                            "livenessProbe": {
                                "tcpSocket": {"port": "redis"},
                                "initialDelaySeconds": 10,
                                "periodSeconds": 20,
                                "timeoutSeconds": 2,
                                "failureThreshold": 3
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]}
                            },
                            "volumeMounts": [
                                {"name": "config", "mountPath": "/etc/redis", "readOnly": true},
                                {"name": "acl", "mountPath": "/etc/redis/acl", "readOnly": true},
                                {"name": "data", "mountPath": "/data"}
                            ]
                        }],
                        "volumes": [
                            {"name": "config", "configMap": {"name": "shop-redis"}},
                            {"name": "acl", "secret": {"secretName": "shop-redis", "defaultMode": 288,
                                                       "items": [{"key": "users.acl", "path": "users.acl"}]}},
                            {"name": "data", "emptyDir": {"sizeLimit": "64Mi"}}
                        ]
                    }
                }
            }
        })
    }

    fn conf_of(redis: &crate::build::ManagedRedis) -> String {
        redis.config.data.as_ref().expect("data")[REDIS_CONF_KEY].clone()
    }

    #[test]
    fn basic_spec_whole_object() {
        let redis = redis(&basic());
        let conf = conf_of(&redis);
        assert_eq!(
            to_json(&redis.deployment),
            default_deployment(&conf, "redis:7.4.6-alpine")
        );
        assert_eq!(sha256_hex(&conf).len(), 64);
    }

    #[test]
    fn unset_image_uses_the_operator_default() {
        let redis = redis_with(&basic(), &operator_inputs());
        assert_eq!(
            to_json(&redis.deployment),
            default_deployment(&conf_of(&redis), OPERATOR_IMAGE)
        );
    }

    #[test]
    fn explicit_image_wins_over_the_operator_default() {
        let app = app(json!({
            "image": "example/shop:1.0",
            "sessionStore": {"managed": {"image": "registry.example/redis:7.2"}}
        }));
        let redis = redis_with(&app, &operator_inputs());
        assert_eq!(
            to_json(&redis.deployment),
            default_deployment(&conf_of(&redis), "registry.example/redis:7.2")
        );
    }

    #[test]
    fn persistence_mounts_the_claim_with_fs_group() {
        let app = app(json!({
            "image": "x",
            "sessionStore": {"managed": {"persistence": {"enabled": true, "size": "5Gi"}}}
        }));
        let got = to_json(&redis(&app).deployment);
        let pod = &got["spec"]["template"]["spec"];
        assert_eq!(
            pod["volumes"][2],
            json!({"name": "data", "persistentVolumeClaim": {"claimName": "shop-redis-data"}})
        );
        assert_eq!(pod["securityContext"]["fsGroup"], 1000);
    }

    #[test]
    fn config_change_changes_the_pod_template_hash() {
        let small = to_json(&redis(&basic()).deployment);
        let big = to_json(
            &redis(&app(
                json!({"image": "x", "sessionStore": {"managed": {"maxMemory": "1gb"}}}),
            ))
            .deployment,
        );
        let hash = |d: &serde_json::Value| {
            d["spec"]["template"]["metadata"]["annotations"]["stateless.dev/config-hash"].clone()
        };
        assert_ne!(hash(&small), hash(&big));
        // Default resources follow maxMemory.
        assert_eq!(
            big["spec"]["template"]["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "50m", "memory": "2048Mi"}, "limits": {"memory": "2048Mi"}})
        );
    }

    #[test]
    fn explicit_resources_win() {
        let app = app(json!({
            "image": "x",
            "sessionStore": {"managed": {
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}
            }}
        }));
        let got = to_json(&redis(&app).deployment);
        let container = &got["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["resources"],
            json!({"requests": {"cpu": "10m", "memory": "32Mi"}})
        );
    }

    #[test]
    fn invalid_max_memory_is_an_error() {
        let app = app(json!({"image": "x", "sessionStore": {"managed": {"maxMemory": "lots"}}}));
        let err = children(&app, &BuildInputs::default()).expect_err("bad maxMemory");
        assert!(matches!(err, BuildError::InvalidMaxMemory { .. }), "{err}");
        assert!(err.to_string().contains("\"lots\""), "{err}");
    }

    #[test]
    fn default_resources_have_a_floor() {
        assert_eq!(
            serde_json::to_value(default_resources(1_000)).expect("serializes"),
            json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}})
        );
    }
}

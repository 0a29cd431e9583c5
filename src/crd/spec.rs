//! `StatelessApp` v1alpha1 spec types.
//!
//! Doc comments on every field become the descriptions in the generated
//! OpenAPI schema (`kubectl explain statelessapp.spec...`), so they are written
//! for users of the resource, not for Rust readers. Enum variants deliberately
//! carry plain `//` comments only: doc comments on unit variants make schemars
//! emit a `oneOf` instead of a plain string `enum`.
//!
//! Defaults live in `#[serde(default = ...)]` functions so that the same value
//! is used when deserializing in Rust and published as `default` in the CRD
//! schema (the API server then stores the defaulted object).

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use k8s_openapi::api::core::v1::{
    EnvFromSource, EnvVar, Probe, ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::bindings::ServiceBindingsSpec;
use super::identity::IdentitySpec;
use super::object_storage::ObjectStorageSpec;
use super::schedules::{self, ScheduleSpec};
use super::status::StatelessAppStatus;
use super::workers::{self, WorkerSpec};

/// Longest `metadata.name` a StatelessApp may have.
///
/// The longest child name is `<name>-redis-data` (11 more characters) and every
/// child name must stay a valid DNS label (at most 63 characters), so that it
/// can also be used as a label value and a Service name.
pub const MAX_NAME_LENGTH: usize = 52;

/// Default container port name.
pub const DEFAULT_PORT_NAME: &str = "http";
/// Default container port number.
pub const DEFAULT_CONTAINER_PORT: i32 = 8080;
/// Default minimum replica count.
pub const DEFAULT_MIN_REPLICAS: i32 = 2;
/// Default maximum replica count.
pub const DEFAULT_MAX_REPLICAS: i32 = 10;
/// Default HPA CPU utilization target, in percent of the CPU request.
pub const DEFAULT_TARGET_CPU_UTILIZATION: i32 = 70;
/// Default Service port.
pub const DEFAULT_SERVICE_PORT: i32 = 80;
/// Default name of the environment variable carrying the session-store URL.
pub const DEFAULT_URL_ENV_VAR: &str = "REDIS_URL";
/// Default image of the managed Redis session store (pinned Redis 7.x, alpine):
/// the default of the operator's `--session-store-image`, used for every app
/// whose `sessionStore.managed.image` is unset.
pub const DEFAULT_REDIS_IMAGE: &str = "redis:7.4.6-alpine";
/// Default Redis `maxmemory`.
pub const DEFAULT_REDIS_MAX_MEMORY: &str = "64mb";
/// Default size of the managed Redis volume when persistence is enabled.
pub const DEFAULT_PERSISTENCE_SIZE: &str = "1Gi";
/// Default key, in the external session-store Secret, holding the URL.
pub const DEFAULT_EXTERNAL_SECRET_KEY: &str = "url";

/// Desired state of the application: its container, replica bounds and autoscaling, Service, session store and policy.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "stateless.dev",
    version = "v1alpha1",
    kind = "StatelessApp",
    plural = "statelessapps",
    singular = "statelessapp",
    shortname = "sapp",
    namespaced,
    status = "StatelessAppStatus",
    derive = "PartialEq",
    doc = "StatelessApp runs a stateless web application: a Deployment scaled by a HorizontalPodAutoscaler, exposed by a Service, protected by a PodDisruptionBudget, with sessions kept in a session store (a managed Redis, an external one, or none) instead of in the pods.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Status of the Ready condition",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        description = "Pods ready to serve traffic (status.readyReplicas)",
        json_path = ".status.readyReplicas"
    ),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        description = "Pods the Deployment wants (status.replicas)",
        json_path = ".status.replicas",
        priority = 1
    ),
    printcolumn(
        name = "Violations",
        type_ = "integer",
        description = "Number of statelessness rule violations (status.violationCount)",
        json_path = ".status.violationCount"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    validation = Rule::new(format!("self.metadata.name.size() <= {MAX_NAME_LENGTH}")).message(
        format!("metadata.name must be at most {MAX_NAME_LENGTH} characters: child objects are named <name>-redis-data and must stay valid DNS labels (63 characters); choose a shorter name").as_str()
    ),
    validation = super::volumes::node_local_rule(),
    validation = super::volumes::persistent_rule(),
    validation = schedules::name_length_rule(),
    validation = workers::name_length_rule(),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message(
        "metadata.name must start with a lowercase letter and contain only lowercase letters, digits and '-': it also names the app's Service, which must be a DNS-1035 label"
    ),
)]
#[serde(rename_all = "camelCase")]
pub struct StatelessAppSpec {
    /// Container image of the application, e.g. `ghcr.io/stateless-dev/session-demo:0.1.0`. Pin a tag or digest.
    #[schemars(length(min = 1))]
    pub image: String,

    /// When the kubelet pulls the image: Always, IfNotPresent or Never. Unset leaves the Kubernetes default (Always for `:latest` or untagged images, IfNotPresent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Entrypoint override (the container's `command`). Unset uses the image's ENTRYPOINT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,

    /// Arguments to the entrypoint (the container's `args`). Unset uses the image's CMD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,

    /// Ports the application listens on. The first port is the one the Service targets and the one the default probes check. Defaults to a single port `http` on 8080.
    #[serde(default = "default_ports")]
    #[schemars(length(max = 16))]
    #[x_kube(
        validation = Rule::new("self.size() >= 1").message("ports must list at least one port: the first port is the Service target and the default probe port"),
        merge_strategy = ListMerge::Map(vec!["name".into()])
    )]
    pub ports: Vec<AppPort>,

    /// Environment variables of the application container (standard Kubernetes EnvVar). Values can come from ConfigMaps and Secrets; a change to a referenced ConfigMap or Secret rolls the pods. A variable named like `sessionStore.urlEnvVar` is replaced by the operator when a session store is configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    /// Sources of environment variables (standard Kubernetes EnvFromSource: whole ConfigMaps or Secrets). A change to a referenced ConfigMap or Secret rolls the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,

    /// CPU and memory requests and limits of the application container. Set a CPU request: the HPA computes utilization relative to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Box<ResourceRequirements>>,

    /// Readiness probe of the application container. Default: a TCP check of the first port every 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Box<Probe>>,

    /// Liveness probe of the application container. Default: a TCP check of the first port every 20s, starting after 15s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Box<Probe>>,

    /// Extra pod volumes (standard Kubernetes Volume), meant for configuration and scratch space: ConfigMaps, Secrets, projected, downwardAPI, emptyDir, ephemeral, csi and image volumes. hostPath and gitRepo are refused (a node directory pins the app to one node); persistentVolumeClaim and network or cloud disks (nfs, iscsi, cephfs, ...) are refused unless `policy.allowPersistentVolumes` waives them. The root filesystem is read-only, so a small writable emptyDir is mounted at /tmp unless volumeMounts already mount something there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub volumes: Vec<Volume>,

    /// Mounts of the volumes listed in `volumes` into the application container (standard Kubernetes VolumeMount).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub volume_mounts: Vec<VolumeMount>,

    /// Numeric user ID the application container runs as. Pods always run as non-root (runAsNonRoot); set this when the image's USER is a name (`app`, say), which the kubelet cannot verify is not root. Unset runs as the image's USER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("runAsUser must be a non-root user ID (1 or more): pods always run as non-root"))]
    pub run_as_user: Option<i64>,

    /// Bounds of the replica count, enforced by the HorizontalPodAutoscaler.
    #[serde(default)]
    pub replicas: ReplicasSpec,

    /// HorizontalPodAutoscaler targets and scaling behavior.
    #[serde(default)]
    pub autoscaling: AutoscalingSpec,

    /// The Service in front of the application. Session affinity is always None: any pod can serve any request.
    #[serde(default)]
    pub service: ServiceSpec,

    /// Where user sessions live instead of in pod memory or disk: a Redis managed by the operator (default), an external store given by a Secret, or none for applications without sessions.
    #[serde(default)]
    pub session_store: SessionStoreSpec,

    /// An existing S3-compatible bucket for uploads and other files, instead of a directory on a pod's disk: its name, endpoint, region and the Secret with its access keys, injected into every container as the variables S3 SDKs read (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3, S3_BUCKET, S3_ENDPOINT, S3_FORCE_PATH_STYLE). Unset injects nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_storage: Option<Box<ObjectStorageSpec>>,

    /// Identity that any replica can issue and verify, instead of sessions pinned to one pod: `identity.jwt` gives every container a shared JWT signing key set, generated and rotated by the operator. Unset creates no keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Box<IdentitySpec>>,

    /// Also give the session store and the object storage to every container as service bindings (servicebinding.io): files under `root` (default /bindings, set as SERVICE_BINDING_ROOT), one directory per binding. `serviceBindings: {}` turns them on with the defaults; unset projects none (the env vars are set either way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_bindings: Option<ServiceBindingsSpec>,

    /// Scheduled jobs of the app, instead of timers or cron inside the web process (where every replica runs them, or none after the one that did is gone): each becomes a CronJob `<name>-<schedule name>` of the app's image with its env, config, session store, signing keys and object storage, the same restricted pod security, and concurrencyPolicy Forbid unless set. Removing one deletes its CronJob.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub schedules: Vec<ScheduleSpec>,

    /// Background workers of the app (queue consumers and the like), instead of threads in the web process (where they compete with requests, stop at every rollout and scale with traffic): each becomes a Deployment `<name>-<worker name>` with its own HorizontalPodAutoscaler, of the app's image unless set, with the app's env, config, session store, signing keys and object storage and the same restricted pod security, but no Service, ports or probes. Removing one deletes its Deployment and HPA.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub workers: Vec<WorkerSpec>,

    /// How the statelessness rules are enforced for this application.
    #[serde(default)]
    pub policy: PolicySpec,
}

/// When to pull the container image.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl ImagePullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}

/// A port the application listens on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppPort {
    /// Port name (an IANA service name: at most 15 lowercase letters, digits and '-'), unique among the ports. Probes and the Service refer to the port by this name.
    #[schemars(
        length(min = 1, max = 15),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,

    /// Port number the container listens on (1-65535).
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("containerPort must be between 1 and 65535"))]
    pub container_port: i32,

    /// Protocol: TCP (default), UDP or SCTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
}

/// Network protocol of a port.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Protocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// Bounds of the replica count.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.min >= 1").message("replicas.min must be at least 1 (use 2 or more so a pod can be replaced without downtime)"),
    validation = Rule::new("self.min <= self.max").message("replicas.min must not be greater than replicas.max: raise max or lower min")
)]
pub struct ReplicasSpec {
    /// Fewest pods the HorizontalPodAutoscaler keeps (default 2, so one pod can be drained or replaced while another serves).
    #[serde(default = "default_min_replicas")]
    pub min: i32,

    /// Most pods the HorizontalPodAutoscaler may scale to (default 10).
    #[serde(default = "default_max_replicas")]
    pub max: i32,
}

impl Default for ReplicasSpec {
    fn default() -> Self {
        Self {
            min: DEFAULT_MIN_REPLICAS,
            max: DEFAULT_MAX_REPLICAS,
        }
    }
}

/// HorizontalPodAutoscaler settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    /// Average CPU utilization, in percent of the CPU request (1-100), that the HPA aims for (default 70).
    #[serde(default = "default_target_cpu")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 100").message("autoscaling.targetCPUUtilizationPercentage must be between 1 and 100"))]
    #[serde(rename = "targetCPUUtilizationPercentage")]
    pub target_cpu_utilization_percentage: i32,

    /// Average memory utilization, in percent of the memory request (1-100), that the HPA aims for. Unset: memory is not used for scaling.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "targetMemoryUtilizationPercentage"
    )]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 100").message("autoscaling.targetMemoryUtilizationPercentage must be between 1 and 100"))]
    pub target_memory_utilization_percentage: Option<i32>,

    /// Scale-up and scale-down behavior of the HPA (standard Kubernetes HorizontalPodAutoscalerBehavior: stabilization windows and rate policies). Unset uses the Kubernetes defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<Box<HorizontalPodAutoscalerBehavior>>,
}

impl Default for AutoscalingSpec {
    fn default() -> Self {
        Self {
            target_cpu_utilization_percentage: DEFAULT_TARGET_CPU_UTILIZATION,
            target_memory_utilization_percentage: None,
            behavior: None,
        }
    }
}

/// The Service in front of the application.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service type: ClusterIP (default, in-cluster only), NodePort or LoadBalancer.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,

    /// Port the Service listens on (1-65535, default 80); it forwards to the first container port.
    #[serde(default = "default_service_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("service.port must be between 1 and 65535"))]
    pub port: i32,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        Self {
            type_: ServiceType::default(),
            port: DEFAULT_SERVICE_PORT,
        }
    }
}

/// Kubernetes Service type.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// Where sessions are stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'external' || (has(self.external) && has(self.external.secretRef))").message("sessionStore.type is external: set sessionStore.external.secretRef to the Secret (name, key) holding the session store URL"),
    validation = Rule::new("!has(self.managed) || self.type == 'managed'").message("sessionStore.managed is only allowed when sessionStore.type is managed: remove it or set type: managed"),
    validation = Rule::new("!has(self.external) || self.type == 'external'").message("sessionStore.external is only allowed when sessionStore.type is external: remove it or set type: external")
)]
pub struct SessionStoreSpec {
    /// managed (default): the operator runs a small password-protected Redis for this app (`<name>-redis`) and injects its URL. external: the URL comes from an existing Secret (`external.secretRef`). none: no session store, for applications that keep no sessions.
    #[serde(default, rename = "type")]
    pub type_: SessionStoreType,

    /// Name of the environment variable through which the application receives the session store URL (default REDIS_URL). It is injected into every container from a Secret, never as a literal value, and replaces a variable of the same name in `env`. Not set when type is none.
    #[serde(default = "default_url_env_var")]
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$")
    )]
    pub url_env_var: String,

    /// Settings of the operator-managed Redis; only allowed when type is managed. All fields have defaults, so it can be omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<ManagedSessionStore>,

    /// The external session store; required when type is external, only allowed then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSessionStore>,
}

impl Default for SessionStoreSpec {
    fn default() -> Self {
        Self {
            type_: SessionStoreType::default(),
            url_env_var: DEFAULT_URL_ENV_VAR.to_string(),
            managed: None,
            external: None,
        }
    }
}

/// Kind of session store.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SessionStoreType {
    #[default]
    Managed,
    External,
    None,
}

impl SessionStoreType {
    /// The spelling used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStoreType::Managed => "managed",
            SessionStoreType::External => "external",
            SessionStoreType::None => "none",
        }
    }
}

/// Settings of the operator-managed Redis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedSessionStore {
    /// Redis image. Unset uses the operator's default session-store image (`--session-store-image`, chart value `sessionStore.image`, default redis:7.4.6-alpine). The pod runs as uid 999 and gid 1000 (the official image's `redis` user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,

    /// CPU and memory requests and limits of the Redis container. Default: 50m CPU requested and a memory request and limit of twice maxMemory (at least 64Mi) to leave room for Redis overhead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Redis `maxmemory`: a positive number with an optional unit b, k, kb, m, mb, g or gb (lowercase; k = 1000 bytes, kb = 1024 bytes), e.g. 64mb (default). When full, Redis evicts keys per evictionPolicy.
    #[serde(default = "default_max_memory")]
    #[schemars(
        length(min = 1, max = 32),
        regex(pattern = r"^[1-9][0-9]*(b|k|kb|m|mb|g|gb)?$")
    )]
    pub max_memory: String,

    /// Redis `maxmemory-policy` when maxMemory is reached. Default volatile-lru: sessions carry a TTL, so only keys with an expiry (sessions) are evicted, least recently used first, while keys without one are never evicted.
    #[serde(default)]
    pub eviction_policy: EvictionPolicy,

    /// Whether Redis keeps its data on a PersistentVolumeClaim so sessions survive a Redis restart. Off by default: sessions are then lost (users log in again) when the Redis pod restarts.
    #[serde(default)]
    pub persistence: PersistenceSpec,
}

impl Default for ManagedSessionStore {
    fn default() -> Self {
        Self {
            image: None,
            resources: None,
            max_memory: DEFAULT_REDIS_MAX_MEMORY.to_string(),
            eviction_policy: EvictionPolicy::default(),
            persistence: PersistenceSpec::default(),
        }
    }
}

impl ManagedSessionStore {
    /// The Redis image: the app's own when set, else `operator_default` (the
    /// operator's `--session-store-image`).
    pub fn image_or<'a>(&'a self, operator_default: &'a str) -> &'a str {
        self.image.as_deref().unwrap_or(operator_default)
    }
}

/// Redis `maxmemory-policy`.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum EvictionPolicy {
    #[default]
    VolatileLru,
    VolatileLfu,
    VolatileTtl,
    VolatileRandom,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    Noeviction,
}

impl EvictionPolicy {
    /// The spelling used in `redis.conf`.
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::AllkeysLru => "allkeys-lru",
            EvictionPolicy::AllkeysLfu => "allkeys-lfu",
            EvictionPolicy::AllkeysRandom => "allkeys-random",
            EvictionPolicy::Noeviction => "noeviction",
        }
    }
}

/// Persistence of the managed Redis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersistenceSpec {
    /// Keep Redis data (append-only file) on a PersistentVolumeClaim `<name>-redis-data` (default false: data lives in memory only).
    #[serde(default)]
    pub enabled: bool,

    /// Requested size of the PersistentVolumeClaim (default 1Gi). Only used when enabled.
    #[serde(default = "default_persistence_size")]
    pub size: Quantity,

    /// StorageClass of the PersistentVolumeClaim. Unset uses the cluster's default StorageClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

impl Default for PersistenceSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            size: default_persistence_size(),
            storage_class_name: None,
        }
    }
}

/// An external session store.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSessionStore {
    /// The Secret, in the app's namespace, holding the session store URL (e.g. `rediss://user:password@host:6380/0`). Changing the Secret's data rolls the pods.
    pub secret_ref: SecretKeyRef,
}

/// A key of a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the StatelessApp's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Key in the Secret's data whose value is the URL (default `url`).
    #[serde(default = "default_external_secret_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Policy settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// How statelessness rule violations are acted on. Audit (default): reported in status only. Warn: also surfaced as warnings (admission warnings, Events). Enforce: changes with unwaived violations are rejected by the admission webhook.
    #[serde(default)]
    pub mode: PolicyMode,

    /// Waiver that lets `volumes` mount PersistentVolumeClaims and network or cloud disks (nfs, iscsi, cephfs, ...), which keep state on the app tier. Give the reason; it is reported with the (waived) pvc-app-tier finding. hostPath is never allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_persistent_volumes: Option<PersistentVolumeWaiver>,
}

/// Why an app may mount persistent volumes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeWaiver {
    /// Why the app keeps files on a disk, e.g. the migration to object storage it waits for.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
}

/// Enforcement mode of the statelessness rules.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum PolicyMode {
    #[default]
    Audit,
    Warn,
    Enforce,
}

impl PolicyMode {
    /// The spelling used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Audit => "Audit",
            PolicyMode::Warn => "Warn",
            PolicyMode::Enforce => "Enforce",
        }
    }
}

fn default_ports() -> Vec<AppPort> {
    vec![AppPort {
        name: DEFAULT_PORT_NAME.to_string(),
        container_port: DEFAULT_CONTAINER_PORT,
        protocol: None,
    }]
}

fn default_min_replicas() -> i32 {
    DEFAULT_MIN_REPLICAS
}

fn default_max_replicas() -> i32 {
    DEFAULT_MAX_REPLICAS
}

fn default_target_cpu() -> i32 {
    DEFAULT_TARGET_CPU_UTILIZATION
}

fn default_service_port() -> i32 {
    DEFAULT_SERVICE_PORT
}

fn default_url_env_var() -> String {
    DEFAULT_URL_ENV_VAR.to_string()
}

fn default_max_memory() -> String {
    DEFAULT_REDIS_MAX_MEMORY.to_string()
}

fn default_persistence_size() -> Quantity {
    Quantity(DEFAULT_PERSISTENCE_SIZE.to_string())
}

fn default_external_secret_key() -> String {
    DEFAULT_EXTERNAL_SECRET_KEY.to_string()
}

impl Default for StatelessAppSpec {
    /// Every field at its default; `image` is empty and must be set.
    fn default() -> Self {
        Self {
            image: String::new(),
            image_pull_policy: None,
            command: None,
            args: None,
            ports: default_ports(),
            env: Vec::new(),
            env_from: Vec::new(),
            resources: None,
            readiness_probe: None,
            liveness_probe: None,
            volumes: Vec::new(),
            volume_mounts: Vec::new(),
            run_as_user: None,
            replicas: ReplicasSpec::default(),
            autoscaling: AutoscalingSpec::default(),
            service: ServiceSpec::default(),
            session_store: SessionStoreSpec::default(),
            object_storage: None,
            identity: None,
            service_bindings: None,
            schedules: Vec::new(),
            workers: Vec::new(),
            policy: PolicySpec::default(),
        }
    }
}

/// Accessors with every default resolved, so callers never repeat them.
impl StatelessAppSpec {
    /// A spec with the given image and every other field at its default.
    pub fn with_image(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            ..Self::default()
        }
    }

    /// Fewest replicas (HPA `minReplicas`).
    pub fn min_replicas(&self) -> i32 {
        self.replicas.min
    }

    /// Most replicas (HPA `maxReplicas`).
    pub fn max_replicas(&self) -> i32 {
        self.replicas.max
    }

    /// The first port: the Service target and the default probe port.
    /// `None` only for a spec the CRD validation would reject (no ports).
    pub fn primary_port(&self) -> Option<&AppPort> {
        self.ports.first()
    }

    /// The kind of session store.
    pub fn session_store_type(&self) -> SessionStoreType {
        self.session_store.type_
    }

    /// Name of the env var carrying the session store URL.
    pub fn session_url_env_var(&self) -> &str {
        &self.session_store.url_env_var
    }

    /// Managed Redis settings with defaults filled in, when the type is managed.
    pub fn managed_session_store(&self) -> Option<ManagedSessionStore> {
        match self.session_store.type_ {
            SessionStoreType::Managed => {
                Some(self.session_store.managed.clone().unwrap_or_default())
            }
            SessionStoreType::External | SessionStoreType::None => None,
        }
    }

    /// The external Secret reference, when the type is external and it is set.
    pub fn external_session_secret(&self) -> Option<&SecretKeyRef> {
        match self.session_store.type_ {
            SessionStoreType::External => {
                self.session_store.external.as_ref().map(|e| &e.secret_ref)
            }
            SessionStoreType::Managed | SessionStoreType::None => None,
        }
    }

    /// HPA CPU utilization target in percent.
    pub fn target_cpu_utilization(&self) -> i32 {
        self.autoscaling.target_cpu_utilization_percentage
    }

    /// HPA memory utilization target in percent, if memory-based scaling is on.
    pub fn target_memory_utilization(&self) -> Option<i32> {
        self.autoscaling.target_memory_utilization_percentage
    }

    /// The Service type.
    pub fn service_type(&self) -> ServiceType {
        self.service.type_
    }

    /// The Service port.
    pub fn service_port(&self) -> i32 {
        self.service.port
    }

    /// The policy mode.
    pub fn policy_mode(&self) -> PolicyMode {
        self.policy.mode
    }
}

//! `StatelessApp` v1alpha1 status types.
//!
//! The status is written by the controller only. Optional fields are omitted
//! when unset (with server-side apply an omitted field that this manager owned
//! is removed); lists are always serialized, so an empty list clears old
//! entries with any patch strategy.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Most violations listed in `status.violations`; `violationCount` has the total.
pub const MAX_STATUS_VIOLATIONS: usize = 50;

/// Condition types set by the controller.
pub mod condition_types {
    /// All children are applied and the Deployment has its minimum of ready pods.
    pub const READY: &str = "Ready";
    /// The session store is usable (managed Redis ready, external Secret present, or none configured).
    pub const SESSION_STORE_READY: &str = "SessionStoreReady";
    /// No unwaived statelessness rule violation.
    pub const COMPLIANT: &str = "Compliant";
}

/// Observed state of a StatelessApp, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatelessAppStatus {
    /// The metadata.generation this status describes; older than metadata.generation while a change is being rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Latest observations: Ready (the app serves with its minimum replicas), SessionStoreReady (the session store is usable) and Compliant (no unwaived statelessness violation).
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Pods of the app's Deployment (its status.replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,

    /// Ready pods of the app's Deployment (its status.readyReplicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,

    /// Where the app finds its session store. Never contains a password or URL, only references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_store: Option<SessionStoreStatus>,

    /// The JWT signing keys of spec.identity.jwt: key ids and rotation times. Never a key.
    // Boxed: every app's status sits in the controller's store, most without keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_keys: Option<Box<SigningKeysStatus>>,

    /// The CronJobs of spec.schedules, by schedule name: when each last started a run and last finished one successfully.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub schedules: Vec<ScheduleStatus>,

    /// The Deployments of spec.workers, by worker name: how many pods each has and how many are ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub workers: Vec<WorkerStatus>,

    /// Statelessness rule violations found in the spec and its children, at most 50 (see violationCount for the total).
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub violations: Vec<Violation>,

    /// Total number of unwaived violations, including those beyond the 50 listed.
    #[serde(default)]
    pub violation_count: i32,
}

/// The signing key set in use (spec.identity.jwt), by key id. Never a private key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeysStatus {
    /// The Secret holding the keys, mounted into every container.
    pub secret_name: String,

    /// Algorithm of the active key (EdDSA, ES256 or RS256).
    pub algorithm: String,

    /// kid of the key that signs now.
    pub active_key_id: String,

    /// kid of the key that signs from the next rotation (already in the JWKS).
    pub next_key_id: String,

    /// kids of retired keys still in the JWKS, newest first: tokens they signed have not all expired.
    #[serde(default)]
    pub retired_key_ids: Vec<String>,

    /// When the active key started signing.
    pub last_rotation: Time,

    /// When the next key takes over (the operator rotates at the first reconcile after it).
    pub next_rotation: Time,
}

/// One schedule's CronJob, as its status says.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    /// Name of the schedule (spec.schedules[].name).
    pub name: String,

    /// Name of its CronJob.
    pub cron_job_name: String,

    /// When a run was last started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,

    /// When a run last completed successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<Time>,

    /// Runs in progress now.
    #[serde(default)]
    pub active: i32,
}

/// References to the session store in use. Never a secret value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionStoreStatus {
    /// Name of the Service of the managed Redis, when the session store is managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,

    /// Name of the Secret holding the session store URL injected into the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,

    /// Key in that Secret holding the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
}

/// One statelessness rule violation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// Identifier of the rule that was violated.
    pub rule: String,

    /// Severity of the rule: low, medium or high.
    pub severity: String,

    /// Kind of the object the violation was found in (e.g. StatelessApp, Deployment).
    pub kind: String,

    /// Name of the object the violation was found in.
    pub name: String,

    /// Path of the offending field in that object, e.g. spec.volumes[0].hostPath.
    pub path: String,

    /// What is wrong and how to fix it.
    pub message: String,

    /// True when the violation is waived (accepted on purpose) and does not count against compliance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waived: Option<bool>,
}

/// One worker's Deployment, as its status says.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStatus {
    /// Name of the worker (spec.workers[].name).
    pub name: String,

    /// Name of its Deployment (and HorizontalPodAutoscaler).
    pub deployment_name: String,

    /// Pods of the worker's Deployment (its status.replicas).
    #[serde(default)]
    pub replicas: i32,

    /// Ready pods of the worker's Deployment (its status.readyReplicas).
    #[serde(default)]
    pub ready_replicas: i32,
}

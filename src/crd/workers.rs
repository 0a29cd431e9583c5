//! `spec.workers[]`: background work out of the web process, as Deployments
//! of their own that scale on their own HorizontalPodAutoscaler. A queue
//! consumer inside a web replica competes with requests for CPU, dies with
//! every rolling deploy, and scales with traffic instead of with its queue.
//! The Deployments, HPAs and PDBs are built by [`crate::build::worker`].

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::KubeSchema;
use kube::core::Rule;
use serde::{Deserialize, Serialize};

use super::spec::{AutoscalingSpec, ReplicasSpec};

/// Longest name of a worker's Deployment `<app>-<worker>`: a DNS label, as
/// every child name.
pub const MAX_WORKER_OBJECT_NAME_LENGTH: usize = 63;

/// Worker names that would give a Deployment of the same name as one the
/// app already has (`<app>-redis` is the managed session store's).
pub const RESERVED_WORKER_NAMES: &[&str] = &["redis"];

/// The CRD rule (on the whole object: it needs `metadata.name`) that keeps
/// every `<app>-<worker>` within [`MAX_WORKER_OBJECT_NAME_LENGTH`].
pub fn name_length_rule() -> Rule {
    let limit = MAX_WORKER_OBJECT_NAME_LENGTH - 1;
    Rule::new(format!(
        "!has(self.spec.workers) || self.spec.workers.all(w, self.metadata.name.size() + w.name.size() <= {limit})"
    ))
    .message(format!(
        "metadata.name and a workers[].name together must be at most {limit} characters: the worker's Deployment, HorizontalPodAutoscaler and PodDisruptionBudget are named <app>-<worker>, a DNS label of at most 63; shorten the worker's name"
    ).as_str())
}

fn reserved_names_rule() -> Rule {
    let names: Vec<String> = RESERVED_WORKER_NAMES
        .iter()
        .map(|n| format!("'{n}'"))
        .collect();
    Rule::new(format!("!(self in [{}])", names.join(", "))).message(
        format!(
            "workers[].name must not be {}: <app>-redis is the managed session store's Deployment; choose another name",
            RESERVED_WORKER_NAMES.join(" or ")
        )
        .as_str(),
    )
}

/// One background worker of the app.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSpec {
    /// Name of the worker, a DNS label; its Deployment, HorizontalPodAutoscaler and PodDisruptionBudget are `<app>-<name>`.
    #[schemars(
        length(min = 1, max = 30),
        regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    #[x_kube(validation = reserved_names_rule())]
    pub name: String,

    /// Container image of the worker; unset runs the app's image (spec.image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,

    /// Command of the worker's container; unset runs the app's command (spec.command, or the image's entrypoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,

    /// Arguments of the worker's command; unset takes the app's args, unless `command` or `image` is set here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,

    /// Replica bounds of the worker's HorizontalPodAutoscaler (default 2 to 10, as the app's).
    #[serde(default)]
    pub replicas: ReplicasSpec,

    /// Autoscaling targets of the worker's HorizontalPodAutoscaler (default 70 % CPU).
    #[serde(default)]
    pub autoscaling: AutoscalingSpec,

    /// Resources of the worker's container; unset takes the app's (spec.resources). Set a CPU request: the HPA scales on utilization of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Box<ResourceRequirements>>,
}

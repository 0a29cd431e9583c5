//! The apply and prune of the app's workers (spec.workers): a Deployment,
//! its HorizontalPodAutoscaler and its PodDisruptionBudget each, after the
//! web tier, so a worker the API server refuses does not keep the app from
//! serving.

use std::sync::Arc;

use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Error;
use super::cache::Cache;
use super::reconcile::{Target, apply_child, prune};
use super::status::worker_status;
use crate::build::Worker;
use crate::crd::WorkerStatus;

/// Apply `desired` (the built workers, in spec order) unless the rollout is
/// `blocked`, then delete the app's worker Deployments, HPAs and PDBs no worker
/// asks for any more. Returns each worker's status.
pub(super) async fn ensure(
    target: &Target<'_>,
    desired: Vec<Worker>,
    blocked: bool,
    changes: &mut Vec<String>,
) -> Result<Vec<WorkerStatus>, Error> {
    let caches = &target.ctx.caches;
    let app = target.app;
    let wanted: Vec<String> = desired.iter().map(|w| w.deployment.name_any()).collect();
    let mut statuses = Vec::with_capacity(desired.len());
    for (worker, built) in app.spec.workers.iter().zip(desired) {
        let name = built.deployment.name_any();
        let live = if blocked {
            // Enforce: keep what runs now, as for the app's Deployment.
            caches
                .deployments
                .get(target.namespace, &name)
                .map(|d| d.as_ref().clone())
        } else {
            let deployment =
                apply_child(target, &caches.deployments, changes, built.deployment).await?;
            apply_child(target, &caches.hpas, changes, built.hpa).await?;
            apply_child(target, &caches.pdbs, changes, built.pdb).await?;
            Some(deployment)
        };
        statuses.push(worker_status(&worker.name, name, live.as_ref()));
    }
    // Removed workers; with Enforce too: stopping a worker lets no state in.
    // The HPA first, so it does not scale what is being deleted.
    let (namespace, app_name) = (target.namespace, app.name_any());
    let hpas = caches.worker_hpas_of(namespace, &app_name);
    prune_unwanted(target, &caches.hpas, hpas, &wanted, changes).await?;
    let pdbs = caches.worker_pdbs_of(namespace, &app_name);
    prune_unwanted(target, &caches.pdbs, pdbs, &wanted, changes).await?;
    let deployments = caches.worker_deployments_of(namespace, &app_name);
    prune_unwanted(target, &caches.deployments, deployments, &wanted, changes).await?;
    Ok(statuses)
}

/// Delete each of `found`, the app's worker objects of one kind, whose name
/// no worker in `wanted` has (prune deletes only what this app, this uid,
/// controls).
async fn prune_unwanted<K>(
    target: &Target<'_>,
    cache: &Cache<K>,
    found: Vec<Arc<K>>,
    wanted: &[String],
    changes: &mut Vec<String>,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    for stale in found {
        let name = stale.name_any();
        if !wanted.contains(&name) {
            prune::<K, K>(target.named(name), cache, changes).await?;
        }
    }
    Ok(())
}

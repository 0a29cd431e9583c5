//! The apply and prune of the app's workers (spec.workers): a Deployment,
//! its HorizontalPodAutoscaler and its PodDisruptionBudget each, after the web tier, so a worker the API
//! server refuses does not keep the app from serving.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;

use super::Error;
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
    let app_name = app.name_any();
    for stale in caches.worker_hpas_of(target.namespace, &app_name) {
        let name = stale.name_any();
        if !wanted.contains(&name) {
            prune::<HorizontalPodAutoscaler, _>(target.named(name), &caches.hpas, changes).await?;
        }
    }
    for stale in caches.worker_pdbs_of(target.namespace, &app_name) {
        let name = stale.name_any();
        if !wanted.contains(&name) {
            prune::<PodDisruptionBudget, _>(target.named(name), &caches.pdbs, changes).await?;
        }
    }
    for stale in caches.worker_deployments_of(target.namespace, &app_name) {
        let name = stale.name_any();
        // prune deletes only what this app (this uid) controls.
        if !wanted.contains(&name) {
            prune::<Deployment, _>(target.named(name), &caches.deployments, changes).await?;
        }
    }
    Ok(statuses)
}

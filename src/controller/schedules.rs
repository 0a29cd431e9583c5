//! The apply and prune of the app's CronJobs (spec.schedules), after the web
//! tier: a schedule the API server refuses (a time zone it does not know,
//! say) must not keep the app from serving.

use k8s_openapi::api::batch::v1::CronJob;
use kube::ResourceExt;

use super::Error;
use super::reconcile::{Target, apply_child, prune};
use super::status::schedule_status;
use crate::crd::ScheduleStatus;

/// Apply `desired` (the built CronJobs, in spec order) unless the rollout is
/// `blocked`, then delete the app's CronJobs no schedule asks for any more.
/// Returns each schedule's status.
pub(super) async fn ensure(
    target: &Target<'_>,
    desired: Vec<CronJob>,
    blocked: bool,
    changes: &mut Vec<String>,
) -> Result<Vec<ScheduleStatus>, Error> {
    let cache = &target.ctx.caches.cron_jobs;
    let app = target.app;
    let wanted: Vec<String> = desired.iter().map(ResourceExt::name_any).collect();
    let mut statuses = Vec::with_capacity(desired.len());
    for (schedule, cron_job) in app.spec.schedules.iter().zip(desired) {
        let name = cron_job.name_any();
        let live = if blocked {
            // Enforce: keep what runs now, as for the Deployment.
            cache
                .get(target.namespace, &name)
                .map(|c| c.as_ref().clone())
        } else {
            Some(apply_child(target, cache, changes, cron_job).await?)
        };
        statuses.push(schedule_status(&schedule.name, name, live.as_ref()));
    }
    // Removed schedules; with Enforce too: stopping a job lets no state in.
    for stale in target
        .ctx
        .caches
        .cron_jobs_of(target.namespace, &target.app.name_any())
    {
        let name = stale.name_any();
        // prune deletes only what this app (this uid) controls.
        if !wanted.contains(&name) {
            prune::<CronJob, _>(target.named(name), cache, changes).await?;
        }
    }
    Ok(statuses)
}

//! Pure status logic: what the StatelessApp status should say, given what was
//! observed. Kept free of I/O so the condition rules are unit tested.
//!
//! Conditions follow the Kubernetes conventions: one entry per type,
//! `lastTransitionTime` moves only when `status` flips, and a status that says
//! the same thing serializes identically, so an unchanged app gets no patch.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{
    ScheduleStatus, SessionStoreStatus, SigningKeysStatus, StatelessAppStatus, Violation,
    WorkerStatus, condition_types,
};

/// One condition as computed this round (without timestamps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Observation {
    pub fn new(status: bool, reason: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// Everything the status is computed from.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub generation: Option<i64>,
    pub ready: Option<Observation>,
    pub session_store_ready: Option<Observation>,
    pub compliant: Option<Observation>,
    pub replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    pub session_store: Option<SessionStoreStatus>,
    pub signing_keys: Option<SigningKeysStatus>,
    /// `None` when the schedules step was not reached: the status keeps what it had.
    pub schedules: Option<Vec<ScheduleStatus>>,
    /// `None` when the workers step was not reached: the status keeps what it had.
    pub workers: Option<Vec<WorkerStatus>>,
    pub violations: Vec<Violation>,
    pub violation_count: i32,
}

/// The next status, keeping transition times of conditions whose status did not flip.
pub fn next_status(
    current: Option<&StatelessAppStatus>,
    observed: &Observed,
    now: &Time,
) -> StatelessAppStatus {
    let previous = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let mut conditions = Vec::new();
    for (type_, obs) in [
        (condition_types::READY, &observed.ready),
        (
            condition_types::SESSION_STORE_READY,
            &observed.session_store_ready,
        ),
        (condition_types::COMPLIANT, &observed.compliant),
    ] {
        let Some(obs) = obs else {
            // Not evaluated this round: keep what was there.
            if let Some(old) = previous.iter().find(|c| c.type_ == type_) {
                conditions.push(old.clone());
            }
            continue;
        };
        conditions.push(condition(previous, type_, obs, observed.generation, now));
    }
    StatelessAppStatus {
        observed_generation: observed.generation,
        conditions,
        replicas: observed.replicas,
        ready_replicas: observed.ready_replicas,
        session_store: observed.session_store.clone(),
        signing_keys: observed.signing_keys.clone().map(Box::new),
        schedules: match &observed.schedules {
            Some(schedules) => schedules.clone(),
            None => current.map(|s| s.schedules.clone()).unwrap_or_default(),
        },
        workers: match &observed.workers {
            Some(workers) => workers.clone(),
            None => current.map(|s| s.workers.clone()).unwrap_or_default(),
        },
        violations: observed.violations.clone(),
        violation_count: observed.violation_count,
    }
}

fn condition(
    previous: &[Condition],
    type_: &str,
    obs: &Observation,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let status = if obs.status { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: obs.reason.clone(),
        message: obs.message.clone(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// The status of condition `type_`, if present.
pub fn condition_status(status: Option<&StatelessAppStatus>, type_: &str) -> Option<bool> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status == "True")
}

/// What a schedule's CronJob says about its runs (nothing yet, when the
/// Enforce policy kept it from being created).
pub fn schedule_status(
    schedule: &str,
    cron_job_name: String,
    live: Option<&CronJob>,
) -> ScheduleStatus {
    let status = live.and_then(|c| c.status.as_ref());
    ScheduleStatus {
        name: schedule.to_string(),
        cron_job_name,
        last_schedule_time: status.and_then(|s| s.last_schedule_time.clone()),
        last_successful_time: status.and_then(|s| s.last_successful_time.clone()),
        active: status
            .and_then(|s| s.active.as_ref())
            .map_or(0, |a| i32::try_from(a.len()).unwrap_or(i32::MAX)),
    }
}

/// A worker's status, from its Deployment as the cache or the apply shows it.
pub fn worker_status(
    worker: &str,
    deployment_name: String,
    live: Option<&Deployment>,
) -> WorkerStatus {
    let status = live.and_then(|d| d.status.as_ref());
    WorkerStatus {
        name: worker.to_string(),
        deployment_name,
        replicas: status.and_then(|s| s.replicas).unwrap_or(0),
        ready_replicas: status.and_then(|s| s.ready_replicas).unwrap_or(0),
    }
}

/// Is the app's Deployment rolled out with at least `min` ready pods?
pub fn deployment_readiness(deployment: &Deployment, min: i32) -> Observation {
    let generation = deployment.metadata.generation.unwrap_or(0);
    let status = deployment.status.clone().unwrap_or_default();
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    if status.observed_generation.unwrap_or(0) < generation {
        return Observation::new(
            false,
            "RollingOut",
            "the Deployment controller has not seen the latest change yet",
        );
    }
    if updated < desired {
        return Observation::new(
            false,
            "RollingOut",
            format!("{updated} of {desired} pods updated"),
        );
    }
    if replicas > updated {
        return Observation::new(
            false,
            "RollingOut",
            format!("{} old pods still terminating", replicas - updated),
        );
    }
    if ready < min {
        return Observation::new(
            false,
            "WaitingForPods",
            format!("{ready} of at least {min} pods ready"),
        );
    }
    Observation::new(true, "Available", format!("{ready} pods ready"))
}

/// Does the managed Redis Deployment have a ready pod?
pub fn redis_readiness(deployment: &Deployment) -> Observation {
    let ready = deployment
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    if ready >= 1 {
        Observation::new(true, "RedisReady", "the managed Redis is ready")
    } else {
        Observation::new(
            false,
            "RedisNotReady",
            "waiting for the managed Redis pod to become ready",
        )
    }
}

/// Current time, truncated to seconds as the API server stores it, so a
/// status read back compares equal to the one written.
pub fn now() -> Time {
    let now = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
    use kube::api::ObjectMeta;

    fn at(second: i64) -> Time {
        Time(jiff::Timestamp::from_second(second).expect("valid timestamp"))
    }

    fn observed(ready: bool) -> Observed {
        Observed {
            generation: Some(3),
            ready: Some(Observation::new(
                ready,
                if ready { "Available" } else { "WaitingForPods" },
                "m",
            )),
            session_store_ready: Some(Observation::new(true, "RedisReady", "ok")),
            ..Default::default()
        }
    }

    #[test]
    fn transition_time_moves_only_on_flips() {
        let first = next_status(None, &observed(false), &at(100));
        assert_eq!(first.conditions[0].last_transition_time, at(100));
        assert_eq!(first.observed_generation, Some(3));

        // Same status later: identical status, so no patch would be sent.
        let again = next_status(Some(&first), &observed(false), &at(200));
        assert_eq!(again, first);

        // Flip: the time moves, the other condition keeps its time.
        let flipped = next_status(Some(&first), &observed(true), &at(300));
        assert_eq!(flipped.conditions[0].status, "True");
        assert_eq!(flipped.conditions[0].last_transition_time, at(300));
        assert_eq!(flipped.conditions[1].last_transition_time, at(100));
    }

    #[test]
    fn unevaluated_conditions_are_kept() {
        let mut obs = observed(true);
        obs.compliant = Some(Observation::new(true, "NoViolations", "ok"));
        let first = next_status(None, &obs, &at(1));
        obs.compliant = None;
        let second = next_status(Some(&first), &obs, &at(2));
        assert_eq!(second.conditions.len(), 3);
        assert_eq!(
            condition_status(Some(&second), condition_types::COMPLIANT),
            Some(true)
        );
    }

    fn deployment(generation: i64, status: DeploymentStatus, replicas: Option<i32>) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas,
                ..Default::default()
            }),
            status: Some(status),
        }
    }

    #[test]
    fn deployment_readiness_follows_the_rollout() {
        let status = |observed, updated, replicas, ready| DeploymentStatus {
            observed_generation: Some(observed),
            updated_replicas: Some(updated),
            replicas: Some(replicas),
            ready_replicas: Some(ready),
            ..Default::default()
        };
        let d = deployment(2, status(1, 2, 2, 2), Some(2));
        assert_eq!(deployment_readiness(&d, 2).reason, "RollingOut");
        let d = deployment(2, status(2, 1, 3, 2), Some(2));
        assert_eq!(deployment_readiness(&d, 2).reason, "RollingOut");
        let d = deployment(2, status(2, 2, 2, 1), Some(2));
        assert_eq!(deployment_readiness(&d, 2).reason, "WaitingForPods");
        let d = deployment(2, status(2, 3, 3, 3), Some(3));
        let obs = deployment_readiness(&d, 2);
        assert!(obs.status);
        assert_eq!(obs.message, "3 pods ready");
    }
}

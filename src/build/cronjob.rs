//! The CronJob `<app>-<schedule>` of each of `spec.schedules`: the app's
//! image, env, config, session store, signing keys and object storage, the
//! same restricted pod security, but none of the web tier's ports, probes or
//! selector labels.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::deployment::{Workload, non_empty, pod_security_context, shared, workload_container};
use super::{BuildError, BuildInputs, Context, labels, names};
use crate::crd::schedules::{DEFAULT_BACKOFF_LIMIT, ScheduleSpec};

/// The CronJob of `schedule`, one of the app's schedules.
pub(super) fn build(
    ctx: &Context<'_>,
    inputs: &BuildInputs,
    schedule: &ScheduleSpec,
) -> Result<CronJob, BuildError> {
    let shared = shared(ctx, inputs)?;
    let pod_labels = labels::schedule(ctx.name, &schedule.name);
    let container = workload_container(
        ctx,
        Workload {
            image: None,
            command: schedule.command.as_ref(),
            args: schedule.args.as_ref(),
            resources: schedule.resources.as_deref(),
        },
        shared.env,
        shared.mounts,
    );
    Ok(CronJob {
        metadata: ctx.meta(
            names::schedule(ctx.name, &schedule.name),
            pod_labels.clone(),
        ),
        spec: Some(CronJobSpec {
            schedule: schedule.schedule.clone(),
            time_zone: schedule.time_zone.clone(),
            concurrency_policy: Some(schedule.concurrency_policy.as_str().into()),
            suspend: Some(schedule.suspend),
            starting_deadline_seconds: schedule.starting_deadline_seconds,
            job_template: JobTemplateSpec {
                metadata: None,
                spec: Some(JobSpec {
                    backoff_limit: Some(schedule.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT)),
                    active_deadline_seconds: schedule.active_deadline_seconds,
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(pod_labels),
                            annotations: shared.annotations,
                            ..ObjectMeta::default()
                        }),
                        spec: Some(PodSpec {
                            containers: vec![container],
                            // The Job retries with new pods (backoffLimit
                            // counts them), not restarts in place.
                            restart_policy: Some("Never".into()),
                            security_context: Some(pod_security_context(ctx)),
                            volumes: non_empty(shared.volumes),
                            ..PodSpec::default()
                        }),
                    },
                    ..JobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use super::*;

    fn cronjob(spec: serde_json::Value, schedule: serde_json::Value) -> serde_json::Value {
        let mut spec = spec;
        spec["schedules"] = json!([schedule]);
        let children = crate::build::children(&app(spec), &BuildInputs::default()).expect("builds");
        assert_eq!(children.schedules.len(), 1);
        to_json(&children.schedules[0])
    }

    #[test]
    fn a_schedule_is_a_forbid_cronjob_of_the_apps_image_without_its_selector() {
        let built = cronjob(
            json!({"image": "shop:1", "ports": [{"name": "http", "containerPort": 8080}],
                   "sessionStore": {"type": "none"}}),
            json!({"name": "nightly-report", "schedule": "0 3 * * *", "command": ["shop", "report"]}),
        );
        let labels = json!({
            "app.kubernetes.io/name": "nightly-report",
            "app.kubernetes.io/instance": "shop",
            "app.kubernetes.io/component": "schedule",
            "app.kubernetes.io/part-of": "shop",
            "app.kubernetes.io/managed-by": "stateless-operator",
        });
        assert_eq!(
            built,
            json!({
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {
                    "name": "shop-nightly-report",
                    "namespace": "prod",
                    "labels": labels,
                    "ownerReferences": owner(),
                },
                "spec": {
                    "schedule": "0 3 * * *",
                    "concurrencyPolicy": "Forbid",
                    "suspend": false,
                    "jobTemplate": {"spec": {
                        "backoffLimit": 1,
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "restartPolicy": "Never",
                                "securityContext": {
                                    "runAsNonRoot": true,
                                    "seccompProfile": {"type": "RuntimeDefault"},
                                },
                                "containers": [{
                                    "name": "app",
                                    "image": "shop:1",
                                    "command": ["shop", "report"],
                                    "securityContext": {
                                        "allowPrivilegeEscalation": false,
                                        "readOnlyRootFilesystem": true,
                                        "capabilities": {"drop": ["ALL"]},
                                    },
                                    "volumeMounts": [{"name": "stateless-tmp", "mountPath": "/tmp"}],
                                }],
                                "volumes": [{"name": "stateless-tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                            },
                        },
                    }},
                },
            })
        );
    }

    #[test]
    fn a_job_shares_the_apps_env_session_store_and_keys() {
        let built = cronjob(
            json!({"image": "shop:1", "ports": [{"name": "http", "containerPort": 8080}],
                   "args": ["serve"], "env": [{"name": "MODE", "value": "prod"}],
                   "identity": {"jwt": {}}}),
            json!({"name": "sweep", "schedule": "*/15 * * * *", "concurrencyPolicy": "Replace",
                   "timeZone": "Europe/Berlin", "backoffLimit": 3}),
        );
        let spec = &built["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Replace");
        assert_eq!(spec["timeZone"], "Europe/Berlin");
        let job = &spec["jobTemplate"]["spec"];
        assert_eq!(job["backoffLimit"], 3);
        let container = &job["template"]["spec"]["containers"][0];
        // No command of its own: the app's args.
        assert_eq!(container["args"], json!(["serve"]));
        assert!(container.get("ports").is_none() && container.get("readinessProbe").is_none());
        let env: Vec<_> = container["env"]
            .as_array()
            .expect("env")
            .iter()
            .map(|e| e["name"].as_str().unwrap_or_default().to_string())
            .collect();
        for name in ["MODE", "REDIS_URL", "JWT_JWKS_FILE", "JWT_KEY_ID_FILE"] {
            assert!(env.iter().any(|e| e == name), "{name} in {env:?}");
        }
        let volumes = job["template"]["spec"]["volumes"].to_string();
        assert!(volumes.contains("shop-jwt"), "{volumes}");
    }
}

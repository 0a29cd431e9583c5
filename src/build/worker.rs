//! The Deployment, HorizontalPodAutoscaler and PodDisruptionBudget
//! `<app>-<worker>` of each of
//! `spec.workers`: the app's image (unless the worker names its own), env,
//! config, session store, signing keys and object storage, the same
//! restricted pod security and rollout, but none of the web tier's ports,
//! probes or selector labels, and a replica count only its HPA sets.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::deployment::{
    Workload, non_empty, pod_security_context, rolling_update, shared, spread_over_nodes,
    workload_container,
};
use super::{BuildError, BuildInputs, Context, hpa, labels, names, pdb};
use crate::crd::WorkerSpec;

/// A worker's objects.
#[derive(Clone, Debug, PartialEq)]
pub struct Worker {
    /// Deployment `<app>-<worker>`, without `spec.replicas`: the HPA owns it.
    pub deployment: Deployment,
    /// HorizontalPodAutoscaler `<app>-<worker>` on that Deployment.
    pub hpa: HorizontalPodAutoscaler,
    /// PodDisruptionBudget `<app>-<worker>`: a drain takes one worker pod
    /// at a time, as for the web tier.
    pub pdb: PodDisruptionBudget,
}

/// The objects of `worker`, one of the app's workers.
pub(super) fn build(
    ctx: &Context<'_>,
    inputs: &BuildInputs,
    worker: &WorkerSpec,
) -> Result<Worker, BuildError> {
    let name = names::worker(ctx.name, &worker.name);
    let selector = labels::worker_selector(ctx.name, &worker.name);
    let pod_labels = labels::worker(ctx.name, &worker.name);
    let shared = shared(ctx, inputs)?;
    let container = workload_container(
        ctx,
        Workload {
            image: worker.image.as_ref(),
            command: worker.command.as_ref(),
            args: worker.args.as_ref(),
            resources: worker.resources.as_deref(),
        },
        shared.env,
        shared.mounts,
    );
    let deployment = Deployment {
        metadata: ctx.meta(name.clone(), pod_labels.clone()),
        spec: Some(DeploymentSpec {
            // As for the app: the HPA owns the replica count.
            replicas: None,
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                match_expressions: None,
            },
            strategy: Some(rolling_update()),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels.clone()),
                    annotations: shared.annotations,
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(pod_security_context(ctx)),
                    topology_spread_constraints: Some(vec![spread_over_nodes(selector.clone())]),
                    volumes: non_empty(shared.volumes),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    };
    let pdb = pdb::budget(ctx, name.clone(), pod_labels.clone(), selector);
    let hpa = hpa::scaling(ctx, name, pod_labels, &worker.replicas, &worker.autoscaling);
    Ok(Worker {
        deployment,
        hpa,
        pdb,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use super::*;

    fn worker(
        spec: serde_json::Value,
        worker: serde_json::Value,
    ) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
        let mut spec = spec;
        spec["workers"] = json!([worker]);
        let children = crate::build::children(&app(spec), &BuildInputs::default()).expect("builds");
        assert_eq!(children.workers.len(), 1);
        (
            to_json(&children.workers[0].deployment),
            to_json(&children.workers[0].hpa),
            to_json(&children.workers[0].pdb),
        )
    }

    #[test]
    fn a_worker_is_a_deployment_hpa_and_pdb_of_the_apps_image_without_its_selector() {
        let (deployment, hpa, pdb) = worker(
            json!({"image": "shop:1", "ports": [{"name": "http", "containerPort": 8080}],
                   "sessionStore": {"type": "none"}}),
            json!({"name": "mailer", "command": ["shop", "consume", "mail"],
                   "replicas": {"min": 1, "max": 4}}),
        );
        let selector = json!({
            "app.kubernetes.io/name": "mailer",
            "app.kubernetes.io/instance": "shop",
            "app.kubernetes.io/component": "worker",
        });
        let labels = json!({
            "app.kubernetes.io/name": "mailer",
            "app.kubernetes.io/instance": "shop",
            "app.kubernetes.io/component": "worker",
            "app.kubernetes.io/part-of": "shop",
            "app.kubernetes.io/managed-by": "stateless-operator",
        });
        // The three objects share their name, labels and owner.
        let metadata = json!({
            "name": "shop-mailer",
            "namespace": "prod",
            "labels": labels,
            "ownerReferences": owner(),
        });
        assert_eq!(
            deployment,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": metadata,
                "spec": {
                    "selector": {"matchLabels": selector},
                    "strategy": {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "securityContext": {
                                "runAsNonRoot": true,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [{
                                "name": "app",
                                "image": "shop:1",
                                "command": ["shop", "consume", "mail"],
                                "securityContext": {
                                    "allowPrivilegeEscalation": false,
                                    "readOnlyRootFilesystem": true,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [{"name": "stateless-tmp", "mountPath": "/tmp"}],
                            }],
                            "topologySpreadConstraints": [{
                                "maxSkew": 1,
                                "topologyKey": "kubernetes.io/hostname",
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": selector},
                                "matchLabelKeys": ["pod-template-hash"],
                            }],
                            "volumes": [{"name": "stateless-tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                        },
                    },
                },
            })
        );
        assert_eq!(
            hpa,
            json!({
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": metadata,
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop-mailer"},
                    "minReplicas": 1,
                    "maxReplicas": 4,
                    "metrics": [{"type": "Resource", "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    }}],
                },
            })
        );
        assert_eq!(
            pdb,
            json!({
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": metadata,
                "spec": {
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": selector},
                    "unhealthyPodEvictionPolicy": "AlwaysAllow",
                },
            })
        );
    }

    #[test]
    fn a_worker_shares_the_apps_env_session_store_and_keys() {
        let (deployment, hpa, _) = worker(
            json!({"image": "shop:1", "ports": [{"name": "http", "containerPort": 8080}],
                   "args": ["serve"], "env": [{"name": "MODE", "value": "prod"}],
                   "identity": {"jwt": {}},
                   "resources": {"requests": {"cpu": "100m"}}}),
            json!({"name": "thumbs", "autoscaling": {"targetCPUUtilizationPercentage": 50,
                                                     "targetMemoryUtilizationPercentage": 80}}),
        );
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        // No command or image of its own: the app's image and args.
        assert_eq!(container["image"], "shop:1");
        assert_eq!(container["args"], json!(["serve"]));
        assert_eq!(container["resources"], json!({"requests": {"cpu": "100m"}}));
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
        assert!(pod["volumes"].to_string().contains("shop-jwt"));
        // Default bounds, its own targets.
        assert_eq!(hpa["spec"]["minReplicas"], 2);
        assert_eq!(hpa["spec"]["maxReplicas"], 10);
        let targets: Vec<_> = hpa["spec"]["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|m| m["resource"]["target"]["averageUtilization"].clone())
            .collect();
        assert_eq!(targets, vec![json!(50), json!(80)]);
    }

    #[test]
    fn an_image_of_its_own_drops_the_apps_command_and_args() {
        let (deployment, _, _) = worker(
            json!({"image": "shop:1", "ports": [{"name": "http", "containerPort": 8080}],
                   "command": ["shop"], "args": ["serve"]}),
            json!({"name": "ocr", "image": "ocr-worker:2"}),
        );
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "ocr-worker:2");
        assert!(container.get("command").is_none() && container.get("args").is_none());
    }
}

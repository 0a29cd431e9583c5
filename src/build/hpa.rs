//! The app HorizontalPodAutoscaler `<name>` (autoscaling/v2).

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};

use std::collections::BTreeMap;

use super::{Context, labels, names};
use crate::crd::{AutoscalingSpec, ReplicasSpec};

/// Build the HPA: it scales the app Deployment between `replicas.min` and
/// `replicas.max` on CPU (and, when set, memory) utilization.
pub(crate) fn build(ctx: &Context<'_>) -> HorizontalPodAutoscaler {
    let spec = &ctx.app.spec;
    scaling(
        ctx,
        names::app(ctx.name),
        labels::app(ctx.name),
        &spec.replicas,
        &spec.autoscaling,
    )
}

/// An HPA `name` on the Deployment of the same name, between `replicas` on
/// the `autoscaling` targets: the app's, or a worker's.
pub(crate) fn scaling(
    ctx: &Context<'_>,
    name: String,
    labels: BTreeMap<String, String>,
    replicas: &ReplicasSpec,
    autoscaling: &AutoscalingSpec,
) -> HorizontalPodAutoscaler {
    let mut metrics = vec![utilization(
        "cpu",
        autoscaling.target_cpu_utilization_percentage,
    )];
    if let Some(memory) = autoscaling.target_memory_utilization_percentage {
        metrics.push(utilization("memory", memory));
    }
    HorizontalPodAutoscaler {
        metadata: ctx.meta(name.clone(), labels),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name,
            },
            min_replicas: Some(replicas.min),
            max_replicas: replicas.max,
            metrics: Some(metrics),
            behavior: autoscaling.behavior.as_deref().cloned(),
        }),
        status: None,
    }
}

fn utilization(resource: &str, percent: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: resource.into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(percent),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{BuildInputs, children};
    use serde_json::json;

    #[test]
    fn basic_spec_whole_object() {
        let got = to_json(
            &children(&basic(), &BuildInputs::default())
                .expect("builds")
                .hpa,
        );
        assert_eq!(
            got,
            json!({
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {
                    "name": "shop",
                    "namespace": "prod",
                    "labels": app_labels(),
                    "ownerReferences": owner()
                },
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop"},
                    "minReplicas": 2,
                    "maxReplicas": 10,
                    "metrics": [{
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
                    }]
                }
            })
        );
    }

    #[test]
    fn full_spec_memory_metric_and_behavior() {
        let behavior = json!({
            "scaleDown": {
                "stabilizationWindowSeconds": 300,
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]
            },
            "scaleUp": {"selectPolicy": "Max"}
        });
        let app = app(json!({
            "image": "x",
            "replicas": {"min": 3, "max": 7},
            "autoscaling": {
                "targetCPUUtilizationPercentage": 60,
                "targetMemoryUtilizationPercentage": 80,
                "behavior": behavior
            }
        }));
        let got = to_json(&children(&app, &BuildInputs::default()).expect("builds").hpa);
        assert_eq!(
            got["spec"],
            json!({
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop"},
                "minReplicas": 3,
                "maxReplicas": 7,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}}
                ],
                "behavior": behavior
            })
        );
    }
}

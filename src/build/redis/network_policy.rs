//! NetworkPolicy `<name>-redis`: only the app's pods (web tier, workers and
//! scheduled jobs) reach Redis.

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::REDIS_PORT;
use crate::build::{Context, labels, names};

/// Ingress to the Redis pod is denied except from the app's pods in the same
/// namespace (its instance label, and a component that connects: the web
/// tier, a worker or a scheduled job, never another Redis), on TCP 6379; all egress is denied
/// (Redis opens no connection: no replication, no DNS). Answers to its
/// clients are not egress: policies are stateful.
pub(super) fn build(ctx: &Context<'_>) -> NetworkPolicy {
    let selector = |labels| LabelSelector {
        match_labels: Some(labels),
        match_expressions: None,
    };
    NetworkPolicy {
        metadata: ctx.meta(names::redis(ctx.name), labels::redis(ctx.name)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(labels::redis_selector(ctx.name))),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(clients(ctx.name)),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(REDIS_PORT)),
                    protocol: Some("TCP".into()),
                    end_port: None,
                }]),
            }]),
            egress: Some(Vec::new()),
        }),
    }
}

/// The pods of app `name` that use its session store.
fn clients(name: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some([(labels::INSTANCE.to_string(), name.to_string())].into()),
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: labels::COMPONENT.to_string(),
            operator: "In".into(),
            values: Some(vec![
                labels::COMPONENT_APP.to_string(),
                labels::COMPONENT_WORKER.to_string(),
                labels::COMPONENT_SCHEDULE.to_string(),
            ]),
        }]),
    }
}

#[cfg(test)]
mod tests {
    use crate::build::test_support::*;
    use crate::build::{BuildInputs, children};
    use serde_json::json;

    #[test]
    fn basic_spec_whole_object() {
        let redis = children(&basic(), &BuildInputs::default())
            .expect("builds")
            .session_store
            .expect("managed");
        assert_eq!(
            to_json(&redis.network_policy),
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {
                    "name": "shop-redis",
                    "namespace": "prod",
                    "labels": redis_labels(),
                    "ownerReferences": owner()
                },
                "spec": {
                    "podSelector": {"matchLabels": redis_selector()},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{
                        "from": [{"podSelector": {
                            "matchLabels": {"app.kubernetes.io/instance": "shop"},
                            "matchExpressions": [{
                                "key": "app.kubernetes.io/component",
                                "operator": "In",
                                "values": ["app", "worker", "schedule"],
                            }],
                        }}],
                        "ports": [{"port": 6379, "protocol": "TCP"}]
                    }],
                    "egress": []
                }
            })
        );
    }
}

//! The rule engine's view of a StatelessApp must match what the operator
//! builds: same pod labels, so Services selecting the app's pods are found.

use serde_json::json;
use stateless_operator::rules::{Config, Object, RuleId, evaluate, stateless_app_pod_labels};

#[test]
fn stateless_app_pod_labels_match_the_builder() {
    assert_eq!(
        stateless_app_pod_labels("shop"),
        stateless_operator::build::labels::app("shop")
    );
}

#[test]
fn service_selecting_the_builders_pods_is_attributed_to_the_app() {
    let selector = stateless_operator::build::labels::app_selector("shop");
    let app = json!({"apiVersion": "stateless.dev/v1alpha1", "kind": "StatelessApp",
        "metadata": {"name": "shop", "namespace": "shop"}, "spec": {"image": "example/shop:1"}});
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "legacy-lb", "namespace": "shop"},
        "spec": {"selector": selector, "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}});
    let findings = evaluate(&[Object::new(app), Object::new(svc)], &Config::default());
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].rule, RuleId::SessionAffinity);
    assert!(
        findings[0].message.contains("application pods"),
        "{}",
        findings[0].message
    );
}

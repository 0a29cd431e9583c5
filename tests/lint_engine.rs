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

/// The controller (status conditions, violations, Events) and the admission
/// webhook both run `rules::evaluate`: a StatelessApp that keeps sessions in
/// memory is reported by each, at the same fields.
#[test]
fn in_memory_session_reaches_the_controller_and_the_webhook() {
    use stateless_operator::controller::compliance::Compliance;
    use stateless_operator::crd::StatelessApp;
    use stateless_operator::webhook::admission::{Mode, Policy, assess, deny_message};
    use stateless_operator::webhook::cluster::Fetched;

    let app = |env_value: &str, arg: &str| {
        json!({"apiVersion": "stateless.dev/v1alpha1", "kind": "StatelessApp",
            "metadata": {"name": "session-demo", "namespace": "demo"},
            "spec": {"image": "ghcr.io/stateless-dev/session-demo:0.1.0",
                     "ports": [{"name": "http", "containerPort": 8080}],
                     "env": [{"name": "SESSION_STORE", "value": env_value}],
                     "args": ["serve", arg]}})
    };
    let memory = app("memory", "--session-store=memory");
    let session_paths = |findings: &[stateless_operator::rules::Finding]| -> Vec<String> {
        findings
            .iter()
            .filter(|f| f.rule == RuleId::InMemorySession)
            .map(|f| f.path.clone())
            .collect()
    };
    let expected = ["spec.args[1]", "spec.env[0].value"];

    // Controller: the typed resource, serialized as `compliance::evaluate` does.
    let typed: StatelessApp = serde_json::from_value(memory.clone()).expect("a valid StatelessApp");
    let as_seen = serde_json::to_value(&typed).expect("serialize");
    let compliance = Compliance {
        findings: evaluate(&[Object::new(as_seen)], &Config::default()),
    };
    assert_eq!(session_paths(&compliance.findings), expected);
    let condition = compliance.observation(false);
    assert!(!condition.status && condition.reason == "ViolationsFound");
    assert!(
        condition
            .message
            .contains("in-memory-session on StatelessApp session-demo at spec.env[0].value"),
        "{}",
        condition.message
    );
    assert!(
        compliance
            .violations()
            .iter()
            .any(|v| v.rule == "in-memory-session" && v.message.contains("`SESSION_STORE=memory`"))
    );

    // Webhook, in a `deny` namespace.
    let assessment = assess(
        &memory,
        None,
        &Fetched::default(),
        Mode::Deny,
        &Policy::default(),
    );
    assert_eq!(session_paths(&assessment.deny), expected);
    let message = deny_message("demo", &assessment.deny);
    assert!(
        message.contains("SESSION_STORE=memory") && message.contains("REDIS_URL"),
        "{message}"
    );

    // Redis-backed sessions: nothing for this rule, anywhere.
    let redis = app("redis", "--session-store=redis");
    assert!(session_paths(&evaluate(&[Object::new(redis.clone())], &Config::default())).is_empty());
    let assessment = assess(
        &redis,
        None,
        &Fetched::default(),
        Mode::Deny,
        &Policy::default(),
    );
    assert!(
        session_paths(&assessment.deny).is_empty(),
        "{:?}",
        assessment.deny
    );
}

/// A misspelt waiver is reported the same way by `lint` (the engine), the
/// controller's status and the admission webhook: a low finding on the
/// object, which the webhook only warns about, even in a `deny` namespace.
#[test]
fn unknown_waiver_reaches_the_controller_and_the_webhook() {
    use stateless_operator::controller::compliance::Compliance;
    use stateless_operator::crd::StatelessApp;
    use stateless_operator::webhook::admission::{Mode, Policy, assess};
    use stateless_operator::webhook::cluster::Fetched;

    let app = json!({"apiVersion": "stateless.dev/v1alpha1", "kind": "StatelessApp",
        "metadata": {"name": "shop", "namespace": "shop",
                     "annotations": {"stateless.dev/allow": "single-replicas"}},
        "spec": {"image": "example/shop:1", "replicas": {"min": 1, "max": 1}}});
    let typed: StatelessApp = serde_json::from_value(app.clone()).expect("a valid StatelessApp");
    let as_seen = serde_json::to_value(&typed).expect("serialize");
    let compliance = Compliance {
        findings: evaluate(&[Object::new(as_seen)], &Config::default()),
    };
    let violations = compliance.violations();
    let unknown = violations
        .iter()
        .find(|v| v.rule == "unknown-waiver")
        .unwrap_or_else(|| panic!("no unknown-waiver in {violations:#?}"));
    assert!(
        unknown.message.contains("`single-replicas`")
            && unknown.message.contains("single-replica,"),
        "{}",
        unknown.message
    );
    // The typo waived nothing.
    assert!(
        violations
            .iter()
            .any(|v| v.rule == "single-replica" && v.waived != Some(true))
    );

    let assessment = assess(
        &app,
        None,
        &Fetched::default(),
        Mode::Deny,
        &Policy::default(),
    );
    assert!(
        assessment
            .deny
            .iter()
            .all(|f| f.rule != RuleId::UnknownWaiver)
    );
    assert!(
        assessment
            .warn
            .iter()
            .any(|(f, _)| f.rule == RuleId::UnknownWaiver),
        "{assessment:?}"
    );
}

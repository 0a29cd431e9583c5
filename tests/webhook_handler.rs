//! The admission handler on AdmissionReview fixtures (no cluster needed):
//! every rule that applies at admission, waivers, modes, ratcheting on
//! UPDATE, dry-run, skipped requests, and malformed/oversized bodies.
//! Fixtures: tests/fixtures/admission (regenerate with its generate.py).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use stateless_operator::rules::Severity;
use stateless_operator::webhook::admission::{Policy, Webhook};
use stateless_operator::webhook::cluster::{
    Cluster, Fetched, LookupError, References, StaticCluster,
};
use stateless_operator::webhook::server::{MAX_BODY_BYTES, router};
use stateless_operator::webhook::{ENFORCE_LABEL, WebhookMetrics};
use tower::ServiceExt;

const NS: &str = "shop";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/admission/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn cluster(mode: Option<&str>) -> StaticCluster {
    StaticCluster::default().with_namespace(NS, mode)
}

fn webhook_with(cluster: StaticCluster, policy: Policy) -> Webhook {
    Webhook::new(Arc::new(cluster), policy, WebhookMetrics::default())
}

fn webhook(mode: Option<&str>) -> Webhook {
    webhook_with(cluster(mode), Policy::default())
}

/// The `response` of the review the handler returns for `name`.
async fn respond(w: &Webhook, name: &str) -> Value {
    let (status, body) = w.handle(&fixture(name)).await;
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 200, "{name}: {text}");
    let review: Value = serde_json::from_slice(&body).expect("response is JSON");
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1", "{text}");
    assert_eq!(review["kind"], "AdmissionReview", "{text}");
    let request: Value = serde_json::from_slice(&fixture(name)).expect("fixture JSON");
    assert_eq!(
        review["response"]["uid"], request["request"]["uid"],
        "uid echoed"
    );
    review["response"].clone()
}

fn warnings(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
fn assert_allowed_silently(response: &Value) {
    assert_eq!(response["allowed"], true, "{response:#}");
    assert!(warnings(response).is_empty(), "{response:#}");
}

#[track_caller]
fn assert_denied(response: &Value, rule: &str, path: &str) -> String {
    assert_eq!(response["allowed"], false, "{response:#}");
    assert_eq!(response["status"]["code"], 403, "{response:#}");
    let message = response["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains(&format!("[{rule}, ")),
        "rule {rule} in: {message}"
    );
    assert!(message.contains(path), "path {path} in: {message}");
    assert!(message.contains("Fix: "), "remediation in: {message}");
    assert!(
        message.contains("stateless.dev/allow"),
        "waiver hint in: {message}"
    );
    message
}

#[track_caller]
fn assert_warned(response: &Value, rule: &str) -> String {
    assert_eq!(response["allowed"], true, "{response:#}");
    let w = warnings(response);
    let hit = w
        .iter()
        .find(|s| s.contains(&format!("[{rule}, ")))
        .unwrap_or_else(|| panic!("no {rule} warning in {w:#?}"));
    assert!(hit.starts_with("stateless.dev "), "{hit}");
    hit.clone()
}

#[tokio::test]
async fn compliant_objects_are_allowed_without_warnings() {
    let w = webhook(Some("deny"));
    for name in [
        "service-compliant.json",
        "deployment-compliant.json",
        "statelessapp-compliant.json",
    ] {
        assert_allowed_silently(&respond(&w, name).await);
    }
}

#[tokio::test]
async fn portless_host_path_deployment_is_denied_alone() {
    // At admission the Deployment is judged alone: no containerPort and no
    // Service in view must not let node-local state in.
    let response = respond(&webhook(Some("deny")), "deployment-host-path-no-ports.json").await;
    let message = assert_denied(
        &response,
        "host-path",
        "spec.template.spec.volumes[0].hostPath",
    );
    assert!(
        message.starts_with("Deployment/worker in namespace shop"),
        "{message}"
    );
    // Serving traffic is unknown at admission: no single-replica here either.
    assert!(!message.contains("single-replica"), "{message}");
}

#[tokio::test]
async fn each_rule_that_applies_at_admission_denies() {
    let w = webhook(Some("deny"));
    let cases = [
        (
            "service-session-affinity.json",
            "session-affinity",
            "spec.sessionAffinity",
        ),
        (
            "ingress-sticky.json",
            "sticky-ingress",
            "metadata.annotations[\"nginx.ingress.kubernetes.io/affinity\"]",
        ),
        (
            "deployment-host-path.json",
            "host-path",
            "spec.template.spec.volumes[0].hostPath",
        ),
        (
            "deployment-upload-emptydir.json",
            "local-upload-dir",
            "spec.template.spec.containers[0].volumeMounts[0].mountPath",
        ),
        (
            "deployment-session-env.json",
            "in-memory-session",
            "spec.template.spec.containers[0].env[0].value",
        ),
        (
            "deployment-cron.json",
            "in-process-scheduler",
            "spec.template.spec.containers[0].command",
        ),
        (
            "statefulset-claim-templates.json",
            "pvc-app-tier",
            "spec.volumeClaimTemplates[0]",
        ),
        (
            "statelessapp-session-affinity.json",
            "session-affinity",
            "spec.service.sessionAffinity",
        ),
        (
            "statelessapp-single-replica.json",
            "single-replica",
            "spec.replicas.max",
        ),
    ];
    for (name, rule, path) in cases {
        let message = assert_denied(&respond(&w, name).await, rule, path);
        assert!(
            message.contains("in namespace shop") && message.contains("stateless.dev/enforce=deny"),
            "{name}: {message}"
        );
    }
}

#[tokio::test]
async fn the_denial_names_rule_path_problem_and_fix() {
    let response = respond(&webhook(Some("deny")), "service-session-affinity.json").await;
    let message = assert_denied(&response, "session-affinity", "spec.sessionAffinity");
    let first = message.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        "Service/web in namespace shop breaks 1 statelessness rule (stateless.dev/enforce=deny):"
    );
    assert!(message.contains("ClientIP"), "{message}");
    assert!(message.contains("Remove `sessionAffinity`"), "{message}");
}

#[tokio::test]
async fn claims_count_with_their_access_mode() {
    let claim = |modes: &[&str]| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "web-data", "namespace": NS},
               "spec": {"accessModes": modes}})
    };
    // ReadWriteOnce: the pod is tied to one node.
    let rwo = webhook_with(
        cluster(Some("deny")).with_object(claim(&["ReadWriteOnce"])),
        Policy::default(),
    );
    assert_denied(
        &respond(&rwo, "deployment-claim.json").await,
        "pvc-app-tier",
        "spec.template.spec.volumes[0].persistentVolumeClaim",
    );
    // ReadWriteMany: shared by every replica, fine.
    let rwx = webhook_with(
        cluster(Some("deny")).with_object(claim(&["ReadWriteMany"])),
        Policy::default(),
    );
    assert_allowed_silently(&respond(&rwx, "deployment-claim.json").await);
    // Not readable at admission (e.g. applied after the Deployment): warn, never deny.
    let unknown = respond(&webhook(Some("deny")), "deployment-claim.json").await;
    let warning = assert_warned(&unknown, "pvc-app-tier");
    assert!(warning.contains("access mode is unknown"), "{warning}");
}

#[tokio::test]
async fn config_maps_referenced_by_the_object_are_read() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "web-env", "namespace": NS},
                    "data": {"SESSION_DRIVER": "file"}});
    let with_cm = webhook_with(cluster(Some("deny")).with_object(cm), Policy::default());
    assert_denied(
        &respond(&with_cm, "deployment-session-configmap.json").await,
        "in-memory-session",
        "envFrom[0].configMapRef",
    );
    // Without it nothing is known, so nothing is claimed.
    assert_allowed_silently(
        &respond(&webhook(Some("deny")), "deployment-session-configmap.json").await,
    );
}

#[tokio::test]
async fn single_replica_is_not_judged_for_workloads_at_admission() {
    // Its HPA is another object, maybe applied right after it.
    assert_allowed_silently(
        &respond(&webhook(Some("deny")), "deployment-single-replica.json").await,
    );
}

#[tokio::test]
async fn low_severity_findings_warn_even_in_deny_namespaces() {
    let response = respond(&webhook(Some("deny")), "deployment-writable-root.json").await;
    let warning = assert_warned(&response, "writable-root-fs");
    assert!(
        warning.contains("spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem"),
        "{warning}"
    );
    // A stricter threshold turns medium findings into warnings too.
    let lenient = webhook_with(
        cluster(Some("deny")),
        Policy {
            deny_severity: Severity::High,
            ..Policy::default()
        },
    );
    assert_warned(
        &respond(&lenient, "deployment-cron.json").await,
        "in-process-scheduler",
    );
}

#[tokio::test]
async fn unknown_waiver_names_warn_with_the_valid_rules() {
    let response = respond(&webhook(Some("deny")), "service-unknown-waiver.json").await;
    let warning = assert_warned(&response, "unknown-waiver");
    assert!(
        warning.contains("`sesion-affinity`") && warning.contains("session-affinity,"),
        "{warning}"
    );
}

#[tokio::test]
async fn waived_findings_never_deny_and_are_audited() {
    let response = respond(
        &webhook(Some("deny")),
        "service-session-affinity-waived.json",
    )
    .await;
    assert_allowed_silently(&response);
    let audit = response["auditAnnotations"]["waived"]
        .as_str()
        .unwrap_or_default();
    assert!(
        audit.contains("session-affinity at spec.sessionAffinity (legacy SOAP client"),
        "{response:#}"
    );
}

#[tokio::test]
async fn warn_namespaces_get_warnings_and_unlabelled_ones_nothing() {
    let warned = respond(&webhook(Some("warn")), "service-session-affinity.json").await;
    let warning = assert_warned(&warned, "session-affinity");
    assert!(
        warning.contains("Service/web spec.sessionAffinity"),
        "{warning}"
    );
    assert!(warning.contains("Fix: "), "{warning}");
    for mode in [None, Some("audit"), Some("")] {
        assert_allowed_silently(&respond(&webhook(mode), "service-session-affinity.json").await);
    }
    // A namespace the cluster does not know (deleted meanwhile): allowed.
    let unknown = webhook_with(StaticCluster::default(), Policy::default());
    assert_allowed_silently(&respond(&unknown, "service-session-affinity.json").await);
}

#[tokio::test]
async fn updates_deny_only_new_violations() {
    let w = webhook(Some("deny"));
    // `kubectl rollout restart` of a Deployment that already had a hostPath.
    let restart = respond(&w, "deployment-update-pre-existing.json").await;
    let warning = assert_warned(&restart, "host-path");
    assert!(
        warning.contains("already present before this update"),
        "{warning}"
    );
    // An update that adds one.
    assert_denied(
        &respond(&w, "deployment-update-new-violation.json").await,
        "host-path",
        "spec.template.spec.volumes[0].hostPath",
    );
}

#[tokio::test]
async fn dry_run_gets_the_same_answer() {
    let w = webhook(Some("deny"));
    let real = respond(&w, "service-session-affinity.json").await;
    let dry = respond(&w, "service-session-affinity-dry-run.json").await;
    assert_eq!(dry["allowed"], false);
    assert_eq!(dry["status"], real["status"]);
}

#[tokio::test]
async fn requests_outside_the_webhooks_scope_are_allowed() {
    let w = webhook_with(
        cluster(Some("deny")).with_namespace("kube-system", Some("deny")),
        Policy::default(),
    );
    for name in [
        "configmap-ignored.json",
        "service-status-subresource.json",
        "service-being-deleted.json",
        "service-kube-system.json",
    ] {
        assert_allowed_silently(&respond(&w, name).await);
    }
    // The operator's own namespace.
    let own = webhook_with(
        cluster(Some("deny")),
        Policy {
            operator_namespace: Some(NS.to_string()),
            ..Policy::default()
        },
    );
    assert_allowed_silently(&respond(&own, "service-session-affinity.json").await);
}

/// Only the operator's own requests for a StatelessApp's children go
/// unreviewed: an ownerReference anyone can write is no exemption.
#[tokio::test]
async fn only_the_operator_skips_review_of_app_children() {
    const OPERATOR: &str = "system:serviceaccount:stateless-system:stateless-operator";
    let knows_operator = webhook_with(
        cluster(Some("deny")).with_operator_user(OPERATOR),
        Policy::default(),
    );
    assert_allowed_silently(
        &respond(&knows_operator, "service-owned-by-app-from-operator.json").await,
    );
    // Someone else claims a StatelessApp owns their sticky Service.
    assert_denied(
        &respond(&knows_operator, "service-owned-by-app.json").await,
        "session-affinity",
        "spec.sessionAffinity",
    );
    // Before the operator knows who it is, nobody is exempt.
    let unknown = webhook(Some("deny"));
    assert_denied(
        &respond(&unknown, "service-owned-by-app-from-operator.json").await,
        "session-affinity",
        "spec.sessionAffinity",
    );
}

#[tokio::test]
async fn malformed_reviews_get_400_with_a_message() {
    let w = webhook(Some("deny"));
    let mut no_uid: Value =
        serde_json::from_slice(&fixture("service-session-affinity.json")).expect("json");
    no_uid["request"]["uid"] = json!("");
    let mut no_kind: Value =
        serde_json::from_slice(&fixture("service-session-affinity.json")).expect("json");
    no_kind["request"]
        .as_object_mut()
        .expect("object")
        .remove("kind");
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json".to_vec(),
        b"[1,2,3]".to_vec(),
        br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#.to_vec(),
        br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":7}}"#
            .to_vec(),
        serde_json::to_vec(&no_uid).expect("json"),
        serde_json::to_vec(&no_kind).expect("json"),
        fixture("service-session-affinity.json")[..200].to_vec(),
    ];
    for body in bodies {
        let (status, out) = w.handle(&body).await;
        let text = String::from_utf8_lossy(&out);
        assert_eq!(status, 400, "{text}");
        let err: Value = serde_json::from_slice(&out).expect("error body is JSON");
        assert!(
            err["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("malformed AdmissionReview")),
            "{text}"
        );
    }
}

/// A cluster whose API server does not answer.
struct Unreachable;

impl Cluster for Unreachable {
    fn namespace_labels<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<Option<std::collections::BTreeMap<String, String>>, LookupError>>
    {
        futures::future::ready(Err(LookupError::Timeout {
            namespace: namespace.to_string(),
            timeout: std::time::Duration::from_millis(1500),
        }))
        .boxed()
    }

    fn fetch<'a>(&'a self, _: &'a str, _: &'a References) -> BoxFuture<'a, Fetched> {
        futures::future::ready(Fetched::default()).boxed()
    }

    fn operator_user(&self) -> Option<&str> {
        None
    }
}

#[tokio::test]
async fn an_unknown_mode_is_an_error_so_the_failure_policy_decides() {
    let w = Webhook::new(
        Arc::new(Unreachable),
        Policy::default(),
        WebhookMetrics::default(),
    );
    let (status, out) = w.handle(&fixture("service-session-affinity.json")).await;
    assert_eq!(status, 500, "{}", String::from_utf8_lossy(&out));
    // Requests the webhook does not review never need the namespace.
    let (status, _) = w.handle(&fixture("configmap-ignored.json")).await;
    assert_eq!(status, 200);
}

async fn post(app: axum::Router, body: Vec<u8>) -> (StatusCode, Value) {
    let response = app
        .oneshot(
            Request::post("/validate")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("request"),
        )
        .await
        .expect("router answers");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test]
async fn the_http_layer_bounds_bodies_and_reports_errors() {
    let app = router(Arc::new(webhook(Some("deny"))));
    let (status, json) = post(app.clone(), fixture("service-session-affinity.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["response"]["allowed"], false);

    let (status, json) = post(app.clone(), b"{".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["error"].is_string(), "{json}");

    // Over the limit: rejected before parsing, with a message.
    let mut huge = fixture("service-compliant.json");
    huge.resize(MAX_BODY_BYTES + 1, b' ');
    let (status, json) = post(app.clone(), huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("larger than")),
        "{json}"
    );

    // Just under the limit is read (whitespace-padded JSON is valid).
    let mut big = fixture("service-compliant.json");
    big.resize(MAX_BODY_BYTES - 16, b' ');
    let (status, _) = post(app.clone(), big).await;
    assert_eq!(status, StatusCode::OK);

    let response = app
        .oneshot(
            Request::get("/validate")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("router answers");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn results_are_counted_by_kind() {
    let metrics = WebhookMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let w = Webhook::new(Arc::new(cluster(Some("deny"))), Policy::default(), metrics);
    for name in [
        "service-session-affinity.json",
        "service-compliant.json",
        "deployment-writable-root.json",
        "configmap-ignored.json",
    ] {
        respond(&w, name).await;
    }
    w.handle(b"nope").await;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    for line in [
        r#"stateless_admission_requests_total{kind="Service",result="denied"} 1"#,
        r#"stateless_admission_requests_total{kind="Service",result="allowed"} 1"#,
        r#"stateless_admission_requests_total{kind="Deployment",result="warned"} 1"#,
        r#"stateless_admission_requests_total{kind="other",result="allowed"} 1"#,
        r#"stateless_admission_requests_total{kind="other",result="error"} 1"#,
        "stateless_admission_duration_seconds_count 5",
    ] {
        assert!(text.contains(line), "{line} missing in\n{text}");
    }
    assert_eq!(ENFORCE_LABEL, "stateless.dev/enforce");
}

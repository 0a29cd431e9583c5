//! `stateless-operator audit` against the real API server.

mod support;

use std::process::Command;

use serde_json::{Value, json};
use support::{TestNamespace, apply_objects, client, ensure_crd, kubeconfig_path};

fn audit(args: &[&str]) -> (i32, Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stateless-operator"))
        .arg("audit")
        .args(args)
        .args(["--format", "json"])
        .env("KUBECONFIG", kubeconfig_path())
        .output()
        .expect("run stateless-operator audit");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("audit JSON: {e}; stderr: {stderr}"));
    (out.status.code().unwrap_or(-1), findings, stderr)
}

#[tokio::test]
async fn audit_reports_live_violations_per_namespace() {
    let client = client().await;
    ensure_crd(&client).await;
    let dirty = TestNamespace::new(&client, "audit-dirty").await;
    let clean = TestNamespace::new(&client, "audit-clean").await;
    let labels = json!({"app": "shop"});
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
          "spec": {"containers": [{"name": "web", "image": "shop:1", "ports": [{"containerPort": 8080}],
                     "securityContext": {"readOnlyRootFilesystem": true},
                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                   "volumes": [{"name": "data", "hostPath": {"path": "/srv/shop"}}]}}}});
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "shop"},
        "spec": {"selector": labels, "sessionAffinity": "ClientIP", "ports": [{"port": 80, "targetPort": 8080}]}});
    apply_objects(&client, &dirty.name, &[deployment, service]).await;

    let (code, findings, stderr) = audit(&["-n", &dirty.name]);
    assert_eq!(code, 1, "findings exit 1; stderr: {stderr}");
    let has = |rule: &str, kind: &str, name: &str| {
        findings.iter().any(|f| {
            f["rule"] == rule
                && f["kind"] == kind
                && f["name"] == name
                && f["namespace"] == dirty.name.as_str()
        })
    };
    assert!(has("host-path", "Deployment", "shop"), "{findings:#?}");
    assert!(has("session-affinity", "Service", "shop"), "{findings:#?}");
    for f in &findings {
        for field in [
            "rule",
            "severity",
            "kind",
            "namespace",
            "name",
            "path",
            "message",
            "remediation",
        ] {
            assert!(f.get(field).is_some(), "finding lacks {field}: {f}");
        }
    }

    let (code, findings, stderr) = audit(&["-n", &clean.name]);
    assert_eq!(
        (code, findings.len()),
        (0, 0),
        "a clean namespace: {stderr}"
    );
}

/// An ownerReference naming a StatelessApp hides an object from `audit` only
/// when the object is one the app's controller makes (its kind and name): a
/// sticky Service or Ingress that names the app, with the app's real uid (so
/// the garbage collector keeps it), is reported like any other object.
#[tokio::test]
async fn an_owner_reference_hides_only_the_apps_own_children() {
    let client = client().await;
    ensure_crd(&client).await;
    let ns = TestNamespace::new(&client, "audit-owner").await;
    let app = json!({"apiVersion": "stateless.dev/v1alpha1", "kind": "StatelessApp",
        "metadata": {"name": "web"},
        "spec": {"image": "ghcr.io/stateless-dev/session-demo:0.1.0"}});
    apply_objects(&client, &ns.name, &[app]).await;
    let apps: kube::Api<stateless_operator::crd::StatelessApp> = ns.api();
    let uid = apps
        .get("web")
        .await
        .expect("the app")
        .metadata
        .uid
        .expect("its uid");
    let owner = json!([{"apiVersion": "stateless.dev/v1alpha1", "kind": "StatelessApp",
        "name": "web", "uid": uid, "controller": true, "blockOwnerDeletion": false}]);
    let sticky_service = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "ownerReferences": owner},
            "spec": {"selector": {"app": "web"}, "sessionAffinity": "ClientIP",
                     "ports": [{"port": 80, "targetPort": 8080}]}})
    };
    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "ownerReferences": owner,
                     "annotations": {"nginx.ingress.kubernetes.io/affinity": "cookie"}},
        "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}});
    apply_objects(
        &client,
        &ns.name,
        &[sticky_service("web"), sticky_service("web-sticky"), ingress],
    )
    .await;

    let (code, findings, stderr) = audit(&["-n", &ns.name]);
    let found = |rule: &str, kind: &str, name: &str| {
        findings
            .iter()
            .any(|f| f["rule"] == rule && f["kind"] == kind && f["name"] == name)
    };
    assert_eq!(code, 1, "findings exit 1; stderr: {stderr}");
    assert!(
        found("session-affinity", "Service", "web-sticky"),
        "a Service the operator never makes is reported, whatever its owner: {findings:#?}"
    );
    assert!(
        found("sticky-ingress", "Ingress", "web"),
        "the operator makes no Ingress: {findings:#?}"
    );
    // The app's own Service: the operator's forced apply sets
    // `sessionAffinity: None` on it, and the app's spec is what is audited.
    assert!(
        !found("session-affinity", "Service", "web"),
        "the app's own Service is left to the app: {findings:#?}"
    );
    // Both objects are still there: the garbage collector keeps children of
    // an app that exists, so the audit above saw what a user would have left.
    let services: kube::Api<k8s_openapi::api::core::v1::Service> = ns.api();
    assert!(services.get_opt("web-sticky").await.expect("get").is_some());
}

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

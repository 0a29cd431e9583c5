//! The admission webhook against the real API server of the local plane.
//!
//! Each test starts the webhook in this process on 127.0.0.1:<free port>
//! (`stateless_operator::webhook::start`, the code `run` uses) and registers
//! a ValidatingWebhookConfiguration of its own pointing at
//! `https://127.0.0.1:<port>/validate`, with `failurePolicy: Ignore` and a
//! namespaceSelector that needs `stateless.dev/enforce` in (deny, warn) AND
//! a label unique to the test, so it can never affect another test. The
//! configuration is deleted at the end (also on failure).

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use axum::http::Request;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use stateless_operator::rules::Severity;
use stateless_operator::webhook::certs::{self, Builtin, BuiltinSettings};
use stateless_operator::webhook::tls::CertStore;
use stateless_operator::webhook::{
    CertSource, ENFORCE_LABEL, Policy, WebhookMetrics, WebhookSettings,
};
use support::{TestNamespace, WebhookConfiguration, client, kubeconfig_path, suffix, wait_until};

const WAIT: Duration = Duration::from_secs(60);
const TEST_LABEL: &str = "stateless.dev/webhook-test";
const SECRET: &str = "webhook-tls";

/// The webhook running in this test; stopped on drop.
struct Hook {
    addr: std::net::SocketAddr,
    store: std::sync::Arc<CertStore>,
    task: Option<tokio::task::JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Hook {
    async fn start(client: &Client, certs: CertSource, operator_ns: &str) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let settings = WebhookSettings {
            addr: "127.0.0.1:0".parse().expect("addr"),
            certs,
            policy: Policy {
                operator_namespace: Some(operator_ns.to_string()),
                deny_severity: Severity::Medium,
                ..Policy::default()
            },
            drain_delay: Duration::ZERO,
        };
        let running = stateless_operator::webhook::start(
            client.clone(),
            settings,
            WebhookMetrics::default(),
            async move {
                let _ = rx.await;
            },
        )
        .await
        .expect("webhook starts");
        Self {
            addr: running.addr,
            store: running.store,
            task: Some(running.task),
            stop: Some(tx),
        }
    }

    async fn builtin(client: &Client, operator_ns: &str, config_name: &str) -> Self {
        Self::start(
            client,
            CertSource::Builtin(builtin_settings(operator_ns, config_name)),
            operator_ns,
        )
        .await
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/validate", self.addr.port())
    }

    /// DER of the certificate served now.
    fn served(&self) -> Vec<u8> {
        self.store
            .current()
            .and_then(|k| k.cert.first().map(|c| c.to_vec()))
            .unwrap_or_default()
    }

    /// Stop serving and wait until the port is closed.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn builtin_settings(operator_ns: &str, config_name: &str) -> BuiltinSettings {
    BuiltinSettings {
        namespace: operator_ns.to_string(),
        secret: SECRET.to_string(),
        service: "stateless-operator-webhook".to_string(),
        config_name: config_name.to_string(),
        extra_sans: vec!["127.0.0.1".to_string()],
    }
}

/// The ValidatingWebhookConfiguration of a test: `hooks` webhooks (same URL),
/// none with a caBundle unless `ca` is given; deleted on drop.
async fn test_configuration(
    client: &Client,
    url: &str,
    ca: Option<&[u8]>,
    test_id: &str,
    hooks: usize,
) -> WebhookConfiguration {
    let name = format!("stateless-webhook-test-{test_id}");
    let ca = ca.map(|c| serde_json::to_value(k8s_openapi::ByteString(c.to_vec())).expect("b64"));
    let rules = json!([
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments", "statefulsets"],
         "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"},
        {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["services"],
         "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"},
        {"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"], "resources": ["ingresses"],
         "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}
    ]);
    let webhooks: Vec<Value> = (0..hooks)
        .map(|i| {
            let mut client_config = json!({"url": url});
            if let Some(ca) = &ca {
                client_config["caBundle"] = ca.clone();
            }
            json!({
                "name": format!("validate-{i}.stateless.dev"),
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Ignore",
                "timeoutSeconds": 5,
                "matchPolicy": "Equivalent",
                "clientConfig": client_config,
                "namespaceSelector": {"matchExpressions": [
                    {"key": ENFORCE_LABEL, "operator": "In", "values": ["deny", "warn"]},
                    {"key": TEST_LABEL, "operator": "In", "values": [test_id]}
                ]},
                "rules": rules
            })
        })
        .collect();
    WebhookConfiguration::create(
        client,
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": webhooks
        }),
    )
    .await
}

/// Namespaces of one test: `deny`, `warn`, unlabelled (test label only), operator.
struct Namespaces {
    id: String,
    deny: TestNamespace,
    warn: TestNamespace,
    plain: TestNamespace,
    operator: TestNamespace,
}

impl Namespaces {
    async fn new(client: &Client, prefix: &str) -> Self {
        let id = suffix();
        let labels = |mode: Option<&str>| {
            let mut l = BTreeMap::from([(TEST_LABEL.to_string(), id.clone())]);
            if let Some(mode) = mode {
                l.insert(ENFORCE_LABEL.to_string(), mode.to_string());
            }
            l
        };
        let names = ["deny", "warn", "none", "op"].map(|m| format!("{prefix}-{m}"));
        let (deny, warn, plain, operator) = tokio::join!(
            TestNamespace::with_labels(client, &names[0], labels(Some("deny"))),
            TestNamespace::with_labels(client, &names[1], labels(Some("warn"))),
            TestNamespace::with_labels(client, &names[2], labels(None)),
            // The operator's namespace: the selector matches it, the handler skips it.
            TestNamespace::with_labels(client, &names[3], labels(Some("deny"))),
        );
        Self {
            id,
            deny,
            warn,
            plain,
            operator,
        }
    }
}

fn service(name: &str, affinity: bool, annotations: &[(&str, &str)]) -> Service {
    let mut svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "annotations": annotations.iter().cloned().collect::<BTreeMap<_, _>>()},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    });
    if affinity {
        svc["spec"]["sessionAffinity"] = json!("ClientIP");
    }
    serde_json::from_value(svc).expect("service")
}

fn deployment(name: &str, host_path: bool) -> Deployment {
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "web", "image": "ghcr.io/example/web:1.0",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "securityContext": {"readOnlyRootFilesystem": true}
                }]}
            }
        }
    });
    if host_path {
        d["spec"]["template"]["spec"]["volumes"] =
            json!([{"name": "data", "hostPath": {"path": "/var/lib/web"}}]);
        d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": "data", "mountPath": "/srv/data"}]);
    }
    serde_json::from_value(d).expect("deployment")
}

/// A client acting as `user` (in `system:masters`, so RBAC allows it all).
async fn admin_as(user: &str) -> Client {
    let mut config = support::config().await;
    config.auth_info.impersonate = Some(user.to_string());
    config.auth_info.impersonate_groups = Some(vec!["system:masters".to_string()]);
    Client::try_from(config).expect("impersonating client")
}

fn dry_run() -> PostParams {
    PostParams {
        dry_run: true,
        ..Default::default()
    }
}

/// The denial message when `result` is a webhook denial.
fn denial<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Option<String> {
    match result {
        Err(kube::Error::Api(status))
            if status.code == 403 && status.message.contains("denied the request") =>
        {
            Some(status.message.clone())
        }
        _ => None,
    }
}

/// Wait until the API server calls the webhook for `ns` (configurations take
/// effect asynchronously): a dry-run of a violating Service is refused.
async fn wait_enforced(client: &Client, ns: &str) {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let probe = service("probe", true, &[]);
    wait_until(WAIT, &format!("webhook enforced in {ns}"), || async {
        denial(api.create(&dry_run(), &probe).await).is_some()
    })
    .await;
}

/// Wait until every webhook of `config` carries `ca`.
async fn wait_ca_bundle(client: &Client, config: &WebhookConfiguration, ca: &[u8]) {
    wait_until(WAIT, &format!("caBundle of {}", config.name), || async {
        let bundles = config.ca_bundles(client).await;
        !bundles.is_empty() && bundles.iter().all(|b| b.as_deref() == Some(ca))
    })
    .await;
}

/// The webhook's Secret, once the operator has created it.
async fn secret(client: &Client, ns: &str) -> Secret {
    let api = Api::<Secret>::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match api.get_opt(SECRET).await {
            Ok(Some(s)) => return s,
            Ok(None) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(None) => panic!("Secret {ns}/{SECRET} not created within {WAIT:?}"),
            Err(e) => panic!("reading Secret {ns}/{SECRET}: {e}"),
        }
    }
}

fn data(secret: &Secret, key: &str) -> Vec<u8> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .unwrap_or_default()
}

fn der(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem)
        .map(|c| c.to_vec())
        .unwrap_or_default()
}

/// Create `svc` in `ns` with a raw request and return the HTTP status and the
/// `Warning` headers (kube's typed API does not expose them).
async fn create_with_warnings(client: &Client, ns: &str, svc: &Service) -> (u16, Vec<String>) {
    let body = serde_json::to_vec(svc).expect("json");
    let request = Request::post(format!("/api/v1/namespaces/{ns}/services"))
        .header("content-type", "application/json")
        .body(kube::client::Body::from(body))
        .expect("request");
    let response = client.send(request).await.expect("API server answers");
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    (response.status().as_u16(), warnings)
}

#[tokio::test]
async fn deny_warn_and_unlabelled_namespaces_through_the_api_server() {
    let client = client().await;
    let ns = Namespaces::new(&client, "wh-modes").await;
    let config_name = format!("stateless-webhook-test-{}", ns.id);
    let hook = Hook::builtin(&client, &ns.operator.name, &config_name).await;
    // Builtin mode: the configuration (created after the operator started,
    // as Helm does) gets its caBundle from the operator.
    let config = test_configuration(&client, &hook.url(), None, &ns.id, 1).await;
    let ca = data(&secret(&client, &ns.operator.name).await, "ca.crt");
    wait_ca_bundle(&client, &config, &ca).await;
    wait_enforced(&client, &ns.deny.name).await;

    // deny: refused with rule, field path and fix.
    let deny_svcs: Api<Service> = ns.deny.api();
    let message = denial(
        deny_svcs
            .create(&PostParams::default(), &service("web", true, &[]))
            .await,
    )
    .expect("ClientIP Service denied in a deny namespace");
    for part in [
        "admission webhook \"validate-0.stateless.dev\" denied the request",
        &format!(
            "Service/web in namespace {} breaks 1 statelessness rule",
            ns.deny.name
        ),
        "[session-affinity, high] spec.sessionAffinity:",
        "Fix: Remove `sessionAffinity`",
        "stateless.dev/allow: session-affinity",
    ] {
        assert!(message.contains(part), "{part:?} missing in: {message}");
    }
    assert!(deny_svcs.get_opt("web").await.expect("get").is_none());
    // Compliant and waived objects pass; so does a compliant Deployment with
    // every field the API server defaults (no false positives from defaults).
    deny_svcs
        .create(&PostParams::default(), &service("plain", false, &[]))
        .await
        .expect("compliant Service admitted");
    deny_svcs
        .create(
            &PostParams::default(),
            &service(
                "waived",
                true,
                &[
                    ("stateless.dev/allow", "session-affinity"),
                    ("stateless.dev/allow-reason", "legacy client"),
                ],
            ),
        )
        .await
        .expect("waived Service admitted");
    let deploys: Api<Deployment> = ns.deny.api();
    deploys
        .create(&PostParams::default(), &deployment("web", false))
        .await
        .expect("compliant Deployment admitted");
    let message = denial(
        deploys
            .create(&PostParams::default(), &deployment("disk", true))
            .await,
    )
    .expect("hostPath Deployment denied");
    assert!(
        message.contains("[host-path, high] spec.template.spec.volumes[0].hostPath"),
        "{message}"
    );
    // As most manifests are written: no containerPort and no Service in the
    // same request. The state rules judge it all the same.
    let mut portless = deployment("worker", true);
    if let Some(c) = portless
        .spec
        .as_mut()
        .and_then(|s| s.template.spec.as_mut())
        .and_then(|s| s.containers.first_mut())
    {
        c.ports = None;
    }
    let message = denial(deploys.create(&PostParams::default(), &portless).await)
        .expect("port-less hostPath Deployment denied");
    assert!(
        message.contains("[host-path, high] spec.template.spec.volumes[0].hostPath"),
        "{message}"
    );
    assert!(deploys.get_opt("worker").await.expect("get").is_none());
    // An ownerReference naming a StatelessApp exempts nobody but the
    // operator: another user's sticky Service claiming one is reviewed...
    let mut forged = service("forged", true, &[]);
    forged.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "stateless.dev/v1alpha1".into(),
        kind: "StatelessApp".into(),
        name: "web".into(),
        uid: "0b7d0e47-2f0c-4d4e-9a55-2f6d7e0c0a11".into(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    let alice: Api<Service> = Api::namespaced(admin_as("alice").await, &ns.deny.name);
    let message = denial(alice.create(&dry_run(), &forged).await)
        .expect("a forged ownerReference is no exemption");
    assert!(
        message.contains("[session-affinity, high] spec.sessionAffinity"),
        "{message}"
    );
    // ...while the operator's own request (the webhook's identity is this
    // test's user, asked with a SelfSubjectReview at start) is not.
    wait_until(WAIT, "the operator's own child admitted", || async {
        deny_svcs.create(&dry_run(), &forged).await.is_ok()
    })
    .await;
    // Server-side dry run: same answer, nothing stored, no side effects.
    let dry = denial(
        deny_svcs
            .create(&dry_run(), &service("web", true, &[]))
            .await,
    )
    .expect("dry run denied too");
    assert!(dry.contains("[session-affinity, high]"), "{dry}");

    // warn: accepted, with the warning in the response headers.
    let (status, warnings) =
        create_with_warnings(&client, &ns.warn.name, &service("web", true, &[])).await;
    assert_eq!(status, 201, "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w
            .contains("stateless.dev [session-affinity, high] Service/web spec.sessionAffinity")),
        "{warnings:?}"
    );
    let warn_svcs: Api<Service> = ns.warn.api();
    warn_svcs
        .create(&dry_run(), &service("dry", true, &[]))
        .await
        .expect("dry run admitted in warn");
    assert!(warn_svcs.get_opt("dry").await.expect("get").is_none());

    // Unlabelled: nothing happens.
    let (status, warnings) =
        create_with_warnings(&client, &ns.plain.name, &service("web", true, &[])).await;
    assert_eq!((status, warnings.len()), (201, 0), "{warnings:?}");
    // The operator's namespace is skipped even though the selector matches it.
    let (status, warnings) =
        create_with_warnings(&client, &ns.operator.name, &service("web", true, &[])).await;
    assert_eq!((status, warnings.len()), (201, 0), "{warnings:?}");

    // Relabelling warn -> deny does not block updates of what already
    // violates (ratcheting): a `rollout restart` of a hostPath Deployment.
    let warn_deploys: Api<Deployment> = ns.warn.api();
    warn_deploys
        .create(&PostParams::default(), &deployment("disk", true))
        .await
        .expect("admitted in warn");
    Api::<Namespace>::all(client.clone())
        .patch(
            &ns.warn.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {ENFORCE_LABEL: "deny"}}})),
        )
        .await
        .expect("relabel");
    wait_enforced(&client, &ns.warn.name).await;
    warn_deploys
        .patch(
            "disk",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}})),
        )
        .await
        .expect("restart of an existing violation is allowed");
    let message = denial(
        warn_svcs
            .create(&PostParams::default(), &service("new", true, &[]))
            .await,
    )
    .expect("new violations are denied after relabelling");
    assert!(message.contains("session-affinity"), "{message}");
    hook.stop().await;
}

/// Path of the cached kubectl (`hack/tools.sh path`), else `kubectl` on PATH.
fn kubectl() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dirs = Command::new(root.join("hack/tools.sh"))
        .arg("path")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    dirs.split(':')
        .map(|d| PathBuf::from(d).join("kubectl"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// `kubectl apply` of `manifest` in `ns`: (success, stdout, stderr). Runs
/// off the async workers: the webhook serving kubectl's request lives in
/// this process.
async fn kubectl_apply(ns: &str, manifest: &str, extra: &[&str]) -> (bool, String, String) {
    let (ns, manifest) = (ns.to_string(), manifest.to_string());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || kubectl_apply_blocking(&ns, &manifest, &extra))
        .await
        .expect("kubectl thread")
}

fn kubectl_apply_blocking(ns: &str, manifest: &str, extra: &[String]) -> (bool, String, String) {
    let dir = std::env::temp_dir().join(format!("stateless-webhook-{}", suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("svc.yaml");
    std::fs::write(&file, manifest).expect("write manifest");
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args(["apply", "-n", ns, "-f"])
        .arg(&file)
        .args(extra)
        .output()
        .expect("kubectl runs");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn kubectl_shows_the_denial_and_the_warning() {
    let client = client().await;
    let ns = Namespaces::new(&client, "wh-kubectl").await;
    let config_name = format!("stateless-webhook-test-{}", ns.id);
    let hook = Hook::builtin(&client, &ns.operator.name, &config_name).await;
    let config = test_configuration(&client, &hook.url(), None, &ns.id, 1).await;
    assert_eq!(config.name, config_name);
    let ca = data(&secret(&client, &ns.operator.name).await, "ca.crt");
    wait_ca_bundle(&client, &config, &ca).await;
    wait_enforced(&client, &ns.deny.name).await;

    let manifest = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  \
                    selector: {app: web}\n  sessionAffinity: ClientIP\n  ports:\n  - port: 80\n    targetPort: 8080\n";
    let (ok, stdout, stderr) = kubectl_apply(&ns.deny.name, manifest, &[]).await;
    println!("--- kubectl apply (deny namespace)\n{stdout}{stderr}");
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        stderr.contains("admission webhook \"validate-0.stateless.dev\" denied the request: Service/web in namespace"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[session-affinity, high] spec.sessionAffinity"),
        "{stderr}"
    );

    let (ok, stdout, stderr) = kubectl_apply(&ns.deny.name, manifest, &["--dry-run=server"]).await;
    println!("--- kubectl apply --dry-run=server (deny namespace)\n{stdout}{stderr}");
    assert!(
        !ok && stderr.contains("denied the request"),
        "{stdout}{stderr}"
    );

    let (ok, stdout, stderr) = kubectl_apply(&ns.warn.name, manifest, &["--dry-run=server"]).await;
    println!("--- kubectl apply --dry-run=server (warn namespace)\n{stdout}{stderr}");
    assert!(
        ok && stdout.contains("(server dry run)"),
        "{stdout}{stderr}"
    );
    assert!(
        stderr.contains("Warning: stateless.dev [session-affinity, high]"),
        "{stderr}"
    );

    let (ok, stdout, stderr) = kubectl_apply(&ns.warn.name, manifest, &[]).await;
    println!("--- kubectl apply (warn namespace)\n{stdout}{stderr}");
    assert!(
        ok && stdout.contains("service/web created"),
        "{stdout}{stderr}"
    );
    assert!(
        stderr.contains(
            "Warning: stateless.dev [session-affinity, high] Service/web spec.sessionAffinity"
        ),
        "{stderr}"
    );

    let (ok, stdout, stderr) = kubectl_apply(&ns.plain.name, manifest, &[]).await;
    println!("--- kubectl apply (unlabelled namespace)\n{stdout}{stderr}");
    assert!(ok && stderr.is_empty(), "{stdout}{stderr}");
    hook.stop().await;
}

#[tokio::test]
async fn with_the_webhook_down_and_ignore_applies_succeed() {
    // Files mode, with a certificate made by the test (as cert-manager would).
    let client = client().await;
    let ns = Namespaces::new(&client, "wh-down").await;
    let bundle = certs::generate(&["127.0.0.1".to_string()], SystemTime::now()).expect("certs");
    let dir = std::env::temp_dir().join(format!("stateless-webhook-files-{}", ns.id));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("tls.crt"), &bundle.tls_crt).expect("write");
    std::fs::write(dir.join("tls.key"), &bundle.tls_key).expect("write");
    let hook = Hook::start(
        &client,
        CertSource::Files {
            dir: dir.clone(),
            poll: Duration::from_millis(200),
        },
        &ns.operator.name,
    )
    .await;
    let config = test_configuration(
        &client,
        &hook.url(),
        Some(bundle.ca_crt.as_bytes()),
        &ns.id,
        1,
    )
    .await;
    wait_enforced(&client, &ns.deny.name).await;
    assert_eq!(hook.served(), der(bundle.tls_crt.as_bytes()));

    hook.stop().await;
    // Port closed, failurePolicy Ignore: the API server admits.
    let svcs: Api<Service> = ns.deny.api();
    svcs.create(&PostParams::default(), &service("web", true, &[]))
        .await
        .expect("admitted while the webhook is down");
    drop(config);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn builtin_certificates_are_shared_patched_once_and_reloaded() {
    let client = client().await;
    let ns = Namespaces::new(&client, "wh-certs").await;
    let config_name = format!("stateless-webhook-test-{}", ns.id);
    let first = Hook::builtin(&client, &ns.operator.name, &config_name).await;
    // Two webhooks in the configuration: both get the caBundle.
    let config = test_configuration(&client, &first.url(), None, &ns.id, 2).await;
    let created = secret(&client, &ns.operator.name).await;
    let ca = data(&created, "ca.crt");
    wait_ca_bundle(&client, &config, &ca).await;
    assert_eq!(
        created.type_.as_deref(),
        Some("kubernetes.io/tls"),
        "cert-manager compatible"
    );
    for key in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(!data(&created, key).is_empty(), "{key}");
    }
    wait_until(
        WAIT,
        "first replica serves the Secret's certificate",
        || async { first.served() == der(&data(&created, "tls.crt")) },
    )
    .await;
    wait_enforced(&client, &ns.deny.name).await;

    // A second replica reuses the Secret and writes nothing.
    let secret_version = created.metadata.resource_version.clone();
    let config_version = config.get(&client).await.metadata.resource_version;
    let second = Hook::builtin(&client, &ns.operator.name, &config_name).await;
    wait_until(
        WAIT,
        "second replica serves the same certificate",
        || async { second.served() == first.served() },
    )
    .await;
    // Give it time for anything it might (wrongly) write.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        secret(&client, &ns.operator.name)
            .await
            .metadata
            .resource_version,
        secret_version,
        "Secret untouched"
    );
    assert_eq!(
        config.get(&client).await.metadata.resource_version,
        config_version,
        "caBundle already right: no patch"
    );
    second.stop().await;

    // The create race: two replicas, no Secret yet; one creates, the other adopts.
    let race_settings = BuiltinSettings {
        secret: "race-tls".to_string(),
        ..builtin_settings(&ns.operator.name, &config_name)
    };
    let a = Builtin::new(
        client.clone(),
        race_settings.clone(),
        CertStore::new(Default::default()),
    );
    let b = Builtin::new(
        client.clone(),
        race_settings,
        CertStore::new(Default::default()),
    );
    let (ra, rb) = tokio::join!(a.ensure_secret(), b.ensure_secret());
    let ((bundle_a, wrote_a), (bundle_b, wrote_b)) = (ra.expect("a"), rb.expect("b"));
    assert_eq!(
        bundle_a, bundle_b,
        "both replicas end up with one certificate"
    );
    assert!(wrote_a ^ wrote_b, "exactly one created it");

    // Rotation: a new CA and certificate written into the Secret are served
    // without a restart, and the caBundle follows.
    let sans = builtin_settings(&ns.operator.name, &config_name).sans();
    let rotated = certs::generate(&sans, SystemTime::now()).expect("certs");
    let mut next = secret(&client, &ns.operator.name).await;
    let mut data_map = next.data.take().unwrap_or_default();
    for (key, value) in [
        ("ca.crt", &rotated.ca_crt),
        ("ca.key", &rotated.ca_key),
        ("tls.crt", &rotated.tls_crt),
        ("tls.key", &rotated.tls_key),
    ] {
        data_map.insert(
            key.to_string(),
            k8s_openapi::ByteString(value.clone().into_bytes()),
        );
    }
    next.data = Some(data_map);
    next.metadata.managed_fields = None;
    Api::<Secret>::namespaced(client.clone(), &ns.operator.name)
        .replace(SECRET, &PostParams::default(), &next)
        .await
        .expect("rotate the Secret");
    wait_until(WAIT, "rotated certificate served", || async {
        first.served() == der(rotated.tls_crt.as_bytes())
    })
    .await;
    wait_ca_bundle(&client, &config, rotated.ca_crt.as_bytes()).await;
    // And the API server talks to it with the new CA.
    let svcs: Api<Service> = ns.deny.api();
    wait_until(WAIT, "denial through the rotated certificate", || async {
        denial(svcs.create(&dry_run(), &service("web", true, &[])).await).is_some()
    })
    .await;

    // A caBundle reset (e.g. by hand) is put back.
    let hooks = config.get(&client).await.webhooks.unwrap_or_default();
    let reset: Vec<Value> = hooks
        .iter()
        .map(|w| json!({"name": w.name, "clientConfig": {"caBundle": null}}))
        .collect();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(
            &config.name,
            &PatchParams::default(),
            &Patch::Strategic(json!({"webhooks": reset})),
        )
        .await
        .expect("reset caBundle");
    wait_ca_bundle(&client, &config, rotated.ca_crt.as_bytes()).await;
    first.stop().await;
}

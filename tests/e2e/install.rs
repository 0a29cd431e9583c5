//! Installing the chart the way users do, for `tests/chart.rs` and
//! `tests/e2e.rs` (included by both with `#[path]`; it uses their `support`).
//!
//! - `helm`: the binary cached by `hack/tools.sh`, else the one on PATH.
//! - [`Release`]: a Helm release of `charts/stateless-operator`, uninstalled on drop.
//! - [`impersonating`]: a client acting as the chart's ServiceAccount, so the
//!   in-process operator runs with exactly the chart's RBAC.
//! - [`OperatorProcess`]: the operator binary, run out of the cluster with the
//!   chart's container args under the chart's ServiceAccount identity.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::support;

pub const CHART: &str = "charts/stateless-operator";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn helm_binary() -> &'static PathBuf {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| support::tool("helm"))
}

/// Outcome of one helm command.
pub struct HelmOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Run helm against the tests' cluster (the kubeconfig `support` uses).
pub fn helm(args: &[&str]) -> HelmOutput {
    let output = Command::new(helm_binary())
        .args(args)
        .current_dir(repo_root())
        .env("KUBECONFIG", support::kubeconfig_path())
        .output()
        .unwrap_or_else(|e| panic!("running helm {}: {e}", args.join(" ")));
    HelmOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Run helm and insist that it succeeds; its stdout.
pub fn helm_ok(args: &[&str]) -> String {
    let out = helm(args);
    assert!(
        out.success,
        "helm {} failed:\n{}{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// A Helm release of the chart; `helm uninstall`ed on drop unless already gone.
pub struct Release {
    pub name: String,
    pub namespace: String,
    uninstalled: bool,
}

impl Release {
    /// `helm install --wait` with `--set` values; panics with helm's output on failure.
    pub fn install(name: &str, namespace: &str, set: &[&str]) -> Self {
        let args = install_args("install", name, namespace, set);
        let out = helm(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.success,
            "helm install {name} failed:\n{}{}",
            out.stdout, out.stderr
        );
        Self {
            name: name.to_string(),
            namespace: namespace.to_string(),
            uninstalled: false,
        }
    }

    /// `helm upgrade --wait` with new `--set` values (the others reset to the chart's defaults).
    pub fn upgrade(&self, set: &[&str]) -> String {
        let args = install_args("upgrade", &self.name, &self.namespace, set);
        helm_ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The chart's full name for this release (`<release>-stateless-operator`).
    pub fn fullname(&self) -> String {
        if self.name.contains("stateless-operator") {
            self.name.clone()
        } else {
            format!("{}-stateless-operator", self.name)
        }
    }

    /// The Kubernetes user name of the release's ServiceAccount.
    pub fn service_account_user(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace,
            self.fullname()
        )
    }

    /// `helm status -o json`, parsed.
    pub fn status(&self) -> serde_json::Value {
        let out = helm_ok(&["status", &self.name, "-n", &self.namespace, "-o", "json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("helm status output: {e}: {out}"))
    }

    pub fn uninstall(&mut self) -> String {
        let out = helm_ok(&[
            "uninstall",
            &self.name,
            "-n",
            &self.namespace,
            "--wait",
            "--timeout",
            "120s",
        ]);
        self.uninstalled = true;
        out
    }
}

/// Label a namespace must carry, with the release name as value, before this
/// release's webhook reviews anything in it. Tests share the local plane with
/// other tests that label namespaces `stateless.dev/enforce`; without this,
/// the API server would also send their requests to this release's webhook
/// Service, which no pod serves here (failurePolicy Ignore, but slower).
pub const WEBHOOK_SCOPE_LABEL: &str = "stateless.dev/test-release";

fn install_args(verb: &str, name: &str, namespace: &str, set: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        verb,
        name,
        CHART,
        "-n",
        namespace,
        "--wait",
        "--timeout",
        "120s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let scope = [
        format!("webhook.namespaceSelectorExpressions[0].key={WEBHOOK_SCOPE_LABEL}"),
        "webhook.namespaceSelectorExpressions[0].operator=In".to_string(),
        format!("webhook.namespaceSelectorExpressions[0].values={{{name}}}"),
    ];
    for value in scope.iter().map(String::as_str).chain(set.iter().copied()) {
        args.push("--set".into());
        args.push(value.to_string());
    }
    args
}

impl Drop for Release {
    fn drop(&mut self) {
        if self.uninstalled || std::env::var_os("KEEP_TEST_NAMESPACES").is_some() {
            return;
        }
        // Best effort, like TestNamespace: a failing test must not leave
        // cluster-scoped objects (ClusterRoles, the webhook configuration) behind.
        let _ = helm(&[
            "uninstall",
            &self.name,
            "-n",
            &self.namespace,
            "--timeout",
            "60s",
        ]);
    }
}

/// A client that authenticates as the admin but acts as `user` (the API
/// server impersonates it, including its ServiceAccount groups): every request
/// is authorized with that user's RBAC only.
pub async fn impersonating(user: &str) -> Client {
    let mut config = support::config().await;
    config.auth_info.impersonate = Some(user.to_string());
    Client::try_from(config).unwrap_or_else(|e| panic!("client impersonating {user}: {e}"))
}

/// May the client's user `verb` the resource? (SelfSubjectAccessReview, i.e. `kubectl auth can-i`.)
pub async fn can_i(
    client: &Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                namespace: namespace.map(Into::into),
                name: name.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap_or_else(|e| panic!("SelfSubjectAccessReview {verb} {group}/{resource}: {e}"))
        .status
        .is_some_and(|s| s.allowed)
}

/// Is this error the API server's 403?
pub fn is_forbidden<T: std::fmt::Debug>(result: &Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

/// `helm template` of the chart with `--set` values; the rendered objects.
pub fn render(set: &[&str], values_files: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["template", "release", CHART, "-n", "stateless-system"];
    for file in values_files {
        args.extend(["-f", file]);
    }
    for value in set {
        args.extend(["--set", value]);
    }
    let out = helm_ok(&args);
    serde_saphyr::from_multiple::<serde_json::Value>(&out)
        .unwrap_or_else(|e| panic!("parsing helm template output: {e}"))
        .into_iter()
        .filter(|v| v.is_object())
        .collect()
}

/// The operator container's args of a rendered or live Deployment.
pub fn operator_args(deployment: &serde_json::Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap_or_else(|| panic!("no container args in {deployment}"))
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_string())
        .collect()
}

/// A port nobody listens on now on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// The operator binary, run out of the cluster with exactly the arguments the
/// chart gives its container, under the chart's ServiceAccount identity (a
/// kubeconfig that impersonates it), and POD_NAME/POD_NAMESPACE as the
/// downward API would set them. Stopped with SIGTERM on [`OperatorProcess::stop`] or drop.
pub struct OperatorProcess {
    child: Option<std::process::Child>,
    pub http: std::net::SocketAddr,
    pub pod_name: String,
    dir: PathBuf,
}

impl OperatorProcess {
    /// `args`: the chart's container args. Listen addresses are moved to free
    /// loopback ports; `namespaces`, when given, replaces `--namespace` (the
    /// local plane is shared: a cluster-wide operator would reconcile other
    /// tests' apps).
    pub async fn start(release: &Release, args: &[String], namespaces: Option<&[&str]>) -> Self {
        let dir = std::env::temp_dir().join(format!("stateless-operator-{}", support::suffix()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let kubeconfig_path = support::kubeconfig_path();
        let mut kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig_path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", kubeconfig_path.display()));
        for named in &mut kubeconfig.auth_infos {
            if let Some(auth) = named.auth_info.as_mut() {
                auth.impersonate = Some(release.service_account_user());
            }
        }
        let impersonating = dir.join("kubeconfig");
        // JSON is YAML: the binary reads it like any kubeconfig.
        std::fs::write(
            &impersonating,
            serde_json::to_vec(&kubeconfig).expect("kubeconfig serializes"),
        )
        .expect("writing the impersonating kubeconfig");

        let http: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let webhook: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut run_args: Vec<String> = args
            .iter()
            .filter(|a| !(namespaces.is_some() && a.starts_with("--namespace")))
            .map(|a| {
                if a.starts_with("--http-addr=") {
                    format!("--http-addr={http}")
                } else if a.starts_with("--webhook-addr=") && a != "--webhook-addr=off" {
                    format!("--webhook-addr={webhook}")
                } else {
                    a.clone()
                }
            })
            .collect();
        if let Some(namespaces) = namespaces {
            run_args.push(format!("--namespace={}", namespaces.join(",")));
        }
        let pod_name = format!("{}-{}", release.fullname(), support::suffix());
        let log = std::fs::File::create(dir.join("operator.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_stateless-operator"))
            .args(&run_args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", &impersonating)
            .env("POD_NAME", &pod_name)
            .env("POD_NAMESPACE", &release.namespace)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting the operator binary: {e}"));
        let mut process = Self {
            child: Some(child),
            http,
            pod_name,
            dir,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = process
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "the operator exited during start-up ({status}) with {run_args:?}:\n{}",
                    process.logs()
                );
            }
            if process.get("/readyz").await.0 == 200 {
                return process;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("the operator was not ready within 60s:\n{}", process.logs());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Everything the operator logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.join("operator.log")).unwrap_or_default()
    }

    /// Log lines about a refused request (HTTP 403: kube's errors say
    /// `code: 403` and the API server's message says "forbidden").
    pub fn denied_requests(&self) -> Vec<String> {
        self.logs()
            .lines()
            .filter(|l| l.contains("code: 403") || l.to_lowercase().contains("forbidden"))
            .map(str::to_string)
            .collect()
    }

    /// GET `path` from the operator's HTTP endpoint: (status, body); (0, "") if unreachable.
    pub async fn get(&self, path: &str) -> (u16, String) {
        support::http_get(self.http, path).await
    }

    /// SIGTERM, as the kubelet sends; the operator must exit cleanly within 30s.
    pub async fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        terminate(&child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for the operator") {
                break status;
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the operator did not stop within 30s of SIGTERM:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            status.success(),
            "the operator exited with {status} on SIGTERM:\n{}",
            self.logs()
        );
    }
}

/// Send SIGTERM to exactly this child, by its id.
fn terminate(child: &std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&child);
            for _ in 0..100 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::env::var_os("KEEP_TEST_NAMESPACES").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `examples/<file>` as JSON objects, exactly as a user applies them.
pub fn example(file: &str) -> Vec<serde_json::Value> {
    support::load_yaml(&format!("examples/{file}"))
}

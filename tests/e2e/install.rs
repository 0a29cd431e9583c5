//! Installing the chart the way users do, for `tests/chart.rs` and
//! `tests/e2e.rs` (included by both with `#[path]`; it uses their `support`).
//!
//! - `helm`: the binary cached by `hack/tools.sh`, else the one on PATH.
//! - [`Release`]: a Helm release of `charts/stateless-operator`, uninstalled on drop.
//! - [`impersonating`]: a client acting as the chart's ServiceAccount, so the
//!   in-process operator runs with exactly the chart's RBAC.
//! - [`InProcessOperator`]: `stateless_operator::controller::run` under such a client.
//! - [`denied_requests`]: every 403 the in-process operator logged.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
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

/// Path of a tool (`helm`, `kubectl`): `hack/tools.sh path` first, then PATH.
pub fn tool(name: &str) -> PathBuf {
    let cached = Command::new(repo_root().join("hack/tools.sh"))
        .arg("path")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let path_var = std::env::var("PATH").unwrap_or_default();
    cached
        .split(':')
        .chain(path_var.split(':'))
        .filter(|dir| !dir.is_empty())
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found: run ./hack/tools.sh (it caches kubectl and helm for the tests) \
                 or put {name} on PATH"
            )
        })
}

fn helm_binary() -> &'static PathBuf {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| tool("helm"))
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
        let out = helm(&install_args("install", name, namespace, set));
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
        helm_ok(&install_args("upgrade", &self.name, &self.namespace, set))
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

fn install_args<'a>(
    verb: &'a str,
    name: &'a str,
    namespace: &'a str,
    set: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        verb,
        name,
        CHART,
        "-n",
        namespace,
        "--wait",
        "--timeout",
        "120s",
    ];
    for value in set {
        args.extend(["--set", value]);
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

/// Everything the operator's code logs (debug and up), kept for the tests.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        // The controller logs failed reconciles (warn) and failed watches
        // (debug, "controller event") here, with the API server's message.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "stateless_operator=debug,kube_runtime=warn",
            ))
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = self.0.lock() {
            logs.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Log lines of the in-process operator that report a refused request
/// (HTTP 403) mentioning `needle` (a namespace or the ServiceAccount).
pub fn denied_requests(needle: &str) -> Vec<String> {
    let logs = captured().lock().map(|l| l.clone()).unwrap_or_default();
    String::from_utf8_lossy(&logs)
        .lines()
        .filter(|l| l.contains(needle))
        .filter(|l| l.contains("403") || l.to_lowercase().contains("forbidden"))
        .map(str::to_string)
        .collect()
}

/// The StatelessApp controller running in this process with `client`'s
/// identity, watching `namespaces`; [`InProcessOperator::stop`] waits for it.
pub struct InProcessOperator {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub metrics: Arc<stateless_operator::metrics::Metrics>,
}

impl InProcessOperator {
    pub fn start(client: &Client, namespaces: &[&str]) -> Self {
        captured();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let metrics = Arc::new(stateless_operator::metrics::Metrics::new());
        let settings = stateless_operator::controller::Settings {
            concurrency: 4,
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            resync: Duration::from_secs(30),
        };
        let task = tokio::spawn(stateless_operator::controller::run(
            client.clone(),
            settings,
            metrics.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        Self {
            stop: Some(tx),
            task: Some(task),
            metrics,
        }
    }

    /// Stop and wait until in-flight reconciliations finished.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("the in-process operator stops within 30s")
                .expect("the in-process operator task did not panic");
        }
    }
}

impl Drop for InProcessOperator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A condition of a StatelessApp as (status, reason, message).
pub fn condition(
    app: &stateless_operator::crd::StatelessApp,
    type_: &str,
) -> Option<(String, String, String)> {
    app.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Wait until the app reports Ready=True for its current generation; on
/// timeout, panic with its conditions (they say what went wrong, a 403 included).
pub async fn wait_ready(
    apps: &Api<stateless_operator::crd::StatelessApp>,
    name: &str,
    timeout: Duration,
) -> stateless_operator::crd::StatelessApp {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let app = apps.get_opt(name).await.ok().flatten();
        if let Some(app) = &app {
            let current =
                app.status.as_ref().and_then(|s| s.observed_generation) == app.metadata.generation;
            if current && condition(app, "Ready").is_some_and(|(s, _, _)| s == "True") {
                return app.clone();
            }
        }
        if tokio::time::Instant::now() >= deadline {
            let conditions = app
                .and_then(|a| a.status)
                .map(|s| {
                    s.conditions
                        .iter()
                        .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
                        .collect::<Vec<_>>()
                        .join("\n  ")
                })
                .unwrap_or_else(|| "no status".into());
            panic!(
                "timed out after {timeout:?} waiting for StatelessApp {name} Ready=True at its generation; conditions:\n  {conditions}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `examples/<file>` as JSON objects, ready for `support::apply_objects`.
///
/// On a real kubelet (kind) podinfo's image runs as a named user that
/// runAsNonRoot cannot verify, so the basic example gets the numeric UID its
/// own comment recommends; full.yaml already has it.
pub fn example(file: &str) -> Vec<serde_json::Value> {
    let mut objects = support::load_yaml(&format!("examples/{file}"));
    for obj in &mut objects {
        if obj["kind"] == "StatelessApp" && obj["spec"]["runAsUser"].is_null() {
            obj["spec"]["runAsUser"] = serde_json::json!(10001);
        }
    }
    objects
}

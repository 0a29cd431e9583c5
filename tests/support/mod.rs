//! Shared support for integration tests that talk to a real API server.
//!
//! The plane comes from `hack/cluster.sh up` (the README's test command starts
//! it). Tests find it through `KUBECONFIG`, or else the path that
//! `hack/cluster.sh kubeconfig` prints. When no plane answers, tests fail loudly
//! with instructions: an integration test must never pass without a server.
#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

pub mod operator;
pub mod real_node;

const HOW_TO_START: &str = "no Kubernetes control plane is reachable. Start one with \
`./hack/cluster.sh up` and export KUBECONFIG=\"$(./hack/cluster.sh kubeconfig)\", \
or run the whole suite with `./hack/test.sh`";

/// The kubeconfig the tests use: `KUBECONFIG`, else the local plane's default path.
pub fn kubeconfig_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBECONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    run_dir().join("kubeconfig")
}

/// The local plane's run dir (`hack/cluster.sh`): `STATELESS_RUN_DIR`, else
/// `run` in the cache dir (`STATELESS_CACHE_DIR`, `$XDG_CACHE_HOME` or
/// `~/.cache`, then `stateless-operator`).
pub fn run_dir() -> PathBuf {
    let cache = std::env::var_os("STATELESS_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|p| PathBuf::from(p).join("stateless-operator"))
        })
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/stateless-operator")
        });
    std::env::var_os("STATELESS_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("run"))
}

/// GET `path` from an HTTP endpoint (the operator's metrics and health
/// port): (status, body); (0, "") when unreachable.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await
    else {
        return (0, String::new());
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The admin client config for the running plane; panics with instructions when there is none.
pub async fn config() -> Config {
    let path = kubeconfig_path();
    let kubeconfig = Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("{HOW_TO_START} (reading {}: {e})", path.display()));
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{HOW_TO_START} (loading {}: {e})", path.display()))
}

/// An admin client for the running plane, checked to answer.
pub async fn client() -> Client {
    let client =
        Client::try_from(config().await).unwrap_or_else(|e| panic!("{HOW_TO_START} ({e})"));
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(_)) => client,
        Ok(Err(e)) => panic!("{HOW_TO_START} (GET /version failed: {e})"),
        Err(_) => panic!("{HOW_TO_START} (GET /version timed out)"),
    }
}

/// Path of a tool (`helm`, `kubectl`): `hack/tools.sh path` first, then PATH.
pub fn tool(name: &str) -> PathBuf {
    let cached =
        std::process::Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hack/tools.sh"))
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

/// A short random suffix so that tests and reruns never share names.
pub fn suffix() -> String {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("OS random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A namespace of the test's own, deleted (in the background) when dropped.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    pub async fn new(client: &Client, prefix: &str) -> Self {
        Self::with_labels(client, prefix, Default::default()).await
    }

    pub async fn with_labels(
        client: &Client,
        prefix: &str,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Self {
        Self::with_metadata(client, prefix, labels, Default::default()).await
    }

    pub async fn with_metadata(
        client: &Client,
        prefix: &str,
        labels: std::collections::BTreeMap<String, String>,
        annotations: std::collections::BTreeMap<String, String>,
    ) -> Self {
        let name = format!("{prefix}-{}", suffix());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(labels),
                annotations: Some(annotations),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        // Pods cannot be created until the controller-manager made the
        // default ServiceAccount: seconds usually, longer while its watches
        // back off after an API server restart (up to 30 s) on a busy plane.
        let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(client.clone(), &name);
        wait_until(
            Duration::from_secs(90),
            &format!("default ServiceAccount in {name}"),
            || async { sa.get_opt("default").await.ok().flatten().is_some() },
        )
        .await;
        Self {
            name,
            client: client.clone(),
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Delete the namespace and wait until it is gone: a test that filled
    /// it with hundreds of objects pays for their deletion itself, instead
    /// of leaving the controller-manager busy for the tests after it.
    pub async fn delete_and_wait(&self, timeout: Duration) {
        if std::env::var_os("KEEP_TEST_NAMESPACES").is_some() {
            return;
        }
        let namespaces = Api::<Namespace>::all(self.client.clone());
        let _ = namespaces
            .delete(&self.name, &DeleteParams::background())
            .await;
        wait_until(
            timeout,
            &format!("namespace {} deleted", self.name),
            || async { matches!(namespaces.get_opt(&self.name).await, Ok(None)) },
        )
        .await;
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_NAMESPACES").is_some() {
            return;
        }
        let name = self.name.clone();
        cleanup_in_drop(move |client| async move {
            let _ = Api::<Namespace>::all(client)
                .delete(&name, &DeleteParams::background())
                .await;
        });
    }
}

/// Run best-effort async clean-up from a `Drop`. Drop cannot await, and the
/// test's client cannot be used there: its connection worker runs on the test
/// runtime, which is blocked in that very drop. So the clean-up runs on a
/// thread with its own runtime and its own client, and the drop waits for it.
pub fn cleanup_in_drop<F, Fut>(cleanup: F)
where
    F: FnOnce(Client) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async {
                if let Ok(client) = Client::try_from(config().await) {
                    cleanup(client).await;
                }
            });
        }
    })
    .join();
}

/// Poll `check` every 200 ms until it returns true; panic with `what` after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Install (server-side apply) the StatelessApp CRD from the code and wait until it is Established.
pub async fn ensure_crd(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = stateless_operator::crd::definition();
    crds.patch(
        stateless_operator::crd::CRD_NAME,
        &PatchParams::apply("stateless-operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap_or_else(|e| panic!("applying the StatelessApp CRD: {e}"));
    wait_crd_established(client, stateless_operator::crd::CRD_NAME).await;
}

/// Wait until the CustomResourceDefinition `name` is Established (its API is served).
pub async fn wait_crd_established(client: &Client, name: &str) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    wait_until(
        Duration::from_secs(30),
        &format!("CRD {name} Established"),
        || async {
            crds.get(name)
                .await
                .ok()
                .and_then(|c| c.status)
                .and_then(|s| s.conditions)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
        },
    )
    .await;
}

/// A controller running in this process, watching one namespace; stopped on drop.
pub struct Operator {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub metrics: std::sync::Arc<stateless_operator::metrics::Metrics>,
}

impl Operator {
    /// Start the controller for `namespace` with a short resync, so that
    /// periodic reconciles happen (and must stay write-free) within a test.
    pub fn start(client: &Client, namespace: &str) -> Self {
        Self::start_with_resync(client, namespace, Duration::from_secs(10))
    }

    /// Start with a given resync period; a long one shows that a watch, not
    /// the periodic re-check, triggered a reconcile.
    pub fn start_with_resync(client: &Client, namespace: &str, resync: Duration) -> Self {
        Self::start_with_settings(client, Self::settings(namespace, resync))
    }

    /// The settings `start_with_resync` uses, for a test to adjust.
    pub fn settings(namespace: &str, resync: Duration) -> stateless_operator::controller::Settings {
        stateless_operator::controller::Settings {
            concurrency: 2,
            namespaces: vec![namespace.to_string()],
            resync,
            ..Default::default()
        }
    }

    pub fn start_with_settings(
        client: &Client,
        settings: stateless_operator::controller::Settings,
    ) -> Self {
        let metrics = std::sync::Arc::new(stateless_operator::metrics::Metrics::new());
        Self::start_with_client(client, metrics, settings)
    }

    /// Start with a client of the test's choosing (the operator's own, which
    /// counts requests into `metrics`, see `stateless_operator::client`).
    pub fn start_with_client(
        client: &Client,
        metrics: std::sync::Arc<stateless_operator::metrics::Metrics>,
        settings: stateless_operator::controller::Settings,
    ) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(stateless_operator::controller::run(
            client.clone(),
            settings,
            metrics.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        Self {
            stop: Some(tx),
            metrics,
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Parse a multi-document YAML file of the repo into JSON objects.
pub fn load_yaml(path: &str) -> Vec<serde_json::Value> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("reading {}: {e}", full.display()));
    serde_saphyr::from_multiple::<serde_json::Value>(&text)
        .unwrap_or_else(|e| panic!("parsing {}: {e}", full.display()))
        .into_iter()
        .filter(|v| v.is_object())
        .collect()
}

/// Server-side apply arbitrary objects (by their apiVersion/kind) into `namespace`.
pub async fn apply_objects(client: &Client, namespace: &str, objects: &[serde_json::Value]) {
    use kube::api::{DynamicObject, Patch, PatchParams};
    use kube::discovery::{ApiResource, Discovery};
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .unwrap_or_else(|e| panic!("API discovery: {e}"));
    for obj in objects {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let (resource, _caps): (ApiResource, _) = discovery
            .resolve_gvk(&gvk)
            .unwrap_or_else(|| panic!("{api_version} {kind} is not served by the API server"));
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        api.patch(
            name,
            &PatchParams::apply("stateless-operator-tests").force(),
            &Patch::Apply(obj),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
    }
}

/// Audit log of the local plane (writes only, see hack/cluster.sh), next to its kubeconfig.
pub fn audit_log_path() -> PathBuf {
    kubeconfig_path().with_file_name("audit.log")
}

/// Write requests recorded in the audit log for `namespace` by user `admin`
/// (the identity the in-process operator and the tests use): `verb uri` strings.
pub fn audited_writes(namespace: &str) -> Vec<String> {
    audited_writes_by(namespace, "admin")
}

/// Write requests (`VERB requestURI`) in `namespace` made by the user `username`.
pub fn audited_writes_by(namespace: &str, username: &str) -> Vec<String> {
    let path = audit_log_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading the audit log {}: {e}; the idle-write check needs the local plane of hack/cluster.sh",
            path.display()
        )
    });
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| e["stage"] == "ResponseComplete")
        .filter(|e| e["user"]["username"] == username)
        .filter(|e| e["objectRef"]["namespace"] == namespace)
        .map(|e| {
            format!(
                "{} {}",
                e["verb"].as_str().unwrap_or("?"),
                e["requestURI"].as_str().unwrap_or("?")
            )
        })
        .collect()
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

/// A ValidatingWebhookConfiguration a test registered; deleted when dropped.
pub struct WebhookConfiguration {
    pub name: String,
}

impl WebhookConfiguration {
    /// Register `configuration` (a whole object; its `metadata.name` is the name).
    pub async fn create(client: &Client, configuration: serde_json::Value) -> Self {
        let name = configuration["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let configuration: ValidatingWebhookConfiguration = serde_json::from_value(configuration)
            .unwrap_or_else(|e| panic!("ValidatingWebhookConfiguration {name}: {e}"));
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .create(&PostParams::default(), &configuration)
            .await
            .unwrap_or_else(|e| panic!("creating {name}: {e}"));
        Self { name }
    }

    pub async fn get(&self, client: &Client) -> ValidatingWebhookConfiguration {
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .get(&self.name)
            .await
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.name))
    }

    /// The `caBundle` of each of its webhooks.
    pub async fn ca_bundles(&self, client: &Client) -> Vec<Option<Vec<u8>>> {
        self.get(client)
            .await
            .webhooks
            .unwrap_or_default()
            .into_iter()
            .map(|w| w.client_config.ca_bundle.map(|b| b.0))
            .collect()
    }
}

impl Drop for WebhookConfiguration {
    fn drop(&mut self) {
        let name = self.name.clone();
        cleanup_in_drop(move |client| async move {
            let _ = Api::<ValidatingWebhookConfiguration>::all(client)
                .delete(&name, &DeleteParams::default())
                .await;
        });
    }
}

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

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

const HOW_TO_START: &str = "no Kubernetes control plane is reachable. Start one with \
`./hack/cluster.sh up` and export KUBECONFIG=\"$(./hack/cluster.sh kubeconfig)\", \
or run the whole suite with `./hack/test.sh`";

/// The kubeconfig the tests use: `KUBECONFIG`, else the local plane's default path.
pub fn kubeconfig_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBECONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("STATELESS_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|p| PathBuf::from(p).join("stateless-operator")))
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/stateless-operator")
        });
    std::env::var_os("STATELESS_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("run"))
        .join("kubeconfig")
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
    let client = Client::try_from(config().await).unwrap_or_else(|e| panic!("{HOW_TO_START} ({e})"));
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(_)) => client,
        Ok(Err(e)) => panic!("{HOW_TO_START} (GET /version failed: {e})"),
        Err(_) => panic!("{HOW_TO_START} (GET /version timed out)"),
    }
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
        let name = format!("{prefix}-{}", suffix());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(labels),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        // Pods cannot be created until the controller-manager made the default ServiceAccount.
        let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), &name);
        wait_until(Duration::from_secs(30), &format!("default ServiceAccount in {name}"), || async {
            sa.get_opt("default").await.ok().flatten().is_some()
        })
        .await;
        Self { name, client: client.clone() }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_NAMESPACES").is_some() {
            return;
        }
        let name = self.name.clone();
        // Drop cannot await, and the test's client cannot be used from here:
        // its connection worker runs on the test runtime, which is blocked in
        // this very drop. So delete from a thread with its own runtime and its
        // own client. Best effort: the plane is torn down after the suite anyway.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(async {
                    let Ok(client) = Client::try_from(config().await) else { return };
                    let _ = Api::<Namespace>::all(client).delete(&name, &DeleteParams::background()).await;
                });
            }
        })
        .join();
    }
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

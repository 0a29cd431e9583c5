//! What the webhook reads from the cluster: the enforcement label of the
//! request's namespace, and the claims and ConfigMaps the reviewed object
//! references by name (so the rules see their access modes and contents).
//!
//! [`ApiCluster`] keeps the labels of all namespaces in a metadata-only
//! reflector (list/watch `namespaces`) and falls back to a GET for a namespace
//! the watch has not delivered yet; referenced objects are fetched with GETs
//! in parallel under a deadline. [`StaticCluster`] is the in-memory stand-in
//! for tests and benchmarks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::Value;

use crate::identity::OperatorUser;
use crate::metrics::WatchMetrics;
use crate::watch::{WatchInfo, observed};

/// Most claims and ConfigMaps looked up for one object (each kind).
pub const MAX_REFERENCES: usize = 16;
/// Budget for the GETs of one review (the webhook's timeout is at most 5 s).
pub const LOOKUP_DEADLINE: Duration = Duration::from_millis(1500);

/// A failed read of the namespace (the review is answered with an error, so
/// the configuration's `failurePolicy` decides).
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("reading namespace {namespace}: {source}")]
    Namespace {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading namespace {namespace}: no answer within {timeout:?}")]
    Timeout {
        namespace: String,
        timeout: Duration,
    },
}

/// Names an object references in its spec, same namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    pub claims: BTreeSet<String>,
    pub config_maps: BTreeSet<String>,
}

impl References {
    /// Collect `persistentVolumeClaim.claimName` and the `name` of
    /// `configMap`, `configMapRef` and `configMapKeyRef` anywhere under
    /// `spec`: pod templates and the StatelessApp spec use the same shapes.
    pub fn of(object: &Value) -> Self {
        let mut refs = References::default();
        if let Some(spec) = object.get("spec") {
            collect(spec, &mut refs, 0);
        }
        refs
    }

    pub fn is_empty(&self) -> bool {
        self.claims.is_empty() && self.config_maps.is_empty()
    }
}

fn collect(v: &Value, refs: &mut References, depth: usize) {
    // Pod specs nest a handful of levels; a bound keeps hostile input cheap.
    if depth > 24 {
        return;
    }
    match v {
        Value::Object(map) => {
            for (key, child) in map {
                let name = |field: &str| {
                    child
                        .get(field)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                match key.as_str() {
                    "persistentVolumeClaim" if refs.claims.len() < MAX_REFERENCES => {
                        if let Some(n) = name("claimName") {
                            refs.claims.insert(n);
                        }
                    }
                    "configMap" | "configMapRef" | "configMapKeyRef"
                        if refs.config_maps.len() < MAX_REFERENCES =>
                    {
                        if let Some(n) = name("name") {
                            refs.config_maps.insert(n);
                        }
                    }
                    _ => {}
                }
                collect(child, refs, depth + 1);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect(item, refs, depth + 1);
            }
        }
        _ => {}
    }
}

/// Referenced objects found, as JSON, and claims that could not be read
/// (missing, forbidden or slow): their access mode is unknown.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub objects: Vec<Value>,
    pub unknown_claims: BTreeSet<String>,
}

/// The webhook's view of the cluster.
pub trait Cluster: Send + Sync {
    /// Labels of `namespace`; `Ok(None)` when it does not exist.
    fn namespace_labels<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, String>>, LookupError>>;

    /// The referenced claims and ConfigMaps of `namespace`. Never fails:
    /// what cannot be read is left out (claims are reported as unknown).
    fn fetch<'a>(&'a self, namespace: &'a str, refs: &'a References) -> BoxFuture<'a, Fetched>;

    /// The operator's own API username, once known.
    fn operator_user(&self) -> Option<&str>;
}

/// Fixed namespaces and objects, for tests and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct StaticCluster {
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Claims and ConfigMaps as JSON (with `kind` and `metadata.namespace`).
    pub objects: Vec<Value>,
    /// The operator's username (`None`: not known).
    pub operator_user: Option<String>,
}

impl StaticCluster {
    /// Add a namespace with `stateless.dev/enforce=<mode>` (`None`: no label).
    pub fn with_namespace(mut self, name: &str, mode: Option<&str>) -> Self {
        let labels = mode
            .map(|m| BTreeMap::from([(super::ENFORCE_LABEL.to_string(), m.to_string())]))
            .unwrap_or_default();
        self.namespaces.insert(name.to_string(), labels);
        self
    }

    pub fn with_operator_user(mut self, user: &str) -> Self {
        self.operator_user = Some(user.to_string());
        self
    }

    pub fn with_object(mut self, object: Value) -> Self {
        self.objects.push(object);
        self
    }
}

impl Cluster for StaticCluster {
    fn namespace_labels<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, String>>, LookupError>> {
        futures::future::ready(Ok(self.namespaces.get(namespace).cloned())).boxed()
    }

    fn fetch<'a>(&'a self, namespace: &'a str, refs: &'a References) -> BoxFuture<'a, Fetched> {
        let find = |kind: &str, name: &str| {
            self.objects.iter().find(|o| {
                o["kind"] == kind
                    && o["metadata"]["namespace"] == namespace
                    && o["metadata"]["name"] == name
            })
        };
        let mut out = Fetched::default();
        for claim in &refs.claims {
            match find("PersistentVolumeClaim", claim) {
                Some(o) => out.objects.push(o.clone()),
                None => {
                    out.unknown_claims.insert(claim.clone());
                }
            }
        }
        for cm in &refs.config_maps {
            if let Some(o) = find("ConfigMap", cm) {
                out.objects.push(o.clone());
            }
        }
        futures::future::ready(out).boxed()
    }

    fn operator_user(&self) -> Option<&str> {
        self.operator_user.as_deref()
    }
}

/// The real cluster, through the operator's client.
#[derive(Clone)]
pub struct ApiCluster {
    client: Client,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    operator_user: OperatorUser,
}

impl ApiCluster {
    /// Start the namespace reflector (a task that runs until `shutdown`).
    /// Its errors are logged and counted by [`crate::watch::observed`].
    pub fn start(
        client: Client,
        watches: &WatchMetrics,
        operator_user: OperatorUser,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Arc<Self> {
        let (store, writer) = reflector::store();
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
        let stream = reflector::reflector(
            writer,
            observed(
                watcher(api, watcher::Config::default()),
                WatchInfo::new("webhook", "Namespace", watches),
            ),
        );
        tokio::spawn(async move {
            let drive = stream.for_each(|_| futures::future::ready(()));
            tokio::select! {
                _ = drive => {}
                _ = shutdown => {}
            }
        });
        Arc::new(Self {
            client,
            namespaces: store,
            operator_user,
        })
    }
}

impl ApiCluster {
    /// Resolves once the namespaces were listed (the labels are known).
    pub async fn listed(&self) {
        let _ = self.namespaces.wait_until_ready().await;
    }
}

impl Cluster for ApiCluster {
    fn namespace_labels<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, String>>, LookupError>> {
        async move {
            if let Some(ns) = self.namespaces.get(&ObjectRef::new(namespace)) {
                return Ok(Some(ns.metadata.labels.clone().unwrap_or_default()));
            }
            // Not delivered by the watch yet (just created, or the watch is
            // still listing): ask the API server.
            let api: Api<Namespace> = Api::all(self.client.clone());
            match tokio::time::timeout(LOOKUP_DEADLINE, api.get_metadata_opt(namespace)).await {
                Ok(Ok(found)) => Ok(found.map(|ns| ns.metadata.labels.unwrap_or_default())),
                Ok(Err(source)) => Err(LookupError::Namespace {
                    namespace: namespace.to_string(),
                    source,
                }),
                Err(_) => Err(LookupError::Timeout {
                    namespace: namespace.to_string(),
                    timeout: LOOKUP_DEADLINE,
                }),
            }
        }
        .boxed()
    }

    fn fetch<'a>(&'a self, namespace: &'a str, refs: &'a References) -> BoxFuture<'a, Fetched> {
        async move {
            let claims: Api<PersistentVolumeClaim> =
                Api::namespaced(self.client.clone(), namespace);
            let config_maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
            let claim_gets = futures::future::join_all(refs.claims.iter().map(|name| {
                let claims = claims.clone();
                async move {
                    let got = tokio::time::timeout(LOOKUP_DEADLINE, claims.get_opt(name)).await;
                    (name, got)
                }
            }));
            let cm_gets = futures::future::join_all(refs.config_maps.iter().map(|name| {
                let config_maps = config_maps.clone();
                async move {
                    let got =
                        tokio::time::timeout(LOOKUP_DEADLINE, config_maps.get_opt(name)).await;
                    (name, got)
                }
            }));
            let (claim_results, cm_results) = futures::join!(claim_gets, cm_gets);
            let mut out = Fetched::default();
            for (name, got) in claim_results {
                match got {
                    Ok(Ok(Some(pvc))) => match to_json(&pvc, "v1", "PersistentVolumeClaim") {
                        Some(v) => out.objects.push(v),
                        None => {
                            out.unknown_claims.insert(name.clone());
                        }
                    },
                    Ok(Ok(None)) => {
                        out.unknown_claims.insert(name.clone());
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(namespace, claim = %name, "webhook claim lookup: {e}");
                        out.unknown_claims.insert(name.clone());
                    }
                    Err(_) => {
                        tracing::debug!(namespace, claim = %name, "webhook claim lookup timed out");
                        out.unknown_claims.insert(name.clone());
                    }
                }
            }
            for (name, got) in cm_results {
                match got {
                    Ok(Ok(Some(cm))) => out.objects.extend(to_json(&cm, "v1", "ConfigMap")),
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(namespace, config_map = %name, "webhook ConfigMap lookup: {e}")
                    }
                    Err(_) => {
                        tracing::debug!(namespace, config_map = %name, "webhook ConfigMap lookup timed out")
                    }
                }
            }
            out
        }
        .boxed()
    }

    fn operator_user(&self) -> Option<&str> {
        self.operator_user.get()
    }
}

/// Typed objects from GET lack apiVersion/kind once deserialized; put them back.
fn to_json<K: serde::Serialize>(object: &K, api_version: &str, kind: &str) -> Option<Value> {
    let mut v = serde_json::to_value(object).ok()?;
    let map = v.as_object_mut()?;
    map.insert("apiVersion".into(), Value::String(api_version.into()));
    map.insert("kind".into(), Value::String(kind.into()));
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_collected_from_pod_templates_and_app_specs() {
        let deploy = json!({"spec": {"template": {"spec": {
            "volumes": [
                {"name": "a", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "b", "configMap": {"name": "php-ini"}},
                {"name": "c", "projected": {"sources": [{"configMap": {"name": "extra"}}]}}
            ],
            "containers": [{
                "envFrom": [{"configMapRef": {"name": "env"}}],
                "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "keys", "key": "x"}}}]
            }]
        }}}});
        let refs = References::of(&deploy);
        assert_eq!(refs.claims, BTreeSet::from(["data".to_string()]));
        assert_eq!(
            refs.config_maps,
            ["env", "extra", "keys", "php-ini"]
                .map(String::from)
                .into_iter()
                .collect()
        );
        assert!(References::of(&json!({"metadata": {"name": "x"}})).is_empty());
    }

    #[test]
    fn references_are_bounded() {
        let volumes: Vec<Value> = (0..100)
            .map(|i| json!({"persistentVolumeClaim": {"claimName": format!("c{i}")}}))
            .collect();
        let refs = References::of(&json!({"spec": {"volumes": volumes}}));
        assert_eq!(refs.claims.len(), MAX_REFERENCES);
    }
}

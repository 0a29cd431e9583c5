//! The StatelessApp controller.
//!
//! Reconcile runs as steps (see [`reconcile`]): observe → validate → build
//! (pure, [`crate::build`]) → apply ([`apply`], zero writes when unchanged) →
//! status ([`status`], pure condition logic). This module wires the watches
//! (each with a backoff of its own, see [`crate::watch`]), the shared
//! [`Context`], the error enum and the per-object backoff.

pub mod apply;
pub mod cache;
pub mod compliance;
pub mod config_hash;
pub mod events;
pub mod leader;
mod object_storage;
pub mod observe;
mod reconcile;
pub mod recorder;
mod schedules;
mod session_store;
mod signing_keys;
pub mod status;
mod workers;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::DynamicObject;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::build::{BuildError, labels};
use crate::crd::{ConfigKind, DEFAULT_REDIS_IMAGE, StatelessApp};
use crate::metrics::{Metrics, WatchMetrics};
use crate::watch::{WatchBackoff, WatchInfo, observed};
use cache::{Cache, feed};
use config_hash::{HashKey, KeySecret};
use leader::Leadership;
use observe::Caches;

/// Everything that can make one reconciliation fail. `reason()` is the
/// CamelCase word used in the Ready condition, Events and metrics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build the children: {0}")]
    Build(#[from] BuildError),

    #[error("{verb} {kind} {namespace}/{name}: {source}")]
    Kube {
        verb: &'static str,
        kind: String,
        namespace: String,
        name: String,
        // Boxed: kube::Error is large and would bloat every Result here.
        #[source]
        source: Box<kube::Error>,
    },

    #[error("serializing {kind}: {source}")]
    Serialize {
        kind: String,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "the session store Secret {namespace}/{name} named in spec.sessionStore.external.secretRef does not exist; create it with the Redis URL under key {key:?}"
    )]
    ExternalSecretNotFound {
        namespace: String,
        name: String,
        key: String,
    },

    #[error(
        "the session store Secret {namespace}/{name} has no key {key:?} (spec.sessionStore.external.secretRef.key); add the Redis URL under that key"
    )]
    ExternalSecretKeyMissing {
        namespace: String,
        name: String,
        key: String,
    },

    #[error(
        "the object storage Secret {namespace}/{name} named in spec.objectStorage.credentials.secretName does not exist; create it with the access key id under key {access_key_id_key:?} and the secret access key under key {secret_access_key_key:?}"
    )]
    ObjectStorageSecretNotFound {
        namespace: String,
        name: String,
        access_key_id_key: String,
        secret_access_key_key: String,
    },

    #[error(
        "the object storage Secret {namespace}/{name} has no key {key:?} ({field}); add it, or set {field} to the key that holds it"
    )]
    ObjectStorageSecretKeyMissing {
        namespace: String,
        name: String,
        key: String,
        field: &'static str,
    },

    #[error(
        "Secret {namespace}/{name} already exists and is not controlled by this StatelessApp; the operator will not take it over. Rename or delete it, or use sessionStore.type: external"
    )]
    SecretConflict { namespace: String, name: String },

    #[error(
        "{kind} {namespace}/{name} already exists and is not controlled by this StatelessApp; the operator will not take it over. Rename the app or remove that object"
    )]
    ChildConflict {
        kind: String,
        namespace: String,
        name: String,
    },

    #[error(
        "the managed session store Secret {namespace}/{name} lacks key {key:?}; delete the Secret so the operator creates a new one (the session store restarts empty)"
    )]
    ManagedSecretIncomplete {
        namespace: String,
        name: String,
        key: String,
    },

    #[error(
        "the managed session store Secret {namespace}/{name} has an empty or non-UTF-8 password; write a new one into it (kubectl -n {namespace} patch secret {name} --type merge -p '{{\"stringData\":{{\"password\":\"<new password>\"}}}}')"
    )]
    ManagedPasswordUnusable { namespace: String, name: String },

    #[error("not writing ({verb} {kind} {namespace}/{name}): this replica is no longer the leader")]
    NotLeader {
        verb: &'static str,
        kind: String,
        namespace: String,
        name: String,
    },

    #[error("StatelessApp {namespace}/{name}: {source}")]
    InvalidIdentity {
        namespace: String,
        name: String,
        #[source]
        source: crate::signing_keys::SigningKeyError,
    },

    #[error(
        "Secret {namespace}/{name} already exists and is not controlled by this StatelessApp; the operator keeps the app's JWT signing keys (identity.jwt) under that name and will not take it over. Rename or delete it"
    )]
    SigningKeysConflict { namespace: String, name: String },

    #[error(
        "the JWT signing key Secret {namespace}/{name} cannot be used ({source}); delete it and the operator makes a new key set (tokens signed with the old keys then stop verifying)"
    )]
    SigningKeysUnusable {
        namespace: String,
        name: String,
        #[source]
        source: crate::signing_keys::SigningKeyError,
    },

    #[error(
        "the JWT signing key Secret {namespace}/{name} changed while the operator replaced it; it decides again at the next reconcile"
    )]
    SigningKeysChanged { namespace: String, name: String },

    #[error("the config-hash key Secret {namespace}/{name} is unusable: {why}")]
    HashKeyUnusable {
        namespace: String,
        name: String,
        why: String,
    },
}

impl Error {
    /// `map_err` adapter for a failed API call on one object (`name` may be
    /// empty for a list).
    pub fn kube(
        verb: &'static str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> impl FnOnce(kube::Error) -> Error + use<> {
        let (kind, namespace, name) = (kind.to_string(), namespace.to_string(), name.to_string());
        move |source| Error::Kube {
            verb,
            kind,
            namespace,
            name,
            source: Box::new(source),
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Error::Build(_) => "InvalidSpec",
            Error::Kube { .. } => "ApiError",
            Error::Serialize { .. } => "InternalError",
            Error::ExternalSecretNotFound { .. } => "ExternalSecretNotFound",
            Error::ExternalSecretKeyMissing { .. } => "ExternalSecretKeyMissing",
            Error::ObjectStorageSecretNotFound { .. } => "ObjectStorageSecretNotFound",
            Error::ObjectStorageSecretKeyMissing { .. } => "ObjectStorageSecretKeyMissing",
            Error::SecretConflict { .. } => "SecretConflict",
            Error::ChildConflict { .. } => "ChildConflict",
            Error::ManagedSecretIncomplete { .. } => "ManagedSecretIncomplete",
            Error::HashKeyUnusable { .. } => "HashKeyUnusable",
            Error::NotLeader { .. } => "NotLeader",
            Error::ManagedPasswordUnusable { .. } => "ManagedPasswordUnusable",
            Error::InvalidIdentity { .. } => "InvalidSpec",
            Error::SigningKeysConflict { .. } => "SecretConflict",
            Error::SigningKeysUnusable { .. } => "SigningKeysUnusable",
            Error::SigningKeysChanged { .. } => "SigningKeysChanged",
        }
    }
}

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Most StatelessApps reconciled at the same time (per watched namespace).
    pub concurrency: u16,
    /// Watched namespaces; empty means all.
    pub namespaces: Vec<String>,
    /// Periodic re-check of a converged app (drift the watches cannot see).
    pub resync: Duration,
    /// Image of the managed Redis for apps that leave
    /// `sessionStore.managed.image` unset (`--session-store-image`); handed
    /// to the builders as [`crate::build::BuildInputs::session_store_image`].
    pub session_store_image: String,
    /// The Secret holding the key of the config hash (`--config-hash-key-secret`
    /// in `--operator-namespace`), created on first start.
    pub hash_key_secret: KeySecret,
    /// Whether this replica may write now (always, without leader election).
    pub leadership: Leadership,
    /// Quiet time after an app's last trigger before it is reconciled: a
    /// burst of events (a rollout's status updates, a child's create and its
    /// first status) becomes one reconcile.
    pub debounce: Duration,
    /// How long a Secret's new content may take to reach every pod's volume
    /// (the kubelet's sync period plus its cache TTL): a new JWT signing key
    /// is published this long before it signs, and a retired one stays this
    /// much longer than the token lifetime.
    pub key_propagation: jiff::SignedDuration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            concurrency: 16,
            namespaces: Vec::new(),
            resync: Duration::from_secs(300),
            session_store_image: DEFAULT_REDIS_IMAGE.to_string(),
            hash_key_secret: KeySecret::default(),
            leadership: Leadership::unelected(),
            debounce: DEFAULT_DEBOUNCE,
            key_propagation: DEFAULT_KEY_PROPAGATION,
        }
    }
}

/// Default of [`Settings::key_propagation`]: the kubelet's default sync
/// period (1 min) and as much again for its Secret cache and slow nodes.
pub const DEFAULT_KEY_PROPAGATION: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);

/// Default of [`Settings::debounce`].
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(500);

/// Shared state of every reconciliation.
pub struct Context {
    pub client: Client,
    pub recorder: recorder::EventRecorder,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Key of the config hash ([`config_hash`]).
    pub hash_key: HashKey,
    /// What the watches saw: every reconcile reads from here ([`observe`]).
    pub caches: Arc<Caches>,
    /// Each app's findings at its last reconcile (which are new).
    reported: events::Reported,
    /// Consecutive failures per app, for exponential backoff.
    failures: Mutex<HashMap<ObjectRef<StatelessApp>, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        settings: Settings,
        hash_key: HashKey,
    ) -> Self {
        let instance = std::env::var("POD_NAME").ok();
        Self {
            recorder: recorder::EventRecorder::new(client.clone(), "stateless-operator", instance),
            client,
            metrics,
            settings,
            hash_key,
            caches: Arc::new(Caches::new()),
            reported: events::Reported::default(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn reset_failures(&self, app: &StatelessApp) {
        self.forget_failures(&ObjectRef::from_obj(app));
    }

    fn forget_failures(&self, app: &ObjectRef<StatelessApp>) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(app);
        }
    }

    /// After a (re)list of the scope's apps: forget those no longer there
    /// (deleted while the watch was away, so no delete event came).
    fn forget_missing(&self, store: &Store<StatelessApp>, namespace: Option<&str>) {
        for app in self.reported.apps() {
            let in_scope = namespace.is_none_or(|ns| app.namespace.as_deref() == Some(ns));
            if in_scope && store.get(&app).is_none() {
                self.forget(&app);
            }
        }
    }

    /// 1s, 2s, 4s … capped at 5 minutes: a broken app is retried, never hot-looped.
    fn next_backoff(&self, app: &StatelessApp) -> Duration {
        let attempts = self
            .failures
            .lock()
            .map(|mut failures| {
                let n = failures.entry(ObjectRef::from_obj(app)).or_insert(0);
                *n = n.saturating_add(1);
                *n
            })
            .unwrap_or(1);
        backoff_for(attempts)
    }
}

fn backoff_for(attempts: u32) -> Duration {
    let secs = 1u64 << attempts.saturating_sub(1).min(9);
    Duration::from_secs(secs.min(300))
}

fn error_policy(app: Arc<StatelessApp>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.next_backoff(&app);
    tracing::warn!(
        app = %app.name_any(),
        namespace = app.namespace().unwrap_or_default(),
        reason = error.reason(),
        retry_in = ?delay,
        "reconcile failed: {error}"
    );
    Action::requeue(delay)
}

/// `component` label of the controller's watch metrics.
const COMPONENT: &str = "controller";

/// Said with the 404 of the StatelessApp list.
const CRD_MISSING: &str = ": the CustomResourceDefinition statelessapps.stateless.dev is not installed; \
install it with `stateless-operator crd | kubectl apply -f -` (or the Helm chart)";

/// Which watched namespaces have listed their StatelessApps at least once.
/// Readiness waits for all of them: before its first list a scope has no
/// cache, so it cannot reconcile anything.
struct Listed {
    scopes: Vec<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl Listed {
    fn mark(&self, scope: usize) {
        if let Some(flag) = self.scopes.get(scope) {
            flag.store(true, Ordering::Relaxed);
        }
        if self.scopes.iter().all(|f| f.load(Ordering::Relaxed)) {
            self.metrics.set_ready(true);
        }
    }

    fn is_listed(&self, scope: usize) -> bool {
        self.scopes
            .get(scope)
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }
}

/// Run the controller until `shutdown` resolves; in-flight reconciliations
/// finish first. One controller per watched namespace (or one for all).
/// Ready (`/readyz`) once every namespace has listed its StatelessApps.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    metrics.set_ready(false);
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let hash_key = tokio::select! {
        key = obtain_hash_key(&client, &settings.hash_key_secret) => key,
        () = shutdown.clone() => return,
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        metrics.clone(),
        settings.clone(),
        hash_key,
    ));
    let scopes: Vec<Option<String>> = if settings.namespaces.is_empty() {
        vec![None]
    } else {
        settings.namespaces.iter().cloned().map(Some).collect()
    };
    let listed = Arc::new(Listed {
        scopes: scopes.iter().map(|_| AtomicBool::new(false)).collect(),
        metrics: metrics.clone(),
    });
    let controllers = scopes.into_iter().enumerate().map(|(scope, namespace)| {
        run_scope(
            client.clone(),
            namespace,
            scope,
            ctx.clone(),
            listed.clone(),
            shutdown.clone(),
        )
    });
    futures::future::join_all(controllers).await;
    metrics.set_ready(false);
}

/// The config-hash key, retried until the API server gives it: nothing can
/// be reconciled without it (a hash with another key would roll every pod).
async fn obtain_hash_key(client: &Client, at: &KeySecret) -> HashKey {
    let mut warned = false;
    loop {
        match HashKey::ensure(client, at).await {
            Ok(key) => return key,
            Err(e) if !warned => {
                tracing::warn!("{e}; retrying before reconciling anything");
                warned = true;
            }
            Err(e) => tracing::debug!("{e}; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn api_in<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A watch of kind `K` in the scope, logged and counted, with its own backoff.
fn watch_of<K>(
    api: Api<K>,
    config: watcher::Config,
    metrics: &WatchMetrics,
) -> impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let info = WatchInfo::new(COMPONENT, &K::kind(&()), metrics);
    observed(watcher(api, config.any_semantic()), info)
}

/// Every object of the kind.
fn all() -> watcher::Config {
    watcher::Config::default()
}

/// Only our own children, not every Deployment of the cluster, in the caches.
fn ours() -> watcher::Config {
    watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGER))
}

/// The objects of kind `K` in the scope that `config` selects, fed into
/// `cache`; each change worth a reconcile is passed on. `K` may be a
/// `PartialObjectMeta`, for a metadata-only watch.
fn cached<K>(
    client: &Client,
    namespace: Option<&str>,
    metrics: &WatchMetrics,
    config: watcher::Config,
    cache: Arc<Cache<K>>,
) -> impl Stream<Item = watcher::Result<K>> + Send + 'static
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    feed(
        watch_of(api_in::<K>(client, namespace), config, metrics),
        cache,
        namespace.map(str::to_string),
    )
}

/// Apps a ConfigMap or Secret concerns: the one controlling it, and those
/// whose pods reference it.
fn apps_referring(
    caches: &Caches,
    kind: ConfigKind,
    obj: &impl Resource,
) -> Vec<ObjectRef<StatelessApp>> {
    let mut apps = controller_of(obj);
    apps.extend(caches.apps.referring(
        kind,
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default(),
    ));
    apps
}

/// The StatelessApp named by the object's controller ownerReference, if any.
fn controller_of(obj: &impl Resource) -> Vec<ObjectRef<StatelessApp>> {
    let namespace = obj.meta().namespace.clone().unwrap_or_default();
    obj.owner_references()
        .iter()
        .filter(|o| o.controller == Some(true) && o.kind == crate::crd::KIND)
        .map(|o| ObjectRef::new(&o.name).within(&namespace))
        .collect()
}

async fn run_scope<S>(
    client: Client,
    namespace: Option<String>,
    scope: usize,
    ctx: Arc<Context>,
    listed: Arc<Listed>,
    shutdown: S,
) where
    S: std::future::Future<Output = ()> + Clone + Send + Sync + 'static,
{
    let ns = namespace.as_deref();
    let watches = &ctx.metrics.watches;
    let caches = ctx.caches.clone();
    let (store, writer) = reflector::store();
    let on_listed = listed.clone();
    let (indexing, listed_store, scope_ns) = (ctx.clone(), store.clone(), namespace.clone());
    let apps = observed(
        watcher(
            api_in::<StatelessApp>(&client, ns),
            watcher::Config::default().any_semantic(),
        ),
        WatchInfo::new(COMPONENT, crate::crd::KIND, watches)
            .when_missing(CRD_MISSING)
            .on_listed(move || on_listed.mark(scope)),
    )
    .modify(trim_app)
    .reflect(writer)
    .filter_map(|event| std::future::ready(event.ok()))
    // Only changes that matter trigger (not our own status writes); a
    // deleted app's series, memory and index entries go with it (the
    // controller never sees a deleted object: there is no finalizer).
    .flat_map(move |event| {
        let triggers = indexing.caches.apps.observe(&event);
        match &event {
            watcher::Event::Apply(app) | watcher::Event::InitApply(app) => {
                indexing.caches.status_seen(app)
            }
            watcher::Event::Delete(app) => indexing.forget(&ObjectRef::from_obj(app)),
            watcher::Event::InitDone => {
                indexing
                    .caches
                    .apps
                    .retain(&listed_store, scope_ns.as_deref());
                indexing.forget_missing(&listed_store, scope_ns.as_deref());
            }
            _ => {}
        }
        futures::stream::iter(triggers.into_iter().map(Ok))
    });
    let c = &caches;
    let (service_store, ingress_store, rule_store) = (store.clone(), store.clone(), store.clone());
    let (ingress_caches, rule_caches) = (caches.clone(), caches.clone());
    let (cm_caches, secret_caches) = (caches.clone(), caches.clone());
    let mut controller = Controller::for_stream(apps, store)
        .owns_stream(cached(&client, ns, watches, ours(), c.deployments.clone()))
        .owns_stream(cached(&client, ns, watches, ours(), c.hpas.clone()))
        .owns_stream(cached(&client, ns, watches, ours(), c.pdbs.clone()))
        .owns_stream(cached(
            &client,
            ns,
            watches,
            ours(),
            c.network_policies.clone(),
        ))
        .owns_stream(cached(&client, ns, watches, ours(), c.pvcs.clone()))
        .owns_stream(cached(&client, ns, watches, ours(), c.cron_jobs.clone()))
        .owns_stream(cached(&client, ns, watches, ours(), c.config_maps.clone()))
        .watches_stream(
            cached(&client, ns, watches, all(), c.services.clone()),
            move |svc| {
                let mut apps = controller_of(&svc);
                apps.extend(observe::apps_selected_by(&service_store, &svc));
                apps
            },
        )
        .watches_stream(
            cached(&client, ns, watches, all(), c.ingresses.clone()),
            move |ing: Ingress| {
                let value = serde_json::to_value(&ing).unwrap_or_default();
                observe::apps_behind(
                    &ingress_store,
                    &ingress_caches,
                    &ing.namespace().unwrap_or_default(),
                    &compliance::ingress_backends(&value),
                )
            },
        )
        // ConfigMaps and Secrets: the managed ones, and any the pods reference
        // (their content feeds the config hash that rolls the pods).
        .watches_stream(
            cached(&client, ns, watches, all(), c.config_map_meta.clone()),
            move |cm| apps_referring(&cm_caches, ConfigKind::ConfigMap, &cm),
        )
        .watches_stream(
            cached(&client, ns, watches, all(), c.secret_meta.clone()),
            move |secret| apps_referring(&secret_caches, ConfigKind::Secret, &secret),
        );
    // Istio DestinationRules (consistentHash by cookie or source IP) where
    // Istio is installed; checked once at start, which must not hold up a
    // shutdown while the API server does not answer.
    let istio = tokio::select! {
        served = compliance::destination_rules_served(&client) => served,
        () = shutdown.clone() => return,
    };
    if istio {
        caches
            .watching_destination_rules
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let resource = compliance::destination_rule_resource();
        let api = match ns {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let rules = feed(
            observed(
                watcher(api, watcher::Config::default().any_semantic()),
                WatchInfo::new(COMPONENT, &resource.kind, watches),
            ),
            c.destination_rules.clone(),
            namespace.clone(),
        );
        controller = controller.watches_stream_with(
            rules,
            move |rule: DynamicObject| {
                let host = rule.data["spec"]["host"].as_str().unwrap_or_default();
                let services: Vec<String> = compliance::destination_rule_service(host)
                    .map(str::to_string)
                    .into_iter()
                    .collect();
                observe::apps_behind(
                    &rule_store,
                    &rule_caches,
                    &rule.namespace().unwrap_or_default(),
                    &services,
                )
            },
            resource,
        );
    }
    let run = controller
        .with_config(
            kube::runtime::controller::Config::default()
                .concurrency(ctx.settings.concurrency)
                .debounce(ctx.settings.debounce),
        )
        // No watch error reaches the controller (each watch backs off by
        // itself); should one ever do, it pauses the others only briefly.
        .trigger_backoff(WatchBackoff::default())
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile::reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!("controller event: {e}");
            }
        });
    // A graceful shutdown lets reconciliations in flight finish, and
    // kube-runtime holds its workers until the first list of StatelessApps is
    // in: without that list (API server unreachable, CRD missing) it would
    // wait for ever. Nothing can be in flight then, so stop at once.
    let unlisted_shutdown = async {
        shutdown.await;
        if listed.is_listed(scope) {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = run => {}
        () = unlisted_shutdown => tracing::info!(
            namespace = ns.unwrap_or("(all)"),
            "stopping before the first list of StatelessApps completed; no reconciliation to wait for"
        ),
    }
}

/// What no reconcile reads of an app: its managedFields and kubectl's copy.
fn trim_app(app: &mut StatelessApp) {
    app.metadata.managed_fields = None;
    if let Some(annotations) = app.metadata.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let secs: Vec<u64> = (1..=12).map(|n| backoff_for(n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }

    #[test]
    fn error_reasons_are_camel_case_words() {
        let e = Error::ExternalSecretNotFound {
            namespace: "ns".into(),
            name: "redis".into(),
            key: "url".into(),
        };
        assert_eq!(e.reason(), "ExternalSecretNotFound");
        assert!(e.to_string().contains("ns/redis"));
    }
}

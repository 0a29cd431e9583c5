//! The observe step's sources: the shared [`Caches`] the watches fill, the
//! indexes that turn "which Services select this app" and "which Ingresses
//! route to these Services" into map lookups, and the contents of the
//! ConfigMaps and Secrets an app's pods reference.
//!
//! ConfigMaps and Secrets are watched metadata-only: the operator does not
//! keep every Secret of the cluster in memory to find the few the pods use.
//! A referenced object's content is read once per resourceVersion
//! ([`referenced`]) and only its keyed digest and key names are kept (plus
//! the data of a ConfigMap, which the rules read); a reconcile whose
//! references did not change reads nothing.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::DynamicObject;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::Event;
use kube::{Api, ResourceExt};

use super::cache::{self, Cache, version_of};
use super::compliance;
use super::config_hash::{self, HashKey};
use super::{Context, Error};
use crate::build::labels;
use crate::crd::{ConfigKind, ConfigRef, StatelessApp, StatelessAppStatus};
use crate::signing_keys::SCHEDULE_ANNOTATION;

/// Every cache of the controller, shared by the watched namespaces.
pub struct Caches {
    /// Our own Deployments; the workers' are indexed by the app controlling them.
    pub deployments: Arc<Cache<Deployment>>,
    /// Every Service, not only ours: one that selects an app's pods with
    /// sessionAffinity is a finding, wherever it came from.
    pub services: Arc<Cache<Service>>,
    pub ingresses: Arc<Cache<Ingress>>,
    /// Our own HPAs; the workers' are indexed by the app controlling them.
    pub hpas: Arc<Cache<HorizontalPodAutoscaler>>,
    pub pdbs: Arc<Cache<PodDisruptionBudget>>,
    pub network_policies: Arc<Cache<NetworkPolicy>>,
    pub pvcs: Arc<Cache<PersistentVolumeClaim>>,
    /// Our own CronJobs (spec.schedules), indexed by the app controlling them.
    pub cron_jobs: Arc<Cache<CronJob>>,
    /// Our own ConfigMaps (the managed Redis's configuration), whole.
    pub config_maps: Arc<Cache<ConfigMap>>,
    /// Every ConfigMap and Secret, metadata only (name, uid, version, owners).
    pub config_map_meta: Arc<Cache<PartialObjectMeta<ConfigMap>>>,
    pub secret_meta: Arc<Cache<PartialObjectMeta<Secret>>>,
    /// Istio DestinationRules, fed only where Istio is installed.
    pub destination_rules: Arc<Cache<DynamicObject>>,
    /// Apps by the config they reference; which apps changed.
    pub apps: AppIndex,
    /// Whether DestinationRules are watched (Istio is installed).
    pub watching_destination_rules: std::sync::atomic::AtomicBool,
    contents: Mutex<HashMap<(ConfigKind, String, String), Arc<Content>>>,
    /// Each app's status as last written, until the app watch shows it.
    statuses: Mutex<HashMap<(String, String), (u64, StatelessAppStatus)>>,
}

impl Default for Caches {
    fn default() -> Self {
        Self::new()
    }
}

impl Caches {
    pub fn new() -> Self {
        Self {
            deployments: Arc::new(Cache::new(deployment_fingerprint).indexed(worker_index)),
            services: Arc::new(
                Cache::new(cache::without_status::<Service>)
                    .indexed(service_index)
                    .trimmed(|svc| svc.status = None),
            ),
            ingresses: Arc::new(
                Cache::new(cache::without_status::<Ingress>)
                    .indexed(ingress_index)
                    .trimmed(|ingress| ingress.status = None),
            ),
            hpas: Arc::new(
                Cache::new(cache::without_status::<HorizontalPodAutoscaler>)
                    .indexed(worker_index)
                    .trimmed(|hpa| hpa.status = None),
            ),
            pdbs: Arc::new(
                Cache::new(cache::without_status::<PodDisruptionBudget>)
                    .indexed(worker_index)
                    .trimmed(|pdb| pdb.status = None),
            ),
            network_policies: Arc::new(Cache::new(cache::without_status::<NetworkPolicy>)),
            pvcs: Arc::new(
                Cache::new(cache::without_status::<PersistentVolumeClaim>)
                    .trimmed(|pvc| pvc.status = None),
            ),
            cron_jobs: Arc::new(Cache::new(cron_job_fingerprint).indexed(owner_index)),
            config_maps: Arc::new(Cache::new(cache::without_status::<ConfigMap>)),
            config_map_meta: Arc::new(
                Cache::new(cache::any_version::<PartialObjectMeta<ConfigMap>>)
                    .trimmed(metadata_only),
            ),
            secret_meta: Arc::new(
                Cache::new(cache::any_version::<PartialObjectMeta<Secret>>).trimmed(metadata_only),
            ),
            destination_rules: Arc::new(
                Cache::new(cache::without_status::<DynamicObject>)
                    .indexed(destination_rule_index)
                    .trimmed(|rule| {
                        if let Some(data) = rule.data.as_object_mut() {
                            data.remove("status");
                        }
                    }),
            ),
            apps: AppIndex::default(),
            watching_destination_rules: std::sync::atomic::AtomicBool::new(false),
            contents: Mutex::new(HashMap::new()),
            statuses: Mutex::new(HashMap::new()),
        }
    }

    /// Has every cache listed `namespace` once? Until then a reconcile must
    /// not act: an object missing from a cache may exist (applying it would
    /// be a needless write, or take over an object the app does not own).
    pub fn synced(&self, namespace: &str) -> bool {
        let fixed = [
            self.deployments.is_listed(namespace),
            self.services.is_listed(namespace),
            self.ingresses.is_listed(namespace),
            self.hpas.is_listed(namespace),
            self.pdbs.is_listed(namespace),
            self.network_policies.is_listed(namespace),
            self.pvcs.is_listed(namespace),
            self.cron_jobs.is_listed(namespace),
            self.config_maps.is_listed(namespace),
            self.config_map_meta.is_listed(namespace),
            self.secret_meta.is_listed(namespace),
        ];
        let rules = !self
            .watching_destination_rules
            .load(std::sync::atomic::Ordering::Relaxed)
            || self.destination_rules.is_listed(namespace);
        fixed.into_iter().all(|listed| listed) && rules
    }

    /// Services in `namespace` that select the pods of app `name`.
    pub fn services_selecting(&self, namespace: &str, name: &str) -> Vec<Arc<Service>> {
        let pod_labels = labels::app(name);
        let mut found: Vec<Arc<Service>> = self
            .services
            .by_index(&instance_key(namespace, name))
            .into_iter()
            .chain(self.services.by_index(&any_selector_key(namespace)))
            .filter(|svc| {
                compliance::selects(
                    svc.spec.as_ref().and_then(|s| s.selector.as_ref()),
                    &pod_labels,
                )
            })
            .collect();
        found.sort_by_key(|svc| svc.name_any());
        found
    }

    /// CronJobs in `namespace` whose controller is the app `name` (by name:
    /// whether it is this app's uid is the caller's check).
    pub fn cron_jobs_of(&self, namespace: &str, name: &str) -> Vec<Arc<CronJob>> {
        self.cron_jobs.by_index(&owner_key(namespace, name))
    }

    /// Worker Deployments in `namespace` whose controller is the app `name`
    /// (by name: whether it is this app's uid is the caller's check).
    pub fn worker_deployments_of(&self, namespace: &str, name: &str) -> Vec<Arc<Deployment>> {
        self.deployments.by_index(&owner_key(namespace, name))
    }

    /// Worker HPAs in `namespace` whose controller is the app `name`.
    pub fn worker_hpas_of(&self, namespace: &str, name: &str) -> Vec<Arc<HorizontalPodAutoscaler>> {
        self.hpas.by_index(&owner_key(namespace, name))
    }

    /// Worker PDBs in `namespace` whose controller is the app `name`.
    pub fn worker_pdbs_of(&self, namespace: &str, name: &str) -> Vec<Arc<PodDisruptionBudget>> {
        self.pdbs.by_index(&owner_key(namespace, name))
    }

    /// Ingresses in `namespace` with a backend on Service `service`.
    pub fn ingresses_routing_to(&self, namespace: &str, service: &str) -> Vec<Arc<Ingress>> {
        self.ingresses.by_index(&backend_key(namespace, service))
    }

    /// DestinationRules in `namespace` whose host is Service `service`.
    pub fn destination_rules_for(&self, namespace: &str, service: &str) -> Vec<Arc<DynamicObject>> {
        self.destination_rules
            .by_index(&backend_key(namespace, service))
    }

    /// The status the app carries, or the one we wrote if the watch has not
    /// shown that yet.
    pub fn current_status(&self, app: &StatelessApp) -> Option<StatelessAppStatus> {
        self.status_seen(app);
        let statuses = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
        match statuses.get(&app_key(app)) {
            Some((_, written)) => Some(written.clone()),
            None => app.status.clone(),
        }
    }

    pub fn remember_status(&self, written: &StatelessApp) {
        if let (Some(version), Some(status)) = (version_of(written), written.status.clone()) {
            self.statuses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(app_key(written), (version, status));
        }
    }

    /// The app watch shows `app`: a status we wrote at or before its
    /// version is in the store now, and need not be kept here.
    pub fn status_seen(&self, app: &StatelessApp) {
        let key = app_key(app);
        let mut statuses = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some((written, _)), Some(seen)) = (statuses.get(&key), version_of(app))
            && seen >= *written
        {
            statuses.remove(&key);
        }
    }

    pub fn forget_app(&self, app: &ObjectRef<StatelessApp>) {
        let key = (app.namespace.clone().unwrap_or_default(), app.name.clone());
        self.statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    }

    fn memo(&self, kind: ConfigKind, namespace: &str, name: &str) -> Option<Arc<Content>> {
        self.contents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(kind, namespace.to_string(), name.to_string()))
            .cloned()
    }

    pub(super) fn remember_content(
        &self,
        kind: ConfigKind,
        namespace: &str,
        name: &str,
        content: Content,
    ) -> Arc<Content> {
        let content = Arc::new(content);
        let mut contents = self.contents.lock().unwrap_or_else(PoisonError::into_inner);
        contents.insert(
            (kind, namespace.to_string(), name.to_string()),
            content.clone(),
        );
        // Forget the contents of deleted objects, now and then.
        let live = self.config_map_meta.len() + self.secret_meta.len();
        if contents.len() > 2 * live + 64 {
            contents.retain(|(kind, ns, name), _| self.meta(*kind, ns, name).is_some());
        }
        content
    }

    /// The cached metadata of a ConfigMap or Secret.
    pub fn meta(&self, kind: ConfigKind, namespace: &str, name: &str) -> Option<ObjectVersion> {
        let meta = match kind {
            ConfigKind::ConfigMap => self
                .config_map_meta
                .get(namespace, name)
                .map(|m| m.metadata.clone()),
            ConfigKind::Secret => self
                .secret_meta
                .get(namespace, name)
                .map(|m| m.metadata.clone()),
        }?;
        Some(ObjectVersion {
            uid: meta.uid.clone(),
            version: meta
                .resource_version
                .as_deref()
                .and_then(|v| v.parse().ok()),
            meta,
        })
    }

    /// The memoized content of a ConfigMap or Secret whose cached metadata
    /// says it has not changed since it was read.
    pub(super) fn fresh_content(
        &self,
        kind: ConfigKind,
        namespace: &str,
        name: &str,
        current: &ObjectVersion,
    ) -> Option<Arc<Content>> {
        let memo = self.memo(kind, namespace, name)?;
        let fresh = memo.uid == current.uid
            && match (memo.version, current.version) {
                (Some(read), Some(cached)) => read >= cached,
                _ => false,
            };
        fresh.then_some(memo)
    }
}

/// The cached identity and version of a ConfigMap or Secret.
pub struct ObjectVersion {
    pub uid: Option<String>,
    pub version: Option<u64>,
    pub meta: kube::api::ObjectMeta,
}

/// What is kept of a ConfigMap or Secret the pods reference, read at one
/// resourceVersion. No Secret value is kept, only the keyed digest.
#[derive(Debug)]
pub struct Content {
    pub uid: Option<String>,
    pub version: Option<u64>,
    /// Keyed digest of the data ([`config_hash::of_secret`], [`config_hash::of_config_map`]).
    pub digest: String,
    /// The data's key names.
    pub keys: BTreeSet<String>,
    /// A ConfigMap whole (the rules read session settings in it).
    pub config_map: Option<Arc<ConfigMap>>,
    /// For the managed Redis Secret: its url and Redis users follow its
    /// password (checked when it was read).
    pub managed_consistent: bool,
}

impl Content {
    pub fn of_secret(key: &HashKey, secret: &Secret) -> Self {
        Self {
            uid: secret.metadata.uid.clone(),
            version: version_of(secret),
            digest: config_hash::of_secret(key, secret),
            keys: secret
                .data
                .iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .collect(),
            config_map: None,
            managed_consistent: false,
        }
    }

    pub fn of_config_map(key: &HashKey, mut cm: ConfigMap) -> Self {
        cm.metadata.managed_fields = None;
        Self {
            uid: cm.metadata.uid.clone(),
            version: version_of(&cm),
            digest: config_hash::of_config_map(key, &cm),
            keys: cm
                .data
                .iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .chain(cm.binary_data.iter().flatten().map(|(k, _)| k.clone()))
                .collect(),
            config_map: Some(Arc::new(cm)),
            managed_consistent: false,
        }
    }
}

/// The content of every ConfigMap and Secret the app's pods reference
/// (`None`: it does not exist), in the order of
/// [`StatelessApp::referenced_config`]. Reads only what changed since it
/// was last read.
pub async fn referenced(
    ctx: &Context,
    app: &StatelessApp,
    namespace: &str,
) -> Result<Vec<(ConfigRef, Option<Arc<Content>>)>, Error> {
    let mut found = Vec::new();
    for reference in app.referenced_config() {
        let content = content_of(ctx, reference.kind, namespace, &reference.name).await?;
        found.push((reference, content));
    }
    Ok(found)
}

/// One referenced object's content: from the memo when the cached metadata
/// shows no change, else read (once) from the API server.
pub async fn content_of(
    ctx: &Context,
    kind: ConfigKind,
    namespace: &str,
    name: &str,
) -> Result<Option<Arc<Content>>, Error> {
    let caches = &ctx.caches;
    let Some(current) = caches.meta(kind, namespace, name) else {
        return Ok(None);
    };
    if let Some(memo) = caches.fresh_content(kind, namespace, name, &current) {
        return Ok(Some(memo));
    }
    let kube_err = Error::kube("get", kind.as_str(), namespace, name);
    let content = match kind {
        ConfigKind::ConfigMap => Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(kube_err)?
            .map(|cm| Content::of_config_map(&ctx.hash_key, cm)),
        ConfigKind::Secret => Api::<Secret>::namespaced(ctx.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(kube_err)?
            .map(|secret| Content::of_secret(&ctx.hash_key, &secret)),
    };
    Ok(content.map(|c| caches.remember_content(kind, namespace, name, c)))
}

/// Which apps reference which ConfigMaps and Secrets, and which app events
/// are worth a reconcile, kept from the app watch.
#[derive(Default)]
pub struct AppIndex {
    state: RwLock<AppIndexState>,
}

#[derive(Default)]
struct AppIndexState {
    /// (kind, namespace, name) → names of the apps referencing it.
    referrers: HashMap<(ConfigKind, String, String), BTreeSet<String>>,
    /// (namespace, app) → what it references, and its fingerprint.
    apps: HashMap<(String, String), (Vec<ConfigRef>, u64)>,
}

impl AppIndex {
    /// Take one app event; the app when it is worth a reconcile (the spec,
    /// labels or annotations changed: not our own status updates).
    pub fn observe(&self, event: &Event<StatelessApp>) -> Vec<StatelessApp> {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            Event::Apply(app) | Event::InitApply(app) => {
                let key = app_key(app);
                let fingerprint = app_fingerprint(app);
                let refs = app.referenced_config();
                let changed = state.apps.get(&key).is_none_or(|(_, f)| *f != fingerprint);
                state.remove_app(&key);
                for r in &refs {
                    state
                        .referrers
                        .entry((r.kind, key.0.clone(), r.name.clone()))
                        .or_default()
                        .insert(key.1.clone());
                }
                state.apps.insert(key, (refs, fingerprint));
                if changed {
                    vec![app.clone()]
                } else {
                    Vec::new()
                }
            }
            Event::Delete(app) => {
                state.remove_app(&app_key(app));
                Vec::new()
            }
            Event::Init | Event::InitDone => Vec::new(),
        }
    }

    /// After a relist: forget apps that are no longer there.
    pub fn retain(&self, store: &Store<StatelessApp>, namespace: Option<&str>) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let gone: Vec<(String, String)> = state
            .apps
            .keys()
            .filter(|(ns, name)| {
                namespace.is_none_or(|scope| scope == ns)
                    && store.get(&ObjectRef::new(name).within(ns)).is_none()
            })
            .cloned()
            .collect();
        for key in gone {
            state.remove_app(&key);
        }
    }

    /// Apps in `namespace` whose pods reference ConfigMap/Secret `name`.
    pub fn referring(
        &self,
        kind: ConfigKind,
        namespace: &str,
        name: &str,
    ) -> Vec<ObjectRef<StatelessApp>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .referrers
            .get(&(kind, namespace.to_string(), name.to_string()))
            .into_iter()
            .flatten()
            .map(|app| ObjectRef::new(app).within(namespace))
            .collect()
    }
}

impl AppIndexState {
    fn remove_app(&mut self, key: &(String, String)) {
        let Some((refs, _)) = self.apps.remove(key) else {
            return;
        };
        for r in refs {
            let rk = (r.kind, key.0.clone(), r.name);
            if let Some(apps) = self.referrers.get_mut(&rk) {
                apps.remove(&key.1);
                if apps.is_empty() {
                    self.referrers.remove(&rk);
                }
            }
        }
    }
}

fn app_key(app: &StatelessApp) -> (String, String) {
    (app.namespace().unwrap_or_default(), app.name_any())
}

/// What of an app can change a reconcile's outcome: its spec (generation),
/// labels and annotations (waivers), deletion. Not its status, which the
/// operator writes itself.
fn app_fingerprint(app: &StatelessApp) -> u64 {
    let meta = &app.metadata;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.uid.hash(&mut hasher);
    meta.generation.hash(&mut hasher);
    meta.labels.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    hasher.finish()
}

/// A Deployment's spec and metadata, and the parts of its status the Ready
/// condition reads; not the timestamps of its conditions.
fn deployment_fingerprint(deployment: &Deployment) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cache::without_status(deployment).hash(&mut hasher);
    if let Some(status) = &deployment.status {
        (
            status.observed_generation,
            status.replicas,
            status.ready_replicas,
            status.available_replicas,
            status.updated_replicas,
            status.unavailable_replicas,
        )
            .hash(&mut hasher);
        for c in status.conditions.iter().flatten() {
            (&c.type_, &c.status, &c.reason).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Only what a reconcile reads of a ConfigMap's or Secret's metadata: its
/// name, uid, version and owner, and the signing key schedule (so a
/// reconcile sees from the cache that no rotation is due).
fn metadata_only<K>(object: &mut PartialObjectMeta<K>) {
    let meta = &mut object.metadata;
    meta.labels = None;
    meta.annotations = meta
        .annotations
        .take()
        .and_then(|mut all| all.remove_entry(SCHEDULE_ANNOTATION))
        .map(|kept| [kept].into());
    meta.finalizers = None;
}

/// A CronJob's spec and metadata, and the part of its status the app's
/// status shows (a run starting or ending).
fn cron_job_fingerprint(cron_job: &CronJob) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cache::without_status(cron_job).hash(&mut hasher);
    if let Some(status) = &cron_job.status {
        let time = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
            t.as_ref().map(|t| t.0.as_second())
        };
        (
            time(&status.last_schedule_time),
            time(&status.last_successful_time),
            status.active.as_ref().map_or(0, Vec::len),
        )
            .hash(&mut hasher);
    }
    hasher.finish()
}

/// The app controlling `object`, as an index key.
fn owner_index<K: kube::Resource>(object: &K) -> Vec<String> {
    let namespace = object.meta().namespace.as_deref().unwrap_or_default();
    object
        .owner_references()
        .iter()
        .filter(|o| o.controller == Some(true) && o.kind == crate::crd::KIND)
        .map(|o| owner_key(namespace, &o.name))
        .collect()
}

/// [`owner_index`] of a worker's Deployment or HPA; nothing for the app's
/// own or the session store's, which are found by name.
fn worker_index<K: kube::Resource>(object: &K) -> Vec<String> {
    let worker = object
        .labels()
        .get(labels::COMPONENT)
        .is_some_and(|c| c == labels::COMPONENT_WORKER);
    if worker {
        owner_index(object)
    } else {
        Vec::new()
    }
}

fn owner_key(namespace: &str, app: &str) -> String {
    format!("{namespace}\0owner\0{app}")
}

fn instance_key(namespace: &str, app: &str) -> String {
    format!("{namespace}\0instance\0{app}")
}

fn any_selector_key(namespace: &str) -> String {
    format!("{namespace}\0any")
}

fn backend_key(namespace: &str, service: &str) -> String {
    format!("{namespace}\0backend\0{service}")
}

/// A Service selecting on `app.kubernetes.io/instance` can only select that
/// app's pods; any other selector is checked against every app of its
/// namespace (rare: a hand-written Service over an app's pods).
fn service_index(svc: &Service) -> Vec<String> {
    let namespace = svc.namespace().unwrap_or_default();
    let selector = svc.spec.as_ref().and_then(|s| s.selector.as_ref());
    match selector {
        None => Vec::new(),
        Some(s) if s.is_empty() => Vec::new(),
        Some(s) => match s.get(labels::INSTANCE) {
            Some(app) => vec![instance_key(&namespace, app)],
            None => vec![any_selector_key(&namespace)],
        },
    }
}

fn ingress_index(ingress: &Ingress) -> Vec<String> {
    let namespace = ingress.namespace().unwrap_or_default();
    let value = serde_json::to_value(ingress).unwrap_or_default();
    let mut backends = compliance::ingress_backends(&value);
    backends.sort();
    backends.dedup();
    backends
        .into_iter()
        .map(|b| backend_key(&namespace, &b))
        .collect()
}

fn destination_rule_index(rule: &DynamicObject) -> Vec<String> {
    let namespace = rule.namespace().unwrap_or_default();
    let host = rule.data["spec"]["host"].as_str().unwrap_or_default();
    match compliance::destination_rule_service(host) {
        Some(service) => vec![backend_key(&namespace, service)],
        None => Vec::new(),
    }
}

/// Apps (in the controller's store) whose pods a Service selects.
pub fn apps_selected_by(
    store: &Store<StatelessApp>,
    svc: &Service,
) -> Vec<ObjectRef<StatelessApp>> {
    let namespace = svc.namespace().unwrap_or_default();
    let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return Vec::new();
    };
    if selector.is_empty() {
        return Vec::new();
    }
    let selects =
        |app: &StatelessApp| compliance::selects(Some(selector), &labels::app(&app.name_any()));
    match selector.get(labels::INSTANCE) {
        Some(name) => {
            let reference = ObjectRef::new(name).within(&namespace);
            store
                .get(&reference)
                .filter(|app| selects(app))
                .map(|_| reference)
                .into_iter()
                .collect()
        }
        None => store
            .state()
            .iter()
            .filter(|app| app.namespace().as_deref() == Some(namespace.as_str()) && selects(app))
            .map(|app| ObjectRef::from_obj(app.as_ref()))
            .collect(),
    }
}

/// Apps behind the Services an Ingress (or DestinationRule) routes to.
pub fn apps_behind(
    store: &Store<StatelessApp>,
    caches: &Caches,
    namespace: &str,
    services: &[String],
) -> Vec<ObjectRef<StatelessApp>> {
    services
        .iter()
        .filter_map(|name| caches.services.get(namespace, name))
        .flat_map(|svc| apps_selected_by(store, &svc))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use kube::api::ObjectMeta;

    fn service(name: &str, selector: &[(&str, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some("1".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(
                    selector
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn services_selecting_an_app_are_found_by_instance_and_by_scan() {
        let caches = Caches::new();
        for svc in [
            service("web", &[(labels::INSTANCE, "web"), (labels::NAME, "web")]),
            service("other", &[(labels::INSTANCE, "api")]),
            service(
                "by-component",
                &[(labels::COMPONENT, labels::COMPONENT_APP)],
            ),
            service(
                "redis-of-web",
                &[(labels::INSTANCE, "web"), (labels::NAME, "redis")],
            ),
            service("empty", &[]),
        ] {
            caches.services.apply_event(None, Event::Apply(svc));
        }
        let names: Vec<String> = caches
            .services_selecting("ns", "web")
            .iter()
            .map(|s| s.name_any())
            .collect();
        assert_eq!(names, ["by-component", "web"]);
        assert!(caches.services_selecting("elsewhere", "web").is_empty());
    }

    #[test]
    fn config_references_are_indexed_and_unchanged_apps_do_not_trigger() {
        let index = AppIndex::default();
        let mut app: StatelessApp = serde_json::from_value(serde_json::json!({
            "apiVersion": "stateless.dev/v1alpha1", "kind": "StatelessApp",
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "generation": 1},
            "spec": {"image": "web:1", "sessionStore": {"type": "none"},
                     "envFrom": [{"secretRef": {"name": "creds"}}]}
        }))
        .expect("app");
        assert_eq!(index.observe(&Event::Apply(app.clone())).len(), 1);
        assert_eq!(index.referring(ConfigKind::Secret, "ns", "creds").len(), 1);
        // Our own status write: same generation, no reconcile.
        app.status = Some(StatelessAppStatus::default());
        assert!(index.observe(&Event::Apply(app.clone())).is_empty());
        // A new waiver annotation is worth one.
        app.metadata.annotations = Some([("stateless.dev/allow".into(), "x".into())].into());
        assert_eq!(index.observe(&Event::Apply(app.clone())).len(), 1);
        index.observe(&Event::Delete(app));
        assert!(
            index
                .referring(ConfigKind::Secret, "ns", "creds")
                .is_empty()
        );
    }
}

//! Shared caches of the objects a reconcile reads, filled by the controller's
//! watches, so that observing an app costs the API server nothing.
//!
//! A [`Cache`] holds one kind, trimmed of what no reconcile reads
//! (`managedFields`, kubectl's last-applied copy), optionally indexed (which
//! Services select an app, which Ingresses route to a Service), and decides
//! which watch events are worth a reconcile: an object whose
//! [fingerprint](Fingerprint) did not change (a status-only update of a
//! Service, an unchanged object in a relist) triggers nothing.
//!
//! The cache lags behind the operator's own writes by one watch event. So
//! every write's response is remembered ([`Cache::remember`],
//! [`Cache::remember_deleted`]) until the watch catches up: a reconcile that
//! runs in between sees what the operator just wrote, not the older object,
//! and does not write it again.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use futures::{Stream, StreamExt, stream};
use kube::Resource;
use kube::runtime::watcher::{self, Event};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Namespace and name.
pub type Key = (String, String);

/// kubectl's copy of the last applied manifest: often the largest part of a
/// user's object, and a duplicate of its spec.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What about an object can change the outcome of a reconcile: a hash of
/// those parts. Equal fingerprints mean the event is not worth a reconcile.
pub type Fingerprint<K> = fn(&K) -> u64;

/// Index keys of an object (see [`Cache::indexed`]).
pub type IndexFn<K> = fn(&K) -> Vec<String>;

/// A cached object, stored as its JSON, deflated. A k8s-openapi struct
/// costs several times its JSON in memory (every optional field is inline,
/// every map a B-tree node: about 19 KiB for a Deployment of 3.5 KiB of
/// JSON, which deflates to 1.5 KiB), and a reconcile decodes only the few
/// objects it reads.
struct Entry {
    packed: Box<[u8]>,
    fingerprint: u64,
    uid: Option<Box<str>>,
    version: Option<u64>,
    index_keys: Vec<String>,
}

/// The operator's last write of an object, until the watch shows it.
enum Written<K> {
    /// Applied or created; the response, at this resourceVersion.
    Object { version: u64, object: Arc<K> },
    /// Deleted (the object with this uid is gone, or going).
    Deleted { uid: Option<String> },
}

struct State<K> {
    objects: HashMap<Key, Entry>,
    /// Watch scopes whose first list is complete (`None`: all namespaces).
    listed: BTreeSet<Option<String>>,
    /// Relists in progress, by watch scope (`None`: all namespaces).
    relists: HashMap<Option<String>, HashMap<Key, Entry>>,
    index: HashMap<String, BTreeSet<Key>>,
    written: HashMap<Key, Written<K>>,
}

impl<K> Default for State<K> {
    fn default() -> Self {
        Self {
            objects: HashMap::new(),
            listed: BTreeSet::new(),
            relists: HashMap::new(),
            index: HashMap::new(),
            written: HashMap::new(),
        }
    }
}

/// The objects of one kind the watches have seen.
pub struct Cache<K> {
    state: RwLock<State<K>>,
    fingerprint: Fingerprint<K>,
    index: Option<IndexFn<K>>,
    trim: fn(&mut K),
}

impl<K> Cache<K>
where
    K: Resource + Clone + Serialize + DeserializeOwned,
{
    pub fn new(fingerprint: Fingerprint<K>) -> Self {
        Self {
            state: RwLock::new(State::default()),
            fingerprint,
            index: None,
            trim: |_| {},
        }
    }

    /// Keep each object also under the keys `index` gives it, for [`Self::by_index`].
    pub fn indexed(mut self, index: IndexFn<K>) -> Self {
        self.index = Some(index);
        self
    }

    /// Remove more than the common trim from every cached object (for
    /// example a status no reconcile reads).
    pub fn trimmed(mut self, trim: fn(&mut K)) -> Self {
        self.trim = trim;
        self
    }

    fn read(&self) -> RwLockReadGuard<'_, State<K>> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way a reader could misuse: every update is one insert/remove.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State<K>> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The object as the operator last knows it: its own write when the
    /// watch has not shown that yet, else the cached one.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let key = (namespace.to_string(), name.to_string());
        let state = self.read();
        let cached = state.objects.get(&key);
        match state.written.get(&key) {
            None => cached.and_then(decode).map(Arc::new),
            Some(Written::Object { version, object }) => match cached {
                Some(c) if c.version.is_some_and(|v| v >= *version) => decode(c).map(Arc::new),
                _ => Some(object.clone()),
            },
            Some(Written::Deleted { uid }) => match cached {
                Some(c) if c.uid.as_deref() != uid.as_deref() => decode(c).map(Arc::new),
                _ => None,
            },
        }
    }

    /// Cached objects under one index key.
    pub fn by_index(&self, key: &str) -> Vec<Arc<K>> {
        let state = self.read();
        state
            .index
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|k| state.objects.get(k).and_then(decode).map(Arc::new))
            .collect()
    }

    /// Has a watch over `namespace` (or over all namespaces) listed its
    /// objects once? Before that, an absent object may well exist.
    pub fn is_listed(&self, namespace: &str) -> bool {
        let state = self.read();
        state.listed.contains(&None) || state.listed.contains(&Some(namespace.to_string()))
    }

    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remember the API server's response to a write of ours.
    pub fn remember(&self, mut object: K) {
        let Some(version) = version_of(&object) else {
            return;
        };
        let key = key_of(&object);
        self.trim_object(&mut object);
        let mut state = self.write();
        // The watch may have shown the write before its response came back.
        let shown = state
            .objects
            .get(&key)
            .is_some_and(|e| e.version.is_some_and(|v| v >= version));
        if !shown {
            let object = Arc::new(object);
            state
                .written
                .insert(key, Written::Object { version, object });
        }
    }

    /// Remember that we deleted the object with `uid`.
    pub fn remember_deleted(&self, namespace: &str, name: &str, uid: Option<String>) {
        let key = (namespace.to_string(), name.to_string());
        let mut state = self.write();
        // Nothing to hide if the watch already showed the delete (and no
        // write of ours, not yet shown, would bring it back).
        let visible = state
            .objects
            .get(&key)
            .is_some_and(|e| e.uid.as_deref() == uid.as_deref())
            || state.written.contains_key(&key);
        if visible {
            state.written.insert(key, Written::Deleted { uid });
        }
    }

    fn trim_object(&self, object: &mut K) {
        let meta = object.meta_mut();
        meta.managed_fields = None;
        if let Some(annotations) = meta.annotations.as_mut() {
            annotations.remove(LAST_APPLIED);
        }
        (self.trim)(object);
    }

    /// The trimmed object, and its entry (`None` if it cannot be encoded,
    /// which a Kubernetes object always can: then it is not cached, and
    /// the reconcile it triggers does not trust the cache's absence of it).
    fn entry(&self, mut object: K) -> (K, Option<Entry>) {
        self.trim_object(&mut object);
        let packed = match serde_json::to_vec(&object) {
            Ok(json) => pack(&json),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a watched object; not cached");
                return (object, None);
            }
        };
        let entry = Entry {
            packed,
            fingerprint: (self.fingerprint)(&object),
            uid: object.meta().uid.as_deref().map(Box::from),
            version: version_of(&object),
            index_keys: self.index.map(|index| index(&object)).unwrap_or_default(),
        };
        (object, Some(entry))
    }

    /// Store `entry` at `key`; the entry it replaces, if any.
    fn store(&self, state: &mut State<K>, key: Key, entry: Entry) -> Option<Entry> {
        // The watch caught up with our own write: forget the write.
        let caught_up = match state.written.get(&key) {
            Some(Written::Object { version, .. }) => entry.version.is_some_and(|v| v >= *version),
            Some(Written::Deleted { uid }) => entry.uid.as_deref() != uid.as_deref(),
            None => false,
        };
        if caught_up {
            state.written.remove(&key);
        }
        for ik in &entry.index_keys {
            state
                .index
                .entry(ik.clone())
                .or_default()
                .insert(key.clone());
        }
        let previous = state.objects.insert(key.clone(), entry);
        if let Some(previous) = &previous {
            Self::unindex(state, &key, previous);
        }
        previous
    }

    fn unindex(state: &mut State<K>, key: &Key, entry: &Entry) {
        let current = state.objects.get(key).map(|e| &e.index_keys);
        for ik in &entry.index_keys {
            if current.is_some_and(|keys| keys.contains(ik)) {
                continue;
            }
            if let Some(keys) = state.index.get_mut(ik) {
                keys.remove(key);
                if keys.is_empty() {
                    state.index.remove(ik);
                }
            }
        }
    }

    /// Store a watched object, returning the objects worth a reconcile:
    /// none when its fingerprint is unchanged, else the previous version
    /// (its old selector or backends may have concerned other apps) and the
    /// new one.
    fn upsert(&self, state: &mut State<K>, object: K) -> Vec<K> {
        let key = key_of(&object);
        let (object, entry) = self.entry(object);
        let Some(entry) = entry else {
            return vec![object];
        };
        let fingerprint = entry.fingerprint;
        match self.store(state, key, entry) {
            Some(p) if p.fingerprint == fingerprint => Vec::new(),
            Some(p) => decode(&p).into_iter().chain([object]).collect(),
            None => vec![object],
        }
    }

    /// Forget the object at `key`, whose uid was `uid`, and our write of
    /// it: a remembered write of that same object must not resurrect it.
    fn remove(&self, state: &mut State<K>, key: &Key, uid: Option<&str>) -> Option<Entry> {
        let stale = match state.written.get(key) {
            Some(Written::Deleted { .. }) => true,
            Some(Written::Object { object, .. }) => object.meta().uid.as_deref() == uid,
            None => false,
        };
        if stale {
            state.written.remove(key);
        }
        let previous = state.objects.remove(key)?;
        Self::unindex(state, key, &previous);
        Some(previous)
    }

    /// Take one watch event of the watch over `scope` (a namespace, or all
    /// of them); the objects it returns are the ones worth a reconcile.
    pub fn apply_event(&self, scope: Option<&str>, event: Event<K>) -> Vec<K> {
        let mut state = self.write();
        match event {
            Event::Apply(object) => self.upsert(&mut state, object),
            Event::Delete(object) => {
                let key = key_of(&object);
                self.remove(&mut state, &key, object.meta().uid.as_deref());
                vec![object]
            }
            Event::Init => {
                state
                    .relists
                    .insert(scope.map(str::to_string), HashMap::new());
                Vec::new()
            }
            Event::InitApply(object) => {
                let key = key_of(&object);
                let (object, entry) = self.entry(object);
                let Some(entry) = entry else {
                    return vec![object];
                };
                let unchanged = state
                    .objects
                    .get(&key)
                    .is_some_and(|e| e.fingerprint == entry.fingerprint);
                state
                    .relists
                    .entry(scope.map(str::to_string))
                    .or_default()
                    .insert(key, entry);
                if unchanged { Vec::new() } else { vec![object] }
            }
            Event::InitDone => {
                state.listed.insert(scope.map(str::to_string));
                let listed = state
                    .relists
                    .remove(&scope.map(str::to_string))
                    .unwrap_or_default();
                // Gone while the watch was away: no delete event came for
                // them, so they trigger here.
                let vanished: Vec<(Key, Option<String>)> = state
                    .objects
                    .iter()
                    .filter(|(k, _)| scope.is_none_or(|ns| k.0 == ns) && !listed.contains_key(*k))
                    .map(|(k, e)| (k.clone(), e.uid.as_deref().map(str::to_string)))
                    .collect();
                let mut triggers = Vec::new();
                for (key, uid) in vanished {
                    if let Some(entry) = self.remove(&mut state, &key, uid.as_deref()) {
                        triggers.extend(decode(&entry));
                    }
                }
                for (key, entry) in listed {
                    // Triggers of changed objects went out with InitApply.
                    self.store(&mut state, key, entry);
                }
                triggers
            }
        }
    }
}

/// Deflate level 1: nearly the ratio of the default level on objects this
/// small (Deployments 2.4×, Services 2×), at a fraction of its time.
const PACK_LEVEL: u8 = 1;

/// Larger than any object etcd stores (1.5 MiB by default), as JSON.
const UNPACK_LIMIT: usize = 16 << 20;

fn pack(json: &[u8]) -> Box<[u8]> {
    miniz_oxide::deflate::compress_to_vec(json, PACK_LEVEL).into_boxed_slice()
}

/// The object an entry holds. It was encoded from a `K`, so decoding fails
/// only on a bug; that is logged, and the object is treated as absent.
fn decode<K: DeserializeOwned>(entry: &Entry) -> Option<K> {
    let json = match miniz_oxide::inflate::decompress_to_vec_with_limit(&entry.packed, UNPACK_LIMIT)
    {
        Ok(json) => json,
        Err(e) => {
            tracing::error!(error = %e, "cannot inflate a cached object");
            return None;
        }
    };
    match serde_json::from_slice(&json) {
        Ok(object) => Some(object),
        Err(e) => {
            tracing::error!(error = %e, "cannot decode a cached object");
            None
        }
    }
}

/// The objects of `events` worth a reconcile, with `cache` updated before
/// each is passed on (so the reconcile it triggers reads the new state).
/// Errors were counted and logged upstream ([`crate::watch::observed`]).
pub fn feed<K>(
    events: impl Stream<Item = watcher::Result<Event<K>>> + Send + 'static,
    cache: Arc<Cache<K>>,
    scope: Option<String>,
) -> impl Stream<Item = watcher::Result<K>> + Send + 'static
where
    K: Resource + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    events
        .filter_map(|event| std::future::ready(event.ok()))
        .flat_map(move |event| {
            stream::iter(
                cache
                    .apply_event(scope.as_deref(), event)
                    .into_iter()
                    .map(Ok),
            )
        })
}

fn key_of<K: Resource>(object: &K) -> Key {
    let meta = object.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The resourceVersion as a number. Kubernetes calls it opaque; every
/// API server stores etcd's revision there, which only grows, and an
/// unparsable one only makes the cache trust the watch over our own write.
pub(super) fn version_of<K: Resource>(object: &K) -> Option<u64> {
    object.meta().resource_version.as_deref()?.parse().ok()
}

/// Hash of a JSON value's canonical bytes (serde_json sorts map keys).
fn hash_json(value: &serde_json::Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    serde_json::to_vec(value)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

/// Everything but `status`, the resourceVersion and managedFields: for
/// objects whose status no reconcile reads (HPA, PDB, Services, ...).
pub fn without_status<K: Serialize>(object: &K) -> u64 {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
    }
    hash_json(&value)
}

/// Every change: for metadata-only objects, whose content may have changed
/// whenever their resourceVersion did.
pub fn any_version<K: Resource>(object: &K) -> u64 {
    let mut hasher = DefaultHasher::new();
    object.meta().uid.hash(&mut hasher);
    object.meta().resource_version.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Service, ServiceSpec, ServiceStatus};
    use kube::api::ObjectMeta;

    fn service(name: &str, rv: u64, selector: &str) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                resource_version: Some(rv.to_string()),
                annotations: Some([(LAST_APPLIED.to_string(), "{...}".to_string())].into()),
                managed_fields: Some(vec![Default::default()]),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), selector.to_string())].into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn cache() -> Cache<Service> {
        Cache::new(without_status::<Service>).indexed(|svc| {
            svc.spec
                .iter()
                .flat_map(|s| s.selector.iter().flatten())
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        })
    }

    fn names(objects: &[Service]) -> Vec<String> {
        objects
            .iter()
            .map(|s| {
                format!(
                    "{}@{}",
                    s.metadata.name.clone().unwrap_or_default(),
                    s.metadata.resource_version.clone().unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn status_only_updates_trigger_nothing_and_objects_are_trimmed() {
        let cache = cache();
        assert_eq!(
            names(&cache.apply_event(None, Event::Apply(service("a", 1, "x")))),
            ["a@1"]
        );
        let mut status_only = service("a", 2, "x");
        status_only.status = Some(ServiceStatus::default());
        assert!(
            cache
                .apply_event(None, Event::Apply(status_only))
                .is_empty()
        );
        let cached = cache.get("ns", "a").expect("cached");
        assert_eq!(cached.metadata.resource_version.as_deref(), Some("2"));
        assert!(cached.metadata.managed_fields.is_none());
        assert!(
            cached
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| !a.contains_key(LAST_APPLIED))
        );
        // A selector change triggers the old version (the apps it used to
        // select) and the new one, and moves the index entry.
        let moved = cache.apply_event(None, Event::Apply(service("a", 3, "y")));
        assert_eq!(names(&moved), ["a@2", "a@3"]);
        assert!(cache.by_index("app=x").is_empty());
        assert_eq!(cache.by_index("app=y").len(), 1);
        // Deletes always trigger.
        assert_eq!(
            names(&cache.apply_event(None, Event::Delete(service("a", 4, "y")))),
            ["a@4"]
        );
        assert!(cache.get("ns", "a").is_none());
        assert!(cache.by_index("app=y").is_empty());
    }

    #[test]
    fn a_relist_triggers_only_changed_and_vanished_objects() {
        let cache = cache();
        for (name, rv) in [("a", 1), ("b", 2), ("c", 3)] {
            cache.apply_event(Some("ns"), Event::Apply(service(name, rv, name)));
        }
        let mut triggered = Vec::new();
        triggered.extend(cache.apply_event(Some("ns"), Event::Init));
        // a unchanged (new resourceVersion only), b changed, c gone, d new.
        triggered.extend(cache.apply_event(Some("ns"), Event::InitApply(service("a", 10, "a"))));
        triggered.extend(cache.apply_event(Some("ns"), Event::InitApply(service("b", 11, "z"))));
        triggered.extend(cache.apply_event(Some("ns"), Event::InitApply(service("d", 12, "d"))));
        // Until the relist is done, readers see the old state.
        assert!(cache.get("ns", "c").is_some());
        triggered.extend(cache.apply_event(Some("ns"), Event::InitDone));
        assert_eq!(names(&triggered), ["b@11", "d@12", "c@3"]);
        assert!(cache.get("ns", "c").is_none());
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.by_index("app=z").len(), 1);
        assert!(cache.by_index("app=b").is_empty());
    }

    #[test]
    fn a_cache_is_listed_once_its_scope_listed() {
        let cache = cache();
        assert!(!cache.is_listed("ns"));
        cache.apply_event(Some("ns"), Event::Init);
        assert!(!cache.is_listed("ns"), "not before the list is complete");
        cache.apply_event(Some("ns"), Event::InitDone);
        assert!(cache.is_listed("ns"));
        assert!(!cache.is_listed("other"));
        cache.apply_event(None, Event::Init);
        cache.apply_event(None, Event::InitDone);
        assert!(
            cache.is_listed("other"),
            "a watch of all namespaces covers every one"
        );
    }

    #[test]
    fn a_relist_of_one_namespace_keeps_the_others() {
        let cache = cache();
        let mut other = service("a", 1, "x");
        other.metadata.namespace = Some("other".into());
        cache.apply_event(Some("other"), Event::Apply(other));
        cache.apply_event(Some("ns"), Event::Apply(service("a", 2, "x")));
        cache.apply_event(Some("ns"), Event::Init);
        cache.apply_event(Some("ns"), Event::InitDone);
        assert!(cache.get("other", "a").is_some());
        assert!(cache.get("ns", "a").is_none());
    }

    #[test]
    fn our_own_writes_are_seen_until_the_watch_catches_up() {
        let cache = cache();
        cache.apply_event(None, Event::Apply(service("a", 5, "x")));
        cache.remember(service("a", 7, "y"));
        let seen = cache.get("ns", "a").expect("written");
        assert_eq!(seen.metadata.resource_version.as_deref(), Some("7"));
        assert!(seen.metadata.managed_fields.is_none(), "trimmed too");
        // An older event (still in flight when we wrote) does not hide the write.
        cache.apply_event(None, Event::Apply(service("a", 6, "x")));
        assert_eq!(
            cache
                .get("ns", "a")
                .and_then(|s| s.metadata.resource_version.clone()),
            Some("7".into())
        );
        cache.apply_event(None, Event::Apply(service("a", 7, "y")));
        cache.apply_event(None, Event::Apply(service("a", 9, "y")));
        assert_eq!(
            cache
                .get("ns", "a")
                .and_then(|s| s.metadata.resource_version.clone()),
            Some("9".into())
        );
        // Deleted by someone else after our write: gone, our write with it.
        cache.remember(service("a", 10, "y"));
        cache.apply_event(None, Event::Delete(service("a", 11, "y")));
        assert!(
            cache.get("ns", "a").is_none(),
            "a write of ours must not resurrect it"
        );
        cache.apply_event(None, Event::Apply(service("a", 9, "y")));
        // A delete of ours hides the object until the watch says it is gone,
        // but not a new object of that name.
        cache.remember_deleted("ns", "a", Some("uid-a".into()));
        assert!(cache.get("ns", "a").is_none());
        let mut recreated = service("a", 12, "y");
        recreated.metadata.uid = Some("uid-new".into());
        cache.apply_event(None, Event::Apply(recreated));
        assert_eq!(
            cache.get("ns", "a").and_then(|s| s.metadata.uid.clone()),
            Some("uid-new".into())
        );
    }

    #[test]
    fn a_write_the_watch_showed_first_is_not_kept() {
        let cache = cache();
        cache.apply_event(None, Event::Apply(service("a", 7, "x")));
        cache.remember(service("a", 7, "x"));
        cache.remember(service("a", 6, "x"));
        assert!(cache.read().written.is_empty());
        cache.apply_event(None, Event::Delete(service("a", 8, "x")));
        cache.remember_deleted("ns", "a", Some("uid-a".into()));
        assert!(cache.read().written.is_empty());
        // A create of ours the watch has not shown, then deleted: hidden
        // until the watch shows the delete.
        cache.remember(service("b", 9, "x"));
        cache.remember_deleted("ns", "b", Some("uid-b".into()));
        assert!(cache.get("ns", "b").is_none());
        cache.apply_event(None, Event::Apply(service("b", 9, "x")));
        assert!(cache.get("ns", "b").is_none());
    }

    #[test]
    fn a_trim_applies_to_watched_and_written_objects() {
        let cache = cache().trimmed(|svc| svc.status = None);
        let mut watched = service("a", 1, "x");
        watched.status = Some(ServiceStatus::default());
        cache.apply_event(None, Event::Apply(watched));
        assert!(cache.get("ns", "a").is_some_and(|s| s.status.is_none()));
        let mut written = service("a", 2, "x");
        written.status = Some(ServiceStatus::default());
        cache.remember(written);
        let seen = cache.get("ns", "a").expect("written");
        assert_eq!(seen.metadata.resource_version.as_deref(), Some("2"));
        assert!(seen.status.is_none());
    }

    #[test]
    fn metadata_fingerprints_follow_every_version() {
        let a = service("a", 1, "x");
        let mut b = a.clone();
        b.metadata.resource_version = Some("2".into());
        assert_ne!(any_version(&a), any_version(&b));
        assert_eq!(without_status(&a), without_status(&b));
    }
}

//! Indexing of the input: workloads (with application-tier classification),
//! and per-namespace lookups for Services, ConfigMaps, claims and autoscalers.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::{Object, patterns};

/// Scoping rules, rendered into `docs/rules.md`.
pub const SCOPING: &str = "\
The state rules (`host-path`, `local-upload-dir`, `pvc-app-tier`, `in-memory-session`, \
`in-process-scheduler`, `writable-root-fs`) judge **every workload in scope**, whether or not it \
declares ports or a Service in the input selects it (a worker with node-local files cannot be \
rescheduled or scaled either; most manifests omit `containerPort`; the admission webhook sees one \
object at a time). `single-replica` judges only the in-scope workloads that **serve traffic** (4.):

1. **Workload kinds.** `Deployment` (`apps/*`, `extensions/v1beta1`), `StatefulSet` (`apps/*`), \
`ReplicaSet` (`apps/*`, `extensions/*`), `ReplicationController` and `Pod` (`v1`), OpenShift \
`DeploymentConfig`, and `StatelessApp` (`stateless.dev/*`). `DaemonSet`s (node agents), `Job`s and \
`CronJob`s (batch) are never in scope. Objects of other kinds, or of the same kind name \
in another API group (e.g. a Knative `Service`), are ignored.
2. **Owned objects are folded into their owner.** A workload whose controller `ownerReference` \
names a workload present in the input (a `ReplicaSet` of a `Deployment`, a `Pod` of a `ReplicaSet`, \
the `Deployment` of a `StatelessApp`) is not evaluated on its own; its pod labels count as its \
owner's for Service selection. Without the owner in the input it is evaluated.
3. **Stateful by design is excluded.** Databases, caches, queues, search engines, TSDBs and \
consensus/object stores are stateful on purpose: the workload is excluded when the image of its first \
container, or of any container that declares ports, has a name (last path component, no tag) is one of postgres, postgresql, mysql, mariadb, mongo(db), \
redis, valkey, keydb, dragonfly, memcached, rabbitmq, kafka, zookeeper, etcd, elasticsearch, \
opensearch, solr, nats, cassandra, scylla, couchdb, neo4j, influxdb, clickhouse, cockroach, minio, \
consul, vault, prometheus, alertmanager, pushgateway, loki, victoria-metrics (and their `-server`, \
`-cluster`, `-sentinel`, `-galera`, `-repmgr` variants); when a workload or pod label \
`app.kubernetes.io/component` (or `component`) is database, db, cache, session-store, queue, \
message-queue, broker, message-broker, search, datastore, storage or one of those names; or when \
`app.kubernetes.io/name`, `app` or `k8s-app` is one of those names. The operator's own managed \
Redis (`app.kubernetes.io/managed-by: stateless-operator`, `app.kubernetes.io/component: \
session-store`) is excluded by the same rule. Singleton cluster agents (kube-state-metrics, \
cluster-autoscaler, external-dns) are excluded too: they shard or leader-elect instead of scaling. \
Exporters and UIs of data stores (`redis_exporter`, `mongo-express`, `phpmyadmin`) are ordinary apps.
4. **Serving traffic** (for `single-replica` and for edge scoping only). A workload serves traffic \
when a container declares a port that is not only for metrics or probes (named `metrics`, \
`http-metrics`, `probe`, `health`, `healthz`, ...), or when a Service with such a port selects its \
pods. A `StatelessApp` always serves traffic. A worker or controller with one replica is not \
reported: its downtime is not a user's failed request.

Edge rules (`session-affinity`, `sticky-ingress`) look at Services, Ingresses and load-balancer \
objects. Services are matched to workloads by `spec.selector` **within one namespace**; an object \
without `metadata.namespace` is in the \"unspecified\" namespace (Helm output often omits it), \
matched only with other objects without a namespace. A Service is reported when it selects \
application-tier pods, or selects no workload in the input and neither its labels nor its selector \
name a data store; it is not reported when everything it selects is excluded (e.g. a database). \
Headless and `ExternalName` Services and Services without a selector are skipped. Ingresses route to \
Services by backend name (`service.name` and legacy `serviceName`), Istio `DestinationRule`s by \
`spec.host` (`name` or `name.namespace.svc.cluster.local`), Traefik `IngressRoute`s, Gateway API \
`HTTPRoute`/`GRPCRoute` rules (each rule's own `backendRefs`), Contour `HTTPProxy`s, OpenShift \
`Route`s (`spec.to`, `spec.alternateBackends`), NGINX `VirtualServer` upstreams and Emissary \
`Mapping`s (`service: name[.namespace][:port]`) by their service references; Gateway API \
`BackendLBPolicy`, GKE `GCPBackendPolicy` and NGINX Gateway Fabric `UpstreamSettingsPolicy` by the \
Services in their `targetRefs`; Envoy Gateway `BackendTrafficPolicy`s and Azure `RoutePolicy`s \
through the `HTTPRoute`/`GRPCRoute`s they target, when those are in the input (a `Gateway` target or \
`targetSelectors` are not resolved); GKE `BackendConfig`s, `KongUpstreamPolicy`s and \
`KongIngress`es through the Services (and, for `KongIngress`, Ingresses) that name them in \
`cloud.google.com/backend-config`, `konghq.com/upstream-policy` or `konghq.com/override`, and on \
their own when nothing in the input names them. An edge object is skipped only when every backend \
is a known Service and none is application tier; a backend that is not a Service (a \
`ServiceImport`) or a target that is not in the input counts as possibly the application. \
OpenShift `Route`s are judged with the HAProxy router's defaults: an HTTP route (plain, edge or \
re-encrypt) gets a session cookie unless `haproxy.router.openshift.io/disable_cookies: \"true\"`, and \
a TLS passthrough route is balanced by client IP (`source`) unless \
`haproxy.router.openshift.io/balance` names another algorithm. Both defaults pin users to a pod as \
surely as an explicit setting, so they are reported (at the annotation that turns them off, the \
message saying the router does it by default); a cluster whose router was reconfigured otherwise \
can waive the rule on its Routes.

`StatelessApp` is read through a small adapter: `spec.image`, `spec.command`, `spec.args`, \
`spec.ports[]`, `spec.env[]`, `spec.envFrom[]`, `spec.volumes[]`, `spec.volumeMounts[]`, \
`spec.replicas.max` (autoscaled when `max >= 2`; the CRD default is 10), \
`spec.service.sessionAffinity`, and the `command` and `args` of each of `spec.workers[]` (for \
`in-process-scheduler`). Its pods carry the labels the operator's builder sets \
(`app.kubernetes.io/name` and `instance` and `part-of` = the app name, `component: app`, \
`managed-by: stateless-operator`), plus the pod labels of any workload it owns in the input.

**Waivers.** `metadata.annotations[\"stateless.dev/allow\"]: rule[,rule]` (or `*`) on the object a \
finding is on waives that rule for that object; `stateless.dev/allow-reason` says why. Waived \
findings are still returned with `\"waived\": true` and `\"waiver_reason\"`, and do not fail `lint`. \
A Service's or Ingress's waiver covers the findings on that Service or Ingress. A name that is \
neither `*` nor a rule waives nothing and is reported as `unknown-waiver` (severity low: it fails \
`lint` at the default `--min-severity low`, the webhook warns, the controller lists it in the \
status), with the valid rule names.

**Finding JSON.** `rule, severity, kind, namespace, name, path, message, remediation, waived` are \
always present (`namespace` is `null` when the manifest sets none); `file` and `line` when the \
source is known; `waiver_reason` on waived findings that give a reason.";

/// Label keys that name the software a workload runs.
const NAME_LABELS: &[&str] = &["app.kubernetes.io/name", "app", "k8s-app"];
/// Label keys that name the component of an application.
const COMPONENT_LABELS: &[&str] = &["app.kubernetes.io/component", "component"];

pub(crate) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

pub(crate) fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(crate) fn map_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    at(v, path).and_then(Value::as_object)
}

/// A scalar as text (strings, numbers and booleans; YAML often types values).
pub(crate) fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

/// API group of an `apiVersion` (`""` for the core group).
pub(crate) fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

/// Kinds the engine understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Deployment,
    StatefulSet,
    ReplicaSet,
    ReplicationController,
    DeploymentConfig,
    Pod,
    StatelessApp,
    Service,
    Ingress,
    ConfigMap,
    Claim,
    Volume,
    Hpa,
    ScaledObject,
    BackendConfig,
    DestinationRule,
    IngressRoute,
    TraefikService,
    HttpRoute,
    HttpProxy,
    GrpcRoute,
    BackendLbPolicy,
    EnvoyBackendTrafficPolicy,
    GcpBackendPolicy,
    AzureRoutePolicy,
    NginxUpstreamSettingsPolicy,
    OpenShiftRoute,
    KongIngress,
    KongUpstreamPolicy,
    NginxVirtualServer,
    EmissaryMapping,
}

impl Kind {
    /// Kinds that run the application's pods (the state rules judge these).
    pub(crate) const fn is_workload(self) -> bool {
        matches!(
            self,
            Kind::Deployment
                | Kind::StatefulSet
                | Kind::ReplicaSet
                | Kind::ReplicationController
                | Kind::DeploymentConfig
                | Kind::Pod
                | Kind::StatelessApp
        )
    }
}

pub(crate) fn classify(kind: &str, api_version: &str) -> Option<Kind> {
    let g = group(api_version);
    let k = match (kind, g) {
        ("Deployment", "apps" | "extensions") => Kind::Deployment,
        ("StatefulSet", "apps") => Kind::StatefulSet,
        ("ReplicaSet", "apps" | "extensions") => Kind::ReplicaSet,
        ("ReplicationController", "") => Kind::ReplicationController,
        ("DeploymentConfig", "apps.openshift.io" | "") => Kind::DeploymentConfig,
        ("Pod", "") => Kind::Pod,
        ("StatelessApp", "stateless.dev") => Kind::StatelessApp,
        ("Service", "") => Kind::Service,
        ("Ingress", "networking.k8s.io" | "extensions") => Kind::Ingress,
        ("ConfigMap", "") => Kind::ConfigMap,
        ("PersistentVolumeClaim", "") => Kind::Claim,
        ("PersistentVolume", "") => Kind::Volume,
        ("HorizontalPodAutoscaler", "autoscaling") => Kind::Hpa,
        ("ScaledObject", "keda.sh") => Kind::ScaledObject,
        ("BackendConfig", "cloud.google.com") => Kind::BackendConfig,
        ("DestinationRule", "networking.istio.io") => Kind::DestinationRule,
        ("IngressRoute", "traefik.io" | "traefik.containo.us") => Kind::IngressRoute,
        ("TraefikService", "traefik.io" | "traefik.containo.us") => Kind::TraefikService,
        ("HTTPRoute", "gateway.networking.k8s.io") => Kind::HttpRoute,
        ("HTTPProxy", "projectcontour.io") => Kind::HttpProxy,
        ("GRPCRoute", "gateway.networking.k8s.io") => Kind::GrpcRoute,
        ("BackendLBPolicy", "gateway.networking.k8s.io") => Kind::BackendLbPolicy,
        ("BackendTrafficPolicy", "gateway.envoyproxy.io") => Kind::EnvoyBackendTrafficPolicy,
        ("GCPBackendPolicy", "networking.gke.io") => Kind::GcpBackendPolicy,
        ("RoutePolicy", "alb.networking.azure.io") => Kind::AzureRoutePolicy,
        ("UpstreamSettingsPolicy", "gateway.nginx.org") => Kind::NginxUpstreamSettingsPolicy,
        // OpenShift 3 also served routes from the legacy core group (`apiVersion: v1`).
        ("Route", "route.openshift.io" | "") => Kind::OpenShiftRoute,
        ("KongIngress", "configuration.konghq.com") => Kind::KongIngress,
        ("KongUpstreamPolicy", "configuration.konghq.com") => Kind::KongUpstreamPolicy,
        ("VirtualServer" | "VirtualServerRoute", "k8s.nginx.org") => Kind::NginxVirtualServer,
        ("Mapping", "getambassador.io") => Kind::EmissaryMapping,
        _ => return None,
    };
    Some(k)
}

/// How many replicas a workload asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replicas {
    /// `spec.replicas` (omitted means 1).
    Fixed { count: i64, explicit: bool },
    /// A bare Pod.
    BarePod,
    /// StatelessApp `spec.replicas.min/max`.
    Range { max: i64 },
}

/// A workload and what the index knows about it.
#[derive(Debug)]
pub(crate) struct Workload<'a> {
    pub obj: usize,
    pub kind: Kind,
    pub kind_name: &'a str,
    pub name: &'a str,
    pub ns: &'a str,
    /// Pod spec (synthetic for a StatelessApp).
    pub pod_spec: Cow<'a, Value>,
    /// Every label set its pods carry (its template plus owned workloads').
    pub label_sets: Vec<BTreeMap<String, String>>,
    /// Root owner in the input, when this workload is owned by one.
    pub owner: Option<usize>,
    pub replicas: Replicas,
    /// Why the workload is stateful by design (excluded), if it is.
    pub stateful: Option<String>,
    /// A container declares a port that is not only metrics/probes.
    pub traffic_port: bool,
    /// A Service with a non-metrics port selects its pods.
    pub traffic_service: bool,
}

impl Workload<'_> {
    /// Judged by the state rules: every root workload that is not a data
    /// store. Workers and controllers keep state as badly as web pods do, and
    /// most manifests (and the admission webhook's single object) show
    /// neither a `containerPort` nor a Service.
    pub fn in_scope(&self) -> bool {
        self.owner.is_none() && self.stateful.is_none()
    }

    /// In scope and visibly serving traffic: only then is one replica
    /// downtime, and only then do Services in front of it count as the
    /// application's edge.
    pub fn serves_traffic(&self) -> bool {
        self.in_scope()
            && (self.kind == Kind::StatelessApp || self.traffic_port || self.traffic_service)
    }

    fn prefix(&self) -> &'static str {
        match self.kind {
            Kind::Pod => "spec",
            _ => "spec.template.spec",
        }
    }

    /// Field path of container `i`.
    pub fn container_path(&self, i: usize) -> String {
        match self.kind {
            Kind::StatelessApp => "spec".to_string(),
            _ => format!("{}.containers[{i}]", self.prefix()),
        }
    }

    /// Field path of volume `i`.
    pub fn volume_path(&self, i: usize) -> String {
        match self.kind {
            Kind::StatelessApp => format!("spec.volumes[{i}]"),
            _ => format!("{}.volumes[{i}]", self.prefix()),
        }
    }
}

/// Per-namespace lookups.
#[derive(Debug, Default)]
pub(crate) struct Namespace<'a> {
    pub services: Vec<usize>,
    pub services_by_name: HashMap<&'a str, Vec<usize>>,
    pub ingresses: Vec<usize>,
    /// (kind, name) → Gateway API routes (`HTTPRoute`, `GRPCRoute`), for
    /// policies that attach to a route.
    pub routes_by_name: HashMap<(&'a str, &'a str), Vec<usize>>,
    pub config_maps: HashMap<&'a str, Vec<usize>>,
    pub claims: HashMap<&'a str, Vec<usize>>,
    /// (target kind, target name) → (autoscaler object, max replicas).
    pub scalers: HashMap<(&'a str, &'a str), Vec<(usize, i64)>>,
    /// label (key, value) → root workloads whose pods carry it.
    pub postings: HashMap<(String, String), Vec<usize>>,
    /// (kind, name) → workload indexes.
    pub workloads_by_name: HashMap<(&'a str, &'a str), Vec<usize>>,
}

/// Which objects may refer to each other. Objects read from files that
/// define the same object (same kind, namespace and name) are alternative
/// renderings (chart variants, overlays): they never refer to each other.
///
/// Conflicting file pairs are stored only for objects defined in a few files;
/// an object defined in many files (the same manifest copied N times) would
/// otherwise cost N²/2 pairs. For those, each file keeps the object's id and
/// two files conflict when their lists share one.
#[derive(Debug, Default)]
pub(crate) struct Visibility {
    file_of: Vec<Option<u32>>,
    conflicts: HashSet<(u32, u32)>,
    /// File id → sorted ids of the widely defined objects it defines.
    wide: HashMap<u32, Vec<u32>>,
    /// File id → its copy class (files with the same `wide` list).
    class_of: HashMap<u32, u32>,
}

/// Above this many defining files an object is checked per file, not per pair.
const PAIRWISE_MAX_FILES: usize = 16;

impl Visibility {
    pub(crate) fn build(objects: &[Object]) -> Self {
        let mut file_ids: HashMap<&str, u32> = HashMap::new();
        let mut file_of = Vec::with_capacity(objects.len());
        let mut defined: HashMap<(&str, &str, &str, &str), Vec<u32>> = HashMap::new();
        for obj in objects {
            let Some(src) = &obj.source else {
                file_of.push(None);
                continue;
            };
            let next = file_ids.len() as u32;
            let id = *file_ids.entry(src.file.as_str()).or_insert(next);
            file_of.push(Some(id));
            let v = &obj.value;
            let key = (
                str_at(v, &["apiVersion"]).map(group).unwrap_or(""),
                str_at(v, &["kind"]).unwrap_or(""),
                ns_of(v),
                name_of(v),
            );
            if key.1.is_empty() || key.3.is_empty() {
                continue;
            }
            let files = defined.entry(key).or_default();
            if files.last() != Some(&id) {
                files.push(id);
            }
        }
        // Sorting, not a `contains` per push: that would be quadratic in the
        // number of files defining one object.
        for files in defined.values_mut() {
            files.sort_unstable();
            files.dedup();
        }
        let mut conflicts = HashSet::new();
        let mut wide: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut next_wide = 0u32;
        for files in defined.values().filter(|f| f.len() > 1) {
            if files.len() > PAIRWISE_MAX_FILES {
                for &f in files {
                    wide.entry(f).or_default().push(next_wide);
                }
                next_wide += 1;
                continue;
            }
            for (i, &a) in files.iter().enumerate() {
                for &b in &files[i + 1..] {
                    conflicts.insert((a.min(b), a.max(b)));
                }
            }
        }
        // Ids were handed out in increasing order: every list is sorted.
        // Files with the same widely defined objects (copies of one manifest)
        // form a class; two files of a class always conflict.
        let mut classes: HashMap<&[u32], u32> = HashMap::new();
        let mut class_of = HashMap::new();
        for (&file, ids) in &wide {
            let next = classes.len() as u32;
            class_of.insert(file, *classes.entry(ids.as_slice()).or_insert(next));
        }
        Visibility {
            file_of,
            conflicts,
            wide,
            class_of,
        }
    }

    /// (copy class, file) of object `i`, for ordering candidates; objects
    /// outside every class sort first.
    pub fn class_key(&self, i: usize) -> (u32, u32) {
        match self.file_of.get(i).copied().flatten() {
            Some(f) => (self.class_of.get(&f).map_or(0, |c| c + 1), f),
            None => (0, u32::MAX),
        }
    }

    /// Stored entries (pairs plus per-file ids): linear in the input.
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        self.conflicts.len() + self.wide.values().map(Vec::len).sum::<usize>()
    }

    fn files_conflict(&self, a: u32, b: u32) -> bool {
        if self.conflicts.contains(&(a.min(b), a.max(b))) {
            return true;
        }
        match (self.wide.get(&a), self.wide.get(&b)) {
            (Some(x), Some(y)) => sorted_intersect(x, y),
            _ => false,
        }
    }

    /// Whether object `a` may refer to object `b`.
    pub fn sees(&self, a: usize, b: usize) -> bool {
        match (
            self.file_of.get(a).copied().flatten(),
            self.file_of.get(b).copied().flatten(),
        ) {
            (Some(fa), Some(fb)) if fa != fb => !self.files_conflict(fa, fb),
            _ => true,
        }
    }

    fn same_file(&self, a: usize, b: usize) -> bool {
        self.file_of.get(a) == self.file_of.get(b)
    }

    /// The candidate `from` should use: same file first, then any visible.
    pub fn pick(&self, from: usize, candidates: &[usize]) -> Option<usize> {
        candidates
            .iter()
            .copied()
            .find(|&c| self.same_file(from, c))
            .or_else(|| candidates.iter().copied().find(|&c| self.sees(from, c)))
    }
}

/// Whether two sorted lists share an element.
fn sorted_intersect(x: &[u32], y: &[u32]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        match x[i].cmp(&y[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// Everything the rules need, built in one pass over the input.
pub(crate) struct Index<'a> {
    pub objects: &'a [Object],
    pub kinds: Vec<Option<Kind>>,
    pub namespaces: HashMap<&'a str, Namespace<'a>>,
    pub workloads: Vec<Workload<'a>>,
    /// PersistentVolumes (cluster-scoped).
    pub volumes: Vec<usize>,
    pub visibility: Visibility,
    /// Service object index → root workloads it selects.
    pub service_targets: HashMap<usize, Vec<usize>>,
}

pub(crate) fn name_of(v: &Value) -> &str {
    str_at(v, &["metadata", "name"]).unwrap_or("")
}

/// Namespace bucket key: `""` when the manifest sets none.
pub(crate) fn ns_of(v: &Value) -> &str {
    str_at(v, &["metadata", "namespace"]).unwrap_or("")
}

fn string_map(v: Option<&Map<String, Value>>) -> BTreeMap<String, String> {
    v.map(|m| {
        m.iter()
            .filter_map(|(k, v)| scalar_text(v).map(|s| (k.clone(), s.into_owned())))
            .collect()
    })
    .unwrap_or_default()
}

fn as_int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The label set the operator puts on a StatelessApp's pods; must equal
/// `build::labels::app(name)` (checked by `tests/lint_engine.rs`). Kept here
/// so the engine does not depend on the builders.
pub fn stateless_app_pod_labels(name: &str) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", name),
        ("app.kubernetes.io/instance", name),
        ("app.kubernetes.io/component", "app"),
        ("app.kubernetes.io/part-of", name),
        ("app.kubernetes.io/managed-by", "stateless-operator"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// StatelessApp adapter: a pod spec with one container from the app spec.
fn stateless_app_pod_spec(v: &Value) -> Value {
    let spec = v.get("spec").unwrap_or(&Value::Null);
    let mut container = Map::new();
    container.insert("name".into(), json!("app"));
    for key in [
        "image",
        "command",
        "args",
        "ports",
        "env",
        "envFrom",
        "volumeMounts",
    ] {
        if let Some(x) = spec.get(key) {
            container.insert(key.into(), x.clone());
        }
    }
    // The container security context is set by the operator's builder.
    container.insert(
        "securityContext".into(),
        json!({"readOnlyRootFilesystem": true}),
    );
    json!({
        "containers": [Value::Object(container)],
        "volumes": spec.get("volumes").cloned().unwrap_or(Value::Null),
    })
}

fn stateful_reason(
    v: &Value,
    pod_spec: &Value,
    template_labels: &BTreeMap<String, String>,
) -> Option<String> {
    let own = string_map(map_at(v, &["metadata", "labels"]));
    for labels in [&own, template_labels] {
        for key in COMPONENT_LABELS {
            if let Some(val) = labels.get(*key)
                && patterns::stateful_component(val)
            {
                return Some(format!("label {key}={val}"));
            }
        }
        for key in NAME_LABELS {
            if let Some(val) = labels.get(*key)
                && patterns::stateful_name(val)
            {
                return Some(format!("label {key}={val}"));
            }
        }
    }
    // The main (first) container, or any container serving a port, runs a
    // data store (sidecars such as config reloaders often come first).
    arr_at(pod_spec, &["containers"])
        .iter()
        .enumerate()
        .filter(|(i, c)| *i == 0 || !arr_at(c, &["ports"]).is_empty())
        .find_map(|(_, c)| str_at(c, &["image"]).and_then(patterns::stateful_image))
        .map(|known| format!("image {known}"))
}

fn traffic_port(pod_spec: &Value) -> bool {
    arr_at(pod_spec, &["containers"]).iter().any(|c| {
        arr_at(c, &["ports"]).iter().any(|p| {
            p.get("containerPort").is_some()
                && !str_at(p, &["name"]).is_some_and(patterns::metrics_port_name)
        })
    })
}

/// A Service port that carries traffic (not only metrics/probes).
pub(crate) fn service_has_traffic_port(svc: &Value) -> bool {
    let ports = arr_at(svc, &["spec", "ports"]);
    ports.is_empty()
        || ports.iter().any(|p| {
            let named_metrics = str_at(p, &["name"]).is_some_and(patterns::metrics_port_name);
            let target_metrics =
                str_at(p, &["targetPort"]).is_some_and(patterns::metrics_port_name);
            !(named_metrics || target_metrics)
        })
}

impl<'a> Index<'a> {
    pub fn build(objects: &'a [Object]) -> Self {
        let mut index = Index {
            objects,
            kinds: Vec::with_capacity(objects.len()),
            namespaces: HashMap::new(),
            workloads: Vec::new(),
            volumes: Vec::new(),
            visibility: Visibility::build(objects),
            service_targets: HashMap::new(),
        };
        for (i, obj) in objects.iter().enumerate() {
            let v = &obj.value;
            let kind = match (str_at(v, &["kind"]), str_at(v, &["apiVersion"])) {
                (Some(k), Some(a)) => classify(k, a),
                _ => None,
            };
            index.kinds.push(kind);
            let Some(kind) = kind else { continue };
            let name = name_of(v);
            let ns_key = ns_of(v);
            let ns = index.namespaces.entry(ns_key).or_default();
            match kind {
                Kind::Service => {
                    ns.services.push(i);
                    ns.services_by_name.entry(name).or_default().push(i);
                }
                Kind::Ingress => ns.ingresses.push(i),
                Kind::HttpRoute | Kind::GrpcRoute => {
                    let kind_name = str_at(v, &["kind"]).unwrap_or("");
                    ns.routes_by_name
                        .entry((kind_name, name))
                        .or_default()
                        .push(i);
                }
                Kind::ConfigMap => {
                    ns.config_maps.entry(name).or_default().push(i);
                }
                Kind::Claim => {
                    ns.claims.entry(name).or_default().push(i);
                }
                Kind::Volume => index.volumes.push(i),
                Kind::Hpa | Kind::ScaledObject => {
                    let target_kind =
                        str_at(v, &["spec", "scaleTargetRef", "kind"]).unwrap_or("Deployment");
                    let Some(target) = str_at(v, &["spec", "scaleTargetRef", "name"]) else {
                        continue;
                    };
                    let max = if kind == Kind::Hpa {
                        as_int(at(v, &["spec", "maxReplicas"])).unwrap_or(0)
                    } else {
                        // KEDA's default maxReplicaCount is 100.
                        as_int(at(v, &["spec", "maxReplicaCount"])).unwrap_or(100)
                    };
                    ns.scalers
                        .entry((target_kind, target))
                        .or_default()
                        .push((i, max));
                }
                Kind::Deployment
                | Kind::StatefulSet
                | Kind::ReplicaSet
                | Kind::ReplicationController
                | Kind::DeploymentConfig
                | Kind::Pod
                | Kind::StatelessApp => {
                    let kind_name = str_at(v, &["kind"]).unwrap_or("");
                    let w = workload(i, kind, kind_name, name, ns_key, v);
                    ns.workloads_by_name
                        .entry((kind_name, name))
                        .or_default()
                        .push(index.workloads.len());
                    index.workloads.push(w);
                }
                _ => {}
            }
        }
        index.resolve_owners();
        index.build_postings();
        index.match_services();
        index
    }

    /// Fold owned workloads into their root owner.
    fn resolve_owners(&mut self) {
        let mut direct: Vec<Option<usize>> = vec![None; self.workloads.len()];
        for (wi, w) in self.workloads.iter().enumerate() {
            let v = &self.objects[w.obj].value;
            let Some(ns) = self.namespaces.get(w.ns) else {
                continue;
            };
            let owners = arr_at(v, &["metadata", "ownerReferences"]);
            let controller = owners
                .iter()
                .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
                .or(if owners.len() == 1 {
                    owners.first()
                } else {
                    None
                });
            if let Some(o) = controller
                && let (Some(k), Some(n)) = (str_at(o, &["kind"]), str_at(o, &["name"]))
                && let Some(cands) = ns.workloads_by_name.get(&(k, n))
                && let Some(owner) = cands
                    .iter()
                    .copied()
                    .find(|&c| c != wi && self.visibility.sees(w.obj, self.workloads[c].obj))
            {
                direct[wi] = Some(owner);
            }
        }
        for wi in 0..self.workloads.len() {
            let mut root = wi;
            let mut hops = 0;
            while let Some(next) = direct[root] {
                root = next;
                hops += 1;
                if hops > 8 || root == wi {
                    break;
                }
            }
            if root != wi && direct[root].is_none() {
                self.workloads[wi].owner = Some(root);
                let sets = self.workloads[wi].label_sets.clone();
                self.workloads[root].label_sets.extend(sets);
            }
        }
    }

    fn build_postings(&mut self) {
        for (wi, w) in self.workloads.iter().enumerate() {
            if w.owner.is_some() {
                continue;
            }
            let Some(ns) = self.namespaces.get_mut(w.ns) else {
                continue;
            };
            for set in &w.label_sets {
                for (k, v) in set {
                    let list = ns.postings.entry((k.clone(), v.clone())).or_default();
                    if list.last() != Some(&wi) {
                        list.push(wi);
                    }
                }
            }
        }
        // Candidates of one copy class, and of one file within it, are
        // contiguous: a Service skips its class's other files in O(log n).
        let workloads = &self.workloads;
        let visibility = &self.visibility;
        for ns in self.namespaces.values_mut() {
            for list in ns.postings.values_mut() {
                list.sort_unstable_by_key(|&wi| (visibility.class_key(workloads[wi].obj), wi));
                list.dedup();
            }
        }
    }

    /// The candidates a Service in object `si` must check: all but those in
    /// the other files of its copy class, which it can never see.
    fn visible_candidates<'c>(&self, si: usize, candidates: &'c [usize]) -> [&'c [usize]; 3] {
        let (class, file) = self.visibility.class_key(si);
        if class == 0 {
            return [candidates, &[], &[]];
        }
        let key = |wi: &usize| self.visibility.class_key(self.workloads[*wi].obj);
        let lo = candidates.partition_point(|wi| key(wi).0 < class);
        let hi = candidates.partition_point(|wi| key(wi).0 <= class);
        let own_lo = candidates.partition_point(|wi| key(wi) < (class, file));
        let own_hi = candidates.partition_point(|wi| key(wi) <= (class, file));
        [
            &candidates[..lo],
            &candidates[own_lo.clamp(lo, hi)..own_hi.clamp(lo, hi)],
            &candidates[hi..],
        ]
    }

    fn match_services(&mut self) {
        let mut targets: HashMap<usize, Vec<usize>> = HashMap::new();
        for ns in self.namespaces.values() {
            for &si in &ns.services {
                let svc = &self.objects[si].value;
                let selector = string_map(map_at(svc, &["spec", "selector"]));
                if selector.is_empty() {
                    continue;
                }
                // Start from the rarest label, then check the whole selector.
                let Some(candidates) = selector
                    .iter()
                    .map(|(k, v)| {
                        ns.postings
                            .get(&(k.clone(), v.clone()))
                            .map(Vec::as_slice)
                            .unwrap_or(&[])
                    })
                    .min_by_key(|list| list.len())
                else {
                    continue;
                };
                let mut selected: Vec<usize> = self
                    .visible_candidates(si, candidates)
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|&wi| {
                        self.visibility.sees(si, self.workloads[wi].obj)
                            && self.workloads[wi]
                                .label_sets
                                .iter()
                                .any(|set| selector.iter().all(|(k, v)| set.get(k) == Some(v)))
                    })
                    .collect();
                selected.sort_unstable();
                if !selected.is_empty() {
                    targets.insert(si, selected);
                }
            }
        }
        for (&si, selected) in &targets {
            if service_has_traffic_port(&self.objects[si].value) {
                for &wi in selected {
                    self.workloads[wi].traffic_service = true;
                }
            }
        }
        self.service_targets = targets;
    }

    /// The ConfigMap `from` refers to by name, and its `data`.
    pub fn config_map_data(
        &self,
        from: usize,
        ns: &str,
        name: &str,
    ) -> Option<&'a Map<String, Value>> {
        let cands = self.namespaces.get(ns)?.config_maps.get(name)?;
        let i = self.visibility.pick(from, cands)?;
        map_at(&self.objects[i].value, &["data"])
    }

    /// The claim `from` refers to by name.
    pub fn claim(&self, from: usize, ns: &str, name: &str) -> Option<(usize, &'a Value)> {
        let cands = self.namespaces.get(ns)?.claims.get(name)?;
        self.visibility
            .pick(from, cands)
            .map(|i| (i, &self.objects[i].value))
    }

    /// The PersistentVolume a claim is (or will be) bound to, when the input
    /// says: `spec.volumeName`, a PV `claimRef` naming it, or for a claim with
    /// `storageClassName: ""` (static binding) the one PV with no storage
    /// class that offers the claim's access modes.
    pub fn bound_volume(&self, claim_obj: usize, claim: &Value, ns: &str) -> Option<&'a Value> {
        let name = name_of(claim);
        let visible = || {
            self.volumes
                .iter()
                .copied()
                .filter(move |&pv| self.visibility.sees(claim_obj, pv))
                .map(|pv| &self.objects[pv].value)
        };
        if let Some(vn) = str_at(claim, &["spec", "volumeName"]) {
            return visible().find(|pv| name_of(pv) == vn);
        }
        if let Some(pv) = visible().find(|pv| {
            str_at(pv, &["spec", "claimRef", "name"]) == Some(name)
                && str_at(pv, &["spec", "claimRef", "namespace"])
                    .is_none_or(|n| n == ns || ns.is_empty())
        }) {
            return Some(pv);
        }
        if str_at(claim, &["spec", "storageClassName"]) != Some("") {
            return None;
        }
        let wanted: Vec<&str> = arr_at(claim, &["spec", "accessModes"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut candidates = visible().filter(|pv| {
            str_at(pv, &["spec", "storageClassName"]).is_none_or(str::is_empty)
                && at(pv, &["spec", "claimRef"]).is_none()
                && wanted.iter().all(|m| {
                    arr_at(pv, &["spec", "accessModes"])
                        .iter()
                        .any(|x| x.as_str() == Some(m))
                })
        });
        let first = candidates.next()?;
        candidates.next().is_none().then_some(first)
    }

    /// The Gateway API route of `kind` (`HTTPRoute`, `GRPCRoute`) `from`
    /// refers to by name.
    pub fn route(&self, from: usize, ns: &str, kind: &str, name: &str) -> Option<usize> {
        let cands = self.namespaces.get(ns)?.routes_by_name.get(&(kind, name))?;
        self.visibility.pick(from, cands)
    }

    /// The Service `from` refers to by name.
    pub fn service(&self, from: usize, ns: &str, name: &str) -> Option<usize> {
        let cands = self.namespaces.get(ns)?.services_by_name.get(name)?;
        self.visibility.pick(from, cands)
    }

    /// Max replicas of the autoscalers targeting a workload, if any.
    pub fn scaler_max(&self, w: &Workload<'_>) -> Option<i64> {
        self.namespaces
            .get(w.ns)?
            .scalers
            .get(&(w.kind_name, w.name))?
            .iter()
            .filter(|(hpa, _)| self.visibility.sees(w.obj, *hpa))
            .map(|(_, max)| *max)
            .max()
    }
}

fn workload<'a>(
    obj: usize,
    kind: Kind,
    kind_name: &'a str,
    name: &'a str,
    ns: &'a str,
    v: &'a Value,
) -> Workload<'a> {
    let (pod_spec, labels, replicas) = match kind {
        Kind::StatelessApp => {
            let mut labels = string_map(map_at(v, &["metadata", "labels"]));
            labels.extend(stateless_app_pod_labels(name));
            // CRD defaults: min 2, max 10.
            let max = as_int(at(v, &["spec", "replicas", "max"])).unwrap_or(10);
            (
                Cow::Owned(stateless_app_pod_spec(v)),
                labels,
                Replicas::Range { max },
            )
        }
        Kind::Pod => (
            Cow::Borrowed(v.get("spec").unwrap_or(&Value::Null)),
            string_map(map_at(v, &["metadata", "labels"])),
            Replicas::BarePod,
        ),
        _ => {
            let replicas = at(v, &["spec", "replicas"]);
            (
                Cow::Borrowed(at(v, &["spec", "template", "spec"]).unwrap_or(&Value::Null)),
                string_map(map_at(v, &["spec", "template", "metadata", "labels"])),
                Replicas::Fixed {
                    count: as_int(replicas).unwrap_or(1),
                    explicit: replicas.is_some_and(|r| !r.is_null()),
                },
            )
        }
    };
    let stateful = stateful_reason(v, &pod_spec, &labels);
    let traffic_port = traffic_port(&pod_spec);
    Workload {
        obj,
        kind,
        kind_name,
        name,
        ns,
        pod_spec,
        label_sets: vec![labels],
        owner: None,
        replicas,
        stateful,
        traffic_port,
        traffic_service: false,
    }
}

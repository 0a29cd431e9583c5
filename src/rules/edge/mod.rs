//! Edge rules: `session-affinity` and `sticky-ingress`, on Services, Ingresses
//! and load-balancer objects read as plain JSON.
//!
//! One module per family: [`annotations`] (Ingress and Service annotations),
//! [`gateway`] (Gateway API and the policies that attach to its routes or
//! Services), [`vendor`] (controller-specific CRDs and OpenShift Routes).

mod annotations;
mod gateway;
mod vendor;

use serde_json::{Map, Value};

use super::RuleId;
use super::checks::Sink;
use super::model::{Index, Kind, arr_at, at, map_at, name_of, ns_of, str_at};
use super::patterns;

/// What a Service (or a backend reference) leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Selects application-tier pods.
    App,
    /// Known, and selects nothing of the application tier (e.g. a database).
    NonApp,
    /// Not in the input, or selects no workload in the input.
    Unknown,
}

/// The edge object a finding is about.
#[derive(Clone, Copy)]
struct Edge<'a> {
    i: usize,
    v: &'a Value,
    ns: &'a str,
    name: &'a str,
}

impl Edge<'_> {
    fn sticky(&self, out: &mut Sink<'_>, path: String, message: String) {
        out.push(self.i, RuleId::StickyIngress, path, message);
    }
}

/// Where an edge object sends traffic.
#[derive(Debug, Default)]
struct Backends {
    /// (namespace, Service name); an empty namespace is the referrer's.
    services: Vec<(String, String)>,
    /// Some backend is not a Service, or a target is not in the input: it
    /// may be the application.
    opaque: bool,
}

impl Backends {
    fn service(&mut self, ns: &str, name: &str) {
        self.services.push((ns.to_string(), name.to_string()));
    }

    fn extend(&mut self, other: Backends) {
        self.services.extend(other.services);
        self.opaque |= other.opaque;
    }
}

/// `metadata.annotations["key"]` path.
fn annotation_path(key: &str) -> String {
    format!(
        "metadata.annotations[{}]",
        serde_json::to_string(key).unwrap_or_else(|_| format!("\"{key}\""))
    )
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    map_at(v, &["metadata", "annotations"])
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "1" | "on"
    )
}

/// A request header whose value is the client's identity or session, so
/// hashing on it pins each client to one pod. Hashing on anything else (a
/// tenant, a shard key, a URI) spreads clients and is not reported.
fn identifies_client(header: &str) -> bool {
    let h = header.trim().to_ascii_lowercase();
    if h == "user-agent" {
        return false;
    }
    matches!(
        h.as_str(),
        "authorization"
            | "proxy-authorization"
            | "cookie"
            | "forwarded"
            | "x-forwarded-for"
            | "x-real-ip"
            | "true-client-ip"
            | "cf-connecting-ip"
    ) || [
        "session", "sticky", "affinity", "user", "client", "token", "auth", "jwt", "login",
        "account",
    ]
    .iter()
    .any(|p| h.contains(p))
}

fn looks_like_data_store(svc: &Value) -> bool {
    let labels = map_at(svc, &["metadata", "labels"]);
    let selector = map_at(svc, &["spec", "selector"]);
    [labels, selector].into_iter().flatten().any(|m| {
        m.iter().any(|(k, v)| {
            let v = v.as_str().unwrap_or("");
            match k.as_str() {
                "app.kubernetes.io/component" | "component" => patterns::stateful_component(v),
                "app.kubernetes.io/name" | "app" | "k8s-app" => patterns::stateful_name(v),
                _ => false,
            }
        })
    })
}

fn service_scope(index: &Index<'_>, si: usize) -> Scope {
    let svc = &index.objects[si].value;
    if map_at(svc, &["spec", "selector"]).is_none_or(Map::is_empty)
        || str_at(svc, &["spec", "type"]) == Some("ExternalName")
    {
        return Scope::NonApp;
    }
    match index.service_targets.get(&si) {
        Some(targets)
            if targets
                .iter()
                .any(|&wi| index.workloads[wi].serves_traffic()) =>
        {
            Scope::App
        }
        Some(_) => Scope::NonApp,
        None if looks_like_data_store(svc) => Scope::NonApp,
        None => Scope::Unknown,
    }
}

fn named_service_scope(index: &Index<'_>, from: usize, ns: &str, name: &str) -> Scope {
    index
        .service(from, ns, name)
        .map(|si| service_scope(index, si))
        .unwrap_or(Scope::Unknown)
}

/// Report unless every backend is known and none is application tier.
fn routes_to_app(index: &Index<'_>, from: usize, ns: &str, backends: &Backends) -> bool {
    backends.opaque
        || backends.services.is_empty()
        || backends.services.iter().any(|(bns, name)| {
            let bns = if bns.is_empty() { ns } else { bns };
            named_service_scope(index, from, bns, name) != Scope::NonApp
        })
}

/// The Services and Ingresses of `edge`'s namespace that attach it through
/// an annotation (`matches` is given the annotation's value).
fn attached_by_annotation(
    index: &Index<'_>,
    edge: &Edge<'_>,
    keys: &[&str],
    matches: impl Fn(&str) -> bool,
) -> Vec<usize> {
    let Some(ns) = index.namespaces.get(edge.ns) else {
        return Vec::new();
    };
    ns.services
        .iter()
        .chain(&ns.ingresses)
        .copied()
        .filter(|&user| {
            index.visibility.sees(edge.i, user)
                && keys
                    .iter()
                    .any(|k| annotation(&index.objects[user].value, k).is_some_and(&matches))
        })
        .collect()
}

/// Report a policy attached by annotation unless it is attached to
/// something and everything it is attached to leads only to non-app pods.
fn attached_to_app(index: &Index<'_>, users: &[usize]) -> bool {
    users.is_empty()
        || users.iter().any(|&u| {
            let v = &index.objects[u].value;
            match index.kinds[u] {
                Some(Kind::Ingress) => {
                    routes_to_app(index, u, ns_of(v), &annotations::ingress_backends(v))
                }
                _ => service_scope(index, u) != Scope::NonApp,
            }
        })
}

/// Policy `targetRefs` (or the older single `targetRef`) naming Services:
/// the Services as backends; any other kind is opaque.
fn service_targets(v: &Value) -> Backends {
    let mut out = Backends::default();
    let single = at(v, &["spec", "targetRef"]).into_iter();
    for t in arr_at(v, &["spec", "targetRefs"]).iter().chain(single) {
        let kind = str_at(t, &["kind"]).unwrap_or("Service");
        let group = str_at(t, &["group"]).unwrap_or("");
        match str_at(t, &["name"]) {
            Some(name) if kind == "Service" && matches!(group, "" | "core") => {
                out.service(str_at(t, &["namespace"]).unwrap_or(""), name);
            }
            _ => out.opaque = true,
        }
    }
    out
}

pub(crate) fn run_edge_rules(index: &Index<'_>, out: &mut Sink<'_>) {
    if !out.runs(RuleId::SessionAffinity) && !out.runs(RuleId::StickyIngress) {
        return;
    }
    for (i, kind) in index.kinds.iter().enumerate() {
        let Some(kind) = kind else { continue };
        let v = &index.objects[i].value;
        let edge = Edge {
            i,
            v,
            ns: ns_of(v),
            name: name_of(v),
        };
        match kind {
            Kind::Service => service(index, &edge, out),
            Kind::StatelessApp
                if str_at(v, &["spec", "service", "sessionAffinity"])
                    .is_some_and(|a| a.eq_ignore_ascii_case("ClientIP")) =>
            {
                out.push(
                    i,
                    RuleId::SessionAffinity,
                    "spec.service.sessionAffinity".to_string(),
                    format!(
                        "StatelessApp `{}` asks for `sessionAffinity: ClientIP`: each client \
                             is pinned to one pod.",
                        edge.name
                    ),
                );
            }
            Kind::Ingress => {
                let backends = annotations::ingress_backends(v);
                if routes_to_app(index, i, edge.ns, &backends) {
                    for (path, what) in annotations::sticky_annotations(v) {
                        edge.sticky(out, path, format!("Ingress `{}` {what}.", edge.name));
                    }
                }
            }
            Kind::HttpRoute | Kind::GrpcRoute => gateway::route_rules(index, &edge, out),
            Kind::BackendLbPolicy => gateway::backend_lb_policy(index, &edge, out),
            Kind::EnvoyBackendTrafficPolicy => {
                gateway::envoy_backend_traffic_policy(index, &edge, out)
            }
            Kind::GcpBackendPolicy => gateway::gcp_backend_policy(index, &edge, out),
            Kind::AzureRoutePolicy => gateway::azure_route_policy(index, &edge, out),
            Kind::NginxUpstreamSettingsPolicy => {
                gateway::nginx_upstream_settings_policy(index, &edge, out)
            }
            Kind::BackendConfig => vendor::backend_config(index, &edge, out),
            Kind::DestinationRule => vendor::destination_rule(index, &edge, out),
            Kind::IngressRoute => vendor::traefik_ingress_route(index, &edge, out),
            Kind::TraefikService => vendor::traefik_service(&edge, out),
            Kind::HttpProxy => vendor::contour_http_proxy(index, &edge, out),
            Kind::OpenShiftRoute => vendor::openshift_route(index, &edge, out),
            Kind::KongIngress => vendor::kong_ingress(index, &edge, out),
            Kind::KongUpstreamPolicy => vendor::kong_upstream_policy(index, &edge, out),
            Kind::NginxVirtualServer => vendor::nginx_virtual_server(index, &edge, out),
            Kind::EmissaryMapping => vendor::emissary_mapping(index, &edge, out),
            _ => {}
        }
    }
}

fn service(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    let scope = service_scope(index, edge.i);
    if scope == Scope::NonApp {
        return;
    }
    let (v, name) = (edge.v, edge.name);
    let headless = str_at(v, &["spec", "clusterIP"]) == Some("None");
    if !headless
        && str_at(v, &["spec", "sessionAffinity"])
            .is_some_and(|a| a.eq_ignore_ascii_case("ClientIP"))
    {
        let timeout = at(
            v,
            &[
                "spec",
                "sessionAffinityConfig",
                "clientIP",
                "timeoutSeconds",
            ],
        )
        .and_then(Value::as_i64)
        .unwrap_or(10800);
        let target = if scope == Scope::App {
            "application pods"
        } else {
            "its pods (no selected workload in the input)"
        };
        out.push(
            edge.i,
            RuleId::SessionAffinity,
            "spec.sessionAffinity".to_string(),
            format!(
                "Service `{name}` pins each client IP to one of {target} for {timeout}s \
                 (`sessionAffinity: ClientIP`)."
            ),
        );
    }
    for (path, what) in annotations::sticky_annotations(v) {
        edge.sticky(out, path, format!("Service `{name}` {what}."));
    }
}

//! Edge rules: `session-affinity` and `sticky-ingress`, on Services, Ingresses
//! and load-balancer objects read as plain JSON.

use serde_json::{Map, Value};

use super::RuleId;
use super::checks::Sink;
use super::model::{Index, Kind, arr_at, at, map_at, ns_of, str_at};
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

/// `metadata.annotations["key"]` path.
fn annotation_path(key: &str) -> String {
    format!(
        "metadata.annotations[{}]",
        serde_json::to_string(key).unwrap_or_else(|_| format!("\"{key}\""))
    )
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
fn routes_to_app(index: &Index<'_>, from: usize, ns: &str, backends: &[(String, String)]) -> bool {
    backends.is_empty()
        || backends.iter().any(|(bns, name)| {
            let bns = if bns.is_empty() { ns } else { bns };
            named_service_scope(index, from, bns, name) != Scope::NonApp
        })
}

pub(crate) fn run_edge_rules(index: &Index<'_>, out: &mut Sink<'_>) {
    if !out.runs(RuleId::SessionAffinity) && !out.runs(RuleId::StickyIngress) {
        return;
    }
    for (i, kind) in index.kinds.iter().enumerate() {
        let Some(kind) = kind else { continue };
        let v = &index.objects[i].value;
        let ns = ns_of(v);
        match kind {
            Kind::Service => service(index, i, v, out),
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
                        super::model::name_of(v)
                    ),
                );
            }
            Kind::Ingress => {
                let backends = ingress_backends(v);
                if routes_to_app(index, i, ns, &backends) {
                    for (path, what) in sticky_annotations(v) {
                        out.push(
                            i,
                            RuleId::StickyIngress,
                            path,
                            format!("Ingress `{}` {what}.", super::model::name_of(v)),
                        );
                    }
                }
            }
            Kind::BackendConfig => backend_config(index, i, v, ns, out),
            Kind::DestinationRule => destination_rule(index, i, v, ns, out),
            Kind::IngressRoute => {
                for (ri, route) in arr_at(v, &["spec", "routes"]).iter().enumerate() {
                    for (si, s) in arr_at(route, &["services"]).iter().enumerate() {
                        if at(s, &["sticky", "cookie"]).is_none() {
                            continue;
                        }
                        let backend = service_ref(s, &["name"], &["namespace"]);
                        if routes_to_app(index, i, ns, &backend) {
                            out.push(
                                i,
                                RuleId::StickyIngress,
                                format!("spec.routes[{ri}].services[{si}].sticky.cookie"),
                                format!(
                                    "Traefik IngressRoute `{}` sets a sticky cookie for service `{}`.",
                                    super::model::name_of(v),
                                    str_at(s, &["name"]).unwrap_or("?")
                                ),
                            );
                        }
                    }
                }
            }
            Kind::TraefikService if at(v, &["spec", "weighted", "sticky", "cookie"]).is_some() => {
                out.push(
                    i,
                    RuleId::StickyIngress,
                    "spec.weighted.sticky.cookie".to_string(),
                    format!(
                        "TraefikService `{}` sets a sticky cookie.",
                        super::model::name_of(v)
                    ),
                );
            }
            Kind::HttpRoute => {
                for (ri, rule) in arr_at(v, &["spec", "rules"]).iter().enumerate() {
                    if rule.get("sessionPersistence").is_none_or(Value::is_null) {
                        continue;
                    }
                    let backends: Vec<(String, String)> = arr_at(rule, &["backendRefs"])
                        .iter()
                        .filter(|b| str_at(b, &["kind"]).is_none_or(|k| k == "Service"))
                        .flat_map(|b| service_ref(b, &["name"], &["namespace"]))
                        .collect();
                    if routes_to_app(index, i, ns, &backends) {
                        out.push(
                            i,
                            RuleId::StickyIngress,
                            format!("spec.rules[{ri}].sessionPersistence"),
                            format!(
                                "HTTPRoute `{}` enables session persistence.",
                                super::model::name_of(v)
                            ),
                        );
                    }
                }
            }
            Kind::HttpProxy => {
                for (ri, route) in arr_at(v, &["spec", "routes"]).iter().enumerate() {
                    let strategy = str_at(route, &["loadBalancerPolicy", "strategy"]).unwrap_or("");
                    let source_hash = strategy == "RequestHash"
                        && arr_at(route, &["loadBalancerPolicy", "requestHashPolicies"])
                            .iter()
                            .any(|p| {
                                at(p, &["hashSourceIP"]).and_then(Value::as_bool) == Some(true)
                            });
                    if strategy != "Cookie" && !source_hash {
                        continue;
                    }
                    let backends: Vec<(String, String)> = arr_at(route, &["services"])
                        .iter()
                        .flat_map(|s| service_ref(s, &["name"], &[]))
                        .collect();
                    if routes_to_app(index, i, ns, &backends) {
                        out.push(
                            i,
                            RuleId::StickyIngress,
                            format!("spec.routes[{ri}].loadBalancerPolicy.strategy"),
                            format!(
                                "Contour HTTPProxy `{}` pins clients with load-balancer strategy `{strategy}`.",
                                super::model::name_of(v)
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

fn service_ref(v: &Value, name: &[&str], ns: &[&str]) -> Vec<(String, String)> {
    str_at(v, name)
        .map(|n| {
            vec![(
                if ns.is_empty() {
                    ""
                } else {
                    str_at(v, ns).unwrap_or("")
                }
                .to_string(),
                n.to_string(),
            )]
        })
        .unwrap_or_default()
}

fn service(index: &Index<'_>, i: usize, v: &Value, out: &mut Sink<'_>) {
    let scope = service_scope(index, i);
    if scope == Scope::NonApp {
        return;
    }
    let name = super::model::name_of(v);
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
            i,
            RuleId::SessionAffinity,
            "spec.sessionAffinity".to_string(),
            format!(
                "Service `{name}` pins each client IP to one of {target} for {timeout}s \
                 (`sessionAffinity: ClientIP`)."
            ),
        );
    }
    for (path, what) in sticky_annotations(v) {
        out.push(
            i,
            RuleId::StickyIngress,
            path,
            format!("Service `{name}` {what}."),
        );
    }
}

/// Backends of an Ingress as (namespace, service) pairs (namespace empty = same).
fn ingress_backends(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |b: &Value| {
        if let Some(n) = str_at(b, &["service", "name"]).or_else(|| str_at(b, &["serviceName"])) {
            out.push((String::new(), n.to_string()));
        }
    };
    for key in ["defaultBackend", "backend"] {
        if let Some(b) = at(v, &["spec", key]) {
            push(b);
        }
    }
    for rule in arr_at(v, &["spec", "rules"]) {
        for p in arr_at(rule, &["http", "paths"]) {
            if let Some(b) = p.get("backend") {
                push(b);
            }
        }
    }
    out
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "1" | "on"
    )
}

/// Stickiness annotations on an Ingress or Service: (path, description).
fn sticky_annotations(v: &Value) -> Vec<(String, String)> {
    let Some(ann) = map_at(v, &["metadata", "annotations"]) else {
        return Vec::new();
    };
    let get = |k: &str| ann.get(k).and_then(Value::as_str);
    let mut out = Vec::new();
    let mut hit = |key: &str, what: String| out.push((annotation_path(key), what));

    const NGINX_AFFINITY: &str = "nginx.ingress.kubernetes.io/affinity";
    if get(NGINX_AFFINITY).is_some_and(|a| a.trim().eq_ignore_ascii_case("cookie")) {
        let cookie =
            get("nginx.ingress.kubernetes.io/session-cookie-name").unwrap_or("INGRESSCOOKIE");
        hit(
            NGINX_AFFINITY,
            format!(
                "pins each client to one pod with ingress-nginx cookie affinity (cookie `{cookie}`)"
            ),
        );
    }
    const NGINX_HASH: &str = "nginx.ingress.kubernetes.io/upstream-hash-by";
    if let Some(by) = get(NGINX_HASH) {
        let l = by.to_ascii_lowercase();
        if [
            "remote_addr",
            "x_forwarded_for",
            "x_real_ip",
            "realip",
            "cookie_",
            "session",
            "http_authorization",
        ]
        .iter()
        .any(|p| l.contains(p))
        {
            hit(
                NGINX_HASH,
                format!("pins clients to pods by consistent hashing on `{by}`"),
            );
        }
    }
    const TRAEFIK: &str = "traefik.ingress.kubernetes.io/service.sticky.cookie";
    match get(TRAEFIK) {
        Some(on) if truthy(on) => hit(TRAEFIK, "enables a Traefik sticky cookie".to_string()),
        Some(_) => {}
        None => {
            if let Some(sub) = ann.keys().find(|k| k.starts_with(&format!("{TRAEFIK}."))) {
                hit(sub, "configures a Traefik sticky cookie".to_string());
            }
        }
    }
    const TRAEFIK_V1: &str = "traefik.ingress.kubernetes.io/affinity";
    if get(TRAEFIK_V1).is_some_and(truthy) {
        hit(
            TRAEFIK_V1,
            "enables Traefik (v1) sticky sessions".to_string(),
        );
    }
    const HAPROXY_COOKIE: &str = "haproxy.org/cookie-persistence";
    if get(HAPROXY_COOKIE).is_some_and(|c| !c.trim().is_empty()) {
        hit(
            HAPROXY_COOKIE,
            "enables HAProxy cookie persistence".to_string(),
        );
    }
    for key in [
        "ingress.kubernetes.io/affinity",
        "haproxy-ingress.github.io/affinity",
    ] {
        if get(key).is_some_and(|a| a.trim().eq_ignore_ascii_case("cookie")) {
            hit(key, "enables HAProxy ingress cookie affinity".to_string());
        }
    }
    for key in [
        "haproxy.org/load-balance",
        "haproxy-ingress.github.io/balance-algorithm",
        "ingress.kubernetes.io/balance-algorithm",
    ] {
        if get(key).is_some_and(|a| a.trim().to_ascii_lowercase().starts_with("source")) {
            hit(
                key,
                "pins clients to pods by source-IP balancing".to_string(),
            );
        }
    }
    for key in [
        "alb.ingress.kubernetes.io/target-group-attributes",
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes",
    ] {
        if let Some(attrs) = get(key)
            && attrs.split(',').any(|kv| {
                kv.split_once('=')
                    .is_some_and(|(k, v)| k.trim() == "stickiness.enabled" && truthy(v))
            })
        {
            hit(key, "enables AWS target-group stickiness".to_string());
        }
    }
    out
}

fn backend_config(index: &Index<'_>, i: usize, v: &Value, ns: &str, out: &mut Sink<'_>) {
    let Some(kind) = str_at(v, &["spec", "sessionAffinity", "affinityType"]) else {
        return;
    };
    if kind.eq_ignore_ascii_case("NONE") || kind.is_empty() {
        return;
    }
    let name = super::model::name_of(v);
    // Services that use this BackendConfig; skip when all of them are non-app.
    let quoted = format!("\"{name}\"");
    let users: Vec<usize> = index
        .namespaces
        .get(ns)
        .map(|n| {
            n.services
                .iter()
                .copied()
                .filter(|&si| {
                    let svc = &index.objects[si].value;
                    if !index.visibility.sees(i, si) {
                        return false;
                    }
                    [
                        "cloud.google.com/backend-config",
                        "beta.cloud.google.com/backend-config",
                    ]
                    .iter()
                    .any(|k| {
                        str_at(svc, &["metadata", "annotations", k])
                            .is_some_and(|a| a.contains(&quoted))
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if !users.is_empty()
        && users
            .iter()
            .all(|&si| service_scope(index, si) == Scope::NonApp)
    {
        return;
    }
    out.push(
        i,
        RuleId::StickyIngress,
        "spec.sessionAffinity.affinityType".to_string(),
        format!("GKE BackendConfig `{name}` sets session affinity `{kind}`."),
    );
}

fn destination_rule(index: &Index<'_>, i: usize, v: &Value, ns: &str, out: &mut Sink<'_>) {
    let host = str_at(v, &["spec", "host"]).unwrap_or("");
    let backends: Vec<(String, String)> = if host.contains('*') || host.is_empty() {
        Vec::new()
    } else {
        let mut parts = host.split('.');
        let svc = parts.next().unwrap_or("").to_string();
        let host_ns = parts.next().unwrap_or("").to_string();
        vec![(host_ns, svc)]
    };
    if !routes_to_app(index, i, ns, &backends) {
        return;
    }
    let mut policies: Vec<(String, &Value)> = Vec::new();
    if let Some(tp) = at(v, &["spec", "trafficPolicy"]) {
        policies.push(("spec.trafficPolicy".to_string(), tp));
    }
    for (si, subset) in arr_at(v, &["spec", "subsets"]).iter().enumerate() {
        if let Some(tp) = subset.get("trafficPolicy") {
            policies.push((format!("spec.subsets[{si}].trafficPolicy"), tp));
        }
    }
    let name = super::model::name_of(v);
    for (prefix, tp) in policies {
        let mut lbs: Vec<(String, &Value)> = Vec::new();
        if let Some(lb) = tp.get("loadBalancer") {
            lbs.push((format!("{prefix}.loadBalancer"), lb));
        }
        for (pi, p) in arr_at(tp, &["portLevelSettings"]).iter().enumerate() {
            if let Some(lb) = p.get("loadBalancer") {
                lbs.push((format!("{prefix}.portLevelSettings[{pi}].loadBalancer"), lb));
            }
        }
        for (lb_path, lb) in lbs {
            let Some(ch) = lb.get("consistentHash") else {
                continue;
            };
            let (field, what) = if ch.get("httpCookie").is_some_and(|c| !c.is_null()) {
                ("httpCookie", "a cookie")
            } else if ch.get("useSourceIp").and_then(Value::as_bool) == Some(true) {
                ("useSourceIp", "the client IP")
            } else {
                continue;
            };
            out.push(
                i,
                RuleId::StickyIngress,
                format!("{lb_path}.consistentHash.{field}"),
                format!("Istio DestinationRule `{name}` for `{host}` pins clients to pods by consistent hashing on {what}."),
            );
        }
    }
}

//! Controller-specific objects: GKE `BackendConfig`, Istio
//! `DestinationRule`, Traefik `IngressRoute`/`TraefikService`, Contour
//! `HTTPProxy`, OpenShift `Route`, Kong `KongIngress`/`KongUpstreamPolicy`,
//! NGINX Inc. `VirtualServer`, Emissary `Mapping`.

use serde_json::Value;

use super::annotations::nginx_key_pins_clients;
use super::{
    Backends, Edge, annotation, annotation_path, attached_by_annotation, attached_to_app,
    identifies_client, routes_to_app, truthy,
};
use crate::rules::checks::Sink;
use crate::rules::model::{Index, arr_at, at, str_at};

fn one_service(ns: &str, name: Option<&str>) -> Backends {
    let mut b = Backends::default();
    match name {
        Some(n) => b.service(ns, n),
        None => b.opaque = true,
    }
    b
}

fn bool_or_text(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => truthy(s),
        _ => false,
    }
}

/// GKE `BackendConfig` with a session affinity, through the Services that
/// name it in `cloud.google.com/backend-config`.
pub(super) fn backend_config(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    let Some(kind) = str_at(edge.v, &["spec", "sessionAffinity", "affinityType"]) else {
        return;
    };
    if kind.eq_ignore_ascii_case("NONE") || kind.is_empty() {
        return;
    }
    let quoted = format!("\"{}\"", edge.name);
    let users = attached_by_annotation(
        index,
        edge,
        &[
            "cloud.google.com/backend-config",
            "beta.cloud.google.com/backend-config",
        ],
        |a| a.contains(&quoted),
    );
    if attached_to_app(index, &users) {
        edge.sticky(
            out,
            "spec.sessionAffinity.affinityType".to_string(),
            format!(
                "GKE BackendConfig `{}` sets session affinity `{kind}`.",
                edge.name
            ),
        );
    }
}

/// Istio `DestinationRule` `consistentHash` on a cookie, the source IP or a
/// client-identifying header (top level, per port and per subset).
pub(super) fn destination_rule(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    let v = edge.v;
    let host = str_at(v, &["spec", "host"]).unwrap_or("");
    let mut backends = Backends::default();
    if !host.contains('*') && !host.is_empty() {
        let mut parts = host.split('.');
        let svc = parts.next().unwrap_or("");
        let host_ns = parts.next().unwrap_or("");
        backends.service(host_ns, svc);
    }
    if !routes_to_app(index, edge.i, edge.ns, &backends) {
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
                ("httpCookie", "a cookie".to_string())
            } else if ch.get("useSourceIp").and_then(Value::as_bool) == Some(true) {
                ("useSourceIp", "the client IP".to_string())
            } else if let Some(h) = str_at(ch, &["httpHeaderName"]).filter(|h| identifies_client(h))
            {
                ("httpHeaderName", format!("header `{h}`"))
            } else {
                continue;
            };
            edge.sticky(
                out,
                format!("{lb_path}.consistentHash.{field}"),
                format!(
                    "Istio DestinationRule `{}` for `{host}` pins clients to pods by consistent \
                     hashing on {what}.",
                    edge.name
                ),
            );
        }
    }
}

pub(super) fn traefik_ingress_route(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    for (ri, route) in arr_at(edge.v, &["spec", "routes"]).iter().enumerate() {
        for (si, s) in arr_at(route, &["services"]).iter().enumerate() {
            if at(s, &["sticky", "cookie"]).is_none() {
                continue;
            }
            let backend = one_service(
                str_at(s, &["namespace"]).unwrap_or(""),
                str_at(s, &["name"]),
            );
            if routes_to_app(index, edge.i, edge.ns, &backend) {
                edge.sticky(
                    out,
                    format!("spec.routes[{ri}].services[{si}].sticky.cookie"),
                    format!(
                        "Traefik IngressRoute `{}` sets a sticky cookie for service `{}`.",
                        edge.name,
                        str_at(s, &["name"]).unwrap_or("?")
                    ),
                );
            }
        }
    }
}

pub(super) fn traefik_service(edge: &Edge<'_>, out: &mut Sink<'_>) {
    if at(edge.v, &["spec", "weighted", "sticky", "cookie"]).is_some() {
        edge.sticky(
            out,
            "spec.weighted.sticky.cookie".to_string(),
            format!("TraefikService `{}` sets a sticky cookie.", edge.name),
        );
    }
}

/// Contour `HTTPProxy` routes with the `Cookie` strategy, or `RequestHash`
/// on the source IP or a client-identifying header.
pub(super) fn contour_http_proxy(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    for (ri, route) in arr_at(edge.v, &["spec", "routes"]).iter().enumerate() {
        let strategy = str_at(route, &["loadBalancerPolicy", "strategy"]).unwrap_or("");
        let client_hash = strategy == "RequestHash"
            && arr_at(route, &["loadBalancerPolicy", "requestHashPolicies"])
                .iter()
                .any(|p| {
                    at(p, &["hashSourceIP"]).and_then(Value::as_bool) == Some(true)
                        || str_at(p, &["headerHashOptions", "headerName"])
                            .is_some_and(identifies_client)
                });
        if strategy != "Cookie" && !client_hash {
            continue;
        }
        let mut backends = Backends::default();
        for s in arr_at(route, &["services"]) {
            match str_at(s, &["name"]) {
                Some(n) => backends.service("", n),
                None => backends.opaque = true,
            }
        }
        if routes_to_app(index, edge.i, edge.ns, &backends) {
            edge.sticky(
                out,
                format!("spec.routes[{ri}].loadBalancerPolicy.strategy"),
                format!(
                    "Contour HTTPProxy `{}` pins clients with load-balancing strategy `{strategy}`.",
                    edge.name
                ),
            );
        }
    }
}

const ROUTE_BALANCE: &str = "haproxy.router.openshift.io/balance";
const ROUTE_DISABLE_COOKIES: &str = "haproxy.router.openshift.io/disable_cookies";

/// OpenShift `Route`. The HAProxy router pins clients without being asked:
/// an HTTP route (plain, edge or re-encrypt) gets a session cookie unless
/// `disable_cookies` is `"true"`, and a TLS passthrough route, where no
/// cookie can be set, is balanced by client IP (`source`) unless `balance`
/// says otherwise. Those defaults are reported like explicit settings (they
/// log users out on every rollout all the same), at the annotation that
/// turns them off, with a message that says it is the router's default.
pub(super) fn openshift_route(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    let v = edge.v;
    let mut backends = Backends::default();
    for b in at(v, &["spec", "to"])
        .into_iter()
        .chain(arr_at(v, &["spec", "alternateBackends"]))
    {
        match (
            str_at(b, &["kind"]).unwrap_or("Service"),
            str_at(b, &["name"]),
        ) {
            ("Service", Some(n)) => backends.service("", n),
            _ => backends.opaque = true,
        }
    }
    if !routes_to_app(index, edge.i, edge.ns, &backends) {
        return;
    }
    let name = edge.name;
    let termination = str_at(v, &["spec", "tls", "termination"])
        .unwrap_or("")
        .to_ascii_lowercase();
    let balance = annotation(v, ROUTE_BALANCE)
        .map(str::trim)
        .filter(|b| !b.is_empty());
    let source = balance.is_some_and(|b| b.eq_ignore_ascii_case("source"));
    if termination == "passthrough" {
        if balance.is_none() || source {
            let how = if source {
                "is balanced by client IP (`haproxy.router.openshift.io/balance: source`)"
            } else {
                "is balanced by client IP: `source` is the OpenShift router's default for TLS \
                 passthrough routes (no `haproxy.router.openshift.io/balance` annotation)"
            };
            edge.sticky(
                out,
                annotation_path(ROUTE_BALANCE),
                format!("OpenShift Route `{name}` (TLS passthrough) {how}."),
            );
        }
        return;
    }
    // The router reads exactly `true` or `TRUE`.
    let cookies_off =
        annotation(v, ROUTE_DISABLE_COOKIES).is_some_and(|d| matches!(d.trim(), "true" | "TRUE"));
    if !cookies_off {
        let cookie = annotation(v, "router.openshift.io/cookie_name")
            .or_else(|| annotation(v, "haproxy.router.openshift.io/cookie_name"))
            .map(|c| format!("cookie `{c}`"))
            .unwrap_or_else(|| "a cookie named after the route".to_string());
        let route_kind = match termination.as_str() {
            "edge" => "edge-terminated",
            "reencrypt" => "re-encrypt",
            _ => "plain HTTP",
        };
        edge.sticky(
            out,
            annotation_path(ROUTE_DISABLE_COOKIES),
            format!(
                "OpenShift Route `{name}` ({route_kind}) pins each browser to one pod with the \
                 HAProxy router's session cookie ({cookie}); the router sets it by default \
                 unless `haproxy.router.openshift.io/disable_cookies: \"true\"`."
            ),
        );
    }
    if source {
        edge.sticky(
            out,
            annotation_path(ROUTE_BALANCE),
            format!(
                "OpenShift Route `{name}` balances by client IP \
                 (`haproxy.router.openshift.io/balance: source`)."
            ),
        );
    }
}

/// Kong hashing inputs that pin a client: (what it hashes on) or `None`.
fn kong_input_pins(input: &str, cookie: Option<&str>, header: Option<&str>) -> Option<String> {
    match input.trim() {
        "ip" => Some("the client IP".to_string()),
        "consumer" => Some("the authenticated consumer".to_string()),
        "cookie" => Some(format!("cookie `{}`", cookie.unwrap_or("?"))),
        "header" => header
            .filter(|h| identifies_client(h))
            .map(|h| format!("header `{h}`")),
        _ => None,
    }
}

fn kong_consistent_hashing(algorithm: Option<&str>) -> bool {
    algorithm.is_none_or(|a| a.trim() == "consistent-hashing")
}

/// `KongIngress` `upstream.hash_on` (or `hash_fallback`) on a client
/// identity, through the Services and Ingresses that name it in
/// `konghq.com/override`.
pub(super) fn kong_ingress(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    let Some(up) = edge.v.get("upstream") else {
        return;
    };
    if !kong_consistent_hashing(str_at(up, &["algorithm"])) {
        return;
    }
    let cookie = str_at(up, &["hash_on_cookie"]);
    let found = [
        ("hash_on", "hash_on_header"),
        ("hash_fallback", "hash_fallback_header"),
    ]
    .into_iter()
    .find_map(|(field, header)| {
        kong_input_pins(str_at(up, &[field])?, cookie, str_at(up, &[header]))
            .map(|what| (field, what))
    });
    let Some((field, what)) = found else {
        return;
    };
    let users = attached_by_annotation(
        index,
        edge,
        &["konghq.com/override", "configuration.konghq.com"],
        |a| a.trim() == edge.name,
    );
    if attached_to_app(index, &users) {
        edge.sticky(
            out,
            format!("upstream.{field}"),
            format!(
                "KongIngress `{}` pins clients to pods by consistent hashing on {what}.",
                edge.name
            ),
        );
    }
}

/// `KongUpstreamPolicy` `spec.hashOn` (or `hashOnFallback`) on a client
/// identity, through the Services that name it in
/// `konghq.com/upstream-policy`.
pub(super) fn kong_upstream_policy(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    if !kong_consistent_hashing(str_at(edge.v, &["spec", "algorithm"])) {
        return;
    }
    let found = ["hashOn", "hashOnFallback"].into_iter().find_map(|field| {
        let h = at(edge.v, &["spec", field])?;
        if let Some(c) = str_at(h, &["cookie"]) {
            return Some((format!("spec.{field}.cookie"), format!("cookie `{c}`")));
        }
        if let Some(input) = str_at(h, &["input"]) {
            return kong_input_pins(input, None, None)
                .map(|what| (format!("spec.{field}.input"), what));
        }
        str_at(h, &["header"])
            .and_then(|hd| kong_input_pins("header", None, Some(hd)))
            .map(|what| (format!("spec.{field}.header"), what))
    });
    let Some((path, what)) = found else {
        return;
    };
    let users = attached_by_annotation(index, edge, &["konghq.com/upstream-policy"], |a| {
        a.trim() == edge.name
    });
    if attached_to_app(index, &users) {
        edge.sticky(
            out,
            path,
            format!(
                "KongUpstreamPolicy `{}` pins clients to pods by consistent hashing on {what}.",
                edge.name
            ),
        );
    }
}

/// NGINX Inc. `VirtualServer`/`VirtualServerRoute` upstreams with an NGINX
/// Plus `sessionCookie`, or an `ip_hash`/client-key `hash` `lb-method`.
pub(super) fn nginx_virtual_server(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    let kind = str_at(edge.v, &["kind"]).unwrap_or("VirtualServer");
    for (ui, u) in arr_at(edge.v, &["spec", "upstreams"]).iter().enumerate() {
        let upstream = str_at(u, &["name"]).unwrap_or("?");
        let backend = one_service("", str_at(u, &["service"]));
        let mut hits = Vec::new();
        if bool_or_text(at(u, &["sessionCookie", "enable"])) {
            let cookie = str_at(u, &["sessionCookie", "name"]).unwrap_or("?");
            hits.push((
                format!("spec.upstreams[{ui}].sessionCookie.enable"),
                format!("sets an NGINX Plus session cookie `{cookie}`"),
            ));
        }
        if let Some(m) = str_at(u, &["lb-method"]).map(str::trim)
            && (m.eq_ignore_ascii_case("ip_hash")
                || (m.to_ascii_lowercase().starts_with("hash") && nginx_key_pins_clients(m)))
        {
            hits.push((
                format!("spec.upstreams[{ui}].lb-method"),
                format!("uses load-balancing method `{m}`"),
            ));
        }
        if hits.is_empty() || !routes_to_app(index, edge.i, edge.ns, &backend) {
            continue;
        }
        for (path, what) in hits {
            edge.sticky(
                out,
                path,
                format!(
                    "{kind} `{}` upstream `{upstream}` {what}: each client is pinned to one pod.",
                    edge.name
                ),
            );
        }
    }
}

/// The Service of an Emissary `service:` value,
/// `[scheme://]name[.namespace[.svc...]][:port]`.
fn emissary_backend(service: Option<&str>) -> Backends {
    let Some(s) = service else {
        return one_service("", None);
    };
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    let host = s.split([':', '/']).next().unwrap_or("");
    let mut parts = host.split('.');
    let name = parts.next().filter(|n| !n.is_empty());
    let ns = parts.next().unwrap_or("");
    one_service(ns, name)
}

/// Emissary-ingress / Ambassador `Mapping` with a `ring_hash` or `maglev`
/// load balancer on a cookie, the source IP or a client-identifying header.
pub(super) fn emissary_mapping(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    let Some(lb) = at(edge.v, &["spec", "load_balancer"]) else {
        return;
    };
    let policy = str_at(lb, &["policy"]).unwrap_or("");
    if !matches!(policy, "ring_hash" | "maglev") {
        return;
    }
    let (field, what) = if lb.get("cookie").is_some_and(|c| !c.is_null()) {
        (
            "cookie",
            format!(
                "cookie `{}`",
                str_at(lb, &["cookie", "name"]).unwrap_or("?")
            ),
        )
    } else if bool_or_text(lb.get("source_ip")) {
        ("source_ip", "the client IP".to_string())
    } else if let Some(h) = str_at(lb, &["header"]).filter(|h| identifies_client(h)) {
        ("header", format!("header `{h}`"))
    } else {
        return;
    };
    if routes_to_app(
        index,
        edge.i,
        edge.ns,
        &emissary_backend(str_at(edge.v, &["spec", "service"])),
    ) {
        edge.sticky(
            out,
            format!("spec.load_balancer.{field}"),
            format!(
                "Emissary Mapping `{}` pins clients to pods with `{policy}` sticky sessions on \
                 {what}.",
                edge.name
            ),
        );
    }
}

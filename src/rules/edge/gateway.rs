//! Gateway API session persistence (route rules and `BackendLBPolicy`,
//! GEP-1619) and the implementation policies that pin clients through a
//! route or a Service: Envoy Gateway `BackendTrafficPolicy`, GKE
//! `GCPBackendPolicy`, Azure Application Gateway for Containers
//! `RoutePolicy`, NGINX Gateway Fabric `UpstreamSettingsPolicy`.

use serde_json::Value;

use super::{Backends, Edge, identifies_client, routes_to_app, service_targets};
use crate::rules::checks::Sink;
use crate::rules::model::{Index, arr_at, at, str_at};

/// The backends of one route rule. A `backendRef` defaults to a core
/// Service; anything else (a `ServiceImport`, an implementation's backend
/// kind) is opaque.
fn rule_backends(rule: &Value) -> Backends {
    let mut out = Backends::default();
    for b in arr_at(rule, &["backendRefs"]) {
        let kind = str_at(b, &["kind"]).unwrap_or("Service");
        let group = str_at(b, &["group"]).unwrap_or("");
        match str_at(b, &["name"]) {
            Some(name) if kind == "Service" && matches!(group, "" | "core") => {
                out.service(str_at(b, &["namespace"]).unwrap_or(""), name);
            }
            _ => out.opaque = true,
        }
    }
    out
}

/// `sessionPersistence` as words: its type (Cookie by default) and name.
fn persistence(sp: &Value) -> String {
    let kind = str_at(sp, &["type"]).unwrap_or("Cookie");
    match str_at(sp, &["sessionName"]) {
        Some(n) => format!("{kind}-based session persistence (`{n}`)"),
        None => format!("{kind}-based session persistence"),
    }
}

fn set(v: Option<&Value>) -> Option<&Value> {
    v.filter(|x| !x.is_null())
}

/// HTTPRoute and GRPCRoute rules with `sessionPersistence`. A rule's
/// persistence covers every backend of that rule (it overrides any
/// `BackendLBPolicy` of those Services), so it is skipped only when all of
/// them are known non-app Services.
pub(super) fn route_rules(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    let kind = str_at(edge.v, &["kind"]).unwrap_or("HTTPRoute");
    for (ri, rule) in arr_at(edge.v, &["spec", "rules"]).iter().enumerate() {
        let Some(sp) = set(rule.get("sessionPersistence")) else {
            continue;
        };
        if routes_to_app(index, edge.i, edge.ns, &rule_backends(rule)) {
            edge.sticky(
                out,
                format!("spec.rules[{ri}].sessionPersistence"),
                format!(
                    "{kind} `{}` rule {ri} enables {}: each client is pinned to one pod.",
                    edge.name,
                    persistence(sp)
                ),
            );
        }
    }
}

/// Gateway API `BackendLBPolicy`: session persistence for the Services in
/// its `targetRefs`, whatever route reaches them.
pub(super) fn backend_lb_policy(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    let Some(sp) = set(at(edge.v, &["spec", "sessionPersistence"])) else {
        return;
    };
    if routes_to_app(index, edge.i, edge.ns, &service_targets(edge.v)) {
        edge.sticky(
            out,
            "spec.sessionPersistence".to_string(),
            format!(
                "BackendLBPolicy `{}` enables {} for its target Services.",
                edge.name,
                persistence(sp)
            ),
        );
    }
}

/// Backends of the `HTTPRoute`/`GRPCRoute`s a policy's `targetRefs` name,
/// resolved in the input; a Gateway, a missing route or `targetSelectors`
/// make them opaque (every route behind a Gateway would have to be found).
fn route_targets(index: &Index<'_>, edge: &Edge<'_>) -> Backends {
    let mut out = Backends::default();
    if !arr_at(edge.v, &["spec", "targetSelectors"]).is_empty() {
        out.opaque = true;
    }
    let single = at(edge.v, &["spec", "targetRef"]).into_iter();
    for t in arr_at(edge.v, &["spec", "targetRefs"]).iter().chain(single) {
        let kind = str_at(t, &["kind"]).unwrap_or("");
        let ns = str_at(t, &["namespace"]).unwrap_or(edge.ns);
        let route = match (kind, str_at(t, &["name"])) {
            ("HTTPRoute" | "GRPCRoute", Some(name)) => index.route(edge.i, ns, kind, name),
            _ => None,
        };
        let Some(ri) = route else {
            out.opaque = true;
            continue;
        };
        let route = &index.objects[ri].value;
        for rule in arr_at(route, &["spec", "rules"]) {
            let mut b = rule_backends(rule);
            // Route backends without a namespace are in the route's.
            for (bns, _) in &mut b.services {
                if bns.is_empty() {
                    *bns = ns.to_string();
                }
            }
            out.extend(b);
        }
    }
    out
}

/// Envoy Gateway `BackendTrafficPolicy` with a `ConsistentHash` load
/// balancer on the source IP, a cookie, or a header that identifies the
/// client.
pub(super) fn envoy_backend_traffic_policy(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    let Some(lb) = at(edge.v, &["spec", "loadBalancer"]) else {
        return;
    };
    if str_at(lb, &["type"]) != Some("ConsistentHash") {
        return;
    }
    let Some(ch) = lb.get("consistentHash") else {
        return;
    };
    let (field, what) = match str_at(ch, &["type"]).unwrap_or("") {
        "SourceIP" => ("type", "the client IP".to_string()),
        "Cookie" => (
            "cookie",
            format!(
                "cookie `{}`",
                str_at(ch, &["cookie", "name"]).unwrap_or("?")
            ),
        ),
        "Header" => match str_at(ch, &["header", "name"]) {
            Some(h) if identifies_client(h) => ("header", format!("header `{h}`")),
            _ => return,
        },
        "Headers" => {
            match arr_at(ch, &["headers"])
                .iter()
                .filter_map(|h| str_at(h, &["name"]))
                .find(|h| identifies_client(h))
            {
                Some(h) => ("headers", format!("header `{h}`")),
                None => return,
            }
        }
        _ => return,
    };
    if !routes_to_app(index, edge.i, edge.ns, &route_targets(index, edge)) {
        return;
    }
    edge.sticky(
        out,
        format!("spec.loadBalancer.consistentHash.{field}"),
        format!(
            "Envoy Gateway BackendTrafficPolicy `{}` pins clients to pods by consistent hashing \
             on {what}.",
            edge.name
        ),
    );
}

/// GKE Gateway `GCPBackendPolicy` with `default.sessionAffinity.type` other
/// than `NONE` (`CLIENT_IP`, `GENERATED_COOKIE`, `HTTP_COOKIE`, ...).
pub(super) fn gcp_backend_policy(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    let Some(kind) = str_at(edge.v, &["spec", "default", "sessionAffinity", "type"]) else {
        return;
    };
    if kind.trim().is_empty() || kind.eq_ignore_ascii_case("NONE") {
        return;
    }
    if routes_to_app(index, edge.i, edge.ns, &service_targets(edge.v)) {
        edge.sticky(
            out,
            "spec.default.sessionAffinity.type".to_string(),
            format!(
                "GKE GCPBackendPolicy `{}` sets session affinity `{kind}` for its target Service.",
                edge.name
            ),
        );
    }
}

/// Azure Application Gateway for Containers `RoutePolicy` with
/// `default.sessionAffinity` (`managed-cookie` or `application-cookie`).
pub(super) fn azure_route_policy(index: &Index<'_>, edge: &Edge<'_>, out: &mut Sink<'_>) {
    let Some(sa) = set(at(edge.v, &["spec", "default", "sessionAffinity"])) else {
        return;
    };
    let kind = str_at(sa, &["affinityType"]).unwrap_or("managed-cookie");
    let cookie = str_at(sa, &["cookieName"]).unwrap_or("AGCAffinity");
    if routes_to_app(index, edge.i, edge.ns, &route_targets(index, edge)) {
        edge.sticky(
            out,
            "spec.default.sessionAffinity".to_string(),
            format!(
                "Application Gateway for Containers RoutePolicy `{}` sets `{kind}` session \
                 affinity (cookie `{cookie}`).",
                edge.name
            ),
        );
    }
}

/// NGINX Gateway Fabric `UpstreamSettingsPolicy` with
/// `loadBalancingMethod: ip_hash` for its target Services.
pub(super) fn nginx_upstream_settings_policy(
    index: &Index<'_>,
    edge: &Edge<'_>,
    out: &mut Sink<'_>,
) {
    let Some(method) = str_at(edge.v, &["spec", "loadBalancingMethod"]) else {
        return;
    };
    if method.trim().eq_ignore_ascii_case("ip_hash")
        && routes_to_app(index, edge.i, edge.ns, &service_targets(edge.v))
    {
        edge.sticky(
            out,
            "spec.loadBalancingMethod".to_string(),
            format!(
                "NGINX Gateway Fabric UpstreamSettingsPolicy `{}` pins each client IP to one pod \
                 (`loadBalancingMethod: ip_hash`).",
                edge.name
            ),
        );
    }
}

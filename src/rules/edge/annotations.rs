//! Stickiness set by annotations on Ingresses and Services: ingress-nginx,
//! NGINX Inc., Traefik, HAProxy (haproxytech and jcmoraisjr), AWS Load
//! Balancer Controller and Azure Application Gateway Ingress Controller.

use serde_json::Value;

use super::{Backends, annotation_path, truthy};
use crate::rules::model::{arr_at, at, map_at, str_at};

/// Backends of an Ingress (`service.name`, legacy `serviceName`).
pub(super) fn ingress_backends(v: &Value) -> Backends {
    let mut out = Backends::default();
    let mut push = |b: &Value| {
        if let Some(n) = str_at(b, &["service", "name"]).or_else(|| str_at(b, &["serviceName"])) {
            out.service("", n);
        } else if b.get("resource").is_some() {
            // A `resource` backend (e.g. a storage bucket) is not a Service.
            out.opaque = true;
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

/// Client-address, cookie or session inputs of an nginx hash key
/// (`$binary_remote_addr`, `$cookie_sid`, `$http_authorization`, ...).
pub(super) fn nginx_key_pins_clients(key: &str) -> bool {
    let l = key.to_ascii_lowercase();
    [
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
}

/// Stickiness annotations on an Ingress or Service: (path, description).
pub(super) fn sticky_annotations(v: &Value) -> Vec<(String, String)> {
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
    if let Some(by) = get(NGINX_HASH)
        && nginx_key_pins_clients(by)
    {
        hit(
            NGINX_HASH,
            format!("pins clients to pods by consistent hashing on `{by}`"),
        );
    }
    // NGINX Inc. (nginx.org) controller, NGINX Plus: `serviceName=svc cookie ...;...`.
    const NGINX_PLUS_STICKY: &str = "nginx.com/sticky-cookie-services";
    if let Some(spec) = get(NGINX_PLUS_STICKY).filter(|s| !s.trim().is_empty()) {
        let services: Vec<String> = spec
            .split(';')
            .filter_map(|entry| {
                entry
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("serviceName="))
                    .map(|s| format!("`{s}`"))
            })
            .collect();
        hit(
            NGINX_PLUS_STICKY,
            format!(
                "sets an NGINX Plus sticky cookie for {}",
                match services.len() {
                    0 => "its services".to_string(),
                    1 => format!("service {}", services[0]),
                    _ => format!("services {}", services.join(", ")),
                }
            ),
        );
    }
    const NGINX_INC_LB: &str = "nginx.org/lb-method";
    if let Some(method) = get(NGINX_INC_LB) {
        let m = method.trim();
        if m.eq_ignore_ascii_case("ip_hash")
            || (m.to_ascii_lowercase().starts_with("hash") && nginx_key_pins_clients(m))
        {
            hit(
                NGINX_INC_LB,
                format!("pins clients to pods with NGINX load-balancing method `{m}`"),
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
    // haproxytech: the value is the cookie's name.
    const HAPROXY_COOKIE: &str = "haproxy.org/cookie-persistence";
    if let Some(cookie) = get(HAPROXY_COOKIE).filter(|c| !c.trim().is_empty()) {
        hit(
            HAPROXY_COOKIE,
            format!(
                "enables HAProxy cookie persistence (cookie `{}`)",
                cookie.trim()
            ),
        );
    }
    // jcmoraisjr HAProxy Ingress (`ingress.kubernetes.io/` is its legacy prefix).
    for key in [
        "haproxy-ingress.github.io/affinity",
        "ingress.kubernetes.io/affinity",
    ] {
        if get(key).is_some_and(|a| a.trim().eq_ignore_ascii_case("cookie")) {
            let prefix = key.split('/').next().unwrap_or("");
            let cookie = get(&format!("{prefix}/session-cookie-name")).unwrap_or("INGRESSCOOKIE");
            hit(
                key,
                format!("enables HAProxy Ingress cookie affinity (cookie `{cookie}`)"),
            );
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
        let Some(attrs) = get(key) else { continue };
        let attr = |name: &str| {
            attrs.split(',').find_map(|kv| {
                kv.split_once('=')
                    .filter(|(k, _)| k.trim() == name)
                    .map(|(_, v)| v.trim())
            })
        };
        if attr("stickiness.enabled").is_some_and(truthy) {
            let kind = attr("stickiness.type").unwrap_or(if key.starts_with("alb.") {
                "lb_cookie"
            } else {
                "source_ip"
            });
            hit(
                key,
                format!("enables AWS target-group stickiness (`stickiness.type={kind}`)"),
            );
        }
    }
    const AGIC_AFFINITY: &str = "appgw.ingress.kubernetes.io/cookie-based-affinity";
    if get(AGIC_AFFINITY).is_some_and(truthy) {
        hit(
            AGIC_AFFINITY,
            "enables Azure Application Gateway cookie-based affinity (cookie \
             `ApplicationGatewayAffinity`)"
                .to_string(),
        );
    }
    out
}

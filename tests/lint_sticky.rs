//! Sticky-session mechanisms as their projects document them: each fixture
//! under `tests/fixtures/lint/sticky/` is built from the documentation named
//! on its first line and holds the sticky objects next to the same objects
//! with stickiness off (or in front of a database only). Every edge finding
//! of a file is listed: rule, kind, name and field path.

use std::collections::BTreeSet;
use std::path::PathBuf;

use stateless_operator::lint::{lint, load_paths};
use stateless_operator::rules::{Config, RuleId};

type Edge = (&'static str, &'static str, &'static str, &'static str);

fn edge_findings(file: &str) -> BTreeSet<(String, String, String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lint/sticky")
        .join(file);
    let loaded = load_paths(&[path]);
    assert!(loaded.errors.is_empty(), "{file}: {:?}", loaded.errors);
    lint(&loaded, &Config::default())
        .into_iter()
        .filter(|f| matches!(f.rule, RuleId::StickyIngress | RuleId::SessionAffinity))
        .map(|f| (f.rule.to_string(), f.kind, f.name, f.path))
        .collect()
}

fn assert_edge(file: &str, expected: &[Edge]) {
    let want: BTreeSet<(String, String, String, String)> = expected
        .iter()
        .map(|(r, k, n, p)| (r.to_string(), k.to_string(), n.to_string(), p.to_string()))
        .collect();
    assert_eq!(edge_findings(file), want, "{file}");
}

const STICKY: &str = "sticky-ingress";

#[test]
fn gateway_api_grpcroute_session_persistence() {
    assert_edge(
        "gateway-api-grpcroute.yaml",
        &[(
            STICKY,
            "GRPCRoute",
            "grpc-sticky",
            "spec.rules[0].sessionPersistence",
        )],
    );
}

#[test]
fn gateway_api_httproute_persistence_covers_every_backend_ref_of_its_rule() {
    assert_edge(
        "gateway-api-httproute.yaml",
        &[
            (
                STICKY,
                "HTTPRoute",
                "cookie",
                "spec.rules[0].sessionPersistence",
            ),
            (
                STICKY,
                "HTTPRoute",
                "split-route",
                "spec.rules[0].sessionPersistence",
            ),
        ],
    );
}

#[test]
fn gateway_api_backend_lb_policy_on_target_services() {
    assert_edge(
        "gateway-api-backendlbpolicy.yaml",
        &[(STICKY, "BackendLBPolicy", "lbp", "spec.sessionPersistence")],
    );
}

#[test]
fn envoy_gateway_consistent_hash_on_client_identity() {
    assert_edge(
        "envoy-gateway-backendtrafficpolicy.yaml",
        &[
            (
                STICKY,
                "BackendTrafficPolicy",
                "source-ip-policy",
                "spec.loadBalancer.consistentHash.type",
            ),
            (
                STICKY,
                "BackendTrafficPolicy",
                "cookie-policy",
                "spec.loadBalancer.consistentHash.cookie",
            ),
            (
                STICKY,
                "BackendTrafficPolicy",
                "session-header-policy",
                "spec.loadBalancer.consistentHash.header",
            ),
            (
                STICKY,
                "BackendTrafficPolicy",
                "gateway-policy",
                "spec.loadBalancer.consistentHash.type",
            ),
        ],
    );
}

#[test]
fn openshift_route_router_defaults_and_source_balancing() {
    assert_edge(
        "openshift-route.yaml",
        &[
            (
                STICKY,
                "Route",
                "web-edge",
                r#"metadata.annotations["haproxy.router.openshift.io/disable_cookies"]"#,
            ),
            (
                STICKY,
                "Route",
                "web-source",
                r#"metadata.annotations["haproxy.router.openshift.io/balance"]"#,
            ),
            (
                STICKY,
                "Route",
                "web-passthrough",
                r#"metadata.annotations["haproxy.router.openshift.io/balance"]"#,
            ),
        ],
    );
}

#[test]
fn aws_load_balancer_controller_target_group_stickiness() {
    assert_edge(
        "aws-load-balancer-controller.yaml",
        &[
            (
                STICKY,
                "Service",
                "web-nlb",
                r#"metadata.annotations["service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"]"#,
            ),
            (
                STICKY,
                "Ingress",
                "web-alb",
                r#"metadata.annotations["alb.ingress.kubernetes.io/target-group-attributes"]"#,
            ),
        ],
    );
}

#[test]
fn azure_application_gateway_ingress_cookie_affinity() {
    assert_edge(
        "azure-agic.yaml",
        &[(
            STICKY,
            "Ingress",
            "guestbook",
            r#"metadata.annotations["appgw.ingress.kubernetes.io/cookie-based-affinity"]"#,
        )],
    );
}

#[test]
fn azure_application_gateway_for_containers_route_policy() {
    assert_edge(
        "azure-agc-routepolicy.yaml",
        &[(
            STICKY,
            "RoutePolicy",
            "session-affinity-route-policy",
            "spec.default.sessionAffinity",
        )],
    );
}

#[test]
fn gke_gcp_backend_policy_session_affinity() {
    assert_edge(
        "gke-gcpbackendpolicy.yaml",
        &[(
            STICKY,
            "GCPBackendPolicy",
            "my-backend-policy",
            "spec.default.sessionAffinity.type",
        )],
    );
}

#[test]
fn kong_upstream_policy_through_the_service_annotation() {
    assert_edge(
        "kong-upstream-policy.yaml",
        &[
            (
                STICKY,
                "KongUpstreamPolicy",
                "sticky-cookie",
                "spec.hashOn.cookie",
            ),
            (STICKY, "KongUpstreamPolicy", "by-ip", "spec.hashOn.input"),
        ],
    );
}

#[test]
fn kong_ingress_upstream_hash_through_the_override_annotation() {
    assert_edge(
        "kong-ingress.yaml",
        &[(STICKY, "KongIngress", "sticky", "upstream.hash_on")],
    );
}

#[test]
fn haproxytech_cookie_persistence_and_source_balancing() {
    assert_edge(
        "haproxytech.yaml",
        &[
            (
                STICKY,
                "Ingress",
                "web-cookie",
                r#"metadata.annotations["haproxy.org/cookie-persistence"]"#,
            ),
            (
                STICKY,
                "Ingress",
                "web-source",
                r#"metadata.annotations["haproxy.org/load-balance"]"#,
            ),
        ],
    );
}

#[test]
fn haproxy_ingress_affinity_and_source_balancing() {
    assert_edge(
        "haproxy-ingress.yaml",
        &[
            (
                STICKY,
                "Ingress",
                "web-affinity",
                r#"metadata.annotations["haproxy-ingress.github.io/affinity"]"#,
            ),
            (
                STICKY,
                "Ingress",
                "web-balance-source",
                r#"metadata.annotations["haproxy-ingress.github.io/balance-algorithm"]"#,
            ),
        ],
    );
}

#[test]
fn nginx_inc_sticky_cookie_services_and_virtual_server_upstreams() {
    assert_edge(
        "nginx-inc.yaml",
        &[
            (
                STICKY,
                "Ingress",
                "cafe-ingress-with-session-persistence",
                r#"metadata.annotations["nginx.com/sticky-cookie-services"]"#,
            ),
            (
                STICKY,
                "VirtualServer",
                "cafe",
                "spec.upstreams[0].sessionCookie.enable",
            ),
            (
                STICKY,
                "VirtualServer",
                "cafe",
                "spec.upstreams[1].lb-method",
            ),
        ],
    );
}

#[test]
fn nginx_gateway_fabric_ip_hash() {
    assert_edge(
        "nginx-gateway-fabric.yaml",
        &[(
            STICKY,
            "UpstreamSettingsPolicy",
            "ip-hash",
            "spec.loadBalancingMethod",
        )],
    );
}

#[test]
fn emissary_mapping_sticky_sessions() {
    assert_edge(
        "emissary-mapping.yaml",
        &[
            (
                STICKY,
                "Mapping",
                "quote-backend",
                "spec.load_balancer.cookie",
            ),
            (
                STICKY,
                "Mapping",
                "quote-backend-source",
                "spec.load_balancer.source_ip",
            ),
        ],
    );
}

/// Every fixture names the documentation it was built from on its first line.
#[test]
fn every_sticky_fixture_cites_its_documentation() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/sticky");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fixture directory") {
        let path = entry.expect("fixture entry").path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let first = text.lines().next().unwrap_or("");
        assert!(
            first.starts_with("# Built from https://"),
            "{}: first line is `{first}`",
            path.display()
        );
        count += 1;
    }
    assert_eq!(count, 16, "one test above per fixture");
}

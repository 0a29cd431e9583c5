//! Unit tests: every rule positive and negative, scoping, waivers, adapter.

use serde_json::{Value, json};

use super::patterns::*;
use super::sessions::*;
use super::*;

fn deployment(name: &str, pod_spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}
        }
    })
}

/// A web container (port 8080) with a read-only root filesystem.
fn web(extra: Value) -> Value {
    let mut c = json!({
        "name": "web", "image": "example/shop:1.0",
        "ports": [{"name": "http", "containerPort": 8080}],
        "securityContext": {"readOnlyRootFilesystem": true}
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

fn service(name: &str, selector: Value, extra: Value) -> Value {
    let mut s = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80}]}
    });
    if let (Some(spec), Some(extra)) = (s["spec"].as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    s
}

fn run(objects: Vec<Value>) -> Vec<Finding> {
    let objs: Vec<Object> = objects.into_iter().map(Object::new).collect();
    evaluate(&objs, &Config::default())
}

fn of(findings: &[Finding], rule: RuleId) -> Vec<&Finding> {
    findings.iter().filter(|f| f.rule == rule).collect()
}

fn paths(findings: &[Finding], rule: RuleId) -> Vec<String> {
    of(findings, rule).iter().map(|f| f.path.clone()).collect()
}

// ---------- catalogue and config ----------

#[test]
fn catalogue_is_in_rule_order_with_unique_names() {
    assert_eq!(catalogue().len(), RuleId::ALL.len());
    for (info, id) in catalogue().iter().zip(RuleId::ALL) {
        assert_eq!(info.id, id);
        assert_eq!(id.info().name(), id.as_str());
        assert_eq!(id.as_str().parse::<RuleId>(), Ok(id));
        assert!(!info.why.is_empty() && !info.remediation.is_empty());
    }
    assert_eq!(RuleId::WritableRootFs.info().severity, Severity::Low);
    assert!(Severity::Low < Severity::Medium && Severity::Medium < Severity::High);
    let err = "nope".parse::<RuleId>().unwrap_err().to_string();
    assert!(
        err.contains("session-affinity") && err.contains("in-process-scheduler"),
        "{err}"
    );
}

#[test]
fn finding_json_has_exactly_the_stable_fields() {
    let f = run(vec![service(
        "web",
        json!({"app": "web"}),
        json!({"sessionAffinity": "ClientIP"}),
    )]);
    let v = serde_json::to_value(&f[0]).unwrap_or_default();
    let mut keys: Vec<&str> = v
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "kind",
            "message",
            "name",
            "namespace",
            "path",
            "remediation",
            "rule",
            "severity",
            "waived"
        ]
    );
    assert_eq!(v["rule"], "session-affinity");
    assert_eq!(v["severity"], "high");
    let sourced = evaluate(
        &[Object::with_source(
            service(
                "web",
                json!({"app": "web"}),
                json!({"sessionAffinity": "ClientIP"}),
            ),
            "svc.yaml",
            7,
        )],
        &Config::default(),
    );
    let v = serde_json::to_value(&sourced[0]).unwrap_or_default();
    assert_eq!(
        (v["file"].as_str(), v["line"].as_u64()),
        (Some("svc.yaml"), Some(7))
    );
}

#[test]
fn config_selects_rules_and_min_severity() {
    let objs = vec![
        deployment(
            "shop",
            json!({"containers": [web(json!({"securityContext": {}}))]}),
        ),
        service(
            "shop",
            json!({"app": "shop"}),
            json!({"sessionAffinity": "ClientIP"}),
        ),
    ];
    let all = run(objs.clone());
    assert_eq!(of(&all, RuleId::WritableRootFs).len(), 1);
    assert_eq!(of(&all, RuleId::SessionAffinity).len(), 1);
    let objects: Vec<Object> = objs.into_iter().map(Object::new).collect();
    let mut cfg = Config::default();
    cfg.select_rules(
        &[RuleId::WritableRootFs, RuleId::SessionAffinity],
        &[RuleId::SessionAffinity],
    );
    let only = evaluate(&objects, &cfg);
    assert!(only.iter().all(|f| f.rule == RuleId::WritableRootFs) && !only.is_empty());
    let cfg = Config {
        min_severity: Severity::Medium,
        ..Config::default()
    };
    let serious = evaluate(&objects, &cfg);
    assert!(serious.iter().all(|f| f.severity >= Severity::Medium));
    assert_eq!(of(&serious, RuleId::SessionAffinity).len(), 1);
}

// ---------- session-affinity ----------

#[test]
fn session_affinity_on_service_selecting_app_pods() {
    let f = run(vec![
        deployment("shop", json!({"containers": [web(json!({}))]})),
        service(
            "shop",
            json!({"app": "shop"}),
            json!({"sessionAffinity": "ClientIP"}),
        ),
    ]);
    let hits = of(&f, RuleId::SessionAffinity);
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].kind.as_str(), hits[0].name.as_str()),
        ("Service", "shop")
    );
    assert_eq!(hits[0].path, "spec.sessionAffinity");
    assert_eq!(hits[0].namespace.as_deref(), Some("shop"));
    assert!(
        hits[0].message.contains("application pods"),
        "{}",
        hits[0].message
    );
}

#[test]
fn session_affinity_none_is_fine() {
    let f = run(vec![
        deployment("shop", json!({"containers": [web(json!({}))]})),
        service(
            "shop",
            json!({"app": "shop"}),
            json!({"sessionAffinity": "None"}),
        ),
    ]);
    assert!(of(&f, RuleId::SessionAffinity).is_empty());
}

#[test]
fn session_affinity_on_database_service_is_not_reported() {
    let db = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "shop"},
        "spec": {"template": {"metadata": {"labels": {"app": "db"}},
            "spec": {"containers": [{"name": "pg", "image": "docker.io/library/postgres:16",
                "ports": [{"containerPort": 5432}]}]}}}
    });
    let f = run(vec![
        db,
        service(
            "db",
            json!({"app": "db"}),
            json!({"sessionAffinity": "ClientIP"}),
        ),
    ]);
    assert!(of(&f, RuleId::SessionAffinity).is_empty(), "{f:?}");
}

#[test]
fn session_affinity_unknown_selection_is_reported_unless_it_names_a_data_store() {
    let f = run(vec![service(
        "web",
        json!({"app": "web"}),
        json!({"sessionAffinity": "ClientIP"}),
    )]);
    assert_eq!(of(&f, RuleId::SessionAffinity).len(), 1);
    let f = run(vec![service(
        "cache",
        json!({"app.kubernetes.io/name": "redis"}),
        json!({"sessionAffinity": "ClientIP"}),
    )]);
    assert!(of(&f, RuleId::SessionAffinity).is_empty());
}

#[test]
fn session_affinity_skips_headless_and_selectorless_services() {
    let f = run(vec![
        deployment("shop", json!({"containers": [web(json!({}))]})),
        service(
            "h",
            json!({"app": "shop"}),
            json!({"sessionAffinity": "ClientIP", "clusterIP": "None"}),
        ),
        service("ext", json!({}), json!({"sessionAffinity": "ClientIP"})),
    ]);
    assert!(of(&f, RuleId::SessionAffinity).is_empty(), "{f:?}");
}

#[test]
fn session_affinity_matches_selectors_only_within_a_namespace() {
    let mut other = service(
        "shop",
        json!({"app": "shop"}),
        json!({"sessionAffinity": "ClientIP"}),
    );
    other["metadata"]["namespace"] = json!("elsewhere");
    let mut db = deployment(
        "shop",
        json!({"containers": [{"name": "r", "image": "redis:7", "ports": [{"containerPort": 6379}]}]}),
    );
    db["metadata"]["namespace"] = json!("elsewhere");
    // In `elsewhere` the Service selects redis: not reported, although an
    // app with the same labels exists in `shop`.
    let f = run(vec![
        deployment("shop", json!({"containers": [web(json!({}))]})),
        other,
        db,
    ]);
    assert!(of(&f, RuleId::SessionAffinity).is_empty(), "{f:?}");
}

// ---------- sticky-ingress ----------

fn ingress(annotations: Value, backend: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "shop", "namespace": "shop", "annotations": annotations},
        "spec": {"rules": [{"host": "shop.example", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}
    })
}

#[test]
fn sticky_nginx_cookie_affinity() {
    let f = run(vec![ingress(
        json!({"nginx.ingress.kubernetes.io/affinity": "cookie", "nginx.ingress.kubernetes.io/session-cookie-name": "route"}),
        json!({"service": {"name": "shop", "port": {"number": 80}}}),
    )]);
    assert_eq!(
        paths(&f, RuleId::StickyIngress),
        [r#"metadata.annotations["nginx.ingress.kubernetes.io/affinity"]"#]
    );
    assert!(f[0].message.contains("route"));
}

#[test]
fn sticky_nginx_ip_hash_but_not_uri_hash() {
    let f = run(vec![ingress(
        json!({"nginx.ingress.kubernetes.io/upstream-hash-by": "$binary_remote_addr"}),
        json!({"service": {"name": "shop"}}),
    )]);
    assert_eq!(of(&f, RuleId::StickyIngress).len(), 1);
    let f = run(vec![ingress(
        json!({"nginx.ingress.kubernetes.io/upstream-hash-by": "$request_uri"}),
        json!({"service": {"name": "shop"}}),
    )]);
    assert!(of(&f, RuleId::StickyIngress).is_empty());
}

#[test]
fn sticky_other_annotation_families() {
    for (key, value) in [
        ("haproxy.org/cookie-persistence", "srv"),
        ("haproxy-ingress.github.io/affinity", "cookie"),
        ("ingress.kubernetes.io/affinity", "cookie"),
        ("haproxy.org/load-balance", "source"),
        (
            "alb.ingress.kubernetes.io/target-group-attributes",
            "deregistration_delay.timeout_seconds=30, stickiness.enabled=true",
        ),
        (
            "traefik.ingress.kubernetes.io/service.sticky.cookie",
            "true",
        ),
    ] {
        let f = run(vec![ingress(
            json!({key: value}),
            json!({"serviceName": "shop", "servicePort": 80}),
        )]);
        assert_eq!(of(&f, RuleId::StickyIngress).len(), 1, "{key}");
    }
    let f = run(vec![ingress(
        json!({"alb.ingress.kubernetes.io/target-group-attributes": "stickiness.enabled=false"}),
        json!({"serviceName": "shop"}),
    )]);
    assert!(f.iter().all(|f| f.rule != RuleId::StickyIngress));
}

#[test]
fn sticky_traefik_on_service_and_aws_nlb() {
    let mut svc = service("shop", json!({"app": "shop"}), json!({}));
    svc["metadata"]["annotations"] = json!({
        "traefik.ingress.kubernetes.io/service.sticky.cookie": "true",
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": "stickiness.enabled=true,stickiness.type=source_ip"
    });
    let f = run(vec![
        deployment("shop", json!({"containers": [web(json!({}))]})),
        svc,
    ]);
    assert_eq!(of(&f, RuleId::StickyIngress).len(), 2);
}

#[test]
fn sticky_ingress_to_a_database_only_is_not_reported() {
    let db = deployment(
        "db",
        json!({"containers": [{"name": "m", "image": "mysql:8", "ports": [{"containerPort": 3306}]}]}),
    );
    let f = run(vec![
        db,
        service("db", json!({"app": "db"}), json!({})),
        ingress(
            json!({"nginx.ingress.kubernetes.io/affinity": "cookie"}),
            json!({"service": {"name": "db"}}),
        ),
    ]);
    assert!(of(&f, RuleId::StickyIngress).is_empty(), "{f:?}");
}

#[test]
fn sticky_crd_objects_read_as_json() {
    let objs = vec![
        json!({"apiVersion": "cloud.google.com/v1", "kind": "BackendConfig", "metadata": {"name": "bc", "namespace": "shop"},
               "spec": {"sessionAffinity": {"affinityType": "GENERATED_COOKIE"}}}),
        json!({"apiVersion": "cloud.google.com/v1", "kind": "BackendConfig", "metadata": {"name": "none", "namespace": "shop"},
               "spec": {"sessionAffinity": {"affinityType": "NONE"}}}),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "dr", "namespace": "shop"},
               "spec": {"host": "shop.shop.svc.cluster.local",
                        "trafficPolicy": {"portLevelSettings": [{"port": {"number": 80}, "loadBalancer": {"consistentHash": {"useSourceIp": true}}}]},
                        "subsets": [{"name": "v1", "trafficPolicy": {"loadBalancer": {"consistentHash": {"httpCookie": {"name": "u", "ttl": "0s"}}}}}]}}),
        json!({"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute", "metadata": {"name": "ir", "namespace": "shop"},
               "spec": {"routes": [{"match": "Host(`a`)", "services": [{"name": "shop", "port": 80, "sticky": {"cookie": {"name": "s"}}}]}]}}),
    ];
    let f = run(objs);
    let mut p = paths(&f, RuleId::StickyIngress);
    p.sort();
    assert_eq!(
        p,
        [
            "spec.routes[0].services[0].sticky.cookie",
            "spec.sessionAffinity.affinityType",
            "spec.subsets[0].trafficPolicy.loadBalancer.consistentHash.httpCookie",
            "spec.trafficPolicy.portLevelSettings[0].loadBalancer.consistentHash.useSourceIp",
        ]
    );
}

#[test]
fn destination_rule_host_resolves_to_a_service() {
    let db = deployment(
        "db",
        json!({"containers": [{"name": "r", "image": "valkey/valkey:8", "ports": [{"containerPort": 6379}]}]}),
    );
    let dr = json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule", "metadata": {"name": "dr", "namespace": "shop"},
        "spec": {"host": "db", "trafficPolicy": {"loadBalancer": {"consistentHash": {"useSourceIp": true}}}}});
    let f = run(vec![db, service("db", json!({"app": "db"}), json!({})), dr]);
    assert!(of(&f, RuleId::StickyIngress).is_empty(), "{f:?}");
}

#[test]
fn openshift_route_cookies_stay_on_unless_disabled_with_true() {
    let route = |name: &str, disable: &str| {
        json!({"apiVersion": "route.openshift.io/v1", "kind": "Route",
               "metadata": {"name": name, "namespace": "shop",
                            "annotations": {"haproxy.router.openshift.io/disable_cookies": disable}},
               "spec": {"to": {"kind": "Service", "name": "shop"}}})
    };
    // The router reads only `true`/`TRUE`; `yes` leaves the cookie on.
    let f = run(vec![route("yes", "yes"), route("upper", "TRUE")]);
    let sticky = of(&f, RuleId::StickyIngress);
    assert_eq!(sticky.len(), 1, "{f:?}");
    assert_eq!(sticky[0].name, "yes");
    assert!(
        sticky[0].message.contains("by default"),
        "{}",
        sticky[0].message
    );
}

#[test]
fn client_identity_headers_pin_other_headers_spread() {
    let dr = |name: &str, header: &str| {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
               "metadata": {"name": name, "namespace": "shop"},
               "spec": {"host": "shop", "trafficPolicy": {"loadBalancer": {"consistentHash": {"httpHeaderName": header}}}}})
    };
    let f = run(vec![
        dr("user", "x-user-id"),
        dr("auth", "Authorization"),
        dr("agent", "User-Agent"),
        dr("tenant", "x-tenant"),
    ]);
    let mut names: Vec<&str> = of(&f, RuleId::StickyIngress)
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["auth", "user"]);
}

#[test]
fn emissary_service_with_namespace_and_port_resolves_to_a_database() {
    let mut db = deployment(
        "db",
        json!({"containers": [{"name": "r", "image": "redis:7", "ports": [{"containerPort": 6379}]}]}),
    );
    db["metadata"]["namespace"] = json!("data");
    let mut svc = service("db", json!({"app": "db"}), json!({}));
    svc["metadata"]["namespace"] = json!("data");
    let mapping = json!({"apiVersion": "getambassador.io/v3alpha1", "kind": "Mapping",
        "metadata": {"name": "m", "namespace": "shop"},
        "spec": {"prefix": "/", "service": "http://db.data:6379",
                 "load_balancer": {"policy": "ring_hash", "source_ip": true}}});
    let f = run(vec![db, svc, mapping]);
    assert!(of(&f, RuleId::StickyIngress).is_empty(), "{f:?}");
}

#[test]
fn kong_ingress_attached_through_an_ingress_to_a_database_only_is_not_reported() {
    let db = deployment(
        "db",
        json!({"containers": [{"name": "m", "image": "mysql:8", "ports": [{"containerPort": 3306}]}]}),
    );
    let mut ing = ingress(
        json!({"konghq.com/override": "sticky"}),
        json!({"service": {"name": "db"}}),
    );
    ing["metadata"]["name"] = json!("db-ingress");
    let ki = json!({"apiVersion": "configuration.konghq.com/v1", "kind": "KongIngress",
        "metadata": {"name": "sticky", "namespace": "shop"}, "upstream": {"hash_on": "consumer"}});
    let f = run(vec![
        db.clone(),
        service("db", json!({"app": "db"}), json!({})),
        ing,
        ki.clone(),
    ]);
    assert!(of(&f, RuleId::StickyIngress).is_empty(), "{f:?}");
    // Without anything naming it, it is reported on its own.
    let f = run(vec![ki]);
    assert_eq!(paths(&f, RuleId::StickyIngress), ["upstream.hash_on"]);
}

// ---------- host-path ----------

#[test]
fn host_path_in_app_pod() {
    let f = run(vec![deployment(
        "shop",
        json!({
            "containers": [web(json!({"volumeMounts": [{"name": "data", "mountPath": "/data"}]}))],
            "volumes": [{"name": "data", "hostPath": {"path": "/srv/shop"}}]
        }),
    )]);
    assert_eq!(
        paths(&f, RuleId::HostPath),
        ["spec.template.spec.volumes[0].hostPath"]
    );
}

#[test]
fn host_path_read_only_mount_is_fine() {
    let f = run(vec![deployment(
        "shop",
        json!({
            "containers": [web(json!({"volumeMounts": [{"name": "tz", "mountPath": "/etc/localtime", "readOnly": true}]}))],
            "volumes": [{"name": "tz", "hostPath": {"path": "/etc/localtime"}}]
        }),
    )]);
    assert!(of(&f, RuleId::HostPath).is_empty());
}

#[test]
fn host_path_in_daemonset_is_not_reported() {
    let ds = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"template": {"metadata": {"labels": {"app": "agent"}}, "spec": {
            "containers": [{"name": "a", "image": "quay.io/prometheus/node-exporter", "ports": [{"containerPort": 9100}],
                "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}}
    });
    assert!(run(vec![ds]).is_empty());
}

#[test]
fn host_path_through_a_bound_persistent_volume() {
    let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
        "spec": {"accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/mnt/data"}}});
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "shop"},
        "spec": {"storageClassName": "", "accessModes": ["ReadWriteOnce"]}});
    let f = run(vec![
        pv,
        pvc,
        deployment(
            "shop",
            json!({
                "containers": [web(json!({"volumeMounts": [{"name": "d", "mountPath": "/data"}]}))],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]
            }),
        ),
    ]);
    assert_eq!(
        paths(&f, RuleId::HostPath),
        ["spec.template.spec.volumes[0].persistentVolumeClaim"]
    );
    assert!(of(&f, RuleId::HostPath)[0].message.contains("/mnt/data"));
}

// ---------- local-upload-dir ----------

#[test]
fn upload_dir_on_empty_dir() {
    let f = run(vec![deployment(
        "shop",
        json!({
            "containers": [web(json!({"volumeMounts": [
                {"name": "up", "mountPath": "/var/www/html/wp-content/uploads"},
                {"name": "tmp", "mountPath": "/tmp"}]}))],
            "volumes": [{"name": "up", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
        }),
    )]);
    assert_eq!(
        paths(&f, RuleId::LocalUploadDir),
        ["spec.template.spec.containers[0].volumeMounts[0].mountPath"]
    );
}

#[test]
fn upload_dir_on_shared_claim_or_config_map_is_fine() {
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "shared", "namespace": "shop"},
        "spec": {"accessModes": ["ReadWriteMany"]}});
    let f = run(vec![
        pvc,
        deployment(
            "shop",
            json!({
                "containers": [web(json!({"volumeMounts": [
                    {"name": "up", "mountPath": "/app/uploads"}, {"name": "cm", "mountPath": "/app/media"}]}))],
                "volumes": [{"name": "up", "persistentVolumeClaim": {"claimName": "shared"}}, {"name": "cm", "configMap": {"name": "x"}}]
            }),
        ),
    ]);
    assert!(of(&f, RuleId::LocalUploadDir).is_empty(), "{f:?}");
    assert!(of(&f, RuleId::PvcAppTier).is_empty(), "{f:?}");
}

#[test]
fn upload_dir_extra_pattern_from_config() {
    let objs = vec![Object::new(deployment(
        "shop",
        json!({
            "containers": [web(json!({"volumeMounts": [{"name": "d", "mountPath": "/srv/blobs"}]}))],
            "volumes": [{"name": "d", "emptyDir": {}}]
        }),
    ))];
    assert!(
        evaluate(&objs, &Config::default())
            .iter()
            .all(|f| f.rule != RuleId::LocalUploadDir)
    );
    let mut cfg = Config::default();
    cfg.upload_paths.push("/srv/blobs*".into());
    assert_eq!(of(&evaluate(&objs, &cfg), RuleId::LocalUploadDir).len(), 1);
}

#[test]
fn upload_env_vars_direct_and_from_config_map() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "shop"},
        "data": {"MEDIA_ROOT": "/app/media", "MEDIA_URL": "/media/"}});
    let f = run(vec![
        cm,
        deployment(
            "shop",
            json!({"containers": [web(json!({
                "env": [{"name": "UPLOAD_DIR", "value": "/data/uploads"}, {"name": "UPLOAD_URL", "value": "s3://b/u"},
                        {"name": "FILE_UPLOAD_DIR", "value": "s3://bucket/up"}],
                "envFrom": [{"configMapRef": {"name": "cfg"}}]
            }))]}),
        ),
    ]);
    let mut p = paths(&f, RuleId::LocalUploadDir);
    p.sort();
    assert_eq!(
        p,
        [
            "spec.template.spec.containers[0].envFrom[0].configMapRef",
            "spec.template.spec.containers[0].env[0].value"
        ]
    );
}

// ---------- pvc-app-tier ----------

#[test]
fn pvc_rwo_in_app_deployment() {
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "shop"},
        "spec": {"accessModes": ["ReadWriteOnce"]}});
    let f = run(vec![
        pvc,
        deployment(
            "shop",
            json!({
                "containers": [web(json!({"volumeMounts": [{"name": "d", "mountPath": "/var/lib/shop"}]}))],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]
            }),
        ),
    ]);
    assert_eq!(
        paths(&f, RuleId::PvcAppTier),
        ["spec.template.spec.volumes[0].persistentVolumeClaim"]
    );
    assert!(
        of(&f, RuleId::PvcAppTier)[0]
            .message
            .contains("ReadWriteOnce")
    );
}

#[test]
fn postgres_statefulset_with_claims_is_not_reported() {
    let sts = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "pg", "namespace": "shop"},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "pg"}}, "spec": {"containers": [
            {"name": "pg", "image": "bitnami/postgresql:16", "ports": [{"containerPort": 5432}],
             "volumeMounts": [{"name": "data", "mountPath": "/bitnami/postgresql"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}
    });
    assert!(
        run(vec![
            sts,
            service(
                "pg",
                json!({"app": "pg"}),
                json!({"sessionAffinity": "ClientIP"})
            )
        ])
        .is_empty()
    );
}

#[test]
fn web_statefulset_with_claim_templates_is_reported() {
    let sts = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            web(json!({"volumeMounts": [{"name": "data", "mountPath": "/srv"}]}))]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}
    });
    let f = run(vec![sts]);
    assert_eq!(
        paths(&f, RuleId::PvcAppTier),
        ["spec.volumeClaimTemplates[0]"]
    );
}

#[test]
fn data_store_behind_a_sidecar_is_excluded() {
    let d = deployment(
        "prom",
        json!({"containers": [
        {"name": "reload", "image": "quay.io/prometheus-operator/prometheus-config-reloader:v0.93"},
        {"name": "prometheus", "image": "quay.io/prometheus/prometheus:v3", "ports": [{"containerPort": 9090}],
         "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "prom"}}]}),
    );
    assert!(run(vec![d]).is_empty());
}

#[test]
fn operator_managed_redis_is_not_reported() {
    let redis = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shop-redis", "namespace": "shop",
            "labels": {"app.kubernetes.io/managed-by": "stateless-operator", "app.kubernetes.io/component": "session-store"}},
        "spec": {"replicas": 1, "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "shop-redis", "app.kubernetes.io/component": "session-store"}},
            "spec": {"containers": [{"name": "redis", "image": "registry.example/custom-kv:1", "ports": [{"containerPort": 6379}],
                "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "shop-redis"}}]}}}
    });
    assert!(run(vec![redis]).is_empty());
}

// ---------- in-memory-session ----------

/// `session_setting` with no cache context.
fn setting(key: &str, value: &str) -> Option<LocalSession> {
    session_setting(key, value, &SessionContext::default())
}

/// A context whose cache is local because of `key=value`.
fn cache_ctx(key: &str, value: &str) -> SessionContext {
    let mut ctx = SessionContext::default();
    ctx.observe(key, value, &format!("{key}={value}"));
    assert!(
        ctx.local_cache.is_some(),
        "{key}={value} must make the cache local"
    );
    ctx
}

/// The false-positive traps every session pattern must leave alone.
const SESSION_TRAPS: &[(&str, &str)] = &[
    ("SESSION_TIMEOUT", "30"),
    ("SESSION_COOKIE_NAME", "laravel_session"),
    ("SESSION_STORE", "redis"),
    ("SESSION_DRIVER", "redis"),
    ("SESSION_DRIVER", "cookie"),
    ("SESSION_TYPE", "redis"),
];

#[test]
fn generic_session_keys_with_pod_local_values() {
    let keys = [
        "SESSION_STORE",
        "SESSION_DRIVER",
        "SESSION_BACKEND",
        "SESSION_TYPE",
        "SESSIONS_STORE",
        "SESSION_ENGINE",
        "SESSION_STORAGE",
        "SESSION_PROVIDER",
        "SESSION_STORE_TYPE",
        "session.store",
        "session-store",
        "Session.Store",
        "session_store",
        "sessionStore",
        "sessionstore",
        "APP_SESSION_STORE",
        "GF_SESSION_PROVIDER",
        "GITEA__session__PROVIDER",
    ];
    let values = [
        ("memory", Place::Memory),
        ("MEMORY", Place::Memory),
        ("in-memory", Place::Memory),
        ("in_memory", Place::Memory),
        ("inmemory", Place::Memory),
        ("memorystore", Place::Memory),
        ("\"memory\"", Place::Memory),
        ("memory://", Place::Memory),
        ("local", Place::Pod),
        ("file", Place::Disk),
        ("files", Place::Disk),
        ("filesystem", Place::Disk),
        ("File", Place::Disk),
        ("file:///var/lib/sessions", Place::Disk),
    ];
    for key in keys {
        assert!(session_store_key(key), "{key}");
        for (value, place) in values {
            let hit = setting(key, value).unwrap_or_else(|| panic!("{key}={value}"));
            assert_eq!(hit.place, place, "{key}={value}");
            assert_eq!(hit.setting, format!("{key}={value}"));
        }
    }
}

#[test]
fn session_backends_outside_the_pod_are_not_reported() {
    // Shared stores, and client-side sessions (a signed or encrypted cookie
    // or a JWT keeps the state in the client: stateless for the server).
    for value in [
        "redis",
        "REDIS",
        "rediss://:pw@shop-redis:6379/0",
        "redis.local",
        "memcached",
        "memcache",
        "mem_cache_store",
        "database",
        "db",
        "jdbc",
        "mongodb",
        "dynamodb",
        "hazelcast",
        "cookie",
        "cookie_store",
        "cookies",
        "signed_cookies",
        "encrypted_cookie",
        "jwt",
        "none",
        "",
        "  ",
    ] {
        for key in [
            "SESSION_STORE",
            "SESSION_DRIVER",
            "session.store",
            "SESSION_TYPE",
        ] {
            assert!(setting(key, value).is_none(), "{key}={value}");
        }
    }
    for (k, v) in SESSION_TRAPS {
        assert!(setting(k, v).is_none(), "{k}={v}");
    }
}

#[test]
fn unrelated_keys_with_local_values_are_not_reported() {
    for key in [
        "SESSION_TIMEOUT",
        "SESSION_LIFETIME",
        "SESSION_COOKIE_NAME",
        "SESSION_COOKIE_TYPE",
        "SESSION_COOKIE_STORE",
        "COOKIE_SESSION_STORE",
        "SESSION_SECRET",
        "SESSION_STORE_PATH",
        "SESSION_FILE_DIR",
        "SESSION_TOKEN_TYPE",
        "SESSION",
        "STORE",
        "STORAGE_TYPE",
        "CACHE_DRIVER",
        "CACHE_STORE",
        "session.save_path",
        "storage.cache.blobdescriptor",
    ] {
        assert!(!session_store_key(key), "{key}");
        for value in ["memory", "file", "local", "inmemory"] {
            assert!(setting(key, value).is_none(), "{key}={value}");
        }
    }
}

#[test]
fn laravel_session_driver() {
    for (v, place) in [
        ("file", Place::Disk),
        ("array", Place::Memory),
        ("apc", Place::Memory),
    ] {
        assert_eq!(
            setting("SESSION_DRIVER", v).map(|h| h.place),
            Some(place),
            "{v}"
        );
    }
    for v in ["cookie", "redis", "database", "memcached", "dynamodb"] {
        assert!(setting("SESSION_DRIVER", v).is_none(), "{v}");
    }
    // CACHE_DRIVER=file is a cache, not the session store.
    assert!(setting("CACHE_DRIVER", "file").is_none());
}

#[test]
fn django_session_engine() {
    let file = "django.contrib.sessions.backends.file";
    let cache = "django.contrib.sessions.backends.cache";
    assert_eq!(
        setting("SESSION_ENGINE", file).map(|h| h.place),
        Some(Place::Disk)
    );
    assert_eq!(
        setting("DJANGO_SESSION_ENGINE", file).map(|h| h.place),
        Some(Place::Disk)
    );
    // Cache-backed sessions are local only when the cache is.
    assert!(setting("SESSION_ENGINE", cache).is_none());
    for (k, v) in [
        ("CACHE_BACKEND", "locmem://"),
        ("CACHE_BACKEND", "file:///var/tmp/django_cache"),
        (
            "CACHE_BACKEND",
            "django.core.cache.backends.locmem.LocMemCache",
        ),
        (
            "CACHES",
            r#"{"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache"}}"#,
        ),
    ] {
        let hit = session_setting("SESSION_ENGINE", cache, &cache_ctx(k, v))
            .unwrap_or_else(|| panic!("with {k}={v}"));
        assert_eq!(hit.place, Place::LocalCache);
        assert_eq!(hit.because.as_deref(), Some(format!("{k}={v}").as_str()));
    }
    let mut shared = SessionContext::default();
    shared.observe("CACHE_BACKEND", "redis://cache:6379", "");
    shared.observe(
        "CACHES",
        r#"{"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}}"#,
        "",
    );
    assert_eq!(shared.local_cache, None);
    assert!(session_setting("SESSION_ENGINE", cache, &shared).is_none());
    // Write-through to the database, the database, signed cookies: fine even
    // with a local cache.
    let local = cache_ctx("CACHE_BACKEND", "locmem://");
    for engine in ["cached_db", "db", "signed_cookies"] {
        let v = format!("django.contrib.sessions.backends.{engine}");
        assert!(
            session_setting("SESSION_ENGINE", &v, &local).is_none(),
            "{v}"
        );
    }
}

#[test]
fn express_session_memory_store() {
    for v in ["MemoryStore", "memorystore", "memory-store"] {
        assert_eq!(
            setting("SESSION_STORE", v).map(|h| h.place),
            Some(Place::Memory),
            "{v}"
        );
    }
    for v in [
        "RedisStore",
        "connect-redis",
        "MemcachedStore",
        "connect-mongo",
    ] {
        assert!(setting("SESSION_STORE", v).is_none(), "{v}");
    }
    let none = SessionContext::default();
    for code in [
        "app.use(session({ store: new session.MemoryStore() }))",
        "const MemoryStore = require('memorystore')(session)",
        "import createMemoryStore from \"memorystore\"",
    ] {
        assert!(
            session_in_text("server.js", code, &none).is_some(),
            "{code}"
        );
    }
    for code in [
        "app.use(session({ store: new RedisStore({ client }) }))",
        "const { MemoryStore } = require('express-rate-limit')",
    ] {
        assert!(
            session_in_text("server.js", code, &none).is_none(),
            "{code}"
        );
    }
}

#[test]
fn spring_session_store_types_are_not_pod_local() {
    // `none` leaves sessions to the servlet container; not clearly pod-local
    // from the manifest, so not reported. The others are shared stores.
    for v in ["none", "redis", "jdbc", "hazelcast", "mongodb"] {
        assert!(setting("spring.session.store-type", v).is_none(), "{v}");
        assert!(setting("SPRING_SESSION_STORE_TYPE", v).is_none(), "{v}");
    }
    assert!(session_store_key("spring.session.store-type"));
    assert!(setting("server.servlet.session.persistent", "true").is_none());
}

#[test]
fn rails_session_store() {
    let none = SessionContext::default();
    assert_eq!(
        setting("SESSION_STORE", "memory_store").map(|h| h.place),
        Some(Place::Memory)
    );
    assert_eq!(
        setting("SESSION_STORE", ":file_store").map(|h| h.place),
        Some(Place::Disk)
    );
    let hit = session_in_text(
        "session_store.rb",
        "Rails.application.config.session_store :memory_store, key: \"_shop\"\n",
        &none,
    )
    .expect("memory_store initializer");
    assert_eq!(hit.setting, "session_store :memory_store");
    // :cache_store is local when the cache is memory_store or file_store.
    let hit = session_in_text(
        "production.rb",
        "config.cache_store = :memory_store, { size: 64.megabytes }\nconfig.session_store :cache_store\n",
        &none,
    )
    .expect("cache_store on memory_store");
    assert_eq!(hit.place, Place::LocalCache);
    let env_cache = cache_ctx("RAILS_CACHE_STORE", "file_store");
    assert!(session_setting("SESSION_STORE", "cache_store", &env_cache).is_some());
    for text in [
        "Rails.application.config.session_store :cookie_store, key: '_shop_session'\n",
        "config.session_store :mem_cache_store\n",
        "config.session_store :active_record_store\n",
        "config.cache_store = :redis_cache_store, { url: ENV['REDIS_URL'] }\nconfig.session_store :cache_store\n",
    ] {
        assert!(
            session_in_text("session_store.rb", text, &none).is_none(),
            "{text}"
        );
    }
    assert!(setting("SESSION_STORE", "cache_store").is_none());
    assert!(setting("SESSION_STORE", "redis_store").is_none());
}

#[test]
fn php_session_save_handler() {
    let none = SessionContext::default();
    for (k, v) in [
        ("PHP_SESSION_SAVE_HANDLER", "files"),
        ("PHP_INI_SESSION_SAVE_HANDLER", "files"),
        ("SESSION_SAVE_HANDLER", "files"),
        ("session.save_handler", "files"),
    ] {
        assert_eq!(setting(k, v).map(|h| h.place), Some(Place::Disk), "{k}={v}");
    }
    for text in [
        "[Session]\nsession.save_handler = files\n",
        "session.save_handler = files ; the default\n",
        "php_value session.save_handler files\n",
        "[www]\nphp_admin_value[session.save_handler] = files\n",
    ] {
        let hit = session_in_text("php.ini", text, &none).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(hit.place, Place::Disk);
    }
    for (k, v) in [
        ("PHP_SESSION_SAVE_HANDLER", "redis"),
        ("PHP_SESSION_SAVE_HANDLER", "memcached"),
        ("session.save_path", "/tmp"),
    ] {
        assert!(setting(k, v).is_none(), "{k}={v}");
    }
    for text in [
        "session.save_handler = redis\nsession.save_path = \"tcp://r:6379\"\n",
        "; session.save_handler = files\nsession.save_handler = memcached\n",
        "memory_limit = 256M\nsession.gc_maxlifetime = 1440\n",
    ] {
        assert!(session_in_text("php.ini", text, &none).is_none(), "{text}");
    }
}

#[test]
fn flask_session_type() {
    assert_eq!(
        setting("SESSION_TYPE", "filesystem").map(|h| h.place),
        Some(Place::Disk)
    );
    for v in ["redis", "memcached", "mongodb", "sqlalchemy", "dynamodb"] {
        assert!(setting("SESSION_TYPE", v).is_none(), "{v}");
    }
    assert!(setting("SESSION_FILE_DIR", "/tmp/flask_session").is_none());
}

#[test]
fn keycloak_local_cache() {
    assert_eq!(
        setting("KC_CACHE", "local").map(|h| h.place),
        Some(Place::Pod)
    );
    assert!(setting("KC_CACHE", "ispn").is_none());
}

#[test]
fn session_settings_on_the_command_line() {
    let none = SessionContext::default();
    for (argv, index, shown) in [
        (&["--session-store=memory"][..], 0, "--session-store=memory"),
        (
            &["serve", "--session-store", "memory"][..],
            1,
            "--session-store memory",
        ),
        (&["--session_driver=FILE"][..], 0, "--session_driver=FILE"),
        (
            &["-sessionStore=MemoryStore"][..],
            0,
            "-sessionStore=MemoryStore",
        ),
        (
            &["java", "-Dsession.store=memory", "-jar", "app.jar"][..],
            1,
            "-Dsession.store=memory",
        ),
        (
            &[
                "php",
                "-d",
                "session.save_handler=files",
                "-S",
                "0.0.0.0:80",
            ][..],
            2,
            "session.save_handler=files",
        ),
        (
            &["sh", "-c", "SESSION_STORE=memory exec node server.js"][..],
            2,
            "SESSION_STORE=memory",
        ),
        (
            &["app", "--session-store='in-memory'"][..],
            1,
            "--session-store=in-memory",
        ),
    ] {
        let (i, hit) = session_in_argv(argv, &none).unwrap_or_else(|| panic!("{argv:?}"));
        assert_eq!((i, hit.setting.as_str()), (index, shown), "{argv:?}");
    }
    for argv in [
        &["--session-store=redis"][..],
        &["--session-store", "redis://shop-redis:6379"][..],
        &["--session-timeout=30", "--session-cookie-name", "memory"][..],
        &["--session-store"][..],
        &["--session-store", "--verbose"][..],
        &["--store=memory", "--cache=memory"][..],
        &["sh", "-c", "SESSION_DRIVER=cookie exec php-fpm"][..],
        &["--session-type=jwt"][..],
    ] {
        assert!(session_in_argv(argv, &none).is_none(), "{argv:?}");
    }
    assert!(
        options_var("JAVA_OPTS") && options_var("JAVA_TOOL_OPTIONS") && options_var("APP_ARGS")
    );
    assert!(!options_var("SESSION_STORE") && !options_var("OPTION"));
}

#[test]
fn session_settings_in_config_files() {
    let none = SessionContext::default();
    for (name, text, shown) in [
        (
            "app.env",
            "APP_ENV=prod\nSESSION_DRIVER=file\n",
            "SESSION_DRIVER=file",
        ),
        (
            ".env",
            "export SESSION_STORE=memory\n",
            "SESSION_STORE=memory",
        ),
        (
            "app.ini",
            "[session]\nPROVIDER = memory\n",
            "[session] PROVIDER = memory",
        ),
        (
            "app.toml",
            "[session]\nstore = \"memory\"\n",
            "[session] store = \"memory\"",
        ),
        (
            "application.properties",
            "server.port=8080\nsession.store-type=memory\n",
            "session.store-type=memory",
        ),
        (
            "config.yaml",
            "server:\n  port: 8080\nsession:\n  store: memory\n",
            "session.store: memory",
        ),
        (
            "config.yml",
            "session-store: filesystem\n",
            "session-store: filesystem",
        ),
        (
            "config.json",
            "{\"session\": {\"driver\": \"file\", \"lifetime\": 120}}",
            "session.driver: file",
        ),
        (
            "settings.js",
            "module.exports = {\n  sessionStore: 'memory',\n  port: 80,\n}\n",
            "sessionStore: 'memory',",
        ),
    ] {
        let hit = session_in_text(name, text, &none).unwrap_or_else(|| panic!("{name}: {text}"));
        assert_eq!(hit.setting, shown, "{name}");
    }
    for (name, text) in [
        ("app.env", "CACHE_DRIVER=file\nSESSION_DRIVER=redis\n"),
        ("app.env", "# SESSION_STORE=memory\nSESSION_STORE=redis\n"),
        (
            "app.env",
            "SESSION_TIMEOUT=30\nSESSION_COOKIE_NAME=shop_session\nSESSION_TYPE=redis\n",
        ),
        ("app.ini", "[cache]\nprovider = memory\n"),
        (
            "app.ini",
            "[session]\nprovider = redis\nprovider_config = addr=redis:6379\n",
        ),
        (
            "config.yaml",
            "session:\n  store: redis\n  secret: keyboard cat\n",
        ),
        // docker-registry: an in-memory blob descriptor cache, not sessions.
        (
            "config.yml",
            "storage:\n  cache:\n    blobdescriptor: inmemory\n",
        ),
        (
            "config.json",
            "{\"session\": {\"driver\": \"cookie\"}, \"cache\": {\"driver\": \"file\"}}",
        ),
        ("application.properties", "spring.session.store-type=none\n"),
        ("notes.txt", "Sessions are stored in memory by default.\n"),
    ] {
        assert!(
            session_in_text(name, text, &none).is_none(),
            "{name}: {text}"
        );
    }
}

#[test]
fn in_memory_session_from_env_config_map_key_ref_and_mounted_ini() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "php", "namespace": "shop"},
        "data": {"driver": "file", "php.ini": "memory_limit = 256M\nsession.save_handler = files\n"}});
    let f = run(vec![
        cm,
        deployment(
            "shop",
            json!({
                "containers": [web(json!({
                    "env": [{"name": "SESSION_DRIVER", "valueFrom": {"configMapKeyRef": {"name": "php", "key": "driver"}}},
                            {"name": "CACHE_DRIVER", "value": "file"}],
                    "volumeMounts": [{"name": "ini", "mountPath": "/usr/local/etc/php/conf.d"}]}))],
                "volumes": [{"name": "ini", "configMap": {"name": "php"}}]
            }),
        ),
    ]);
    let mut p = paths(&f, RuleId::InMemorySession);
    p.sort();
    assert_eq!(
        p,
        [
            "spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef",
            "spec.template.spec.volumes[0].configMap"
        ]
    );
}

#[test]
fn cookie_sessions_are_stateless() {
    let f = run(vec![deployment(
        "shop",
        json!({"containers": [web(json!({
        "env": [{"name": "SESSION_DRIVER", "value": "cookie"}]}))]}),
    )]);
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn session_message_names_the_container_the_variable_and_the_value() {
    let f = run(vec![deployment(
        "shop",
        json!({"containers": [
            web(json!({"name": "sidecar", "ports": []})),
            web(json!({"env": [{"name": "APP_ENV", "value": "prod"}, {"name": "SESSION_DRIVER", "value": "file"}]}))
        ]}),
    )]);
    let hits = of(&f, RuleId::InMemorySession);
    assert_eq!(hits.len(), 1, "{f:?}");
    assert_eq!(
        hits[0].path,
        "spec.template.spec.containers[1].env[1].value"
    );
    assert_eq!(
        hits[0].message,
        "Container `web` of Deployment `shop` keeps sessions in files on the pod's own disk: \
         env `SESSION_DRIVER=file`; other replicas do not have them."
    );
    assert!(
        hits[0].remediation.contains("REDIS_URL") && hits[0].remediation.contains("JWT"),
        "{}",
        hits[0].remediation
    );
}

#[test]
fn session_traps_in_a_deployment_are_clean() {
    let env: Vec<Value> = SESSION_TRAPS
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .chain([
            json!({"name": "REDIS_URL", "value": "redis://shop-redis:6379"}),
            json!({"name": "CACHE_DRIVER", "value": "file"}),
            json!({"name": "JAVA_OPTS", "value": "-Xmx512m -Dspring.session.store-type=redis"}),
        ])
        .collect();
    let f = run(vec![deployment(
        "shop",
        json!({"containers": [web(json!({"env": env, "args": ["--session-timeout=30", "--session-store", "redis"]}))]}),
    )]);
    assert!(of(&f, RuleId::InMemorySession).is_empty(), "{f:?}");
}

#[test]
fn session_store_in_args_and_option_variables() {
    let f = run(vec![deployment(
        "shop",
        json!({"containers": [web(json!({
            "command": ["node", "server.js"],
            "args": ["--port=8080", "--session-store", "memory"],
            "env": [{"name": "JAVA_TOOL_OPTIONS", "value": "-Xss1m -Dsession.store=memory"}]
        }))]}),
    )]);
    let hits = of(&f, RuleId::InMemorySession);
    let got: Vec<(&str, &str)> = hits
        .iter()
        .map(|h| (h.path.as_str(), h.message.as_str()))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "spec.template.spec.containers[0].args[1]");
    assert!(
        got[0].1.contains("argument `--session-store memory`")
            && got[0].1.contains("Container `web`"),
        "{}",
        got[0].1
    );
    assert_eq!(got[1].0, "spec.template.spec.containers[0].env[0].value");
    assert!(
        got[1]
            .1
            .contains("`-Dsession.store=memory` in env `JAVA_TOOL_OPTIONS`"),
        "{}",
        got[1].1
    );
}

#[test]
fn session_store_from_config_maps_env_from_keys_and_files() {
    let env_cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "env", "namespace": "shop"},
        "data": {"session.store": "memory", "SESSION_TIMEOUT": "30"}});
    let files = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "files", "namespace": "shop"},
        "data": {"SESSION_STORE": "memory"}});
    let yaml = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "yaml", "namespace": "shop"},
        "data": {"config.yaml": "listen: 8080\nsession:\n  store: in-memory\n"}});
    let f = run(vec![
        env_cm,
        files,
        yaml,
        deployment(
            "shop",
            json!({
                "containers": [web(json!({
                    "envFrom": [{"configMapRef": {"name": "env"}}],
                    "volumeMounts": [{"name": "files", "mountPath": "/etc/shop/env"},
                                     {"name": "yaml", "mountPath": "/etc/shop/conf"}]}))],
                "volumes": [{"name": "files", "configMap": {"name": "files"}},
                            {"name": "yaml", "configMap": {"name": "yaml"}}]
            }),
        ),
    ]);
    let hits = of(&f, RuleId::InMemorySession);
    let got: Vec<(&str, &str)> = hits
        .iter()
        .map(|h| (h.path.as_str(), h.message.as_str()))
        .collect();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(
        got[0].0,
        "spec.template.spec.containers[0].envFrom[0].configMapRef"
    );
    assert!(
        got[0].1.contains(
            "env `session.store=memory` (from ConfigMap `env` key `session.store` via envFrom)"
        ),
        "{}",
        got[0].1
    );
    assert_eq!(got[1].0, "spec.template.spec.volumes[0].configMap");
    assert!(
        got[1].1.contains("`SESSION_STORE=memory` in ConfigMap `files` key `SESSION_STORE` (mounted at `/etc/shop/env`)"),
        "{}",
        got[1].1
    );
    assert_eq!(got[2].0, "spec.template.spec.volumes[1].configMap");
    assert!(
        got[2]
            .1
            .contains("`session.store: in-memory` in ConfigMap `yaml` key `config.yaml`"),
        "{}",
        got[2].1
    );
}

#[test]
fn cache_backed_sessions_with_the_pods_cache_settings() {
    let with_env = |cache: &str| {
        run(vec![deployment(
            "shop",
            json!({"containers": [web(json!({"env": [
                {"name": "SESSION_ENGINE", "value": "django.contrib.sessions.backends.cache"},
                {"name": "CACHE_BACKEND", "value": cache}
            ]}))]}),
        )])
    };
    let f = with_env("locmem://");
    let hits = of(&f, RuleId::InMemorySession);
    assert_eq!(hits.len(), 1, "{f:?}");
    assert!(
        hits[0]
            .message
            .contains("in a cache that lives inside the pod")
            && hits[0].message.contains("`CACHE_BACKEND=locmem://`"),
        "{}",
        hits[0].message
    );
    assert!(of(&with_env("redis://cache:6379/1"), RuleId::InMemorySession).is_empty());
    // A Rails initializer in a mounted ConfigMap, cache in the environment.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "init", "namespace": "shop"},
        "data": {"session_store.rb": "Rails.application.config.session_store :cache_store, key: \"_shop\"\n"}});
    let rails = |cache: &str| {
        run(vec![
            cm.clone(),
            deployment(
                "shop",
                json!({
                    "containers": [web(json!({
                        "env": [{"name": "RAILS_CACHE_STORE", "value": cache}],
                        "volumeMounts": [{"name": "init", "mountPath": "/app/config/initializers/session_store.rb", "subPath": "session_store.rb"}]}))],
                    "volumes": [{"name": "init", "configMap": {"name": "init"}}]
                }),
            ),
        ])
    };
    assert_eq!(
        paths(&rails("memory_store"), RuleId::InMemorySession),
        ["spec.template.spec.volumes[0].configMap"]
    );
    assert!(of(&rails("redis_cache_store"), RuleId::InMemorySession).is_empty());
}

#[test]
fn stateless_app_env_and_args_select_the_session_store() {
    let app = |spec: Value| run(vec![stateless_app(spec)]);
    let f = app(json!({"image": "example/session-demo:1",
        "env": [{"name": "SESSION_STORE", "value": "memory"}]}));
    let hits = of(&f, RuleId::InMemorySession);
    assert_eq!(hits.len(), 1, "{f:?}");
    assert_eq!(
        (hits[0].kind.as_str(), hits[0].path.as_str()),
        ("StatelessApp", "spec.env[0].value")
    );
    assert_eq!(
        hits[0].message,
        "StatelessApp `shop` keeps sessions in process memory: env `SESSION_STORE=memory`; \
         other replicas do not have them."
    );
    let f = app(
        json!({"image": "example/session-demo:1", "args": ["--listen=0.0.0.0:8080", "--session-store=memory"]}),
    );
    assert_eq!(paths(&f, RuleId::InMemorySession), ["spec.args[1]"]);
    for clean in [
        json!({"image": "example/session-demo:1", "env": [{"name": "SESSION_STORE", "value": "redis"}]}),
        json!({"image": "example/session-demo:1", "args": ["--session-store=redis"]}),
    ] {
        let f = app(clean.clone());
        assert!(of(&f, RuleId::InMemorySession).is_empty(), "{clean}: {f:?}");
    }
}

// ---------- single-replica ----------

#[test]
fn single_replica_omitted_and_explicit() {
    let mut d = deployment("shop", json!({"containers": [web(json!({}))]}));
    if let Some(spec) = d["spec"].as_object_mut() {
        spec.remove("replicas");
    }
    let f = run(vec![d.clone()]);
    assert_eq!(paths(&f, RuleId::SingleReplica), ["spec.replicas"]);
    assert!(f[0].message.contains("defaults to 1"));
    d["spec"]["replicas"] = json!(2);
    assert!(run(vec![d]).is_empty());
}

#[test]
fn single_replica_with_autoscaler_is_fine() {
    let mut d = deployment("shop", json!({"containers": [web(json!({}))]}));
    d["spec"]["replicas"] = json!(1);
    let hpa = |max: i64| {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop"}, "minReplicas": 1, "maxReplicas": max}})
    };
    assert!(run(vec![d.clone(), hpa(5)]).is_empty());
    assert_eq!(
        of(&run(vec![d.clone(), hpa(1)]), RuleId::SingleReplica).len(),
        1
    );
    let mut elsewhere = hpa(5);
    elsewhere["metadata"]["namespace"] = json!("other");
    assert_eq!(of(&run(vec![d, elsewhere]), RuleId::SingleReplica).len(), 1);
}

#[test]
fn workers_without_ports_are_judged_by_state_rules_but_not_single_replica() {
    let mut d = deployment(
        "worker",
        json!({"containers": [{"name": "w", "image": "example/worker",
        "command": ["celery", "-A", "app", "worker", "-B"],
        "ports": [{"name": "metrics", "containerPort": 9090}]}]}),
    );
    d["spec"]["replicas"] = json!(1);
    let alone = run(vec![d.clone()]);
    assert_eq!(
        of(&alone, RuleId::InProcessScheduler).len(),
        1,
        "{alone:#?}"
    );
    assert_eq!(of(&alone, RuleId::WritableRootFs).len(), 1);
    // One replica of a worker is not a user's failed request.
    assert!(of(&alone, RuleId::SingleReplica).is_empty());
    // Selected by a traffic Service: it serves traffic, one replica counts.
    let f = run(vec![
        d,
        service("worker", json!({"app": "worker"}), json!({})),
    ]);
    assert_eq!(of(&f, RuleId::SingleReplica).len(), 1);
    assert_eq!(of(&f, RuleId::InProcessScheduler).len(), 1);
}

/// A container without ports and with a read-only root filesystem.
fn portless(extra: Value) -> Value {
    let mut c = web(extra);
    c.as_object_mut().map(|c| c.remove("ports"));
    c
}

fn host_path_pod(c: Value) -> Value {
    json!({"containers": [c],
        "volumes": [{"name": "data", "hostPath": {"path": "/srv/data"}}]})
}

#[test]
fn lone_portless_deployment_is_judged_by_every_state_rule() {
    let mount = json!({"volumeMounts": [{"name": "data", "mountPath": "/data"}]});
    let mut d = deployment("shop", host_path_pod(portless(mount)));
    d["spec"]["replicas"] = json!(1);
    let f = run(vec![d]);
    assert_eq!(
        paths(&f, RuleId::HostPath),
        ["spec.template.spec.volumes[0].hostPath"]
    );
    assert!(of(&f, RuleId::SingleReplica).is_empty(), "{f:#?}");

    let sessions = deployment(
        "shop",
        json!({"containers": [portless(json!({"env": [{"name": "SESSION_DRIVER", "value": "file"}]}))]}),
    );
    assert_eq!(of(&run(vec![sessions]), RuleId::InMemorySession).len(), 1);
    let uploads = deployment(
        "shop",
        json!({"containers": [portless(json!({"volumeMounts": [{"name": "u", "mountPath": "/var/www/html/uploads"}]}))],
        "volumes": [{"name": "u", "emptyDir": {}}]}),
    );
    assert_eq!(of(&run(vec![uploads]), RuleId::LocalUploadDir).len(), 1);
    let claim = deployment(
        "shop",
        json!({"containers": [portless(json!({"volumeMounts": [{"name": "c", "mountPath": "/state"}]}))],
        "volumes": [{"name": "c", "persistentVolumeClaim": {"claimName": "state"}}]}),
    );
    assert_eq!(of(&run(vec![claim]), RuleId::PvcAppTier).len(), 1);
    let rootfs = deployment(
        "shop",
        json!({"containers": [{"name": "w", "image": "example/w"}]}),
    );
    assert_eq!(of(&run(vec![rootfs]), RuleId::WritableRootFs).len(), 1);
}

#[test]
fn portless_node_agents_batch_and_data_stores_stay_out_of_scope() {
    let mount = json!({"volumeMounts": [{"name": "data", "mountPath": "/data"}]});
    let pod = host_path_pod(json!({"name": "a", "image": "example/agent",
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}));
    let agent = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "shop"},
        "spec": {"template": {"metadata": {"labels": {"app": "agent"}}, "spec": pod.clone()}}});
    let job = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "shop"},
        "spec": {"template": {"spec": pod.clone()}}});
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "backup", "namespace": "shop"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}});
    assert!(run(vec![agent, job, cron]).is_empty());

    // A data store without ports: by image, by name label, by component label.
    let mut redis = deployment(
        "cache",
        host_path_pod(json!({"name": "redis", "image": "redis:7",
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]})),
    );
    redis["spec"]["replicas"] = json!(1);
    let mut by_label = deployment("db", host_path_pod(portless(mount.clone())));
    by_label["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] =
        json!("postgresql");
    let pg = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "pg", "namespace": "shop"},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "pg"}},
            "spec": {"containers": [{"name": "pg", "image": "bitnami/postgresql:16"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"]}}]}});
    assert!(run(vec![redis, by_label, pg]).is_empty());

    // The operator's own managed Redis, as its builder writes it (no ports
    // needed to keep it out).
    let mut managed = deployment(
        "shop-sessions",
        json!({"containers": [{"name": "redis", "image": "example.com/mirror/kv:7"}]}),
    );
    managed["spec"]["replicas"] = json!(1);
    managed["spec"]["template"]["metadata"]["labels"] = json!({
        "app.kubernetes.io/managed-by": "stateless-operator",
        "app.kubernetes.io/component": "session-store"});
    assert!(run(vec![managed]).is_empty());
}

// ---------- writable-root-fs ----------

#[test]
fn writable_root_fs() {
    let f = run(vec![deployment(
        "shop",
        json!({"containers": [
            web(json!({"securityContext": {"readOnlyRootFilesystem": false}})),
            web(json!({"name": "side"})),
            {"name": "nosc", "image": "x"}
        ]}),
    )]);
    assert_eq!(
        paths(&f, RuleId::WritableRootFs),
        [
            "spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem",
            "spec.template.spec.containers[2].securityContext.readOnlyRootFilesystem"
        ]
    );
    assert!(
        of(&f, RuleId::WritableRootFs)
            .iter()
            .all(|f| f.severity == Severity::Low)
    );
}

// ---------- in-process-scheduler ----------

#[test]
fn scheduler_detection() {
    assert!(in_process_scheduler(&["sh", "-c", "cron && apache2-foreground"]).is_some());
    assert!(in_process_scheduler(&["/usr/local/bin/supercronic", "/etc/crontab"]).is_some());
    assert!(in_process_scheduler(&["php", "artisan", "schedule:work"]).is_some());
    assert!(in_process_scheduler(&["celery", "-A", "proj", "beat"]).is_some());
    assert!(in_process_scheduler(&["gunicorn", "app:app", "--bind", "0.0.0.0:8000"]).is_none());
    assert!(in_process_scheduler(&["/app/server", "--cron-schedule=@daily"]).is_none());
    assert!(in_process_scheduler(&["celery", "-A", "proj", "worker"]).is_none());
    assert!(
        supervisord_cron(
            "[program:web]\ncommand=nginx\n[program:cron]\ncommand=/usr/sbin/cron -f\n"
        )
        .is_some()
    );
}

#[test]
fn scheduler_in_web_container() {
    let f = run(vec![deployment(
        "shop",
        json!({"containers": [web(json!({
        "command": ["sh", "-c"], "args": ["crond && php-fpm"]}))]}),
    )]);
    assert_eq!(
        paths(&f, RuleId::InProcessScheduler),
        ["spec.template.spec.containers[0].command"]
    );
}

#[test]
fn supervisord_with_cron_program_in_config_map() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sv", "namespace": "shop"},
        "data": {"supervisord.conf": "[program:php]\ncommand=php-fpm\n[program:sched]\ncommand=php /app/artisan schedule:work\n"}});
    let f = run(vec![
        cm,
        deployment(
            "shop",
            json!({
                "containers": [web(json!({"command": ["/usr/bin/supervisord", "-n"],
                    "volumeMounts": [{"name": "sv", "mountPath": "/etc/supervisor"}]}))],
                "volumes": [{"name": "sv", "configMap": {"name": "sv"}}]
            }),
        ),
    ]);
    assert_eq!(of(&f, RuleId::InProcessScheduler).len(), 1);
}

// ---------- scoping ----------

#[test]
fn batch_and_unknown_kinds_are_ignored() {
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"containers": [{"name": "j", "image": "x", "ports": [{"containerPort": 1}]}],
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}}}});
    let knative = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "k"},
        "spec": {"selector": {"a": "b"}, "sessionAffinity": "ClientIP"}});
    assert!(run(vec![job, knative, json!({"kind": "Foo"}), json!("text")]).is_empty());
}

#[test]
fn legacy_api_versions_are_understood() {
    let mut d = deployment(
        "shop",
        json!({"containers": [web(json!({}))],
        "volumes": [{"name": "h", "hostPath": {"path": "/x"}}]}),
    );
    d["apiVersion"] = json!("extensions/v1beta1");
    d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "h", "mountPath": "/x"}]);
    let ing = json!({"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "i", "namespace": "shop",
        "annotations": {"nginx.ingress.kubernetes.io/affinity": "cookie"}},
        "spec": {"rules": [{"http": {"paths": [{"backend": {"serviceName": "shop", "servicePort": 80}}]}}]}});
    let f = run(vec![
        d,
        ing,
        service("shop", json!({"app": "shop"}), json!({})),
    ]);
    assert_eq!(of(&f, RuleId::HostPath).len(), 1);
    assert_eq!(of(&f, RuleId::StickyIngress).len(), 1);
}

#[test]
fn missing_namespace_is_one_bucket() {
    let mut d = deployment(
        "shop",
        json!({"containers": [{"name": "w", "image": "x/y", "securityContext": {"readOnlyRootFilesystem": true}}]}),
    );
    let mut s = service(
        "shop",
        json!({"app": "shop"}),
        json!({"sessionAffinity": "ClientIP"}),
    );
    if let (Some(dm), Some(sm)) = (d["metadata"].as_object_mut(), s["metadata"].as_object_mut()) {
        dm.remove("namespace");
        sm.remove("namespace");
    }
    // No ports: app tier only because the Service selects it.
    let f = run(vec![d, s]);
    assert_eq!(of(&f, RuleId::SessionAffinity).len(), 1);
    assert_eq!(of(&f, RuleId::SessionAffinity)[0].namespace, None);
    assert!(
        of(&f, RuleId::SessionAffinity)[0]
            .message
            .contains("application pods")
    );
}

#[test]
fn owned_replica_sets_and_pods_fold_into_their_owner() {
    let d = deployment("shop", json!({"containers": [web(json!({}))]}));
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "shop-abc", "namespace": "shop", "ownerReferences": [{"kind": "Deployment", "name": "shop", "controller": true}]},
        "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "shop", "pod-template-hash": "abc"}},
            "spec": {"containers": [web(json!({"securityContext": {}}))]}}}});
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "shop-abc-x", "namespace": "shop", "labels": {"app": "shop"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "shop-abc", "controller": true}]},
        "spec": {"containers": [web(json!({"securityContext": {}}))]}});
    let f = run(vec![d, rs, pod]);
    assert!(f.is_empty(), "{f:?}");
    // A bare Pod is evaluated.
    let bare = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"containers": [web(json!({}))]}});
    assert_eq!(paths(&run(vec![bare]), RuleId::SingleReplica), ["kind"]);
}

#[test]
fn files_defining_the_same_objects_do_not_see_each_other() {
    let d = deployment("shop", json!({"containers": [web(json!({}))]}));
    let mut one = d.clone();
    one["spec"]["replicas"] = json!(1);
    let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "shop"}, "maxReplicas": 4}});
    let objs = vec![
        Object::with_source(one.clone(), "a.yaml", 1),
        Object::with_source(one.clone(), "b.yaml", 1),
        Object::with_source(hpa.clone(), "b.yaml", 20),
    ];
    let f = evaluate(&objs, &Config::default());
    let single: Vec<_> = of(&f, RuleId::SingleReplica)
        .iter()
        .map(|f| f.file.clone())
        .collect();
    assert_eq!(single, [Some("a.yaml".to_string())]);
    // Files that do not redefine each other's objects are one set.
    let objs = vec![
        Object::with_source(one, "deploy.yaml", 1),
        Object::with_source(hpa, "hpa.yaml", 1),
    ];
    assert!(evaluate(&objs, &Config::default()).is_empty());
}

// ---------- StatelessApp adapter ----------

fn stateless_app(spec: Value) -> Value {
    json!({"apiVersion": "stateless.dev/v1alpha1", "kind": "StatelessApp",
           "metadata": {"name": "shop", "namespace": "shop"}, "spec": spec})
}

#[test]
fn stateless_app_defaults_are_clean() {
    assert!(run(vec![stateless_app(json!({"image": "example/shop:1"}))]).is_empty());
}

#[test]
fn stateless_app_adapter_paths() {
    let f = run(vec![stateless_app(json!({
        "image": "example/shop:1",
        "replicas": {"min": 1, "max": 1},
        "env": [{"name": "SESSION_DRIVER", "value": "file"}],
        "volumes": [{"name": "up", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/srv"}}],
        "volumeMounts": [{"name": "up", "mountPath": "/app/storage/app/public"}, {"name": "h", "mountPath": "/h"}],
        "command": ["sh", "-c", "cron; exec php-fpm"],
        "service": {"sessionAffinity": "ClientIP"}
    }))]);
    let mut got: Vec<(RuleId, String)> = f.iter().map(|f| (f.rule, f.path.clone())).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                RuleId::SessionAffinity,
                "spec.service.sessionAffinity".to_string()
            ),
            (RuleId::HostPath, "spec.volumes[1].hostPath".to_string()),
            (
                RuleId::LocalUploadDir,
                "spec.volumeMounts[0].mountPath".to_string()
            ),
            (RuleId::InMemorySession, "spec.env[0].value".to_string()),
            (RuleId::SingleReplica, "spec.replicas.max".to_string()),
            (RuleId::InProcessScheduler, "spec.command".to_string()),
        ]
    );
    assert!(
        f.iter()
            .all(|f| f.kind == "StatelessApp" && f.name == "shop")
    );
}

/// A worker runs its own command line; a scheduler there runs each job
/// once per worker replica. A worker without one runs the app's, which is
/// judged (once) at the app's own `spec.command`.
#[test]
fn stateless_app_worker_commands_are_judged() {
    let f = run(vec![stateless_app(json!({
        "image": "example/shop:1",
        "command": ["sh", "-c", "cron; exec php-fpm"],
        "workers": [
            {"name": "queue", "command": ["php", "artisan", "queue:work"]},
            {"name": "beat", "command": ["celery", "-A", "shop"], "args": ["beat"]},
            {"name": "inherits"},
            {"name": "sched", "image": "example/sched:1", "args": ["php", "artisan", "schedule:work"]},
        ]
    }))]);
    assert_eq!(
        paths(&f, RuleId::InProcessScheduler),
        [
            "spec.command",
            "spec.workers[1].command",
            "spec.workers[3].args"
        ]
    );
    let beat = f
        .iter()
        .find(|f| f.path == "spec.workers[1].command")
        .map(|f| f.message.clone())
        .unwrap_or_default();
    assert!(
        beat.contains("Worker `beat` of StatelessApp `shop`") && beat.contains("spec.schedules"),
        "{beat}"
    );
}

#[test]
fn stateless_app_volume_waiver_waives_only_pvc_app_tier() {
    let spec = json!({
        "image": "example/shop:1",
        "volumes": [{"name": "media", "persistentVolumeClaim": {"claimName": "media"}}],
        "volumeMounts": [{"name": "media", "mountPath": "/media"}],
    });
    let unwaived = run(vec![stateless_app(spec.clone())]);
    let pvc = of(&unwaived, RuleId::PvcAppTier);
    assert_eq!(pvc.len(), 1, "{unwaived:?}");
    assert!(!pvc[0].waived);

    let mut waived_spec = spec;
    waived_spec["policy"] =
        json!({"allowPersistentVolumes": {"reason": "media until the S3 move"}});
    waived_spec["replicas"] = json!({"min": 1, "max": 1});
    let f = run(vec![stateless_app(waived_spec)]);
    let pvc = of(&f, RuleId::PvcAppTier);
    assert_eq!(pvc.len(), 1, "{f:?}");
    assert!(pvc[0].waived);
    assert_eq!(
        pvc[0].waiver_reason.as_deref(),
        Some("media until the S3 move")
    );
    let single = of(&f, RuleId::SingleReplica);
    assert!(
        !single.is_empty() && !single[0].waived,
        "only pvc-app-tier is waived"
    );
}

#[test]
fn controller_view_app_plus_live_edge_objects() {
    let app = stateless_app(json!({"image": "example/shop:1"}));
    let labels = stateless_app_pod_labels("shop");
    let selector: serde_json::Map<String, Value> = labels
        .iter()
        .filter(|(k, _)| {
            k.as_str() != "app.kubernetes.io/part-of"
                && k.as_str() != "app.kubernetes.io/managed-by"
        })
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let svc = service(
        "shop-custom",
        Value::Object(selector),
        json!({"sessionAffinity": "ClientIP"}),
    );
    let ing = ingress(
        json!({"nginx.ingress.kubernetes.io/affinity": "cookie"}),
        json!({"service": {"name": "shop-custom"}}),
    );
    let dr = json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {"host": "shop-custom.shop.svc.cluster.local", "trafficPolicy": {"loadBalancer": {"consistentHash": {"httpCookie": {"name": "c"}}}}}});
    let f = run(vec![app, svc, ing, dr]);
    let kinds: Vec<(&str, RuleId)> = f.iter().map(|f| (f.kind.as_str(), f.rule)).collect();
    assert!(
        kinds.contains(&("Service", RuleId::SessionAffinity)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("Ingress", RuleId::StickyIngress)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("DestinationRule", RuleId::StickyIngress)),
        "{kinds:?}"
    );
    assert!(
        of(&f, RuleId::SessionAffinity)[0]
            .message
            .contains("application pods")
    );
}

// ---------- waivers ----------

#[test]
fn waivers_mark_findings_waived_with_reason() {
    let mut svc = service(
        "shop",
        json!({"app": "shop"}),
        json!({"sessionAffinity": "ClientIP"}),
    );
    svc["metadata"]["annotations"] = json!({
        "stateless.dev/allow": "session-affinity, sticky-ingress",
        "stateless.dev/allow-reason": "legacy websocket app, migrating in Q3",
        "nginx.ingress.kubernetes.io/affinity": "cookie"
    });
    let mut d = deployment("shop", json!({"containers": [web(json!({}))]}));
    d["spec"]["replicas"] = json!(1);
    d["metadata"]["annotations"] = json!({"stateless.dev/allow": "host-path"});
    let f = run(vec![d, svc]);
    let sa = of(&f, RuleId::SessionAffinity);
    assert_eq!(sa.len(), 1);
    assert!(sa[0].waived);
    assert_eq!(
        sa[0].waiver_reason.as_deref(),
        Some("legacy websocket app, migrating in Q3")
    );
    let single = of(&f, RuleId::SingleReplica);
    assert!(
        !single[0].waived,
        "a waiver for another rule does not apply"
    );
    assert!(!is_blocking(sa[0], Severity::Low) && is_blocking(single[0], Severity::Low));
    let v = serde_json::to_value(sa[0]).unwrap_or_default();
    assert_eq!(v["waived"], true);
    assert_eq!(v["waiver_reason"], "legacy websocket app, migrating in Q3");
}

#[test]
fn star_waives_everything_on_the_object() {
    let mut d = deployment(
        "shop",
        json!({"containers": [web(json!({"securityContext": {}}))]}),
    );
    d["spec"]["replicas"] = json!(1);
    d["metadata"]["annotations"] = json!({"stateless.dev/allow": "*"});
    let f = run(vec![d]);
    assert!(!f.is_empty() && f.iter().all(|f| f.waived && f.waiver_reason.is_none()));
}

#[test]
fn unknown_waiver_names_are_reported_with_the_valid_rules() {
    let mut d = deployment(
        "shop",
        json!({"containers": [web(json!({"securityContext": {}}))]}),
    );
    d["metadata"]["annotations"] = json!({"stateless.dev/allow": "writable-root-fs, sticky-sesions,, HostPath sticky-sesions"});
    let f = run(vec![d]);
    let unknown = of(&f, RuleId::UnknownWaiver);
    assert_eq!(unknown.len(), 1, "{f:#?}");
    assert_eq!(unknown[0].severity, Severity::Low);
    assert!(!unknown[0].waived);
    assert_eq!(
        unknown[0].path,
        r#"metadata.annotations["stateless.dev/allow"]"#
    );
    let m = &unknown[0].message;
    assert!(m.contains("`sticky-sesions`, `HostPath`"), "{m}");
    assert_eq!(m.matches("sticky-sesions").count(), 1, "{m}");
    for valid in [
        "session-affinity",
        "sticky-ingress",
        "host-path",
        "in-process-scheduler",
    ] {
        assert!(m.contains(valid), "{m}");
    }
    // The valid name in the same annotation still waives its rule.
    assert!(of(&f, RuleId::WritableRootFs).iter().all(|f| f.waived));
}

#[test]
fn known_waiver_names_and_star_are_not_reported() {
    let mut svc = service("shop", json!({"app": "shop"}), json!({}));
    for allow in [
        "session-affinity",
        "Session-Affinity,sticky-ingress",
        "*",
        " ",
        "unknown-waiver",
    ] {
        svc["metadata"]["annotations"] = json!({"stateless.dev/allow": allow});
        assert!(
            of(&run(vec![svc.clone()]), RuleId::UnknownWaiver).is_empty(),
            "{allow}"
        );
    }
    // On an object of a kind the engine does not judge, too: the typo is real.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "shop", "annotations": {"stateless.dev/allow": "everything"}}});
    assert_eq!(of(&run(vec![cm]), RuleId::UnknownWaiver).len(), 1);
}

#[test]
fn the_same_objects_in_ten_thousand_files_cost_linear_space() {
    let copies = 10_000;
    let mut objects = Vec::with_capacity(2 * copies);
    for i in 0..copies {
        let file = format!("copy-{i}.yaml");
        let mut d = deployment("shop", json!({"containers": [web(json!({}))]}));
        d["spec"]["replicas"] = json!(1);
        let svc = service(
            "shop",
            json!({"app": "shop"}),
            json!({"sessionAffinity": "ClientIP"}),
        );
        objects.push(Object::with_source(d, file.clone(), 1));
        objects.push(Object::with_source(svc, file, 20));
    }
    // Pairs of conflicting files would be copies²/2 = 50 million entries.
    let visibility = model::Visibility::build(&objects);
    assert!(
        visibility.entries() <= objects.len(),
        "{} entries",
        visibility.entries()
    );
    let f = evaluate(&objects, &Config::default());
    // Each copy is judged on its own: its Service selects its own Deployment.
    assert_eq!(of(&f, RuleId::SessionAffinity).len(), copies);
    assert_eq!(of(&f, RuleId::SingleReplica).len(), copies);
    assert!(
        of(&f, RuleId::SessionAffinity)
            .iter()
            .all(|f| f.message.contains("application pods")),
        "{:?}",
        f.first()
    );
}

#[test]
fn copy_classes_still_see_files_that_do_not_overlap() {
    // Twenty copies of a Service, and one separate file with the workload:
    // every copy sees the workload (no shared object), none sees another copy.
    let mut objects: Vec<Object> = (0..20)
        .map(|i| {
            Object::with_source(
                service(
                    "shop",
                    json!({"app": "shop"}),
                    json!({"sessionAffinity": "ClientIP"}),
                ),
                format!("svc-{i}.yaml"),
                1,
            )
        })
        .collect();
    let mut d = deployment("shop", json!({"containers": [web(json!({}))]}));
    d["spec"]["template"]["metadata"]["labels"] = json!({"app": "shop"});
    objects.push(Object::with_source(d, "deploy.yaml", 1));
    let f = evaluate(&objects, &Config::default());
    let affinity = of(&f, RuleId::SessionAffinity);
    assert_eq!(affinity.len(), 20);
    assert!(
        affinity
            .iter()
            .all(|f| f.message.contains("application pods")),
        "{:?}",
        affinity[0].message
    );
}

// ---------- patterns ----------

#[test]
fn glob_and_images() {
    assert!(glob_match("*/uploads", "/var/www/html/wp-content/uploads/"));
    assert!(glob_match(
        "*/sites/*/files*",
        "/var/www/html/sites/default/files"
    ));
    assert!(!glob_match("*/uploads", "/var/www/uploads-cache"));
    assert!(glob_match("/exact", "/exact"));
    assert_eq!(
        image_name("quay.io/prometheus/node-exporter:v1.8@sha256:abc"),
        "node-exporter"
    );
    assert!(stateful_image("docker.io/bitnami/postgresql:16").is_some());
    assert!(stateful_image("oliver006/redis_exporter:v1").is_none());
    assert!(stateful_image("phpmyadmin/phpmyadmin").is_none());
    assert!(local_upload_env("CMD_IMAGE_UPLOAD_TYPE", "filesystem").is_some());
    assert!(local_upload_env("UPLOAD_TMP_DIR", "/var/tmp").is_none());
}

#[test]
fn output_is_sorted_and_deterministic() {
    let objs: Vec<Object> = (0..3)
        .rev()
        .map(|i| {
            let mut d = deployment(
                &format!("d{i}"),
                json!({"containers": [web(json!({"securityContext": {}}))]}),
            );
            d["spec"]["replicas"] = json!(1);
            Object::with_source(d, "x.yaml", 10 * (i + 1))
        })
        .collect();
    let a = evaluate(&objs, &Config::default());
    let lines: Vec<Option<usize>> = a.iter().map(|f| f.line).collect();
    assert_eq!(
        lines,
        [Some(10), Some(10), Some(20), Some(20), Some(30), Some(30)]
    );
    assert_eq!(a, evaluate(&objs, &Config::default()));
}

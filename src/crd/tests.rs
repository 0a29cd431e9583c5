//! Tests of the API types and the generated CRD.

use serde_json::{Value, json};

use super::*;

/// The CRD's openAPIV3Schema as JSON.
fn schema() -> Value {
    let crd = serde_json::to_value(definition()).expect("CRD serializes");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Every `(path, rule, message)` in the schema, depth first.
fn cel_rules(schema: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
    if let Some(rules) = schema["x-kubernetes-validations"].as_array() {
        for rule in rules {
            out.push((
                path.to_string(),
                rule["rule"].as_str().unwrap_or_default().to_string(),
                rule["message"]
                    .as_str()
                    .or(rule["messageExpression"].as_str())
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
    }
    if let Some(props) = schema["properties"].as_object() {
        for (name, child) in props {
            cel_rules(child, &format!("{path}.{name}"), out);
        }
    }
    if schema["items"].is_object() {
        cel_rules(&schema["items"], &format!("{path}[]"), out);
    }
}

/// Paths of properties without a description.
fn undescribed(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(props) = schema["properties"].as_object() {
        for (name, child) in props {
            let child_path = format!("{path}.{name}");
            if child["description"].as_str().is_none_or(str::is_empty) {
                out.push(child_path.clone());
            }
            undescribed(child, &child_path, out);
        }
    }
    if schema["items"].is_object() {
        undescribed(&schema["items"], &format!("{path}[]"), out);
    }
}

#[test]
fn crd_identity() {
    let crd = serde_json::to_value(definition()).expect("CRD serializes");
    assert_eq!(crd["metadata"]["name"], CRD_NAME);
    assert_eq!(
        crd["spec"]["names"],
        json!({
            "kind": "StatelessApp",
            "plural": "statelessapps",
            "singular": "statelessapp",
            "shortNames": ["sapp"]
        })
    );
    assert_eq!(crd["spec"]["group"], GROUP);
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], VERSION);
    assert_eq!(version["served"], true);
    assert_eq!(version["storage"], true);
    assert_eq!(version["subresources"], json!({"status": {}}));
    let columns: Vec<(&str, &str)> = version["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default(),
                c["jsonPath"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        columns,
        vec![
            ("Ready", r#".status.conditions[?(@.type=="Ready")].status"#),
            ("Replicas", ".status.readyReplicas"),
            ("Desired", ".status.replicas"),
            ("Violations", ".status.violationCount"),
            ("Age", ".metadata.creationTimestamp"),
        ]
    );
}

#[test]
fn every_field_has_a_description() {
    let schema = schema();
    let mut missing = Vec::new();
    undescribed(&schema, "", &mut missing);
    assert!(
        missing.is_empty(),
        "properties without description: {missing:#?}"
    );
    assert!(
        schema["properties"]["spec"]["properties"]["sessionStore"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("managed") && d.contains("external")),
        "kubectl explain statelessapp.spec.sessionStore should explain the choices"
    );
}

#[test]
fn cel_rules_and_messages() {
    let rule_text = |rule: kube::core::Rule| {
        serde_json::to_value(rule).expect("rule")["rule"]
            .as_str()
            .expect("rule text")
            .to_string()
    };
    let node_local = rule_text(super::volumes::node_local_rule());
    let persistent = rule_text(super::volumes::persistent_rule());
    let name_length = rule_text(super::schedules::name_length_rule());
    let worker_name_length = rule_text(super::workers::name_length_rule());
    let mut rules = Vec::new();
    cel_rules(&schema(), "", &mut rules);
    let rules: Vec<(&str, &str)> = rules
        .iter()
        .map(|(path, rule, message)| {
            assert!(!message.is_empty(), "rule {rule} at {path} has no message");
            (path.as_str(), rule.as_str())
        })
        .collect();
    assert_eq!(
        rules,
        vec![
            ("", "self.metadata.name.size() <= 52"),
            ("", node_local.as_str()),
            ("", persistent.as_str()),
            ("", name_length.as_str()),
            ("", worker_name_length.as_str()),
            (
                "",
                "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
            ),
            (
                ".spec.autoscaling.targetCPUUtilizationPercentage",
                "self >= 1 && self <= 100"
            ),
            (
                ".spec.autoscaling.targetMemoryUtilizationPercentage",
                "self >= 1 && self <= 100"
            ),
            (
                ".spec.identity.jwt",
                "!has(self.rotationPeriod) || duration(self.rotationPeriod) >= duration('1h')"
            ),
            (
                ".spec.identity.jwt",
                "!has(self.rotationPeriod) || duration(self.rotationPeriod) <= duration('8760h')"
            ),
            (
                ".spec.identity.jwt",
                "!has(self.tokenLifetime) || duration(self.tokenLifetime) >= duration('1s')"
            ),
            (
                ".spec.identity.jwt",
                "duration(has(self.tokenLifetime) ? self.tokenLifetime : '24h') <= duration(has(self.rotationPeriod) ? self.rotationPeriod : '720h')"
            ),
            (
                ".spec.objectStorage.endpoint",
                "self.startsWith('https://') || self.startsWith('http://')"
            ),
            (".spec.ports", "self.size() >= 1"),
            (".spec.ports[].containerPort", "self >= 1 && self <= 65535"),
            (".spec.replicas", "self.min >= 1"),
            (".spec.replicas", "self.min <= self.max"),
            (".spec.runAsUser", "self >= 1"),
            (".spec.schedules[].activeDeadlineSeconds", "self >= 1"),
            (".spec.schedules[].backoffLimit", "self >= 0 && self <= 10"),
            (
                ".spec.schedules[].schedule",
                r"self.startsWith('@') || self.trim().matches('^\\S+(\\s+\\S+){4}$')"
            ),
            (".spec.schedules[].schedule", "!self.contains('TZ=')"),
            (".spec.schedules[].startingDeadlineSeconds", "self >= 1"),
            (".spec.service.port", "self >= 1 && self <= 65535"),
            (
                ".spec.serviceBindings.root",
                "self != '/tmp' && !self.startsWith('/tmp/')"
            ),
            (
                ".spec.sessionStore",
                "self.type != 'external' || (has(self.external) && has(self.external.secretRef))"
            ),
            (
                ".spec.sessionStore",
                "!has(self.managed) || self.type == 'managed'"
            ),
            (
                ".spec.sessionStore",
                "!has(self.external) || self.type == 'external'"
            ),
            (
                ".spec.workers[].autoscaling.targetCPUUtilizationPercentage",
                "self >= 1 && self <= 100"
            ),
            (
                ".spec.workers[].autoscaling.targetMemoryUtilizationPercentage",
                "self >= 1 && self <= 100"
            ),
            (".spec.workers[].name", "!(self in ['redis'])"),
            (".spec.workers[].replicas", "self.min >= 1"),
            (".spec.workers[].replicas", "self.min <= self.max"),
        ]
    );
}

#[test]
fn crd_fits_client_side_apply() {
    // `kubectl apply` (client side) stores the object in an annotation, and
    // all annotations together are limited to 256 KiB.
    let yaml = definition_yaml().expect("renders");
    let json = serde_json::to_string(&definition()).expect("serializes");
    assert!(yaml.len() < 256 * 1024, "CRD YAML is {} bytes", yaml.len());
    assert!(json.len() < 256 * 1024, "CRD JSON is {} bytes", json.len());
}

#[test]
fn yaml_round_trips() {
    let yaml = definition_yaml().expect("renders");
    let parsed: Value = serde_saphyr::from_str(&yaml).expect("YAML parses");
    let direct = serde_json::to_value(definition()).expect("serializes");
    assert_eq!(parsed, direct);
}

#[test]
fn schema_structure() {
    let schema = schema();
    let spec = &schema["properties"]["spec"];
    assert_eq!(spec["required"], json!(["image"]));
    let ports = &spec["properties"]["ports"];
    assert_eq!(ports["x-kubernetes-list-type"], "map");
    assert_eq!(ports["x-kubernetes-list-map-keys"], json!(["name"]));
    assert_eq!(
        ports["default"],
        json!([{"name": "http", "containerPort": 8080}])
    );
    // Optional enums must not list null (the API server would reject it).
    assert_eq!(
        ports["items"]["properties"]["protocol"],
        json!({
            "description": "Protocol: TCP (default), UDP or SCTP.",
            "enum": ["TCP", "UDP", "SCTP"],
            "type": "string"
        })
    );
    assert!(!schema.to_string().contains("\"enum\":[null"));
    let status = &schema["properties"]["status"]["properties"];
    assert_eq!(status["violations"]["maxItems"], 50);
    assert_eq!(status["conditions"]["x-kubernetes-list-type"], "map");
    assert_eq!(
        spec["properties"]["sessionStore"]["default"],
        json!({"type": "managed", "urlEnvVar": "REDIS_URL"})
    );
    assert_eq!(
        spec["properties"]["sessionStore"]["properties"]["managed"]["properties"]["evictionPolicy"]
            ["default"],
        "volatile-lru"
    );
}

/// `managed.image` has no schema default, so the API server stores nothing
/// and the operator's `--session-store-image` applies to apps that leave it
/// unset; its description names the operator's default.
#[test]
fn managed_image_is_optional_without_a_default() {
    let managed =
        &schema()["properties"]["spec"]["properties"]["sessionStore"]["properties"]["managed"];
    let image = &managed["properties"]["image"];
    assert_eq!(image["type"], "string");
    assert_eq!(image["minLength"], 1);
    assert!(image.get("default").is_none(), "{image}");
    assert!(
        !managed["required"].to_string().contains("image"),
        "{managed}"
    );
    let description = image["description"].as_str().expect("described");
    for needle in [
        DEFAULT_REDIS_IMAGE,
        "--session-store-image",
        "sessionStore.image",
    ] {
        assert!(
            description.contains(needle),
            "{needle:?} not in {description:?}"
        );
    }

    let set: ManagedSessionStore =
        serde_json::from_value(json!({"image": "registry.example/redis:7"})).expect("parses");
    assert_eq!(
        set.image_or(DEFAULT_REDIS_IMAGE),
        "registry.example/redis:7"
    );
    let unset = serde_json::to_value(ManagedSessionStore::default()).expect("serializes");
    assert!(unset.get("image").is_none(), "{unset}");
}

#[test]
fn minimal_spec_gets_every_default() {
    let spec: StatelessAppSpec =
        serde_json::from_value(json!({"image": "example/shop:1"})).expect("deserializes");
    assert_eq!(spec, StatelessAppSpec::with_image("example/shop:1"));
    assert_eq!(spec.min_replicas(), 2);
    assert_eq!(spec.max_replicas(), 10);
    assert_eq!(spec.target_cpu_utilization(), 70);
    assert_eq!(spec.target_memory_utilization(), None);
    assert_eq!(spec.service_type(), ServiceType::ClusterIP);
    assert_eq!(spec.service_port(), 80);
    assert_eq!(spec.session_store_type(), SessionStoreType::Managed);
    assert_eq!(spec.session_url_env_var(), "REDIS_URL");
    assert_eq!(spec.policy_mode(), PolicyMode::Audit);
    let port = spec.primary_port().expect("default port");
    assert_eq!((port.name.as_str(), port.container_port), ("http", 8080));
    let managed = spec.managed_session_store().expect("managed by default");
    assert_eq!(managed.image, None, "unset: the operator's default applies");
    assert_eq!(managed.image_or("operator/redis:1"), "operator/redis:1");
    assert_eq!(managed.max_memory, "64mb");
    assert_eq!(managed.eviction_policy, EvictionPolicy::VolatileLru);
    assert!(!managed.persistence.enabled);
    assert_eq!(managed.persistence.size.0, "1Gi");
    assert_eq!(spec.external_session_secret(), None);
}

#[test]
fn spec_serializes_without_nulls() {
    let spec = StatelessAppSpec::with_image("x");
    let value = serde_json::to_value(&spec).expect("serializes");
    assert_eq!(
        value,
        json!({
            "image": "x",
            "ports": [{"name": "http", "containerPort": 8080}],
            "replicas": {"min": 2, "max": 10},
            "autoscaling": {"targetCPUUtilizationPercentage": 70},
            "service": {"type": "ClusterIP", "port": 80},
            "sessionStore": {"type": "managed", "urlEnvVar": "REDIS_URL"},
            "policy": {"mode": "Audit"}
        })
    );
}

#[test]
fn external_and_none_session_store_helpers() {
    let spec: StatelessAppSpec = serde_json::from_value(json!({
        "image": "x",
        "sessionStore": {"type": "external", "external": {"secretRef": {"name": "redis"}}}
    }))
    .expect("deserializes");
    assert_eq!(spec.managed_session_store(), None);
    let secret = spec.external_session_secret().expect("external");
    assert_eq!(
        (secret.name.as_str(), secret.key.as_str()),
        ("redis", "url")
    );

    let spec: StatelessAppSpec =
        serde_json::from_value(json!({"image": "x", "sessionStore": {"type": "none"}}))
            .expect("deserializes");
    assert_eq!(spec.managed_session_store(), None);
    assert_eq!(spec.external_session_secret(), None);
}

#[test]
fn status_serializes_lists_and_skips_unset_fields() {
    let status = StatelessAppStatus::default();
    assert_eq!(
        serde_json::to_value(&status).expect("serializes"),
        json!({"conditions": [], "violations": [], "violationCount": 0})
    );
}

/// The StatelessApps in an examples/ file.
fn example_apps(yaml: &str) -> Vec<StatelessApp> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("example parses");
    docs.into_iter()
        .filter(|d| d["kind"] == KIND)
        .map(|d| serde_json::from_value(d).expect("example is a valid StatelessApp"))
        .collect()
}

#[test]
fn basic_example_is_minimal() {
    let apps = example_apps(include_str!("../../examples/basic.yaml"));
    assert_eq!(apps.len(), 1);
    let mut expected = StatelessAppSpec::with_image("ghcr.io/stateless-dev/session-demo:0.1.0");
    expected.ports[0].container_port = 8080;
    assert_eq!(apps[0].spec, expected);
}

#[test]
fn full_example_sets_every_field() {
    let yaml = include_str!("../../examples/full.yaml");
    let apps = example_apps(yaml);
    assert_eq!(apps.len(), 1);
    let app = &apps[0];
    let value = serde_json::to_value(&app.spec).expect("serializes");
    let schema = schema();
    let spec_schema = &schema["properties"]["spec"];
    // Every spec field, and every field of the structs we define, is set
    // (external is the exclusive alternative of managed).
    let own_structs = [
        ("", spec_schema),
        ("replicas", &spec_schema["properties"]["replicas"]),
        ("autoscaling", &spec_schema["properties"]["autoscaling"]),
        ("service", &spec_schema["properties"]["service"]),
        ("sessionStore", &spec_schema["properties"]["sessionStore"]),
        (
            "sessionStore.managed",
            &spec_schema["properties"]["sessionStore"]["properties"]["managed"],
        ),
        (
            "sessionStore.managed.persistence",
            &spec_schema["properties"]["sessionStore"]["properties"]["managed"]["properties"]["persistence"],
        ),
        ("identity", &spec_schema["properties"]["identity"]),
        (
            "identity.jwt",
            &spec_schema["properties"]["identity"]["properties"]["jwt"],
        ),
        ("objectStorage", &spec_schema["properties"]["objectStorage"]),
        (
            "objectStorage.credentials",
            &spec_schema["properties"]["objectStorage"]["properties"]["credentials"],
        ),
        (
            "serviceBindings",
            &spec_schema["properties"]["serviceBindings"],
        ),
        (
            "schedules.0",
            &spec_schema["properties"]["schedules"]["items"],
        ),
        ("workers.0", &spec_schema["properties"]["workers"]["items"]),
        (
            "workers.0.replicas",
            &spec_schema["properties"]["workers"]["items"]["properties"]["replicas"],
        ),
        (
            "workers.0.autoscaling",
            &spec_schema["properties"]["workers"]["items"]["properties"]["autoscaling"],
        ),
        ("policy", &spec_schema["properties"]["policy"]),
    ];
    for (path, struct_schema) in own_structs {
        let mut object = &value;
        for segment in path.split('.').filter(|s| !s.is_empty()) {
            object = match segment.parse::<usize>() {
                Ok(index) => &object[index],
                Err(_) => &object[segment],
            };
        }
        for field in struct_schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
        {
            if path == "sessionStore" && field == "external" {
                continue;
            }
            // Left to the installation's --session-store-image on purpose
            // (the example shows it commented out), so that the example runs
            // wherever the operator's Redis image can be pulled.
            if path == "sessionStore.managed" && field == "image" {
                assert!(
                    yaml.contains("#   image: "),
                    "examples/full.yaml shows sessionStore.managed.image in a comment"
                );
                continue;
            }
            // A waiver: shown in a comment, not set in the example to copy.
            if path == "policy" && field == "allowPersistentVolumes" {
                assert!(
                    yaml.contains("# allowPersistentVolumes:"),
                    "examples/full.yaml shows policy.allowPersistentVolumes in a comment"
                );
                continue;
            }
            assert!(
                !object[field].is_null(),
                "examples/full.yaml does not set spec.{path}.{field}"
            );
        }
    }
    assert!(
        value["ports"][0]["protocol"].is_string(),
        "set a port protocol"
    );
    // The ConfigMaps and Secrets the app reads are defined in the same file
    // (but for the managed session store's, which the operator creates).
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("parses");
    let managed_secret =
        crate::build::names::redis_secret(app.metadata.name.as_deref().unwrap_or_default());
    for reference in app.referenced_config() {
        if reference.kind == ConfigKind::Secret && reference.name == managed_secret {
            continue;
        }
        assert!(
            docs.iter().any(|d| d["kind"] == reference.kind.as_str()
                && d["metadata"]["name"] == reference.name.as_str()),
            "examples/full.yaml references {reference} without defining it"
        );
    }
}

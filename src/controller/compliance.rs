//! The validate step: run the statelessness rules over a StatelessApp's own
//! spec and the live objects that route traffic to its pods (Services that
//! select them, Ingresses and Istio DestinationRules in front of those
//! Services), plus the ConfigMaps its pods read. The same engine serves `lint`,
//! `audit` and the admission webhook; only the choice of inputs lives here.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::Error;
use super::observe::Caches;
use super::status::Observation;
use crate::crd::{MAX_STATUS_VIOLATIONS, PolicyMode, StatelessApp, Violation};
use crate::rules::{self, Finding, Object};

/// What the rules found for one app.
#[derive(Clone, Debug, Default)]
pub struct Compliance {
    /// Every finding, waived ones included, in the engine's order.
    pub findings: Vec<Finding>,
}

impl Compliance {
    pub fn unwaived(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.waived)
    }

    /// Under `Enforce`, an unwaived finding in the app's own spec stops the
    /// rollout of its Deployment (the last compliant one keeps running).
    pub fn blocks_rollout(&self, app: &StatelessApp) -> bool {
        app.spec.policy_mode() == PolicyMode::Enforce
            && self
                .unwaived()
                .any(|f| f.kind == crate::crd::KIND && f.name == app.name_any())
    }

    /// `status.violations`: unwaived first, at most [`MAX_STATUS_VIOLATIONS`].
    pub fn violations(&self) -> Vec<Violation> {
        let (unwaived, waived): (Vec<&Finding>, Vec<&Finding>) =
            self.findings.iter().partition(|f| !f.waived);
        unwaived
            .into_iter()
            .chain(waived)
            .take(MAX_STATUS_VIOLATIONS)
            .map(|f| Violation {
                rule: f.rule.as_str().to_string(),
                severity: f.severity.as_str().to_string(),
                kind: f.kind.clone(),
                name: f.name.clone(),
                path: f.path.clone(),
                message: f.message.clone(),
                waived: f.waived.then_some(true),
            })
            .collect()
    }

    pub fn violation_count(&self) -> i32 {
        i32::try_from(self.unwaived().count()).unwrap_or(i32::MAX)
    }

    /// The `Compliant` condition.
    pub fn observation(&self, blocked: bool) -> Observation {
        let waived = self.findings.len() - self.unwaived().count();
        let waived_note = if waived > 0 {
            format!(" ({waived} waived)")
        } else {
            String::new()
        };
        let listed: Vec<String> = self
            .unwaived()
            .take(5)
            .map(|f| format!("{} on {} {} at {}", f.rule, f.kind, f.name, f.path))
            .collect();
        let more = self.unwaived().count().saturating_sub(listed.len());
        let summary = if more > 0 {
            format!("{} and {more} more", listed.join("; "))
        } else {
            listed.join("; ")
        };
        if blocked {
            Observation::new(
                false,
                "RolloutBlocked",
                format!(
                    "policy mode Enforce: the spec violates {summary}{waived_note}; the last compliant Deployment keeps running until the spec is fixed or the rule is waived with the stateless.dev/allow annotation"
                ),
            )
        } else if listed.is_empty() {
            Observation::new(
                true,
                "NoViolations",
                format!("no statelessness violations{waived_note}"),
            )
        } else {
            Observation::new(false, "ViolationsFound", format!("{summary}{waived_note}"))
        }
    }
}

/// Identity of a finding across reconciles, for "new finding" Events.
pub fn finding_key(
    rule: &str,
    kind: &str,
    name: &str,
    path: &str,
) -> (String, String, String, String) {
    (
        rule.to_string(),
        kind.to_string(),
        name.to_string(),
        path.to_string(),
    )
}

/// Evaluate the rules for `app` against the cached objects of its namespace
/// that route to it, and the ConfigMaps its pods read (`config_maps`). Pure:
/// it reads the caches, never the API server.
pub fn evaluate(
    caches: &Caches,
    app: &StatelessApp,
    namespace: &str,
    config_maps: &[Arc<ConfigMap>],
) -> Result<Compliance, Error> {
    let name = app.name_any();
    let to_json = |kind: &str, value: Result<Value, serde_json::Error>| {
        value.map(Object::new).map_err(|source| Error::Serialize {
            kind: kind.to_string(),
            source,
        })
    };

    let mut objects = vec![to_json(crate::crd::KIND, serde_json::to_value(app))?];

    // Services whose selector picks the app's pods.
    let services = caches.services_selecting(namespace, &name);
    let mut ingresses = BTreeMap::new();
    let mut destination_rules = BTreeMap::new();
    for service in &services {
        objects.push(to_json("Service", serde_json::to_value(service.as_ref()))?);
        let service_name = service.name_any();
        // Ingresses with a backend on one of those Services, and Istio
        // DestinationRules for them (each once).
        for ingress in caches.ingresses_routing_to(namespace, &service_name) {
            ingresses.insert(ingress.name_any(), ingress);
        }
        for rule in caches.destination_rules_for(namespace, &service_name) {
            destination_rules.insert(rule.name_any(), rule);
        }
    }
    for ingress in ingresses.values() {
        objects.push(to_json("Ingress", serde_json::to_value(ingress.as_ref()))?);
    }
    for rule in destination_rules.values() {
        objects.push(to_json(
            "DestinationRule",
            serde_json::to_value(rule.as_ref()),
        )?);
    }

    // ConfigMaps the pods read (session settings hide there too).
    for cm in config_maps {
        objects.push(to_json("ConfigMap", serde_json::to_value(cm.as_ref()))?);
    }

    Ok(Compliance {
        findings: rules::evaluate(&objects, &rules::Config::default()),
    })
}

/// The Service a DestinationRule's host names (`name`, `name.ns`,
/// `name.ns.svc.cluster.local`); `None` for a wildcard or empty host.
pub fn destination_rule_service(host: &str) -> Option<&str> {
    let short = host.split('.').next().unwrap_or_default();
    (!short.is_empty() && short != "*").then_some(short)
}

/// A non-empty selector that is a subset of the pod labels.
pub fn selects(
    selector: Option<&BTreeMap<String, String>>,
    pod_labels: &BTreeMap<String, String>,
) -> bool {
    selector.is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| pod_labels.get(k) == Some(v)))
}

/// Service names an Ingress routes to (networking.k8s.io/v1 and the legacy `serviceName`).
pub fn ingress_backends(ingress: &Value) -> Vec<String> {
    let spec = &ingress["spec"];
    let mut backends = vec![&spec["defaultBackend"], &spec["backend"]];
    for rule in spec["rules"].as_array().into_iter().flatten() {
        for path in rule["http"]["paths"].as_array().into_iter().flatten() {
            backends.push(&path["backend"]);
        }
    }
    backends
        .into_iter()
        .filter_map(|b| {
            b["service"]["name"]
                .as_str()
                .or_else(|| b["serviceName"].as_str())
        })
        .map(str::to_string)
        .collect()
}

/// Istio's `networking.istio.io/v1` DestinationRule, read untyped (no Istio dependency).
pub fn destination_rule_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1", "DestinationRule"),
        "destinationrules",
    )
}

/// Does the API server serve DestinationRules (is Istio installed)?
pub async fn destination_rules_served(client: &Client) -> bool {
    client
        .list_api_group_resources("networking.istio.io/v1")
        .await
        .is_ok_and(|list| list.resources.iter().any(|r| r.name == "destinationrules"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selector_must_be_a_non_empty_subset() {
        let pods = crate::build::labels::app("web");
        let sel = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(selects(
            Some(&sel(&[("app.kubernetes.io/instance", "web")])),
            &pods
        ));
        assert!(!selects(
            Some(&sel(&[("app.kubernetes.io/instance", "api")])),
            &pods
        ));
        assert!(
            !selects(Some(&sel(&[])), &pods),
            "an empty selector selects no pods for a Service"
        );
        assert!(!selects(None, &pods));
    }

    #[test]
    fn ingress_backends_cover_v1_and_legacy() {
        let v1 = json!({"spec": {"defaultBackend": {"service": {"name": "a"}},
            "rules": [{"http": {"paths": [{"backend": {"service": {"name": "b", "port": {"number": 80}}}}]}}]}});
        assert_eq!(ingress_backends(&v1), vec!["a", "b"]);
        let legacy = json!({"spec": {"backend": {"serviceName": "c"},
            "rules": [{"http": {"paths": [{"backend": {"serviceName": "d", "servicePort": 80}}]}}]}});
        assert_eq!(ingress_backends(&legacy), vec!["c", "d"]);
    }

    fn finding(rule: rules::RuleId, kind: &str, waived: bool) -> Finding {
        let info = rule.info();
        Finding {
            rule,
            severity: info.severity,
            kind: kind.into(),
            namespace: Some("ns".into()),
            name: "web".into(),
            path: "spec".into(),
            message: "m".into(),
            remediation: "r".into(),
            file: None,
            line: None,
            waived,
            waiver_reason: None,
        }
    }

    #[test]
    fn violations_list_unwaived_first_and_count_only_them() {
        let compliance = Compliance {
            findings: vec![
                finding(rules::RuleId::HostPath, "StatelessApp", true),
                finding(rules::RuleId::SessionAffinity, "Service", false),
            ],
        };
        let v = compliance.violations();
        assert_eq!(v[0].rule, "session-affinity");
        assert_eq!(v[1].waived, Some(true));
        assert_eq!(compliance.violation_count(), 1);
        let obs = compliance.observation(false);
        assert!(!obs.status);
        assert_eq!(obs.reason, "ViolationsFound");
        assert!(obs.message.contains("(1 waived)"), "{}", obs.message);
    }
}

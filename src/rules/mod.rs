//! The statelessness rule engine: pure functions from Kubernetes objects (as
//! JSON) to [`Finding`]s. No I/O; shared by the controller, the admission
//! webhook, `lint` and `audit`.
//!
//! ```
//! use stateless_operator::rules::{evaluate, Config, Object};
//! let svc = serde_json::json!({
//!     "apiVersion": "v1", "kind": "Service",
//!     "metadata": {"name": "web"},
//!     "spec": {"selector": {"app": "web"}, "sessionAffinity": "ClientIP"}
//! });
//! let findings = evaluate(&[Object::new(svc)], &Config::default());
//! assert_eq!(findings[0].rule.as_str(), "session-affinity");
//! ```
//!
//! Scoping (which objects count as the application tier) is described in
//! `docs/rules.md`, generated from [`SCOPING`] and [`catalogue`].

mod apps;
mod catalogue;
mod checks;
mod edge;
mod model;
mod partition;
mod patterns;
mod sessions;

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use apps::{App, SessionSetting, Setting, StatePath, apps as app_catalogue};
pub use catalogue::{
    CATALOGUE, RuleId, RuleInfo, Severity, UnknownRule, UnknownSeverity, valid_rule_names,
};
pub use model::stateless_app_pod_labels;
pub use partition::{GroupHint, partition};
pub use patterns::{DEFAULT_UPLOAD_PATHS, glob_match};

/// Annotation listing waived rules on an object: `stateless.dev/allow: rule[,rule]`
/// (`*` waives every rule).
pub const WAIVER_ANNOTATION: &str = "stateless.dev/allow";
/// Annotation with the reason for a waiver.
pub const WAIVER_REASON_ANNOTATION: &str = "stateless.dev/allow-reason";

/// The whole rule catalogue, in stable order. One source of truth for
/// findings, CLI output, SARIF rule metadata and `docs/rules.md`.
pub fn catalogue() -> &'static [RuleInfo] {
    &CATALOGUE
}

/// Where an object was read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Source {
    /// Path as given by the user (or `-` for stdin).
    pub file: String,
    /// 1-based line of the start of the object's document.
    pub line: usize,
}

/// One input object: any Kubernetes object as JSON, unknown kinds are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub value: Value,
    pub source: Option<Source>,
}

impl Object {
    /// An object without a known source (e.g. from the API server).
    pub fn new(value: Value) -> Self {
        Object {
            value,
            source: None,
        }
    }

    /// An object read from `file` at `line`.
    pub fn with_source(value: Value, file: impl Into<String>, line: usize) -> Self {
        Object {
            value,
            source: Some(Source {
                file: file.into(),
                line,
            }),
        }
    }
}

/// One problem found in one object.
///
/// JSON field names are stable: `rule, severity, kind, namespace, name, path,
/// message, remediation, waived`, plus `file`/`line` when the source is known
/// and `waiver_reason` when the finding is waived with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: RuleId,
    pub severity: Severity,
    /// Kind of the object the finding is on (e.g. `Service`).
    pub kind: String,
    /// Namespace of that object; `null` when the manifest does not set one.
    pub namespace: Option<String>,
    pub name: String,
    /// Field path inside the object, e.g. `spec.template.spec.volumes[0].hostPath`
    /// or `metadata.annotations["nginx.ingress.kubernetes.io/affinity"]`.
    pub path: String,
    pub message: String,
    /// The rule's fix from the catalogue (shared, not copied per finding).
    pub remediation: Cow<'static, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// True when the object waives this rule with `stateless.dev/allow`.
    #[serde(default)]
    pub waived: bool,
    /// The `stateless.dev/allow-reason` of a waived finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver_reason: Option<String>,
}

/// Engine configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Rules to run.
    pub rules: BTreeSet<RuleId>,
    /// Mount-path glob patterns (`*` matches any characters, `/` included)
    /// where apps keep user uploads; see [`DEFAULT_UPLOAD_PATHS`].
    pub upload_paths: Vec<String>,
    /// Findings below this severity are dropped.
    pub min_severity: Severity,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rules: RuleId::ALL.into_iter().collect(),
            upload_paths: DEFAULT_UPLOAD_PATHS.iter().map(|p| p.to_string()).collect(),
            min_severity: Severity::Low,
        }
    }
}

impl Config {
    /// Select rules: with an empty `only` every rule runs, otherwise just
    /// those; rules in `skip` never run.
    pub fn select_rules(&mut self, only: &[RuleId], skip: &[RuleId]) -> &mut Self {
        self.rules = if only.is_empty() {
            RuleId::ALL.into_iter().collect()
        } else {
            only.iter().copied().collect()
        };
        for id in skip {
            self.rules.remove(id);
        }
        self
    }

    /// Whether `rule` runs under this configuration (enabled and at or above
    /// the minimum severity).
    pub fn runs(&self, rule: RuleId) -> bool {
        self.rules.contains(&rule) && rule.info().severity >= self.min_severity
    }
}

/// Evaluate every enabled rule over `objects` and return the findings in
/// deterministic order (see [`sort_findings`]). Waived findings are included
/// with `waived: true`.
///
/// Objects are indexed by namespace (a missing namespace is its own bucket),
/// and Services, Ingresses, autoscalers, ConfigMaps and claims are only
/// matched against workloads of the same bucket, so the cost is linear in the
/// number of objects.
pub fn evaluate(objects: &[Object], config: &Config) -> Vec<Finding> {
    let index = model::Index::build(objects);
    let mut out = checks::Sink::new(objects, config);
    checks::run_workload_rules(&index, &mut out);
    edge::run_edge_rules(&index, &mut out);
    checks::unknown_waivers(objects, &mut out);
    let mut findings = out.into_findings();
    sort_findings(&mut findings);
    findings
}

/// Sort findings by file, line, kind, namespace, name, rule and path (the
/// order of [`evaluate`]'s output). Call again after changing lines.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (
            &a.file,
            a.line,
            &a.kind,
            &a.namespace,
            &a.name,
            a.rule,
            &a.path,
        )
            .cmp(&(
                &b.file,
                b.line,
                &b.kind,
                &b.namespace,
                &b.name,
                b.rule,
                &b.path,
            ))
    });
}

/// Whether a finding counts against an exit code / admission: not waived and
/// at or above `min`.
pub fn is_blocking(finding: &Finding, min: Severity) -> bool {
    !finding.waived && finding.severity >= min
}

/// How the engine decides which objects are the application tier
/// (Markdown, rendered into `docs/rules.md`).
pub const SCOPING: &str = model::SCOPING;

#[cfg(test)]
mod tests;

//! The admission decision: one AdmissionReview in, one out. The rules are the
//! engine's ([`crate::rules::evaluate`]); this module only decides which
//! requests to look at, what context the engine gets, and how findings map
//! to "deny" and "warn". See the module docs of [`crate::webhook`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde_json::{Value, json};

use super::ENFORCE_LABEL;
use super::cluster::{Cluster, Fetched, LookupError, References};
use super::metrics::WebhookMetrics;
use crate::rules::{
    Config, Finding, Object, RuleId, Severity, WAIVER_ANNOTATION, WAIVER_REASON_ANNOTATION,
    evaluate,
};

/// Namespaces never reviewed, besides the operator's own.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// Enforcement mode of a namespace, from its `stateless.dev/enforce` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `deny`: findings at or above the deny severity reject the request.
    Deny,
    /// `warn`: the request is allowed; findings come back as warnings.
    Warn,
}

impl Mode {
    /// The mode a namespace's labels select; `None` (no review) for a missing
    /// label or any other value.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Mode> {
        match labels.get(ENFORCE_LABEL).map(|v| v.trim()) {
            Some(v) if v.eq_ignore_ascii_case("deny") => Some(Mode::Deny),
            Some(v) if v.eq_ignore_ascii_case("warn") => Some(Mode::Warn),
            _ => None,
        }
    }
}

/// The kinds the webhook reviews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reviewed {
    Deployment,
    StatefulSet,
    Service,
    Ingress,
    StatelessApp,
}

impl Reviewed {
    /// By API group and kind (any version).
    pub fn of(group: &str, kind: &str) -> Option<Self> {
        match (group, kind) {
            ("apps", "Deployment") => Some(Self::Deployment),
            ("apps", "StatefulSet") => Some(Self::StatefulSet),
            ("", "Service") => Some(Self::Service),
            ("networking.k8s.io", "Ingress") => Some(Self::Ingress),
            (crate::crd::GROUP, "StatelessApp") => Some(Self::StatelessApp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::Service => "Service",
            Self::Ingress => "Ingress",
            Self::StatelessApp => "StatelessApp",
        }
    }
}

/// Policy of the webhook (from the `run` flags).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Never reviewed (the operator's own namespace).
    pub operator_namespace: Option<String>,
    /// In `deny` namespaces, unwaived findings at or above this severity deny;
    /// lower ones are warnings.
    pub deny_severity: Severity,
    /// Engine configuration (all rules by default).
    pub config: Config,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            operator_namespace: None,
            deny_severity: Severity::Medium,
            config: Config::default(),
        }
    }
}

/// Why an unwaived finding does not deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarnOnly {
    /// The namespace is in `warn` mode.
    WarnMode,
    /// Below `--webhook-deny-severity`.
    BelowSeverity,
    /// It depends on a claim that could not be read at admission (missing,
    /// e.g. applied later in the same `kubectl apply`, or unreadable): the
    /// engine assumes `ReadWriteOnce` for it, which may be wrong.
    UnknownClaim,
    /// UPDATE: the old object had the same finding (same rule and field).
    PreExisting,
}

/// Findings on the reviewed object, sorted into what they do.
#[derive(Debug, Clone, Default)]
pub struct Assessment {
    pub deny: Vec<Finding>,
    pub warn: Vec<(Finding, WarnOnly)>,
    pub waived: Vec<Finding>,
}

/// Evaluate `object` alone plus its `context` (referenced claims and
/// ConfigMaps), keeping only findings on `object` itself.
fn findings_on(
    object: &Value,
    context: &[Value],
    assume_shared: &BTreeSet<String>,
    config: &Config,
) -> Vec<Finding> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = object["metadata"]["namespace"].clone();
    let mut inputs = Vec::with_capacity(1 + context.len() + assume_shared.len());
    inputs.push(Object::new(object.clone()));
    inputs.extend(context.iter().cloned().map(Object::new));
    inputs.extend(assume_shared.iter().map(|claim| {
        Object::new(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": namespace},
            "spec": {"accessModes": ["ReadWriteMany"]}
        }))
    }));
    evaluate(&inputs, config)
        .into_iter()
        .filter(|f| f.kind == kind && f.name == name)
        // A workload's autoscaler is a separate object, often applied after
        // it (Helm installs HPAs after Deployments): at admission the engine
        // cannot know it, so `single-replica` is judged only on a
        // StatelessApp, whose `spec.replicas.max` says it all.
        .filter(|f| f.rule != RuleId::SingleReplica || kind == "StatelessApp")
        .collect()
}

/// Sort the findings on `object` (new state) into deny / warn / waived.
/// `old` is the previous state on UPDATE. Pure: no I/O.
pub fn assess(
    object: &Value,
    old: Option<&Value>,
    context: &Fetched,
    mode: Mode,
    policy: &Policy,
) -> Assessment {
    let none = BTreeSet::new();
    // Pessimistic: unknown claims assumed ReadWriteOnce (the engine's default).
    let all = findings_on(object, &context.objects, &none, &policy.config);
    // Optimistic: unknown claims assumed shared. What disappears depends on them.
    let certain: BTreeSet<(RuleId, String)> = if context.unknown_claims.is_empty() {
        all.iter().map(|f| (f.rule, f.path.clone())).collect()
    } else {
        findings_on(
            object,
            &context.objects,
            &context.unknown_claims,
            &policy.config,
        )
        .into_iter()
        .map(|f| (f.rule, f.path))
        .collect()
    };
    let before: BTreeSet<(RuleId, String)> = old
        .map(|o| {
            findings_on(o, &context.objects, &none, &policy.config)
                .into_iter()
                .filter(|f| !f.waived)
                .map(|f| (f.rule, f.path))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Assessment::default();
    for f in all {
        let key = (f.rule, f.path.clone());
        if f.waived {
            out.waived.push(f);
        } else if mode == Mode::Warn {
            out.warn.push((f, WarnOnly::WarnMode));
        } else if f.severity < policy.deny_severity {
            out.warn.push((f, WarnOnly::BelowSeverity));
        } else if !certain.contains(&key) {
            out.warn.push((f, WarnOnly::UnknownClaim));
        } else if before.contains(&key) {
            out.warn.push((f, WarnOnly::PreExisting));
        } else {
            out.deny.push(f);
        }
    }
    out
}

fn object_label(f: &Finding) -> String {
    let name = if f.name.is_empty() {
        "(generated name)"
    } else {
        &f.name
    };
    format!("{}/{}", f.kind, name)
}

/// The denial message: every denying finding with rule, field path, what and
/// how to fix, then how to waive.
pub fn deny_message(namespace: &str, deny: &[Finding]) -> String {
    let Some(first) = deny.first() else {
        return String::new();
    };
    let mut out = format!(
        "{} in namespace {namespace} breaks {} statelessness rule{} ({ENFORCE_LABEL}=deny):",
        object_label(first),
        deny.len(),
        if deny.len() == 1 { "" } else { "s" },
    );
    for f in deny {
        out.push_str(&format!(
            "\n- [{}, {}] {}: {} Fix: {}",
            f.rule, f.severity, f.path, f.message, f.remediation
        ));
    }
    let rules: BTreeSet<&str> = deny.iter().map(|f| f.rule.as_str()).collect();
    out.push_str(&format!(
        "\nIf this is intended, waive it on the object with the annotations \
         {WAIVER_ANNOTATION}: {} and {WAIVER_REASON_ANNOTATION}: <why>.",
        rules.into_iter().collect::<Vec<_>>().join(",")
    ));
    out
}

/// Warning texts (kubectl prints each as `Warning: ...`). The API server
/// truncates warnings once they add up to 4 KiB, so the fix is left out
/// when they would.
pub fn warning_texts(warn: &[(Finding, WarnOnly)]) -> Vec<String> {
    let text = |f: &Finding, why: WarnOnly, fix: bool| {
        let note = match why {
            WarnOnly::WarnMode | WarnOnly::BelowSeverity => "",
            WarnOnly::UnknownClaim => {
                " (not denied: a claim it mounts was not readable at admission, so its access mode is unknown)"
            }
            WarnOnly::PreExisting => " (not denied: already present before this update)",
        };
        let mut s = format!(
            "stateless.dev [{}, {}] {} {}: {}{note}",
            f.rule,
            f.severity,
            object_label(f),
            f.path,
            f.message
        );
        if fix {
            s.push_str(" Fix: ");
            s.push_str(&f.remediation);
        }
        s
    };
    let full: Vec<String> = warn.iter().map(|(f, why)| text(f, *why, true)).collect();
    if full.iter().map(|s| s.chars().count()).sum::<usize>() <= 3500 {
        full
    } else {
        warn.iter().map(|(f, why)| text(f, *why, false)).collect()
    }
}

/// The outcome of one review, for the response and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub message: Option<String>,
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
    /// Reviewed kind, or `None` when the request was not looked at.
    pub kind: Option<Reviewed>,
}

impl Decision {
    fn allow(kind: Option<Reviewed>) -> Self {
        Self {
            allowed: true,
            message: None,
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
            kind,
        }
    }

    /// `allowed`, `warned` or `denied`.
    pub fn result(&self) -> &'static str {
        match (self.allowed, self.warnings.is_empty()) {
            (false, _) => "denied",
            (true, true) => "allowed",
            (true, false) => "warned",
        }
    }
}

/// A request the webhook cannot answer with a review.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not an AdmissionReview with a request (HTTP 400).
    #[error("malformed AdmissionReview: {0}")]
    Malformed(String),
    /// The namespace's mode could not be read (HTTP 500: the API server then
    /// applies the configuration's `failurePolicy`).
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

/// True when a controller ownerReference names a StatelessApp. Alone it
/// proves nothing (anyone may write one); with the operator as the requester
/// it marks a child built from an app that was itself reviewed.
fn owned_by_app(object: &Value) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r["controller"] == true
                    && r["kind"] == "StatelessApp"
                    && r["apiVersion"]
                        .as_str()
                        .is_some_and(|v| v.starts_with(&format!("{}/", crate::crd::GROUP)))
            })
        })
}

fn with_namespace(mut object: Value, namespace: &str) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
        && !meta.get("namespace").is_some_and(Value::is_string)
    {
        meta.insert("namespace".into(), Value::String(namespace.into()));
    }
    object
}

/// The validating webhook: cluster view, policy and metrics.
pub struct Webhook {
    cluster: Arc<dyn Cluster>,
    policy: Policy,
    metrics: WebhookMetrics,
}

impl Webhook {
    pub fn new(cluster: Arc<dyn Cluster>, policy: Policy, metrics: WebhookMetrics) -> Self {
        Self {
            cluster,
            policy,
            metrics,
        }
    }

    pub fn metrics(&self) -> &WebhookMetrics {
        &self.metrics
    }

    /// Decide on one request. Reads the namespace label and referenced
    /// objects; writes nothing (`sideEffects: None`, dry-run safe).
    pub async fn decide(
        &self,
        req: &AdmissionRequest<DynamicObject>,
    ) -> Result<Decision, ReviewError> {
        if !matches!(req.operation, Operation::Create | Operation::Update)
            || req.sub_resource.as_deref().is_some_and(|s| !s.is_empty())
        {
            return Ok(Decision::allow(None));
        }
        let Some(kind) = Reviewed::of(&req.kind.group, &req.kind.kind) else {
            return Ok(Decision::allow(None));
        };
        let Some(namespace) = req.namespace.as_deref().filter(|n| !n.is_empty()) else {
            return Ok(Decision::allow(Some(kind)));
        };
        if SYSTEM_NAMESPACES.contains(&namespace)
            || self.policy.operator_namespace.as_deref() == Some(namespace)
        {
            return Ok(Decision::allow(Some(kind)));
        }
        let Some(object) = req.object.as_ref() else {
            return Ok(Decision::allow(Some(kind)));
        };
        if object.metadata.deletion_timestamp.is_some() {
            // Finalizer removal and the like must never be blocked.
            return Ok(Decision::allow(Some(kind)));
        }
        let object = serde_json::to_value(object)
            .map_err(|e| ReviewError::Malformed(format!("request.object: {e}")))?;
        if owned_by_app(&object)
            && self
                .cluster
                .operator_user()
                .is_some_and(|me| req.user_info.username.as_deref() == Some(me))
        {
            return Ok(Decision::allow(Some(kind)));
        }
        let labels = self
            .cluster
            .namespace_labels(namespace)
            .await?
            .unwrap_or_default();
        let Some(mode) = Mode::from_labels(&labels) else {
            return Ok(Decision::allow(Some(kind)));
        };
        let object = with_namespace(object, namespace);
        let old = match (&req.operation, req.old_object.as_ref()) {
            (Operation::Update, Some(old)) => serde_json::to_value(old)
                .ok()
                .map(|o| with_namespace(o, namespace)),
            _ => None,
        };
        let mut refs = References::of(&object);
        if let Some(old) = &old {
            let old_refs = References::of(old);
            refs.claims.extend(old_refs.claims);
            refs.config_maps.extend(old_refs.config_maps);
        }
        let context = if refs.is_empty() {
            Fetched::default()
        } else {
            self.cluster.fetch(namespace, &refs).await
        };
        let assessment = assess(&object, old.as_ref(), &context, mode, &self.policy);
        let mut decision = Decision::allow(Some(kind));
        decision.warnings = warning_texts(&assessment.warn);
        if !assessment.waived.is_empty() {
            let waived: Vec<String> = assessment
                .waived
                .iter()
                .map(|f| match &f.waiver_reason {
                    Some(reason) => format!("{} at {} ({reason})", f.rule, f.path),
                    None => format!("{} at {}", f.rule, f.path),
                })
                .collect();
            decision
                .audit_annotations
                .insert("waived".to_string(), waived.join("; "));
        }
        if !assessment.deny.is_empty() {
            decision.allowed = false;
            decision.message = Some(deny_message(namespace, &assessment.deny));
        }
        Ok(decision)
    }

    /// Parse `body`, decide, and build the response review.
    pub async fn review(&self, body: &[u8]) -> Result<ReviewResponse, ReviewError> {
        let review: AdmissionReview<DynamicObject> =
            serde_json::from_slice(body).map_err(|e| ReviewError::Malformed(e.to_string()))?;
        let req: AdmissionRequest<DynamicObject> = review
            .try_into()
            .map_err(|_| ReviewError::Malformed("no `request` in the AdmissionReview".into()))?;
        if req.uid.is_empty() {
            return Err(ReviewError::Malformed("request.uid is empty".into()));
        }
        let decision = self.decide(&req).await?;
        let mut response = AdmissionResponse::from(&req);
        if !decision.warnings.is_empty() {
            response.warnings = Some(decision.warnings.clone());
        }
        response.audit_annotations = decision
            .audit_annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(message) = &decision.message {
            response = response.deny(message);
            response.result.code = 403;
            response.result.reason = "Forbidden".to_string();
        }
        Ok(ReviewResponse {
            review: response.into_review(),
            decision,
        })
    }

    /// [`Self::review`] plus metrics: HTTP status and JSON body.
    pub async fn handle(&self, body: &[u8]) -> (u16, Vec<u8>) {
        let start = Instant::now();
        let (status, body, kind, result) = match self.review(body).await {
            Ok(r) => match serde_json::to_vec(&r.review) {
                Ok(bytes) => (
                    200,
                    bytes,
                    r.decision.kind.map_or("other", Reviewed::as_str),
                    r.decision.result(),
                ),
                Err(e) => (
                    500,
                    error_body(&format!("encoding the response: {e}")),
                    "other",
                    "error",
                ),
            },
            Err(e @ ReviewError::Malformed(_)) => {
                (400, error_body(&e.to_string()), "other", "error")
            }
            Err(e @ ReviewError::Lookup(_)) => {
                tracing::warn!("admission review failed: {e}");
                (500, error_body(&e.to_string()), "other", "error")
            }
        };
        self.metrics.count(kind, result);
        self.metrics.duration.observe(start.elapsed().as_secs_f64());
        (status, body)
    }
}

/// A decided review.
#[derive(Debug, Clone)]
pub struct ReviewResponse {
    pub review: AdmissionReview<DynamicObject>,
    pub decision: Decision,
}

/// `{"error": "..."}` for non-200 answers.
pub fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "error": message })).unwrap_or_else(|_| b"{}".to_vec())
}

//! What an app's reconciliation tells people: Events (what changed, Ready
//! transitions, new findings) and the `stateless_violations` series.
//!
//! Warning Events are for failures only: a rollout in progress is Normal.
//! A finding gets one Warning Event when it first appears, judged against
//! the full set of the app's findings last time (kept in memory, not the
//! status list, which holds at most 50), and the app's series and memory go
//! when the app does ([`Context::forget`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::Context;
use super::compliance::{Compliance, finding_key};
use super::recorder::Published;
use super::status;
use crate::crd::{PolicyMode, StatelessApp, StatelessAppStatus, condition_types};
use crate::metrics::ViolationLabels;

/// Most finding Events one reconcile publishes (a new Ingress can bring many).
const MAX_FINDING_EVENTS: usize = 10;

/// A finding's identity across reconciles: rule, kind, name, path.
pub type FindingKey = (String, String, String, String);

/// The unwaived findings each app had at its last reconcile, in full.
#[derive(Default)]
pub struct Reported(Mutex<HashMap<ObjectRef<StatelessApp>, BTreeSet<FindingKey>>>);

impl Reported {
    /// Remember `current` as the app's findings; return those it did not
    /// have before. The first time after a start the memory is the status:
    /// its list, or — when the list was cut at 50 and cannot tell — all of
    /// `current`, so a restart never repeats old findings' Events.
    pub fn new_findings(
        &self,
        app: &StatelessApp,
        current: BTreeSet<FindingKey>,
    ) -> BTreeSet<FindingKey> {
        let Ok(mut memory) = self.0.lock() else {
            return BTreeSet::new();
        };
        let key = ObjectRef::from_obj(app);
        let before = memory
            .remove(&key)
            .unwrap_or_else(|| from_status(app.status.as_ref(), &current));
        let new = current.difference(&before).cloned().collect();
        memory.insert(key, current);
        new
    }

    fn forget(&self, app: &ObjectRef<StatelessApp>) {
        if let Ok(mut memory) = self.0.lock() {
            memory.remove(app);
        }
    }

    /// Every app remembered.
    pub fn apps(&self) -> Vec<ObjectRef<StatelessApp>> {
        self.0
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn from_status(
    status: Option<&StatelessAppStatus>,
    current: &BTreeSet<FindingKey>,
) -> BTreeSet<FindingKey> {
    let Some(status) = status else {
        return BTreeSet::new();
    };
    let listed: BTreeSet<FindingKey> = status
        .violations
        .iter()
        .filter(|v| v.waived != Some(true))
        .map(|v| finding_key(&v.rule, &v.kind, &v.name, &v.path))
        .collect();
    if listed.len() < usize::try_from(status.violation_count).unwrap_or(0) {
        current.clone()
    } else {
        listed
    }
}

impl Context {
    /// The app is gone: drop its series, findings memory and backoff.
    pub fn forget(&self, app: &ObjectRef<StatelessApp>) {
        let namespace = app.namespace.clone().unwrap_or_default();
        for info in crate::rules::catalogue() {
            self.metrics.violations.remove(&ViolationLabels {
                namespace: namespace.clone(),
                app: app.name.clone(),
                rule: info.id.as_str().to_string(),
            });
        }
        self.reported.forget(app);
        self.forget_failures(app);
        self.caches.forget_app(app);
    }
}

pub async fn publish(app: &StatelessApp, ctx: &Context, event: Event) {
    if !ctx.settings.leadership.may_write() {
        return;
    }
    match ctx.recorder.publish(&event, &app.object_ref(&())).await {
        Ok(Published::Created) => ctx.metrics.count_write("Event", "create"),
        Ok(Published::Continued(_)) => ctx.metrics.count_write("Event", "patch"),
        Err(e) => tracing::warn!(app = %app.name_any(), "publishing event {}: {e}", event.reason),
    }
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// One Normal Event listing what this reconcile created or changed.
pub async fn publish_changes(app: &StatelessApp, ctx: &Context, changes: &[String]) {
    if changes.is_empty() {
        return;
    }
    let created = changes.iter().any(|c| c.starts_with("created Deployment"));
    let event = Event {
        type_: EventType::Normal,
        reason: if created { "Created" } else { "Updated" }.into(),
        note: Some(truncate(&changes.join(", "), 1000)),
        action: "Reconcile".into(),
        secondary: None,
    };
    publish(app, ctx, event).await;
}

/// Ready reasons that are progress, not failure.
fn is_progress(reason: &str) -> bool {
    matches!(
        reason,
        "RollingOut" | "WaitingForPods" | "SessionStoreNotReady"
    )
}

/// The Event a change of the Ready condition deserves, if any (pure).
pub fn transition_event(
    before: Option<&StatelessAppStatus>,
    after: &StatelessAppStatus,
) -> Option<Event> {
    let was = status::condition_status(before, condition_types::READY);
    let ready = after
        .conditions
        .iter()
        .find(|c| c.type_ == condition_types::READY)?;
    let previous_reason = before
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == condition_types::READY)
        })
        .map(|c| c.reason.as_str());
    let event = |type_, reason: &str, note: String| Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(&note, 1000)),
        action: "Reconcile".into(),
        secondary: None,
    };
    match (was, ready.status == "True") {
        (Some(false) | None, true) => {
            Some(event(EventType::Normal, "Ready", ready.message.clone()))
        }
        // A rollout (or anything else in progress) is routine.
        (Some(true), false) if is_progress(&ready.reason) => Some(event(
            EventType::Normal,
            &ready.reason,
            ready.message.clone(),
        )),
        (Some(true), false) => Some(event(
            EventType::Warning,
            "Degraded",
            format!("{}: {}", ready.reason, ready.message),
        )),
        // Not ready, and now for a new reason that is a failure.
        (_, false)
            if previous_reason != Some(ready.reason.as_str()) && !is_progress(&ready.reason) =>
        {
            Some(event(
                EventType::Warning,
                &ready.reason,
                ready.message.clone(),
            ))
        }
        _ => None,
    }
}

pub async fn announce_transitions(
    app: &StatelessApp,
    ctx: &Context,
    before: Option<&StatelessAppStatus>,
    after: &StatelessAppStatus,
) {
    if let Some(event) = transition_event(before, after) {
        publish(app, ctx, event).await;
    }
}

/// Findings reach users as metrics (always) and, in Warn and Enforce modes,
/// as one Warning Event per finding the app did not have last time — not one
/// per reconcile.
pub async fn report_findings(
    app: &StatelessApp,
    ctx: &Context,
    namespace: &str,
    compliance: &Compliance,
) {
    let name = app.name_any();
    let mut per_rule = std::collections::BTreeMap::new();
    for finding in compliance.unwaived() {
        *per_rule.entry(finding.rule.as_str()).or_insert(0i64) += 1;
    }
    for info in crate::rules::catalogue() {
        let labels = ViolationLabels {
            namespace: namespace.to_string(),
            app: name.clone(),
            rule: info.id.as_str().to_string(),
        };
        match per_rule.get(info.id.as_str()) {
            Some(count) => {
                ctx.metrics.violations.get_or_create(&labels).set(*count);
            }
            None => {
                ctx.metrics.violations.remove(&labels);
            }
        }
    }

    let key = |f: &crate::rules::Finding| finding_key(f.rule.as_str(), &f.kind, &f.name, &f.path);
    let new = ctx
        .reported
        .new_findings(app, compliance.unwaived().map(key).collect());
    if app.spec.policy_mode() == PolicyMode::Audit {
        return;
    }
    for finding in compliance
        .unwaived()
        .filter(|f| new.contains(&key(f)))
        .take(MAX_FINDING_EVENTS)
    {
        let event = Event {
            type_: EventType::Warning,
            reason: "StatelessnessViolation".into(),
            note: Some(truncate(
                &format!(
                    "{} on {} {} at {}: {} Fix: {}",
                    finding.rule,
                    finding.kind,
                    finding.name,
                    finding.path,
                    finding.message,
                    finding.remediation
                ),
                1000,
            )),
            // The rule as the action and the offending object as the related
            // one: tools that group Events by those see one per finding.
            action: finding.rule.as_str().into(),
            secondary: Some(ObjectReference {
                kind: Some(finding.kind.clone()),
                name: Some(finding.name.clone()),
                namespace: finding.namespace.clone().or_else(|| app.namespace()),
                ..ObjectReference::default()
            }),
        };
        publish(app, ctx, event).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Violation;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    fn ready(status: bool, reason: &str) -> StatelessAppStatus {
        StatelessAppStatus {
            conditions: vec![Condition {
                type_: condition_types::READY.into(),
                status: if status { "True" } else { "False" }.into(),
                reason: reason.into(),
                message: format!("{reason} message"),
                last_transition_time: status::now(),
                observed_generation: None,
            }],
            ..Default::default()
        }
    }

    fn kind(e: &Option<Event>) -> Option<(&str, String)> {
        e.as_ref().map(|e| {
            (
                if e.type_ == EventType::Warning {
                    "Warning"
                } else {
                    "Normal"
                },
                e.reason.clone(),
            )
        })
    }

    #[test]
    fn rollouts_are_normal_and_failures_warn() {
        let up = ready(true, "Available");
        let rolling = ready(false, "RollingOut");
        let broken = ready(false, "ChildConflict");
        assert_eq!(
            kind(&transition_event(Some(&up), &rolling)),
            Some(("Normal", "RollingOut".into()))
        );
        assert_eq!(
            kind(&transition_event(Some(&rolling), &up)),
            Some(("Normal", "Ready".into()))
        );
        assert_eq!(
            kind(&transition_event(Some(&up), &broken)),
            Some(("Warning", "Degraded".into()))
        );
        assert_eq!(
            kind(&transition_event(Some(&rolling), &broken)),
            Some(("Warning", "ChildConflict".into()))
        );
        assert_eq!(kind(&transition_event(Some(&broken), &broken)), None);
        assert_eq!(kind(&transition_event(Some(&rolling), &rolling)), None);
        assert_eq!(kind(&transition_event(None, &rolling)), None);
    }

    fn app_with(status: Option<StatelessAppStatus>) -> StatelessApp {
        let mut app = StatelessApp::new("shop", crate::crd::StatelessAppSpec::with_image("a:1"));
        app.metadata.namespace = Some("ns".into());
        app.status = status;
        app
    }

    fn keys(range: std::ops::Range<usize>) -> BTreeSet<FindingKey> {
        range
            .map(|i| finding_key("host-path", "Deployment", &format!("d{i}"), "spec"))
            .collect()
    }

    fn violation(k: &FindingKey) -> Violation {
        Violation {
            rule: k.0.clone(),
            severity: "high".into(),
            kind: k.1.clone(),
            name: k.2.clone(),
            path: k.3.clone(),
            message: String::new(),
            waived: None,
        }
    }

    #[test]
    fn findings_are_new_once_judged_on_the_full_set() {
        let reported = Reported::default();
        let app = app_with(None);
        assert_eq!(reported.new_findings(&app, keys(0..60)).len(), 60);
        // Same 60 findings: nothing is new, though a status lists only 50.
        assert!(reported.new_findings(&app, keys(0..60)).is_empty());
        assert_eq!(reported.new_findings(&app, keys(0..61)), keys(60..61));
        assert!(reported.new_findings(&app, keys(1..61)).is_empty());
        assert_eq!(reported.apps(), vec![ObjectRef::from_obj(&app)]);
        reported.forget(&ObjectRef::from_obj(&app));
        assert!(reported.apps().is_empty());
    }

    #[test]
    fn after_a_restart_the_status_is_the_memory() {
        let listed = keys(0..3);
        let full = StatelessAppStatus {
            violations: listed.iter().map(violation).collect(),
            violation_count: 3,
            ..Default::default()
        };
        let reported = Reported::default();
        assert_eq!(
            reported.new_findings(&app_with(Some(full)), keys(0..4)),
            keys(3..4),
            "the list is complete: the fourth is new"
        );
        let capped = StatelessAppStatus {
            violations: keys(0..50).iter().map(violation).collect(),
            violation_count: 60,
            ..Default::default()
        };
        let reported = Reported::default();
        assert!(
            reported
                .new_findings(&app_with(Some(capped)), keys(0..61))
                .is_empty(),
            "a capped list cannot tell: no repeats after a restart"
        );
    }
}

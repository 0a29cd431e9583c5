//! Publishes events.k8s.io/v1 Events, folding a repeat into a series.
//!
//! kube's `Recorder` does the same, but keeps every Event it published, as a
//! whole struct, for six minutes: a few KiB per app while a thousand apps
//! converge, which is most of what an app costs the operator at rest. This
//! one remembers a 64-bit digest of the event, the Event's name and the
//! series count: what continuing a series needs, and no more.
//!
//! The digest covers the note too, so "Updated: Service" and "Updated:
//! Deployment" stay two Events instead of a series that shows the first note.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Client};
use serde_json::json;

/// How long a published Event can still be continued as a series; later
/// repeats start a new Event (client-go and kube use the same six minutes).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// What was sent for one published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// A new Event object.
    Created,
    /// A repeat within [`SERIES_WINDOW`]: the existing Event's series count.
    Continued(i32),
}

/// An open series: its Event's name, its count and when it was last sent.
/// Series past the window are dropped at the next publish.
struct Series {
    name: Box<str>,
    count: i32,
    last: Instant,
}

pub struct EventRecorder {
    client: Client,
    controller: String,
    instance: String,
    open: Mutex<HashMap<u64, Series>>,
}

impl EventRecorder {
    /// `instance` names this replica (its pod), defaulting to the controller.
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Publish `event` about `regarding`, in its namespace (or `default`).
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<Published, kube::Error> {
        let now = Instant::now();
        let digest = digest(event, regarding);
        let repeat = self.repeat_of(digest, now);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        if let Some((name, count)) = repeat {
            let patch = json!({ "series": EventSeries {
                count,
                last_observed_time: MicroTime(jiff::Timestamp::now()),
            }});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.remember(digest, &name, count, now);
                    return Ok(Published::Continued(count));
                }
                // Deleted meanwhile (by its TTL or by hand): start anew.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let new = self.new_event(event, regarding);
        let created = api.create(&PostParams::default(), &new).await?;
        if let Some(name) = created.metadata.name.as_deref() {
            self.remember(digest, name, 1, now);
        }
        Ok(Published::Created)
    }

    /// The open series `digest` continues, as (Event name, next count);
    /// series past the window are closed on the way.
    fn repeat_of(&self, digest: u64, now: Instant) -> Option<(String, i32)> {
        let mut open = self.open.lock().ok()?;
        open.retain(|_, s| now.saturating_duration_since(s.last) < SERIES_WINDOW);
        open.get(&digest)
            .map(|s| (s.name.to_string(), s.count.saturating_add(1)))
    }

    fn remember(&self, digest: u64, name: &str, count: i32, now: Instant) {
        if let Ok(mut open) = self.open.lock() {
            let name = name.into();
            open.insert(
                digest,
                Series {
                    name,
                    count,
                    last: now,
                },
            );
        }
    }

    fn new_event(&self, event: &Event, regarding: &ObjectReference) -> K8sEvent {
        let now = jiff::Timestamp::now();
        let subject = regarding.name.as_deref().unwrap_or(&self.controller);
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(type_name(event.type_).into()),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                // Unique per publish, as kubectl and client-go name Events.
                name: Some(format!("{subject}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            ..K8sEvent::default()
        }
    }
}

fn type_name(type_: EventType) -> &'static str {
    match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// An event's identity for series: what it says and what it is about.
pub fn digest(event: &Event, regarding: &ObjectReference) -> u64 {
    let mut h = DefaultHasher::new();
    type_name(event.type_).hash(&mut h);
    event.reason.hash(&mut h);
    event.action.hash(&mut h);
    event.note.hash(&mut h);
    hash_reference(regarding, &mut h);
    match &event.secondary {
        Some(related) => {
            1u8.hash(&mut h);
            hash_reference(related, &mut h);
        }
        None => 0u8.hash(&mut h),
    }
    h.finish()
}

fn hash_reference(r: &ObjectReference, h: &mut DefaultHasher) {
    r.api_version.hash(h);
    r.kind.hash(h);
    r.namespace.hash(h);
    r.name.hash(h);
    r.uid.hash(h);
    r.field_path.hash(h);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str, note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note.into()),
            action: "Reconcile".into(),
            secondary: None,
        }
    }

    fn app(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("stateless.dev/v1alpha1".into()),
            kind: Some("StatelessApp".into()),
            namespace: Some("shop".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    #[test]
    fn a_repeat_has_the_same_digest_and_any_difference_another() {
        let base = digest(&event("Updated", "changed Service"), &app("web"));
        assert_eq!(
            base,
            digest(&event("Updated", "changed Service"), &app("web"))
        );
        let others = [
            digest(&event("Updated", "changed Deployment"), &app("web")),
            digest(&event("Created", "changed Service"), &app("web")),
            digest(&event("Updated", "changed Service"), &app("api")),
            digest(
                &Event {
                    type_: EventType::Warning,
                    ..event("Updated", "changed Service")
                },
                &app("web"),
            ),
            digest(
                &Event {
                    secondary: Some(app("cart")),
                    ..event("Updated", "changed Service")
                },
                &app("web"),
            ),
        ];
        for other in others {
            assert_ne!(base, other);
        }
    }
}

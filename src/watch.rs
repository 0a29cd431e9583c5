//! The list+watch streams of the controller and the webhook: each with a
//! backoff of its own, logged and counted per watched kind.
//!
//! Why not kube-runtime's defaults: `Controller::owns` and `watches` put all
//! watches of a controller behind one shared backoff (0.8 s doubling to 30 s,
//! plus up to as much again of jitter), which pauses every watch whenever any
//! of them returns an error. After an API server restart each watch's resume
//! fails once with `410 Gone` (its resourceVersion is older than the new
//! watch cache), so ten watches meant ten ever longer pauses of all of them in
//! a row: changes waited for minutes. Here a watch's errors pause only that
//! watch, from 0.5 s doubling to at most 5 s, and its next success resets it.
//! Errors are logged and counted here, then dropped ([`without_errors`]), so
//! none reaches a consumer's shared backoff; the watcher itself retries.

use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};

use crate::metrics::{WatchLabels, WatchMetrics};

/// First pause after an error.
pub const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Longest pause: with a dozen watches per process, one list or watch request
/// per watch every few seconds while the API server is away costs it
/// nothing, and the operator notices its return within seconds.
pub const MAX_RETRY: Duration = Duration::from_secs(5);
/// While a watch keeps failing, its errors are logged at warn this often
/// (each one at debug).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Exponential backoff of one watch: [`FIRST_RETRY`] doubling up to
/// [`MAX_RETRY`], each pause drawn between half and all of that, so watches
/// that fail together do not retry in lockstep.
#[derive(Debug, Default, Clone)]
pub struct WatchBackoff {
    failures: u32,
}

impl WatchBackoff {
    /// The pause before jitter after `failures` errors in a row.
    fn base(failures: u32) -> Duration {
        FIRST_RETRY
            .saturating_mul(1u32 << failures.min(16))
            .min(MAX_RETRY)
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let base = Self::base(self.failures);
        self.failures = self.failures.saturating_add(1);
        Some(jittered(base))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Between half and all of `delay`.
fn jittered(delay: Duration) -> Duration {
    let mut bytes = [0u8; 2];
    let fraction = match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u16::from_le_bytes(bytes)) / f64::from(u16::MAX),
        Err(_) => 0.5,
    };
    delay.mul_f64(0.5 + 0.5 * fraction)
}

/// What a watch is, for its logs and metrics.
pub struct WatchInfo {
    labels: WatchLabels,
    metrics: WatchMetrics,
    /// Appended to the error when the API server does not serve the kind (404).
    missing_hint: Option<&'static str>,
    /// Called on every completed list (the first one makes a cache usable).
    on_listed: Option<Box<dyn Fn() + Send + Sync>>,
}

impl WatchInfo {
    pub fn new(component: &str, kind: &str, metrics: &WatchMetrics) -> Self {
        Self {
            labels: WatchLabels {
                component: component.to_string(),
                kind: kind.to_string(),
            },
            metrics: metrics.clone(),
            missing_hint: None,
            on_listed: None,
        }
    }

    /// What to tell the user when the kind is not served at all.
    pub fn when_missing(mut self, hint: &'static str) -> Self {
        self.missing_hint = Some(hint);
        self
    }

    pub fn on_listed(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_listed = Some(Box::new(f));
        self
    }
}

/// `stream` (a [`watcher`]) observed for logs and metrics, behind a
/// [`WatchBackoff`] of its own. Errors still pass (the backoff needs them);
/// drop them with [`without_errors`] after any `reflect`/`*_objects` step.
pub fn observed<K>(
    stream: impl Stream<Item = watcher::Result<Event<K>>> + Send,
    info: WatchInfo,
) -> impl Stream<Item = watcher::Result<Event<K>>> + Send {
    info.metrics.declare(&info.labels);
    let mut recorder = Recorder {
        info,
        failing: 0,
        last_warned: None,
        listed: 0,
    };
    stream
        .inspect(move |item| recorder.record(item))
        .backoff(WatchBackoff::default())
}

/// Drop the errors of an [`observed`] stream: they were logged and counted,
/// and the watcher retries by itself once its backoff has passed.
pub fn without_errors<T: Send>(
    stream: impl Stream<Item = watcher::Result<T>> + Send,
) -> impl Stream<Item = watcher::Result<T>> + Send {
    stream.filter(|item| futures::future::ready(item.is_ok()))
}

struct Recorder {
    info: WatchInfo,
    /// Errors since the last object or list received.
    failing: u32,
    last_warned: Option<Instant>,
    /// Objects of the list in progress.
    listed: usize,
}

impl Recorder {
    fn record<K>(&mut self, item: &watcher::Result<Event<K>>) {
        let (component, kind) = (&self.info.labels.component, &self.info.labels.kind);
        let event = match item {
            Ok(event) => event,
            Err(error) => return self.failed(error),
        };
        if let Event::Init = event {
            // Sent before the list request: nothing was received yet.
            self.info.metrics.count_restart(&self.info.labels);
            self.listed = 0;
            return;
        }
        self.info.metrics.saw_event(&self.info.labels);
        if self.failing > 0 {
            tracing::info!(
                component,
                kind,
                errors = self.failing,
                "watch receiving again"
            );
            self.failing = 0;
            self.last_warned = None;
        }
        match event {
            Event::InitApply(_) => self.listed += 1,
            Event::InitDone => {
                tracing::debug!(component, kind, objects = self.listed, "watch listed");
                if let Some(on_listed) = &self.info.on_listed {
                    on_listed();
                }
            }
            Event::Init | Event::Apply(_) | Event::Delete(_) => {}
        }
    }

    fn failed(&mut self, error: &watcher::Error) {
        let (component, kind) = (&self.info.labels.component, &self.info.labels.kind);
        self.info.metrics.count_error(&self.info.labels);
        if is_gone(error) {
            // Routine after an API server restart or a long disconnection:
            // the watch cache no longer has our resourceVersion.
            tracing::info!(
                component,
                kind,
                "watch resourceVersion expired (410 Gone); listing again"
            );
            return;
        }
        self.failing = self.failing.saturating_add(1);
        let due = self.last_warned.is_none_or(|at| at.elapsed() >= WARN_EVERY);
        if !due {
            tracing::debug!(
                component,
                kind,
                errors = self.failing,
                "watch failed: {error}"
            );
            return;
        }
        self.last_warned = Some(Instant::now());
        if is_not_found(error) {
            let hint = self.info.missing_hint.unwrap_or_default();
            tracing::error!(
                component,
                kind,
                errors = self.failing,
                "the API server does not serve {kind} (404 Not Found){hint}; retrying every {MAX_RETRY:?}: {error}"
            );
        } else {
            tracing::warn!(
                component,
                kind,
                errors = self.failing,
                "watch failed; retrying within {MAX_RETRY:?}: {error}"
            );
        }
    }
}

fn api_status(error: &watcher::Error) -> Option<u16> {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.code),
        watcher::Error::WatchError(s) => Some(s.code),
        _ => None,
    }
}

fn is_gone(error: &watcher::Error) -> bool {
    api_status(error) == Some(410)
}

fn is_not_found(error: &watcher::Error) -> bool {
    api_status(error) == Some(404)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_and_resets() {
        let mut backoff = WatchBackoff::default();
        let bases: Vec<Duration> = (0..8).map(WatchBackoff::base).collect();
        assert_eq!(
            bases,
            [500, 1000, 2000, 4000, 5000, 5000, 5000, 5000].map(Duration::from_millis)
        );
        for base in &bases {
            let pause = backoff.next().expect("never gives up");
            assert!(
                pause >= *base / 2 && pause <= *base,
                "{pause:?} within [{:?}, {base:?}]",
                *base / 2
            );
        }
        assert!(WatchBackoff::base(u32::MAX) == MAX_RETRY);
        backoff.reset();
        assert!(backoff.next().expect("pause") <= FIRST_RETRY);
    }

    #[test]
    fn errors_are_counted_and_gone_is_told_apart() {
        let metrics = WatchMetrics::default();
        let mut recorder = Recorder {
            info: WatchInfo::new("controller", "StatelessApp", &metrics),
            failing: 0,
            last_warned: None,
            listed: 0,
        };
        let gone =
            kube::core::Status::failure("too old resource version", "Expired").with_code(410);
        recorder.record::<()>(&Err(watcher::Error::WatchError(Box::new(gone))));
        assert_eq!(
            recorder.failing, 0,
            "410 Gone is routine, not a failure streak"
        );
        let missing = kube::core::Status::failure("not found", "NotFound").with_code(404);
        recorder.record::<()>(&Err(watcher::Error::InitialListFailed(kube::Error::Api(
            Box::new(missing),
        ))));
        assert_eq!(recorder.failing, 1);
        recorder.record::<()>(&Ok(Event::Init));
        assert_eq!(recorder.failing, 1, "Init is local: nothing was received");
        recorder.record::<()>(&Ok(Event::InitDone));
        assert_eq!(recorder.failing, 0, "a completed list ends the streak");
        let labels = WatchLabels {
            component: "controller".into(),
            kind: "StatelessApp".into(),
        };
        assert_eq!(metrics.errors.get_or_create(&labels).get(), 2);
        assert_eq!(metrics.restarts.get_or_create(&labels).get(), 1);
        assert!(metrics.last_event.get_or_create(&labels).get() > 0.0);
    }
}

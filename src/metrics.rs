//! Prometheus metrics of the operator, served on `/metrics`.
//!
//! One registry, created at start-up and shared by the controller, the rule
//! reporting and the webhook. Reconcile timing uses a guard so every exit path
//! (success, error, panic unwinding) is measured exactly once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok`, or the error's reason (e.g. `ExternalSecretNotFound`).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// Kind of the object written.
    pub kind: String,
    /// `apply`, `create` or `delete`.
    pub verb: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    pub namespace: String,
    pub app: String,
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    /// Whose watch: `controller` or `webhook`.
    pub component: String,
    /// Kind of the watched objects (`StatelessApp`, `Deployment`, `Secret` ...).
    pub kind: String,
}

/// Health of the watches (list+watch streams) of the controller and the
/// webhook, per watched kind. Cheap to clone: every field shares its storage.
#[derive(Clone, Debug, Default)]
pub struct WatchMetrics {
    /// Times a watch began a full list: its first start and every relist
    /// (after `410 Gone`, or after a failed list).
    pub restarts: Family<WatchLabels, Counter>,
    /// Errors a watch returned: connection failures, API errors, `410 Gone`.
    pub errors: Family<WatchLabels, Counter>,
    /// Unix time of the last object or list a watch received.
    pub last_event: Family<WatchLabels, Gauge<f64, AtomicU64>>,
}

impl WatchMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "stateless_watch_restarts",
            "Times a watch started over from a full list (its first start and every relist), by component and kind",
            self.restarts.clone(),
        );
        registry.register(
            "stateless_watch_errors",
            "Errors returned by a watch (connection failures, API errors, 410 Gone), by component and kind",
            self.errors.clone(),
        );
        registry.register(
            "stateless_watch_last_event_timestamp_seconds",
            "Unix time of the last object or list received by a watch, by component and kind",
            self.last_event.clone(),
        );
    }

    /// Show a watch's counters (at 0) from its start, before anything happened.
    pub fn declare(&self, labels: &WatchLabels) {
        let _ = self.restarts.get_or_create(labels);
        let _ = self.errors.get_or_create(labels);
    }

    pub fn count_restart(&self, labels: &WatchLabels) {
        self.restarts.get_or_create(labels).inc();
    }

    pub fn count_error(&self, labels: &WatchLabels) {
        self.errors.get_or_create(labels).inc();
    }

    pub fn saw_event(&self, labels: &WatchLabels) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        self.last_event.get_or_create(labels).set(now);
    }
}

/// All metrics of the process.
pub struct Metrics {
    registry: Registry,
    pub reconciliations: Family<ResultLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub writes: Family<WriteLabels, Counter>,
    /// Unwaived findings per app and rule (`stateless_violations`).
    pub violations: Family<ViolationLabels, Gauge>,
    /// Admission webhook families, registered by the webhook module.
    pub webhook: crate::webhook::WebhookMetrics,
    /// Watch health of the controller and the webhook (the webhook's handle
    /// in [`crate::webhook::WebhookMetrics::watches`] shares this storage).
    pub watches: WatchMetrics,
    /// `/readyz`: the controller's gate and, when served, the webhook's.
    pub readiness: Readiness,
    /// Every request the client sent, by class ([`crate::client`]).
    pub api_requests: std::sync::Arc<crate::client::RequestMetrics>,
}

/// The parts `/readyz` waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Leading (or unelected): the StatelessApps of every watched namespace
    /// were listed. A candidate for the Lease: the API server answered it.
    Controller,
    /// Serving: a certificate is loaded and the namespaces were listed.
    Webhook,
}

impl Gate {
    fn bit(self) -> u64 {
        match self {
            Gate::Controller => 1,
            Gate::Webhook => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Gate::Controller => "controller",
            Gate::Webhook => "webhook",
        }
    }
}

/// Which gates are required and which are open. Once open a gate stays
/// open through later watch errors: the caches stay, the watches retry on
/// their own, and an API server restart would otherwise take every replica
/// out of its Services at once.
#[derive(Clone, Debug, Default)]
pub struct Readiness(std::sync::Arc<ReadinessState>);

#[derive(Debug)]
struct ReadinessState {
    required: AtomicU64,
    open: AtomicU64,
}

impl Default for ReadinessState {
    fn default() -> Self {
        Self {
            required: AtomicU64::new(Gate::Controller.bit()),
            open: AtomicU64::new(0),
        }
    }
}

impl Readiness {
    /// `/readyz` also waits for `gate`.
    pub fn require(&self, gate: Gate) {
        self.0.required.fetch_or(gate.bit(), Ordering::SeqCst);
    }

    pub fn set(&self, gate: Gate, open: bool) {
        if open {
            self.0.open.fetch_or(gate.bit(), Ordering::SeqCst);
        } else {
            self.0.open.fetch_and(!gate.bit(), Ordering::SeqCst);
        }
    }

    /// `Ok` when every required gate is open, else the closed ones.
    pub fn check(&self) -> Result<(), Vec<&'static str>> {
        let required = self.0.required.load(Ordering::SeqCst);
        let open = self.0.open.load(Ordering::SeqCst);
        let closed: Vec<&'static str> = [Gate::Controller, Gate::Webhook]
            .into_iter()
            .filter(|g| required & g.bit() != 0 && open & g.bit() == 0)
            .map(Gate::name)
            .collect();
        if closed.is_empty() {
            Ok(())
        } else {
            Err(closed)
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciliations = Family::<ResultLabels, Counter>::default();
        registry.register(
            "stateless_reconciliations",
            "StatelessApp reconciliations by result",
            reconciliations.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        registry.register(
            "stateless_reconcile_duration_seconds",
            "Time spent in one StatelessApp reconciliation",
            reconcile_duration.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "stateless_api_writes",
            "Write requests the operator sent to the API server, by kind and verb",
            writes.clone(),
        );
        let violations = Family::<ViolationLabels, Gauge>::default();
        registry.register(
            "stateless_violations",
            "Unwaived statelessness rule violations per StatelessApp and rule",
            violations.clone(),
        );
        let api_requests = std::sync::Arc::new(crate::client::RequestMetrics::default());
        registry.register(
            "stateless_api_requests",
            "Requests the operator's client sent to the API server, by class (read: get or list, watch, write)",
            api_requests.requests.clone(),
        );
        let watches = WatchMetrics::default();
        watches.register(&mut registry);
        let readiness = Readiness::default();
        let webhook = crate::webhook::WebhookMetrics {
            watches: watches.clone(),
            readiness: readiness.clone(),
            ..Default::default()
        };
        webhook.register(&mut registry);
        Self {
            registry,
            webhook,
            watches,
            reconciliations,
            reconcile_duration,
            writes,
            violations,
            readiness,
            api_requests,
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Start timing one reconciliation; the result is recorded when the guard drops.
    pub fn reconcile_timer(&self) -> ReconcileTimer<'_> {
        ReconcileTimer {
            metrics: self,
            start: Instant::now(),
            result: "unfinished".to_string(),
        }
    }

    pub fn count_write(&self, kind: &str, verb: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind.to_string(),
                verb: verb.to_string(),
            })
            .inc();
    }

    /// Open or close the controller's gate of `/readyz` (see [`Gate`]).
    pub fn set_ready(&self, ready: bool) {
        self.readiness.set(Gate::Controller, ready);
    }

    pub fn is_ready(&self) -> bool {
        self.readiness.check().is_ok()
    }
}

/// Records duration and result of one reconciliation when dropped.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    start: Instant,
    result: String,
}

impl ReconcileTimer<'_> {
    pub fn set_result(&mut self, result: &str) {
        self.result = result.to_string();
    }
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .reconcile_duration
            .observe(self.start.elapsed().as_secs_f64());
        self.metrics
            .reconciliations
            .get_or_create(&ResultLabels {
                result: std::mem::take(&mut self.result),
            })
            .inc();
    }
}

#[cfg(test)]
mod readiness_tests {
    use super::*;

    #[test]
    fn ready_only_when_every_required_gate_is_open() {
        let r = Readiness::default();
        assert_eq!(r.check(), Err(vec!["controller"]));
        r.set(Gate::Controller, true);
        assert_eq!(r.check(), Ok(()));
        r.require(Gate::Webhook);
        assert_eq!(r.check(), Err(vec!["webhook"]));
        r.set(Gate::Webhook, true);
        assert_eq!(r.check(), Ok(()));
        r.set(Gate::Controller, false);
        assert_eq!(r.check(), Err(vec!["controller"]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_records_result_and_duration() {
        let metrics = Metrics::new();
        {
            let mut timer = metrics.reconcile_timer();
            timer.set_result("ok");
        }
        {
            let _timer = metrics.reconcile_timer();
        }
        metrics.count_write("Deployment", "apply");
        let text = metrics.encode().expect("encode");
        assert!(
            text.contains("stateless_reconciliations_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("stateless_reconciliations_total{result=\"unfinished\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("stateless_reconcile_duration_seconds_count 2"),
            "{text}"
        );
        assert!(
            text.contains("stateless_api_writes_total{kind=\"Deployment\",verb=\"apply\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn watch_families_are_per_component_and_kind() {
        let metrics = Metrics::new();
        let apps = WatchLabels {
            component: "controller".into(),
            kind: "StatelessApp".into(),
        };
        metrics.watches.declare(&apps);
        let text = metrics.encode().expect("encode");
        assert!(
            text.contains(
                "stateless_watch_restarts_total{component=\"controller\",kind=\"StatelessApp\"} 0"
            ),
            "{text}"
        );
        metrics.watches.count_restart(&apps);
        metrics.watches.count_error(&apps);
        metrics.watches.saw_event(&apps);
        // The webhook's handle writes into the same registry.
        let secret = WatchLabels {
            component: "webhook".into(),
            kind: "Secret".into(),
        };
        metrics.webhook.watches.count_error(&secret);
        let text = metrics.encode().expect("encode");
        for line in [
            "stateless_watch_restarts_total{component=\"controller\",kind=\"StatelessApp\"} 1",
            "stateless_watch_errors_total{component=\"controller\",kind=\"StatelessApp\"} 1",
            "stateless_watch_errors_total{component=\"webhook\",kind=\"Secret\"} 1",
            "stateless_watch_last_event_timestamp_seconds{component=\"controller\",kind=\"StatelessApp\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}

//! Prometheus metrics of the operator, served on `/metrics`.
//!
//! One registry, created at start-up and shared by the controller, the rule
//! reporting and the webhook. Reconcile timing uses a guard so every exit path
//! (success, error, panic unwinding) is measured exactly once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

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
    ready: AtomicU64,
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
        let webhook = crate::webhook::WebhookMetrics::default();
        webhook.register(&mut registry);
        Self {
            registry,
            webhook,
            reconciliations,
            reconcile_duration,
            writes,
            violations,
            ready: AtomicU64::new(0),
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

    /// Mark the process ready (`/readyz`): the controller's watches are running.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(u64::from(ready), Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) == 1
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
}

//! Metric families of the admission webhook. They are registered into the
//! process registry by [`crate::metrics::Metrics::new`] through
//! [`WebhookMetrics::register`], and served on the plain-HTTP `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `stateless_admission_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// Kind of the reviewed object (`Deployment`, `StatefulSet`, `Service`,
    /// `Ingress`, `StatelessApp`), or `other`.
    pub kind: String,
    /// `allowed`, `denied`, `warned` (allowed with warnings) or `error`
    /// (malformed request or failed namespace lookup: no review was returned).
    pub result: String,
}

/// The webhook's metrics. Cheap to clone: every field shares its storage.
#[derive(Clone, Debug)]
pub struct WebhookMetrics {
    pub requests: Family<AdmissionLabels, Counter>,
    /// Time from request body to response, handler only (no TLS, no network).
    pub duration: Histogram,
    /// Serving certificates loaded (first load and every reload).
    pub certificate_loads: Counter,
    /// Health of the webhook's watches (certificate Secret, webhook
    /// configuration, namespaces); registered with the controller's by
    /// [`crate::metrics::Metrics::new`], which shares its own handle here.
    pub watches: crate::metrics::WatchMetrics,
    /// The process's `/readyz` gates (shared like `watches`).
    pub readiness: crate::metrics::Readiness,
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            // 50 µs .. ~0.8 s
            duration: Histogram::new(exponential_buckets(0.000_05, 2.0, 15)),
            certificate_loads: Counter::default(),
            watches: crate::metrics::WatchMetrics::default(),
            readiness: crate::metrics::Readiness::default(),
        }
    }
}

impl WebhookMetrics {
    /// Register every family of the webhook into `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "stateless_admission_requests",
            "Admission reviews answered by the validating webhook, by object kind and result",
            self.requests.clone(),
        );
        registry.register(
            "stateless_admission_duration_seconds",
            "Time the validating webhook spent on one admission review",
            self.duration.clone(),
        );
        registry.register(
            "stateless_webhook_certificate_loads",
            "Serving certificates loaded by the webhook (first load and reloads)",
            self.certificate_loads.clone(),
        );
    }

    pub(crate) fn count(&self, kind: &str, result: &str) {
        self.requests
            .get_or_create(&AdmissionLabels {
                kind: kind.to_string(),
                result: result.to_string(),
            })
            .inc();
    }
}

//! The operator's Kubernetes client: kube's default stack plus two things
//! kube does not do by itself. It names itself (`User-Agent:
//! stateless-operator/<version>`) so that its requests can be told apart in
//! audit logs and in the API server's metrics, and it counts every request it
//! sends by class ([`RequestClass`]), which is how a test or a benchmark
//! proves that a converged app costs the API server nothing.

use std::sync::Arc;

use http::header::{HeaderValue, USER_AGENT};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tower::util::MapRequestLayer;

/// `User-Agent` of every request: `stateless-operator/<version>`.
pub const USER_AGENT_VALUE: &str = concat!("stateless-operator/", env!("CARGO_PKG_VERSION"));

/// What a request does to the API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestClass {
    /// GET without `watch`: a get or a list.
    Read,
    /// GET with `watch=true`: a long-running watch (one per watch and reconnect).
    Watch,
    /// POST, PUT, PATCH or DELETE.
    Write,
}

impl RequestClass {
    pub fn of(method: &http::Method, query: Option<&str>) -> Self {
        if method == http::Method::GET || method == http::Method::HEAD {
            let watching = query.is_some_and(|q| {
                q.split('&')
                    .any(|pair| pair == "watch=true" || pair == "watch=1")
            });
            if watching { Self::Watch } else { Self::Read }
        } else {
            Self::Write
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Watch => "watch",
            Self::Write => "write",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub class: String,
}

/// `stateless_api_requests_total{class}`: every request the client sent.
#[derive(Clone, Debug, Default)]
pub struct RequestMetrics {
    pub requests: Family<RequestLabels, Counter>,
}

impl RequestMetrics {
    pub fn count(&self, class: RequestClass) {
        self.requests
            .get_or_create(&RequestLabels {
                class: class.as_str().to_string(),
            })
            .inc();
    }

    pub fn get(&self, class: RequestClass) -> u64 {
        self.requests
            .get_or_create(&RequestLabels {
                class: class.as_str().to_string(),
            })
            .get()
    }
}

/// A client for `config` that sends the operator's User-Agent and counts
/// its requests into `metrics`.
pub fn build(
    config: kube::Config,
    metrics: Arc<RequestMetrics>,
) -> Result<kube::Client, kube::Error> {
    build_as(config, metrics, USER_AGENT_VALUE)
}

/// [`build`] with another User-Agent (a benchmark's own requests must not
/// count as the operator's).
pub fn build_as(
    mut config: kube::Config,
    metrics: Arc<RequestMetrics>,
    user_agent: &'static str,
) -> Result<kube::Client, kube::Error> {
    config.headers.retain(|(name, _)| name != USER_AGENT);
    config
        .headers
        .push((USER_AGENT, HeaderValue::from_static(user_agent)));
    let counting = MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
        metrics.count(RequestClass::of(request.method(), request.uri().query()));
        request
    });
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&counting)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classed_by_method_and_watch() {
        use http::Method;
        assert_eq!(RequestClass::of(&Method::GET, None), RequestClass::Read);
        assert_eq!(
            RequestClass::of(&Method::GET, Some("labelSelector=a%3Db&limit=500")),
            RequestClass::Read
        );
        assert_eq!(
            RequestClass::of(&Method::GET, Some("watch=true&resourceVersion=12")),
            RequestClass::Watch
        );
        assert_eq!(
            RequestClass::of(&Method::PATCH, Some("fieldManager=x")),
            RequestClass::Write
        );
        assert_eq!(RequestClass::of(&Method::DELETE, None), RequestClass::Write);
        assert_eq!(RequestClass::of(&Method::POST, None), RequestClass::Write);
    }

    #[test]
    fn user_agent_names_the_operator_and_its_version() {
        assert!(USER_AGENT_VALUE.starts_with("stateless-operator/"));
        assert!(HeaderValue::from_str(USER_AGENT_VALUE).is_ok());
    }
}

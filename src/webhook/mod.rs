//! The validating admission webhook: the statelessness rules at the door.
//!
//! `stateless-operator run` serves `POST /validate` over HTTPS on
//! `--webhook-addr` (every replica, not only the controller's leader). It
//! answers `admission.k8s.io/v1` AdmissionReviews for Deployments,
//! StatefulSets, Services, Ingresses and StatelessApps with the findings of
//! the rule engine ([`crate::rules::evaluate`]); there is no rule logic here.
//!
//! # What is reviewed
//!
//! - CREATE and UPDATE of the five kinds above (any version); everything else,
//!   subresources, objects being deleted, and objects controlled by a
//!   StatelessApp (the operator builds them from an app that was reviewed
//!   itself) are allowed untouched.
//! - Only namespaces labelled `stateless.dev/enforce=deny` or `=warn`. The
//!   ValidatingWebhookConfiguration's `namespaceSelector` should select them
//!   so other requests never reach the webhook, but the handler reads the
//!   label itself (a metadata-only watch of namespaces, with a GET for one it
//!   has not seen yet) and allows anything else without warnings. The
//!   operator's namespace (`--operator-namespace`/`POD_NAMESPACE`) and
//!   kube-system, kube-public and kube-node-lease are always allowed.
//!
//! # What the engine sees
//!
//! The engine judges the object alone plus the PersistentVolumeClaims and
//! ConfigMaps it references by name (read with GETs, 1.5 s budget), so
//! claim access modes and session/upload settings kept in ConfigMaps count.
//! Decisions that need objects the request does not carry:
//!
//! - `single-replica` is not judged for Deployments and StatefulSets: their
//!   HorizontalPodAutoscaler is a separate object, often applied after them.
//!   It is judged for a StatelessApp (`spec.replicas.max`).
//! - A finding that depends on a claim that could not be read (not created
//!   yet, or unreadable) is a warning, never a denial: the engine assumes
//!   `ReadWriteOnce` for unknown claims, which may be wrong.
//! - A Service or Ingress is judged as `lint` judges it alone: a
//!   `sessionAffinity: ClientIP` Service is reported unless its selector or
//!   labels name a data store; the waiver annotation covers the rest.
//! - A workload is application tier only when it declares a serving port
//!   (see the engine's scoping): a worker without ports is not reviewed.
//!
//! # Decisions
//!
//! Waived findings (`stateless.dev/allow`) never deny and are not repeated
//! as warnings; they are recorded in the audit annotation `waived`. In `deny`
//! namespaces an unwaived finding at or above `--webhook-deny-severity`
//! (default `medium`) denies with a message naming rule, field path, problem
//! and fix. It stays a warning when it is below that severity, depends on an
//! unknown claim, or (UPDATE) was already present in the old object, so that
//! labelling a namespace `deny` never blocks unrelated updates of existing
//! objects. In `warn` namespaces every unwaived finding is a warning.
//! The handler has no side effects (`sideEffects: None`, `--dry-run=server`
//! behaves like a real request). A malformed body gets HTTP 400, a body over
//! 3 MiB gets 413, a failed namespace read 500 (so `failurePolicy` decides).
//!
//! # Certificates
//!
//! `--webhook-cert-mode files` serves `tls.crt`/`tls.key` from
//! `--webhook-cert-dir` (cert-manager), re-read every 5 s; `builtin` (the
//! default) makes and rotates its own CA, see [`certs`]. Either way a new
//! certificate is served without a restart.

pub mod admission;
pub mod certs;
pub mod cluster;
pub mod metrics;
pub mod server;
pub mod settings;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::FutureExt;
use kube::Client;

pub use admission::{Mode, Policy, Webhook};
pub use metrics::WebhookMetrics;
pub use settings::{CertMode, CertSource, WebhookAddr, WebhookArgs, WebhookSettings};

/// Namespace label that opts a namespace in: `deny` or `warn`.
pub const ENFORCE_LABEL: &str = "stateless.dev/enforce";

/// Errors starting the webhook.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("serving the webhook on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// A running webhook.
pub struct Running {
    /// The address actually bound (port 0 resolved).
    pub addr: SocketAddr,
    /// The certificate being served.
    pub store: Arc<tls::CertStore>,
    /// Ends after `shutdown` once in-flight requests are done.
    pub task: tokio::task::JoinHandle<()>,
}

/// Bind the listener, then serve the webhook and run its certificate source
/// until `shutdown`. Binding errors are returned; everything after that
/// (certificate, namespace watch) retries and logs instead of failing.
pub async fn start(
    client: Client,
    settings: WebhookSettings,
    metrics: WebhookMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, WebhookError> {
    let shutdown = shutdown.boxed().shared();
    let store = tls::CertStore::new(metrics.certificate_loads.clone());
    let tls_config = tls::server_config(store.clone())?;
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|source| WebhookError::Bind {
            addr: settings.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| WebhookError::Bind {
        addr: settings.addr,
        source,
    })?;
    let certs = match settings.certs {
        CertSource::Files { dir, poll } => {
            tracing::info!(dir = %dir.display(), "webhook certificate from files");
            tokio::spawn(tls::watch_dir(dir, store.clone(), poll, shutdown.clone()))
        }
        CertSource::Builtin(builtin) => {
            tracing::info!(
                secret = %builtin.secret,
                namespace = %builtin.namespace,
                config = %builtin.config_name,
                "webhook certificate built in"
            );
            tokio::spawn(certs::run_builtin(
                client.clone(),
                builtin,
                store.clone(),
                metrics.watches.clone(),
                shutdown.clone(),
            ))
        }
    };
    let operator_user = crate::identity::OperatorUser::resolve(client.clone(), shutdown.clone());
    let cluster =
        cluster::ApiCluster::start(client, &metrics.watches, operator_user, shutdown.clone());
    // Ready to serve once it has a certificate and knows the namespaces'
    // enforcement labels (before that every review would fail or guess).
    let readiness = metrics.readiness.clone();
    readiness.require(crate::metrics::Gate::Webhook);
    let (listed, certified) = (cluster.clone(), store.clone());
    tokio::spawn(async move {
        listed.listed().await;
        while certified.current().is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        readiness.set(crate::metrics::Gate::Webhook, true);
    });
    let webhook = Arc::new(Webhook::new(cluster, settings.policy, metrics));
    tracing::info!(%addr, "serving the admission webhook (POST /validate)");
    let drain_delay = settings.drain_delay;
    let server_shutdown = shutdown.then(move |()| async move {
        if !drain_delay.is_zero() {
            tracing::info!("webhook: still serving for {drain_delay:?} while endpoints update");
            tokio::time::sleep(drain_delay).await;
        }
    });
    let server = server::serve_tls(
        listener,
        tls_config,
        server::router(webhook),
        server_shutdown,
    );
    let task = tokio::spawn(async move {
        server.await;
        let _ = certs.await;
    });
    Ok(Running { addr, store, task })
}

//! `stateless-operator run`: the controller plus its HTTP endpoints.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::sync::watch;

use crate::controller::config_hash::KeySecret;
use crate::controller::leader::{Elector, Leadership};
use crate::controller::{self, Settings};
use crate::crd::DEFAULT_REDIS_IMAGE;
use crate::metrics::Metrics;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Most StatelessApps reconciled at the same time. 16 keeps the API server busy while 1,000 apps are created (see docs/benchmarks.md); each reconcile sends its writes one after another, so at most this many of the operator's writes are in flight.
    #[arg(long, env = "STATELESS_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Watch only this namespace (repeat, or comma-separate, for several). Default: all namespaces.
    #[arg(
        long = "namespace",
        short = 'n',
        env = "STATELESS_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,

    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "STATELESS_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Seconds between re-checks of a converged app.
    #[arg(long, env = "STATELESS_RESYNC_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..))]
    pub resync_seconds: u64,

    /// Milliseconds an app's triggers must be quiet before it is reconciled: a burst of changes (a rollout's status updates, a new child and its first status) becomes one reconcile.
    #[arg(long, env = "STATELESS_DEBOUNCE_MILLIS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub debounce_millis: u64,

    /// Seconds a Secret's new content may take to reach every pod (the kubelet's sync period plus its cache TTL): a new JWT signing key is published this long before it signs, and a retired one is kept this much longer than the token lifetime.
    #[arg(long, env = "STATELESS_KEY_PROPAGATION_SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub key_propagation_seconds: u64,

    /// Elect a leader through a Lease so only one replica reconciles (use with more than one replica).
    #[arg(long, env = "STATELESS_LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,

    /// Namespace of the leader-election Lease (default: the pod's namespace, POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "STATELESS_LEADER_ELECTION_LEASE",
        default_value = "stateless-operator"
    )]
    pub leader_election_lease: String,

    /// Seconds a leader's Lease stays valid for the others after its last renewal. The leader renews every third of it and stops writing after two thirds without a renewal; a successor takes over after a full duration of its own time without seeing a renewal.
    #[arg(long, env = "STATELESS_LEADER_ELECTION_LEASE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=300))]
    pub leader_election_lease_seconds: u64,

    /// Log format.
    #[arg(long, env = "STATELESS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax, e.g. `info` or `stateless_operator=debug,kube=info`).
    #[arg(long, env = "STATELESS_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Image of the managed Redis session store for apps that leave `sessionStore.managed.image` unset, e.g. a copy in your own registry. It must run as uid 999 / gid 1000, like the official image's `redis` user.
    #[arg(
        long,
        env = "STATELESS_SESSION_STORE_IMAGE",
        value_name = "IMAGE",
        default_value = DEFAULT_REDIS_IMAGE,
        value_parser = parse_image
    )]
    pub session_store_image: String,

    /// Secret, in the operator's namespace (`--operator-namespace`), holding the key that makes the hash of an app's referenced ConfigMaps and Secrets (written into its pod template to roll the pods on change) an HMAC instead of a plain digest. Created with a random key when missing; deleting it rolls every app's pods once.
    #[arg(
        long,
        env = "STATELESS_CONFIG_HASH_KEY_SECRET",
        default_value = "stateless-operator-config-hash-key",
        value_parser = parse_secret_name
    )]
    pub config_hash_key_secret: String,

    /// Flags of the validating admission webhook, served by every replica.
    #[command(flatten)]
    pub webhook: Box<crate::webhook::WebhookArgs>,
}

/// An image reference as the kubelet takes it: not empty, no whitespace.
fn parse_image(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(format!(
            "an image reference is required, e.g. {DEFAULT_REDIS_IMAGE} (the default)"
        ));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(format!(
            "an image reference contains no whitespace, e.g. {DEFAULT_REDIS_IMAGE}; got {value:?}"
        ));
    }
    Ok(value.to_string())
}

/// A Secret name: a DNS subdomain (lowercase letters, digits, '-' and '.').
fn parse_secret_name(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 253
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!(
            "a Secret name is 1-253 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit; got {value:?}"
        ))
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("invalid --log-level {0:?}: {1}")]
    LogFilter(String, String),
    #[error("no Kubernetes configuration (in-cluster or kubeconfig): {0}")]
    Config(#[from] kube::config::InferConfigError),
    #[error("creating the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("serving HTTP on {0}: {1}")]
    Http(SocketAddr, #[source] std::io::Error),
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the controller task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Webhook(#[from] crate::webhook::WebhookError),
}

pub fn run(args: RunArgs) -> ExitCode {
    if let Err(e) = init_logging(&args) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)
        .and_then(|rt| rt.block_on(run_async(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(args: &RunArgs) -> Result<(), RunError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .map_err(|e| RunError::LogFilter(args.log_level.clone(), e.to_string()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless; ignore it.
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Ok(())
}

async fn run_async(args: RunArgs) -> Result<(), RunError> {
    let config = kube::Config::infer().await?;
    let metrics = Arc::new(Metrics::new());
    let client =
        crate::client::build(config, metrics.api_requests.clone()).map_err(RunError::Client)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let http = tokio::spawn(crate::http::serve(
        args.http_addr,
        metrics.clone(),
        stopped(),
    ));
    // The admission webhook: every replica serves it, leader or not.
    let webhook = match args.webhook.settings(client.default_namespace()) {
        Some(settings) => Some(
            crate::webhook::start(client.clone(), settings, metrics.webhook.clone(), stopped())
                .await?,
        ),
        None => None,
    };
    let settings = Settings {
        concurrency: args.concurrency,
        namespaces: args.namespaces.clone(),
        resync: Duration::from_secs(args.resync_seconds),
        debounce: Duration::from_millis(args.debounce_millis),
        key_propagation: jiff::SignedDuration::from_secs(
            i64::try_from(args.key_propagation_seconds).unwrap_or(i64::MAX),
        ),
        session_store_image: args.session_store_image.clone(),
        hash_key_secret: KeySecret {
            namespace: args.webhook.operator_namespace(client.default_namespace()),
            name: args.config_hash_key_secret.clone(),
        },
        leadership: Leadership::unelected(),
    };
    tracing::info!(
        concurrency = settings.concurrency,
        namespaces = ?settings.namespaces,
        session_store_image = %settings.session_store_image,
        "starting the StatelessApp controller"
    );
    let elector = args.leader_elect.then(|| {
        let identity = std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("stateless-operator-{}", std::process::id()));
        let mut elector = Elector::new(
            client.clone(),
            &args.leader_election_namespace,
            &args.leader_election_lease,
            &identity,
        );
        elector.lease_duration = Duration::from_secs(args.leader_election_lease_seconds);
        elector.renew_every = elector.lease_duration / 3;
        elector
    });
    let settings = Settings {
        leadership: elector
            .as_ref()
            .map_or_else(Leadership::unelected, |e| e.leadership.clone()),
        ..settings
    };
    let mut controller = tokio::spawn(lead_and_run(
        client,
        settings,
        metrics,
        elector,
        stopped.clone(),
    ));

    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down: finishing in-flight reconciliations"),
        result = http => {
            let _ = stop_tx.send(true);
            return match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(RunError::Http(args.http_addr, e)),
                Err(e) => Err(RunError::Http(args.http_addr, std::io::Error::other(e))),
            };
        }
        result = &mut controller => {
            let _ = stop_tx.send(true);
            return result.map_err(|e| RunError::Task(e.to_string()))?;
        }
    }
    let _ = stop_tx.send(true);
    // Bounded: a reconciliation waiting on an API server that accepted the
    // request and went away would otherwise hold the process past the
    // kubelet's grace period (30 s by default) and end in SIGKILL. What is
    // cut short is retried by the next leader.
    let result = match tokio::time::timeout(FINISH_WITHIN, &mut controller).await {
        Ok(result) => result.map_err(|e| RunError::Task(e.to_string()))?,
        Err(_) => {
            tracing::warn!(
                "in-flight reconciliations did not finish within {FINISH_WITHIN:?} of the shutdown; stopping anyway"
            );
            controller.abort();
            Ok(())
        }
    };
    if let Some(webhook) = webhook
        && tokio::time::timeout(FINISH_WITHIN, webhook.task)
            .await
            .is_err()
    {
        tracing::warn!("the webhook did not stop within {FINISH_WITHIN:?}; stopping anyway");
    }
    result
}

/// Longest wait, after SIGTERM, for each of the controller and the webhook:
/// together with the webhook's drain delay well within a 30 s grace period.
const FINISH_WITHIN: Duration = Duration::from_secs(10);

/// Longest wait for the Lease release at shutdown.
const RELEASE_WITHIN: Duration = Duration::from_secs(5);

/// Run the controller, only while leading when an elector is given. A
/// leader that loses the Lease — taken by another replica, or not renewed
/// within the renew deadline (an API server restart, a network partition, a
/// paused process) — steps down: the controller stops (its reconciliations
/// in flight are dropped, and [`Leadership`] refuses their writes), the
/// process and its webhook stay, and it is a candidate again.
async fn lead_and_run<F, Fut>(
    client: kube::Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    elector: Option<Elector>,
    stopped: F,
) -> Result<(), RunError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + Sync + 'static,
{
    let Some(elector) = elector else {
        controller::run(client, settings, metrics, stopped()).await;
        return Ok(());
    };
    loop {
        // A candidate is ready once the API server answered it: it serves
        // the webhook and has nothing to list.
        let answered = || metrics.set_ready(true);
        tokio::select! {
            () = elector.acquire(answered) => {}
            () = stopped() => return Ok(()),
        }
        // Dropping the controller (when `keep` returns first) aborts its
        // reconciliations in flight: past the renew deadline none may write.
        let ended = tokio::select! {
            () = controller::run(client.clone(), settings.clone(), metrics.clone(), stopped()) => None,
            why = elector.keep() => Some(why),
        };
        match ended {
            Some(why) => {
                tracing::warn!(
                    "stepped down: {why}; still serving the webhook, a candidate for the Lease again"
                );
                metrics.set_ready(true);
            }
            None => {
                // Bounded: with the API server away, the successor waits for
                // the Lease to expire instead of our shutdown waiting for it.
                match tokio::time::timeout(RELEASE_WITHIN, elector.release()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!("releasing the leader Lease: {e}"),
                    Err(_) => tracing::warn!(
                        "releasing the leader Lease: no answer within {RELEASE_WITHIN:?}; it expires by itself"
                    ),
                }
                return Ok(());
            }
        }
    }
}

/// SIGTERM (Kubernetes) or Ctrl-C (a terminal).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn run_args(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let argv = ["stateless-operator", "run"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Run(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn session_store_image_defaults_to_the_public_redis_image() {
        let args = run_args(&[]).expect("defaults parse");
        assert_eq!(args.session_store_image, DEFAULT_REDIS_IMAGE);
    }

    #[test]
    fn session_store_image_is_settable() {
        let args =
            run_args(&["--session-store-image=mirror.example/redis:7.4.6-alpine"]).expect("parses");
        assert_eq!(
            args.session_store_image,
            "mirror.example/redis:7.4.6-alpine"
        );
    }

    #[test]
    fn config_hash_key_secret_is_a_secret_name() {
        let args = run_args(&[]).expect("defaults parse");
        assert_eq!(
            args.config_hash_key_secret,
            "stateless-operator-config-hash-key"
        );
        let err = run_args(&["--config-hash-key-secret", "Bad_Name"]).expect_err("invalid");
        assert!(err.to_string().contains("lowercase letters"), "{err}");
    }

    #[test]
    fn session_store_image_must_be_a_reference() {
        for (value, says) in [("", "is required"), ("redis: 7", "no whitespace")] {
            let err = run_args(&["--session-store-image", value]).expect_err(value);
            let text = err.to_string();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{text}"
            );
            assert!(text.contains("--session-store-image"), "{text}");
            assert!(text.contains(says), "{text}");
        }
    }
}

//! `stateless-operator run`: the controller plus its HTTP endpoints.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::sync::watch;

use crate::controller::{self, Settings};
use crate::metrics::Metrics;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Most StatelessApps reconciled at the same time.
    #[arg(long, env = "STATELESS_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
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

    /// Log format.
    #[arg(long, env = "STATELESS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax, e.g. `info` or `stateless_operator=debug,kube=info`).
    #[arg(long, env = "STATELESS_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
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
    let client = kube::Client::try_from(config).map_err(RunError::Client)?;
    let metrics = Arc::new(Metrics::new());
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
    let settings = Settings {
        concurrency: args.concurrency,
        namespaces: args.namespaces.clone(),
        resync: Duration::from_secs(args.resync_seconds),
    };
    tracing::info!(
        concurrency = settings.concurrency,
        namespaces = ?settings.namespaces,
        "starting the StatelessApp controller"
    );
    let controller = tokio::spawn(controller::run(client, settings, metrics, stopped()));

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
    }
    let _ = stop_tx.send(true);
    let _ = controller.await;
    Ok(())
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

//! session-demo: a stateless web tier whose sessions live in Redis, the image
//! of stateless-operator's examples. `serve` (the default) counts visits per
//! session cookie in Redis; `redis-ping` proves the pod reaches Redis through
//! the URL the operator gave it.

mod redis_store;
mod server;
mod session;

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use redis_store::{Store, StoreError};
use server::AppState;

/// How long `redis-ping` waits for the connection and the reply.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(
    name = "session-demo",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Options of `serve` when no subcommand is given.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP: / (session counter), /healthz, /readyz (the default).
    Serve(ServeArgs),
    /// Connect with the URL (AUTH, SELECT), send PING, print PONG.
    RedisPing(RedisArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (HTTP/1).
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    redis: RedisArgs,
}

#[derive(Args)]
struct RedisArgs {
    /// Name of the environment variable that holds the Redis URL
    /// (redis://:PASSWORD@host:port/db).
    #[arg(long, env = "REDIS_URL_ENV", default_value = "REDIS_URL")]
    redis_url_env: String,
}

#[derive(Debug, thiserror::Error)]
enum DemoError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("HTTP server failed: {0}")]
    Serve(#[source] io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&DemoError::Runtime(e)),
    };
    match cli.command {
        Some(Command::RedisPing(args)) => match runtime.block_on(redis_ping(&args)) {
            Ok(reply) => {
                println!("{reply}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Some(Command::Serve(args)) => run_serve(&runtime, args),
        None => run_serve(&runtime, cli.serve),
    }
}

fn fail(e: &DemoError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

fn run_serve(runtime: &tokio::runtime::Runtime, args: ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(io::stderr)
        .init();
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "session-demo stopped");
            ExitCode::FAILURE
        }
    }
}

async fn redis_ping(args: &RedisArgs) -> Result<String, DemoError> {
    let store = Store::from_env(&args.redis_url_env)?;
    Ok(store.ping(PING_TIMEOUT).await?)
}

async fn serve(args: ServeArgs) -> Result<(), DemoError> {
    let pod = pod_name();
    let store = Arc::new(Store::from_env(&args.redis.redis_url_env));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| DemoError::Bind {
            addr: args.listen,
            source,
        })?;
    match store.as_ref() {
        Ok(s) => {
            tracing::info!(listen = %args.listen, redis = s.target(), pod = %pod, "session-demo started")
        }
        Err(e) => {
            tracing::warn!(listen = %args.listen, pod = %pod, error = %e, "session-demo started without a session store")
        }
    }
    if store.is_ok() {
        // Connect at start (in the background, so the listener is up at once)
        // and say whether Redis answers; requests connect again if this fails.
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            if let Ok(s) = store.as_ref() {
                match s.ping(PING_TIMEOUT).await {
                    Ok(_) => tracing::info!(redis = s.target(), "session store reachable"),
                    Err(e) => tracing::warn!(error = %e, "session store not reachable yet"),
                }
            }
        });
    }
    let app = server::router(AppState {
        store,
        pod: pod.into(),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(DemoError::Serve)?;
    tracing::info!("session-demo stopped");
    Ok(())
}

/// The pod's name: `POD_NAME` (downward API), else the host name.
fn pod_name() -> String {
    let non_empty = |s: String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    std::env::var("POD_NAME")
        .ok()
        .and_then(non_empty)
        .or_else(|| std::env::var("HOSTNAME").ok().and_then(non_empty))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .and_then(non_empty)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Resolves on SIGTERM (the kubelet stopping the pod) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot watch SIGINT");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("SIGTERM: shutting down"),
        _ = interrupt => tracing::info!("SIGINT: shutting down"),
    }
}

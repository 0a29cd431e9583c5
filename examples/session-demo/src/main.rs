//! session-demo: a stateless web tier whose sessions live in Redis, the image
//! of stateless-operator's examples, and the measured proof of the project's
//! claim. `serve` (the default) counts visits per session cookie in Redis, or,
//! for contrast, in its own memory (`--session-store memory`, the
//! anti-pattern); `load` drives it as many browsers behind a balancer and
//! counts the sessions lost; `redis-ping` proves the pod reaches Redis
//! through the URL the operator gave it (in an environment variable, or in a
//! service binding); `binding` shows what a service binding holds; `worker`
//! consumes a job queue in Redis, as a worker Deployment of its own, and
//! `enqueue` adds a job to it.

mod binding;
mod load;
mod memory_store;
mod redis_store;
mod server;
mod session;

use std::io::{self, IsTerminal};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum, value_parser};
use tracing_subscriber::EnvFilter;

use binding::{Binding, BindingError};
use memory_store::MemoryStore;
use redis_store::{Store, StoreError};
use server::{AppState, Sessions};

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
    /// Serve HTTP: /session and / (session counter), /healthz, /readyz (the default).
    Serve(ServeArgs),
    /// Connect with the URL (AUTH, SELECT), send PING, print PONG.
    RedisPing(PingArgs),
    /// Consume the job queue (the Redis list `session-demo:jobs`) until
    /// SIGTERM: each job goes to exactly one worker, which logs it with its
    /// pod's name. The job in hand is finished before the worker stops.
    Worker(RedisArgs),
    /// Add a job to the queue `worker` consumes; print the queue's length.
    Enqueue(EnqueueArgs),
    /// Print a service binding's entries as JSON, secret ones as their length.
    Binding(BindingArgs),
    /// Print the JWT signing keys this pod sees now, as JSON: the kid that
    /// signs (file $JWT_KEY_ID_FILE) and the kids of the JWKS ($JWT_JWKS_FILE).
    /// Never a key.
    JwtKeys,
    /// Drive a session-demo with N clients and count what users would notice.
    ///
    /// Each client has its own session cookie and sends GET requests one after
    /// another, every one on a new TCP connection with `Connection: close`: a
    /// Service (kube-proxy) balances connections, so this balances per request,
    /// like many browsers behind a balancer. It runs until --duration is over
    /// or --max-requests are sent, whichever comes first (both are required).
    ///
    /// Errors are connect errors, timeouts and answers other than 200. A lost
    /// session is an answer whose `visits` is not greater than the client's
    /// last one (the count went back): the pod that answered did not have the
    /// session.
    #[command(
        after_help = "Output: one JSON line on stdout, totals over all clients:\n  \
        {\"clients\":N,\"requests\":R,\"errors\":E,\"lost\":L,\"per_pod\":{\"POD\":COUNT,...},\"elapsed_ms\":T}\n\
        per_pod counts the successful answers by their served_by. Errors by kind go to stderr.\n\
        Exit status 0 whatever the counts (they are data); 2 for bad arguments."
    )]
    Load(LoadArgs),
}

/// Where `serve` keeps the sessions.
#[derive(Clone, Copy, ValueEnum)]
enum StoreKind {
    /// Redis, at the URL in the variable named by --redis-url-env (or in the
    /// binding named by --redis-binding): every replica sees every session.
    Redis,
    /// This process's memory: lost with the pod, unknown to the other
    /// replicas (the anti-pattern, for contrast).
    Memory,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (HTTP/1).
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Where sessions live.
    #[arg(
        long,
        env = "SESSION_STORE",
        value_enum,
        ignore_case = true,
        default_value = "redis"
    )]
    session_store: StoreKind,
    /// Seconds to keep serving after SIGTERM/SIGINT, with /readyz answering
    /// 503, before the listener closes (0-3600).
    #[arg(
        long,
        env = "DRAIN_SECONDS",
        default_value_t = 5,
        value_parser = value_parser!(u64).range(0..=3600)
    )]
    drain_seconds: u64,
    #[command(flatten)]
    redis: RedisArgs,
}

#[derive(Args)]
struct RedisArgs {
    /// Name of the environment variable that holds the Redis URL
    /// (redis://:PASSWORD@host:port/db).
    #[arg(long, env = "REDIS_URL_ENV", default_value = "REDIS_URL")]
    redis_url_env: String,
    /// Read the Redis URL from this service binding instead
    /// ($SERVICE_BINDING_ROOT/NAME/uri, a binding of type redis).
    #[arg(long, env = "REDIS_BINDING", value_name = "NAME")]
    redis_binding: Option<String>,
}

impl RedisArgs {
    /// The store at the URL these options name.
    fn store(&self) -> Result<Store, StoreError> {
        let Some(name) = &self.redis_binding else {
            return Store::from_env(&self.redis_url_env);
        };
        let uri = Binding::open(name)
            .and_then(|b| b.of_type("redis"))
            .and_then(|b| b.entry("uri"))
            .map_err(|e| StoreError::Binding {
                reason: e.to_string(),
            })?;
        Store::from_url(&format!("binding {name}"), &uri)
    }

    /// Where the URL comes from, for logs.
    fn source(&self) -> String {
        match &self.redis_binding {
            Some(name) => format!("binding {name}"),
            None => self.redis_url_env.clone(),
        }
    }
}

#[derive(Args)]
struct PingArgs {
    /// Keep trying (every half second) for this many seconds before giving
    /// up (1-600). A new pod's first connection can be refused for a moment:
    /// a NetworkPolicy enforcer admits a pod only once it has seen it.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = value_parser!(u64).range(1..=600))]
    wait: u64,
    #[command(flatten)]
    redis: RedisArgs,
}

#[derive(Args)]
struct EnqueueArgs {
    /// The job: any text (1-1024 bytes).
    #[arg(value_parser = parse_job)]
    job: String,
    #[command(flatten)]
    redis: RedisArgs,
}

fn parse_job(job: &str) -> Result<String, String> {
    match job.len() {
        1..=1024 => Ok(job.to_owned()),
        n => Err(format!("a job has 1 to 1024 bytes, this one {n}")),
    }
}

#[derive(Args)]
struct BindingArgs {
    /// The binding's name: its directory under $SERVICE_BINDING_ROOT.
    name: String,
}

#[derive(Args)]
struct LoadArgs {
    /// The counter to drive: http://HOST[:PORT]/PATH, e.g.
    /// http://demo.ns.svc/session (http:// only; host names are resolved at
    /// every connection, so cluster DNS names work in a pod).
    #[arg(long, value_parser = load::parse_target)]
    url: load::Target,
    /// Concurrent clients, each with its own session cookie (1-1000).
    #[arg(long, value_name = "N", value_parser = value_parser!(u32).range(1..=1000))]
    clients: u32,
    /// Stop starting requests after this many seconds (1-600).
    #[arg(long, value_name = "SECS", value_parser = value_parser!(u64).range(1..=600))]
    duration: u64,
    /// Stop after this many requests in total, over all clients (1-1000000).
    #[arg(long, value_name = "M", value_parser = value_parser!(u64).range(1..=1_000_000))]
    max_requests: u64,
    /// Pause of each client between two of its requests, in ms (0-60000).
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = value_parser!(u64).range(0..=60_000))]
    interval_ms: u64,
    /// Limit for one request (connect, send, whole answer), in ms (1-60000);
    /// beyond it the request counts as an error.
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = value_parser!(u64).range(1..=60_000))]
    timeout_ms: u64,
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
    #[error(transparent)]
    Binding(#[from] BindingError),
    #[error("cannot encode the binding: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("{0} is not set: this pod has no JWT signing keys (spec.identity.jwt)")]
    JwtNotConfigured(&'static str),
    #[error("cannot read {path}: {source}")]
    JwtFile { path: String, source: io::Error },
    #[error("{path} is not a JWKS: {source}")]
    Jwks {
        path: String,
        source: serde_json::Error,
    },
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
        Some(Command::Worker(args)) => {
            init_logs();
            match runtime.block_on(work(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "worker stopped");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Enqueue(args)) => match runtime.block_on(enqueue(&args)) {
            Ok(length) => {
                println!("{length}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Some(Command::Binding(args)) => match show_binding(&args) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Some(Command::JwtKeys) => match show_jwt_keys() {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Some(Command::Load(args)) => run_load(&runtime, args),
        Some(Command::Serve(args)) => run_serve(&runtime, args),
        None => run_serve(&runtime, cli.serve),
    }
}

fn fail(e: &DemoError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

fn run_load(runtime: &tokio::runtime::Runtime, args: LoadArgs) -> ExitCode {
    let plan = load::Plan {
        target: args.url,
        clients: args.clients,
        duration: Duration::from_secs(args.duration),
        max_requests: args.max_requests,
        interval: Duration::from_millis(args.interval_ms),
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let summary = runtime.block_on(load::run(plan));
    match serde_json::to_string(&summary) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot encode the summary: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logs() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(io::stderr)
        // Colours only on a terminal: `kubectl logs` shows plain text.
        .with_ansi(io::stderr().is_terminal())
        .init();
}

fn run_serve(runtime: &tokio::runtime::Runtime, args: ServeArgs) -> ExitCode {
    init_logs();
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "session-demo stopped");
            ExitCode::FAILURE
        }
    }
}

/// Pause between two PING attempts of `redis-ping`.
const PING_RETRY: Duration = Duration::from_millis(500);

async fn redis_ping(args: &PingArgs) -> Result<String, DemoError> {
    let store = args.redis.store()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match store.ping(left.min(PING_TIMEOUT)).await {
            Ok(reply) => return Ok(reply),
            Err(e) if tokio::time::Instant::now() + PING_RETRY >= deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(PING_RETRY).await,
        }
    }
}

/// The Redis list `worker` consumes and `enqueue` appends to.
const JOB_QUEUE: &str = "session-demo:jobs";
/// Pause after a failed BLPOP before the next, so a Redis that is down is
/// not hammered.
const WORKER_RETRY: Duration = Duration::from_secs(1);

async fn enqueue(args: &EnqueueArgs) -> Result<i64, DemoError> {
    let store = args.redis.store()?;
    Ok(store.push_job(JOB_QUEUE, &args.job, PING_TIMEOUT).await?)
}

/// Take jobs until SIGTERM or SIGINT. A job is "done" once logged: the demo
/// shows where a job ran, not what it does.
async fn work(args: &RedisArgs) -> Result<(), DemoError> {
    let pod = pod_name();
    let store = args.store()?;
    tracing::info!(queue = JOB_QUEUE, redis = store.target(), pod = %pod, "worker started");
    // The signal is checked between two BLPOPs, never raced with one: a
    // BLPOP given up half-way could have taken a job off the list already.
    // One blocks at most half a second, well within the grace period.
    let stopping = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let stopping = Arc::clone(&stopping);
        async move {
            let signal = shutdown_signal().await;
            tracing::info!(signal, "worker stopping after the job in hand");
            stopping.store(true, Ordering::SeqCst);
        }
    });
    while !stopping.load(Ordering::SeqCst) {
        match store.pop_job(JOB_QUEUE).await {
            Ok(Some(job)) => tracing::info!(job = %job, pod = %pod, "job done"),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot take a job; retrying");
                tokio::time::sleep(WORKER_RETRY).await;
            }
        }
    }
    tracing::info!("worker stopped");
    Ok(())
}

/// The binding's entries; a secret one shows as its length only.
fn show_binding(args: &BindingArgs) -> Result<String, DemoError> {
    let entries: serde_json::Map<String, serde_json::Value> = Binding::open(&args.name)?
        .entries()?
        .into_iter()
        .map(|(name, value)| {
            let shown = if binding::is_secret(&name) {
                format!("<secret, {} bytes>", value.len())
            } else {
                value
            };
            (name, serde_json::Value::String(shown))
        })
        .collect();
    serde_json::to_string(&entries).map_err(DemoError::Encode)
}

/// The signing kid and the JWKS's kids, read from the files the operator
/// mounts (they change in place at a rotation).
fn show_jwt_keys() -> Result<String, DemoError> {
    let read = |var: &'static str| -> Result<(String, String), DemoError> {
        let path = std::env::var(var).map_err(|_| DemoError::JwtNotConfigured(var))?;
        let text = std::fs::read_to_string(&path).map_err(|source| DemoError::JwtFile {
            path: path.clone(),
            source,
        })?;
        Ok((path, text))
    };
    let (_, kid) = read("JWT_KEY_ID_FILE")?;
    let (path, jwks) = read("JWT_JWKS_FILE")?;
    let jwks: serde_json::Value =
        serde_json::from_str(&jwks).map_err(|source| DemoError::Jwks { path, source })?;
    let kids: Vec<serde_json::Value> = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| k["kid"].clone())
        .collect();
    Ok(serde_json::json!({"kid": kid.trim(), "jwks": kids}).to_string())
}

async fn serve(args: ServeArgs) -> Result<(), DemoError> {
    let pod = pod_name();
    let sessions = Arc::new(match args.session_store {
        StoreKind::Redis => Sessions::Redis(args.redis.store()),
        StoreKind::Memory => Sessions::Memory(MemoryStore::new(
            Duration::from_secs(session::TTL_SECONDS.unsigned_abs()),
            memory_store::CAPACITY,
        )),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| DemoError::Bind {
            addr: args.listen,
            source,
        })?;
    match sessions.as_ref() {
        Sessions::Redis(Ok(s)) => {
            tracing::info!(listen = %args.listen, store = "redis", redis = s.target(), pod = %pod, "session-demo started")
        }
        Sessions::Redis(Err(e)) => {
            tracing::warn!(listen = %args.listen, store = "redis", pod = %pod, error = %e, "session-demo started without a session store")
        }
        Sessions::Memory(_) => {
            tracing::info!(listen = %args.listen, store = "memory", pod = %pod, "session-demo started");
            tracing::warn!(
                redis_url = %args.redis.source(),
                "sessions are kept in this process's memory: they are lost with the pod and \
                 unknown to the other replicas (the anti-pattern, for contrast); the Redis URL is ignored"
            );
        }
    }
    if let Sessions::Redis(Ok(_)) = sessions.as_ref() {
        // Connect at start (in the background, so the listener is up at once)
        // and say whether Redis answers; requests connect again if this fails.
        let sessions = Arc::clone(&sessions);
        tokio::spawn(async move {
            if let Sessions::Redis(Ok(s)) = sessions.as_ref() {
                match s.ping(PING_TIMEOUT).await {
                    Ok(_) => tracing::info!(redis = s.target(), "session store reachable"),
                    Err(e) => tracing::warn!(error = %e, "session store not reachable yet"),
                }
            }
        });
    }
    let draining = Arc::new(AtomicBool::new(false));
    let app = server::router(AppState {
        sessions,
        pod: pod.into(),
        draining: Arc::clone(&draining),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(drain_on_signal(
            draining,
            Duration::from_secs(args.drain_seconds),
        ))
        .await
        .map_err(DemoError::Serve)?;
    tracing::info!("session-demo stopped: every in-flight request finished");
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

/// The graceful shutdown: resolves when the server may stop accepting.
///
/// On SIGTERM (the kubelet stopping the pod) or SIGINT, /readyz answers 503
/// at once, but every route keeps serving for `drain`. The kubelet's SIGTERM
/// and the pod's removal from the Service's endpoints happen at the same
/// time, not in order: kube-proxy keeps sending new connections to this pod
/// until it has seen the endpoint go and rewritten its rules. A server that
/// closed its listener on SIGTERM would refuse those connections; serving on
/// through the drain is what makes a rolling update lose no request. After
/// the drain axum closes the listener and waits for the requests in flight
/// (so `drain` plus the longest request must stay under the pod's
/// terminationGracePeriodSeconds, 30 s by default). A second signal cuts the
/// drain short.
async fn drain_on_signal(draining: Arc<AtomicBool>, drain: Duration) {
    let signal = shutdown_signal().await;
    draining.store(true, Ordering::SeqCst);
    tracing::info!(
        signal,
        drain_seconds = drain.as_secs(),
        "draining: /readyz answers 503, still serving every request"
    );
    tokio::select! {
        () = tokio::time::sleep(drain) => {
            tracing::info!("drain over: closing the listener, finishing in-flight requests");
        }
        signal = shutdown_signal() => {
            tracing::info!(signal, "drain cut short: closing the listener, finishing in-flight requests");
        }
    }
}

/// Resolves on SIGTERM or SIGINT; the signal's name.
async fn shutdown_signal() -> &'static str {
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
        () = terminate => "SIGTERM",
        () = interrupt => "SIGINT",
    }
}

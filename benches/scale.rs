//! Scale benchmark against a running local plane (`hack/bench.sh` starts one
//! with enough kwok nodes and runs this).
//!
//! For each N (`BENCH_APPS`, default `100,1000`), spread over
//! `BENCH_NAMESPACES` namespaces (default 10):
//!
//! - **P1** a raw server-side-apply writer — this process, the operator's
//!   client and builders, `--concurrency` apps at a time — creates the N
//!   StatelessApps and applies exactly the children the operator would (9
//!   per app, the Secret included) until every Deployment is Available;
//!   then, in fresh namespaces, the operator (the release binary, its
//!   default settings) gets the N apps and the clock runs until every app is
//!   Ready. The ratio operator / raw writer is printed.
//! - **P2** (largest N only) an idle window (`BENCH_IDLE_SECONDS`, default
//!   600) after convergence: the operator's write requests from the audit log
//!   (by its User-Agent), its own count of read and write requests, and the
//!   API server's GET/LIST count with the operator running against a window
//!   of the same plane without it.
//! - **P3** the operator's VmRSS with 0 apps and after convergence at each N.
//!
//! Nothing here asserts a timing; it prints figures for docs/benchmarks.md.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use stateless_operator::build::{self, BuildInputs, FIELD_MANAGER};
use stateless_operator::client::{RequestClass, RequestMetrics};
use stateless_operator::crd::StatelessApp;

type Failure = Box<dyn std::error::Error + Send + Sync>;

struct Settings {
    apps: Vec<usize>,
    namespaces: usize,
    concurrency: usize,
    idle: Duration,
    operator: String,
    audit_log: String,
    http_port: u16,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn settings() -> Result<Settings, Failure> {
    let apps = env_or("BENCH_APPS", "100,1000")
        .split(',')
        .map(|n| n.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("BENCH_APPS is a comma-separated list of app counts: {e}"))?;
    Ok(Settings {
        apps,
        namespaces: env_or("BENCH_NAMESPACES", "10").parse()?,
        concurrency: env_or("BENCH_CONCURRENCY", "16").parse()?,
        idle: Duration::from_secs(env_or("BENCH_IDLE_SECONDS", "600").parse()?),
        operator: env_or("BENCH_OPERATOR", "target/release/stateless-operator"),
        audit_log: std::env::var("BENCH_AUDIT_LOG")
            .map_err(|_| "BENCH_AUDIT_LOG (the plane's audit log) is not set; run hack/bench.sh")?,
        http_port: env_or("BENCH_OPERATOR_PORT", "18089").parse()?,
    })
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken from the arguments.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Failure> {
    let settings = settings()?;
    let requests = Arc::new(RequestMetrics::default());
    // Its own User-Agent: the audit log must tell its writes from the operator's.
    let client = stateless_operator::client::build_as(
        kube::Config::infer().await?,
        requests.clone(),
        concat!("stateless-operator-bench/", env!("CARGO_PKG_VERSION")),
    )?;
    println!(
        "scale benchmark: N = {:?} in {} namespaces, concurrency {}, idle window {} s",
        settings.apps,
        settings.namespaces,
        settings.concurrency,
        settings.idle.as_secs()
    );
    let mut operator = Operator::start(&settings)?;
    wait_metrics(&settings).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_empty = operator.rss_kib()?;
    println!("P3 operator VmRSS with 0 apps: {:.1} MiB", mib(rss_empty));
    operator.stop();

    let mut rss = Vec::new();
    let largest = settings.apps.iter().copied().max().unwrap_or(0);
    for (round, &n) in settings.apps.iter().enumerate() {
        // P1, raw writer first, in its own namespaces.
        let raw_ns = namespaces(&format!("bench-raw-{round}"), settings.namespaces);
        create_namespaces(&client, &raw_ns).await?;
        let started = Instant::now();
        raw_writer(&client, &raw_ns, n, settings.concurrency).await?;
        wait_deployments_available(&client, &raw_ns, 2 * n).await?;
        let raw = started.elapsed();
        println!(
            "P1 N={n}: raw SSA writer: {:.1} s until every Deployment is Available",
            raw.as_secs_f64()
        );
        delete_namespaces(&client, &raw_ns).await?;

        // P1, the operator.
        let op_ns = namespaces(&format!("bench-op-{round}"), settings.namespaces);
        create_namespaces(&client, &op_ns).await?;
        let mut operator = Operator::start(&settings)?;
        wait_metrics(&settings).await?;
        let audit_offset = std::fs::metadata(&settings.audit_log)?.len();
        let started = Instant::now();
        create_apps(&client, &op_ns, n, settings.concurrency).await?;
        wait_apps_ready(&client, &op_ns, n).await?;
        let op = started.elapsed();
        let reconciles = scrape(&settings, "stateless_reconciliations_total").await?;
        let reads = scrape(&settings, "stateless_api_requests_total{class=\"read\"}").await?;
        let writes = audited_operator_writes(&settings.audit_log, audit_offset)?;
        println!(
            "P1 N={n}: operator: {:.1} s until every StatelessApp is Ready; ratio operator/raw {:.2}; {:.1} reconciles, {:.1} reads (lists included) and {:.1} audited writes per app",
            op.as_secs_f64(),
            op.as_secs_f64() / raw.as_secs_f64(),
            reconciles / n as f64,
            reads / n as f64,
            writes as f64 / n as f64
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        let rss_n = operator.rss_kib()?;
        println!(
            "P3 N={n}: operator VmRSS after convergence: {:.1} MiB",
            mib(rss_n)
        );
        rss.push((n, rss_n));

        if n == largest {
            idle_window(&client, &settings, &mut operator).await?;
        }
        operator.stop();
        delete_namespaces(&client, &op_ns).await?;
    }
    if let (Some(&(n0, r0)), Some(&(n1, r1))) = (rss.first(), rss.last())
        && n1 > n0
    {
        println!(
            "P3 marginal memory per app between N={n0} and N={n1}: {:.1} KiB",
            (r1 as f64 - r0 as f64) / (n1 - n0) as f64
        );
    }
    println!(
        "benchmark client: {} reads, {} writes",
        requests.get(RequestClass::Read),
        requests.get(RequestClass::Write)
    );
    Ok(())
}

/// P2: write and read requests during an idle window, operator running,
/// against a window of the same length without it.
async fn idle_window(
    client: &Client,
    settings: &Settings,
    operator: &mut Operator,
) -> Result<(), Failure> {
    let window = settings.idle;
    let reads_before = scrape(settings, "stateless_api_requests_total{class=\"read\"}").await?;
    let writes_before = scrape(settings, "stateless_api_requests_total{class=\"write\"}").await?;
    let reconciles_before = scrape(settings, "stateless_reconciliations_total").await?;
    let audit_offset = std::fs::metadata(&settings.audit_log)?.len();
    let server_before = apiserver_reads(client).await?;
    tokio::time::sleep(window).await;
    let server_with = apiserver_reads(client).await? - server_before;
    let reads =
        scrape(settings, "stateless_api_requests_total{class=\"read\"}").await? - reads_before;
    let writes =
        scrape(settings, "stateless_api_requests_total{class=\"write\"}").await? - writes_before;
    let reconciles = scrape(settings, "stateless_reconciliations_total").await? - reconciles_before;
    let audited = audited_operator_writes(&settings.audit_log, audit_offset)?;
    operator.stop();
    // The plane's own readers (controllers, scheduler, kwok) without the
    // operator, over a shorter window: compared per minute.
    let baseline = window.min(Duration::from_secs(120));
    let baseline_before = apiserver_reads(client).await?;
    tokio::time::sleep(baseline).await;
    let server_without = apiserver_reads(client).await? - baseline_before;
    let per_minute = |count: f64, over: Duration| count * 60.0 / over.as_secs_f64();
    println!(
        "P2 idle {} s after convergence: {reconciles} reconciles (resyncs); operator writes in the audit log: {audited}; operator's own count: {reads} reads, {writes} writes; API server GET+LIST per minute: {:.1} with the operator, {:.1} without ({} s)",
        window.as_secs(),
        per_minute(server_with, window),
        per_minute(server_without, baseline),
        baseline.as_secs()
    );
    Ok(())
}

/// The StatelessApp objects of the benchmark: examples/basic.yaml, renamed.
fn app_object(namespace: &str, index: usize) -> serde_json::Value {
    json!({
        "apiVersion": "stateless.dev/v1alpha1",
        "kind": "StatelessApp",
        "metadata": {"name": format!("app-{index}"), "namespace": namespace},
        "spec": {
            "image": "ghcr.io/stateless-dev/session-demo:0.1.0",
            "ports": [{"name": "http", "containerPort": 8080}]
        }
    })
}

fn namespaces(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i}")).collect()
}

fn placement(namespaces: &[String], n: usize) -> Vec<(String, usize)> {
    (0..n)
        .map(|i| (namespaces[i % namespaces.len()].clone(), i))
        .collect()
}

async fn create_namespaces(client: &Client, names: &[String]) -> Result<(), Failure> {
    let api: Api<Namespace> = Api::all(client.clone());
    for name in names {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        api.create(&PostParams::default(), &ns).await?;
    }
    Ok(())
}

async fn delete_namespaces(client: &Client, names: &[String]) -> Result<(), Failure> {
    let api: Api<Namespace> = Api::all(client.clone());
    for name in names {
        api.delete(name, &Default::default()).await?;
    }
    let started = Instant::now();
    for name in names {
        while api.get_opt(name).await?.is_some() {
            if started.elapsed() > Duration::from_secs(900) {
                return Err(format!("namespace {name} still there after 900 s").into());
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    println!(
        "   (deleted {} namespaces in {:.0} s)",
        names.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn create_apps(
    client: &Client,
    namespaces: &[String],
    n: usize,
    concurrency: usize,
) -> Result<Vec<StatelessApp>, Failure> {
    stream::iter(placement(namespaces, n))
        .map(|(ns, i)| {
            let client = client.clone();
            async move {
                let app: StatelessApp = serde_json::from_value(app_object(&ns, i))?;
                let created = Api::<StatelessApp>::namespaced(client, &ns)
                    .create(&PostParams::default(), &app)
                    .await?;
                Ok::<_, Failure>(created)
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await
}

/// What the operator does for one app, without it: create the app, its
/// Secret, and server-side apply the 8 other children.
async fn raw_writer(
    client: &Client,
    namespaces: &[String],
    n: usize,
    concurrency: usize,
) -> Result<(), Failure> {
    stream::iter(placement(namespaces, n))
        .map(|(ns, i)| {
            let client = client.clone();
            async move {
                let app: StatelessApp = serde_json::from_value(app_object(&ns, i))?;
                let app = Api::<StatelessApp>::namespaced(client.clone(), &ns)
                    .create(&PostParams::default(), &app)
                    .await?;
                let password = build::generate_password()?;
                let secret = build::redis_secret(&app, &password)?;
                Api::<Secret>::namespaced(client.clone(), &ns)
                    .create(&PostParams::default(), &secret)
                    .await?;
                let children = build::children(
                    &app,
                    &BuildInputs {
                        config_hash: Some("0".repeat(32)),
                        session_store_image: stateless_operator::crd::DEFAULT_REDIS_IMAGE
                            .to_string(),
                    },
                )?;
                if let Some(redis) = children.session_store {
                    ssa(&client, &ns, redis.config).await?;
                    ssa(&client, &ns, redis.service).await?;
                    ssa(&client, &ns, redis.network_policy).await?;
                    ssa(&client, &ns, redis.deployment).await?;
                }
                ssa(&client, &ns, children.deployment).await?;
                ssa(&client, &ns, children.service).await?;
                ssa(&client, &ns, children.hpa).await?;
                ssa(&client, &ns, children.pdb).await?;
                Ok::<_, Failure>(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn ssa<K>(client: &Client, namespace: &str, object: K) -> Result<(), Failure>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .patch(
            &object.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await?;
    Ok(())
}

async fn wait_deployments_available(
    client: &Client,
    namespaces: &[String],
    want: usize,
) -> Result<(), Failure> {
    poll(&format!("{want} Deployments Available"), || async {
        let mut available = 0;
        for ns in namespaces {
            let list = Api::<Deployment>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await?;
            available += list
                .items
                .iter()
                .filter(|d| {
                    d.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter()
                                .any(|c| c.type_ == "Available" && c.status == "True")
                        })
                        && d.status.as_ref().and_then(|s| s.observed_generation)
                            == d.metadata.generation
                })
                .count();
        }
        Ok(available >= want)
    })
    .await
}

async fn wait_apps_ready(
    client: &Client,
    namespaces: &[String],
    want: usize,
) -> Result<(), Failure> {
    poll(&format!("{want} StatelessApps Ready"), || async {
        let mut ready = 0;
        for ns in namespaces {
            let list = Api::<StatelessApp>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await?;
            ready += list
                .items
                .iter()
                .filter(|a| {
                    a.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    })
                })
                .count();
        }
        Ok(ready >= want)
    })
    .await
}

/// Check every second, for at most an hour.
async fn poll<F, Fut>(what: &str, mut check: F) -> Result<(), Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Failure>>,
{
    let started = Instant::now();
    while !check().await? {
        if started.elapsed() > Duration::from_secs(3600) {
            return Err(format!("gave up waiting for {what} after an hour").into());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// Sum of GET and LIST requests the API server has served (its metrics).
async fn apiserver_reads(client: &Client) -> Result<f64, Failure> {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| l.contains("verb=\"GET\"") || l.contains("verb=\"LIST\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Write requests in the audit log (after `offset`) sent with the operator's User-Agent.
fn audited_operator_writes(path: &str, offset: u64) -> Result<usize, Failure> {
    use std::io::{BufRead, Seek};
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut writes = 0;
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let agent = event["userAgent"].as_str().unwrap_or_default();
        let verb = event["verb"].as_str().unwrap_or_default();
        if agent.starts_with("stateless-operator/")
            && matches!(
                verb,
                "create" | "update" | "patch" | "delete" | "deletecollection"
            )
        {
            writes += 1;
        }
    }
    Ok(writes)
}

/// The operator's release binary, run with its defaults.
struct Operator {
    child: Option<Child>,
}

impl Operator {
    fn start(settings: &Settings) -> Result<Self, Failure> {
        let child = Command::new(&settings.operator)
            .args([
                "run",
                "--http-addr",
                &format!("127.0.0.1:{}", settings.http_port),
                "--log-level",
                "warn",
                "--concurrency",
                &settings.concurrency.to_string(),
                // The controller only: the webhook is not what is measured.
                "--webhook-addr",
                "off",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", settings.operator))?;
        Ok(Self { child: Some(child) })
    }

    fn rss_kib(&self) -> Result<u64, Failure> {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .ok_or("the operator is not running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmRSS in /proc/<pid>/status".into())
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM, as the kubelet would, then wait.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn wait_metrics(settings: &Settings) -> Result<(), Failure> {
    poll("the operator's /metrics", || async {
        Ok(scrape(settings, "stateless_reconciliations").await.is_ok())
    })
    .await
}

/// Sum of the samples of a metric in the operator's /metrics whose line
/// starts with `prefix`.
async fn scrape(settings: &Settings, prefix: &str) -> Result<f64, Failure> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", settings.http_port)).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

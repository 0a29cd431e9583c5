//! Latency of the admission webhook on loopback, against a no-op handler on
//! the same server stack (same rustls configuration and certificate resolver,
//! same axum router layers, same accept loop), in the same run:
//!
//!     cargo bench --bench webhook_latency
//!
//! Open loop: requests are scheduled at a fixed rate (500/s and 2,000/s,
//! 5 s each after a 1 s warm-up) over a pool of keep-alive HTTPS
//! connections, and each latency is measured from the request's *scheduled*
//! time (kept by a thread of its own, not tokio's 1 ms timer), so a slow
//! server shows up as queueing instead of a lower rate (no coordinated
//! omission). Client and servers share this process and the
//! machine's cores. The webhook reviews a compliant Deployment
//! (tests/fixtures/admission/deployment-compliant.json) in a `deny`
//! namespace: full parse, rule evaluation and response; namespace labels
//! come from an in-memory cluster view (in a cluster they come from the
//! reflector, also in memory), and the object references no claim or
//! ConfigMap, so there are no API calls in either case.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode, header};
use axum::routing::post;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use stateless_operator::webhook::WebhookMetrics;
use stateless_operator::webhook::admission::{Policy, Webhook};
use stateless_operator::webhook::certs;
use stateless_operator::webhook::cluster::StaticCluster;
use stateless_operator::webhook::server::{MAX_BODY_BYTES, router, serve_tls};
use stateless_operator::webhook::tls::{CertStore, provider, server_config};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use tokio_rustls::TlsConnector;

const CONNECTIONS: usize = 32;
const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);
const RATES: [u32; 2] = [500, 2_000];

type Sender = hyper::client::conn::http1::SendRequest<Body>;

/// The no-op baseline: read the body (same limit), answer a fixed review.
fn noop_router() -> Router {
    const ALLOWED: &[u8] = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true,"status":{}}}"#;
    Router::new()
        .route(
            "/validate",
            post(|_body: Bytes| async {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    ALLOWED,
                )
            }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn start(router: Router, tls: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve_tls(listener, tls, router, std::future::pending()));
    addr
}

async fn connect(addr: SocketAddr, tls: &TlsConnector) -> Sender {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let name = ServerName::IpAddress(addr.ip().into());
    let stream = tls.connect(name, tcp).await.expect("TLS handshake");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    sender
}

/// One request; Ok(true) when the answer is 200 with `"allowed":true`.
async fn call(sender: &mut Sender, body: &Bytes) -> Result<bool, String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let request = Request::post("/validate")
        .header(header::HOST, "127.0.0.1")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.clone()))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
        .await
        .map_err(|e| e.to_string())?;
    Ok(status == StatusCode::OK && bytes.windows(14).any(|w| w == br#""allowed":true"#))
}

struct Point {
    sent: usize,
    ok: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

/// Schedule `rate` requests per second for `duration` over `senders`;
/// latency = completion - scheduled time.
async fn run(senders: &[Arc<Mutex<Sender>>], body: &Bytes, rate: u32, duration: Duration) -> Point {
    let (tx, rx) = mpsc::unbounded_channel::<Instant>();
    let rx = Arc::new(Mutex::new(rx));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Duration, bool)>();
    let mut workers = Vec::new();
    for sender in senders {
        let (rx, done_tx, sender, body) =
            (rx.clone(), done_tx.clone(), sender.clone(), body.clone());
        workers.push(tokio::spawn(async move {
            let mut sender = sender.lock().await;
            loop {
                let Some(scheduled) = rx.lock().await.recv().await else {
                    return;
                };
                let ok = matches!(call(&mut sender, &body).await, Ok(true));
                let _ = done_tx.send((scheduled.elapsed(), ok));
            }
        }));
    }
    drop(done_tx);
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let total = (f64::from(rate) * duration.as_secs_f64()) as usize;
    let start = Instant::now();
    // The schedule runs on a thread of its own: tokio's timer has 1 ms
    // granularity, which would add up to 1 ms of lateness to every latency.
    let scheduler = std::thread::spawn(move || {
        for i in 0..total {
            let at = start + period.mul_f64(i as f64);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            let _ = tx.send(at);
        }
    });
    let mut latencies = Vec::with_capacity(total);
    let mut ok = 0;
    while let Some((latency, good)) = done_rx.recv().await {
        latencies.push(latency);
        ok += usize::from(good);
    }
    let elapsed = start.elapsed();
    let _ = scheduler.join();
    for w in workers {
        let _ = w.await;
    }
    latencies.sort_unstable();
    Point {
        sent: total,
        ok,
        latencies,
        elapsed,
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(bench());
}

async fn bench() {
    let bundle = certs::generate(&["127.0.0.1".to_string()], SystemTime::now()).expect("certs");
    let store = CertStore::new(Default::default());
    store
        .install(bundle.tls_crt.as_bytes(), bundle.tls_key.as_bytes())
        .expect("certificate");
    let tls = server_config(store).expect("TLS config");

    let cluster = StaticCluster::default().with_namespace("shop", Some("deny"));
    let webhook = Arc::new(Webhook::new(
        Arc::new(cluster),
        Policy::default(),
        WebhookMetrics::default(),
    ));
    let servers = [
        ("no-op", start(noop_router(), tls.clone()).await),
        ("webhook", start(router(webhook.clone()), tls.clone()).await),
    ];

    let body = Bytes::from(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/admission/deployment-compliant.json"
        ))
        .expect("fixture"),
    );
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(bundle.ca_crt.as_bytes()).expect("CA"))
        .expect("root");
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = TlsConnector::from(Arc::new(client));

    // The handler alone (parse, evaluate, respond), no TLS or HTTP.
    const CALLS: u32 = 5_000;
    let t = Instant::now();
    for _ in 0..CALLS {
        let (status, _) = webhook.handle(&body).await;
        assert_eq!(status, 200);
    }
    println!(
        "handler only (no TLS/HTTP): {:.1} µs per review ({CALLS} reviews, one thread)",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS)
    );
    println!(
        "webhook_latency: loopback HTTPS (rustls/ring, HTTP/1.1 keep-alive, {CONNECTIONS} connections), \
         open loop, {}s per point after {}s warm-up; request {} bytes (compliant Deployment, deny namespace)",
        MEASURE.as_secs(),
        WARMUP.as_secs(),
        body.len()
    );
    println!(
        "{:>8}  {:<8} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "rate", "handler", "sent", "ok", "achieved", "p50", "p99", "p99.9", "max"
    );
    for rate in RATES {
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        for (name, addr) in &servers {
            let mut senders = Vec::new();
            for _ in 0..CONNECTIONS {
                senders.push(Arc::new(Mutex::new(connect(*addr, &connector).await)));
            }
            let mut probe = senders[0].lock().await;
            assert_eq!(
                call(&mut probe, &body).await,
                Ok(true),
                "{name} allows the request"
            );
            drop(probe);
            run(&senders, &body, rate, WARMUP).await;
            let point = run(&senders, &body, rate, MEASURE).await;
            let (p50, p99) = (pct(&point.latencies, 0.50), pct(&point.latencies, 0.99));
            println!(
                "{:>6}/s  {:<8} {:>6} {:>6} {:>7.0}/s {:>9} {:>9} {:>9} {:>9}",
                rate,
                name,
                point.sent,
                point.ok,
                point.sent as f64 / point.elapsed.as_secs_f64(),
                us(p50),
                us(p99),
                us(pct(&point.latencies, 0.999)),
                us(point.latencies.last().copied().unwrap_or_default()),
            );
            p50s.push(p50);
            p99s.push(p99);
        }
        let ratio = |v: &[Duration]| v[1].as_secs_f64() / v[0].as_secs_f64().max(1e-9);
        println!(
            "{:>6}/s  webhook / no-op: p50 x{:.2} (+{}), p99 x{:.2} (+{})",
            rate,
            ratio(&p50s),
            us(p50s[1].saturating_sub(p50s[0])),
            ratio(&p99s),
            us(p99s[1].saturating_sub(p99s[0])),
        );
    }
}

//! The webhook's HTTPS server against clients that never finish a request:
//! a partial body gets 408 and the connection closes, a silent client is
//! cut off by the header timeout, and neither keeps a normal request out.
//! (The server is the one `run` serves, on loopback with its own CA.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use stateless_operator::webhook::WebhookMetrics;
use stateless_operator::webhook::admission::{Policy, Webhook};
use stateless_operator::webhook::certs;
use stateless_operator::webhook::cluster::StaticCluster;
use stateless_operator::webhook::server::{BODY_TIMEOUT, HANDSHAKE_TIMEOUT, router, serve_tls};
use stateless_operator::webhook::tls::{CertStore, provider, server_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const SLOW_CLIENTS: usize = 40;
/// Far past both timeouts: a connection still open then is held for ever.
const GIVE_UP: Duration = Duration::from_secs(60);

async fn start() -> (SocketAddr, TlsConnector) {
    let bundle = certs::generate(&["127.0.0.1".to_string()], SystemTime::now()).expect("certs");
    let store = CertStore::new(Default::default());
    store
        .install(bundle.tls_crt.as_bytes(), bundle.tls_key.as_bytes())
        .expect("certificate");
    let tls = server_config(store).expect("TLS config");
    let webhook = Arc::new(Webhook::new(
        Arc::new(StaticCluster::default().with_namespace("shop", Some("deny"))),
        Policy::default(),
        WebhookMetrics::default(),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve_tls(
        listener,
        tls,
        router(webhook),
        std::future::pending(),
    ));
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(bundle.ca_crt.as_bytes()).expect("CA"))
        .expect("root");
    let client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (addr, TlsConnector::from(Arc::new(client)))
}

async fn connect(addr: SocketAddr, tls: &TlsConnector) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tls.connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .expect("TLS handshake")
}

/// Everything the server sends until it closes (or `GIVE_UP` passes: `None`).
async fn read_until_closed(stream: &mut TlsStream<TcpStream>) -> Option<String> {
    let mut out = Vec::new();
    match tokio::time::timeout(GIVE_UP, stream.read_to_end(&mut out)).await {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

fn request_head(body_len: usize) -> String {
    format!(
        "POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {body_len}\r\n\r\n"
    )
}

#[tokio::test]
async fn clients_that_never_finish_are_cut_off_and_others_served() {
    let (addr, tls) = start().await;
    let start = Instant::now();
    let partial_bodies = (0..SLOW_CLIENTS).map(|_| {
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut stream = connect(addr, &tls).await;
            stream
                .write_all(format!("{}{{\"kind\":", request_head(1000)).as_bytes())
                .await
                .expect("partial request");
            stream.flush().await.expect("flush");
            (read_until_closed(&mut stream).await, start.elapsed())
        })
    });
    let silent = (0..SLOW_CLIENTS).map(|_| {
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut stream = connect(addr, &tls).await;
            (read_until_closed(&mut stream).await, start.elapsed())
        })
    });
    let partial: Vec<_> = futures::future::join_all(partial_bodies).await;
    let silent: Vec<_> = futures::future::join_all(silent).await;
    let mut slowest = (Duration::ZERO, Duration::ZERO);
    for joined in &partial {
        let (answer, after) = joined.as_ref().expect("task");
        let text = answer
            .as_deref()
            .expect("a partial body's connection is closed");
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("request body not received within"), "{text}");
        slowest.0 = slowest.0.max(*after);
    }
    for joined in &silent {
        let (answer, after) = joined.as_ref().expect("task");
        assert!(answer.is_some(), "a silent connection is closed");
        slowest.1 = slowest.1.max(*after);
    }
    println!(
        "{SLOW_CLIENTS} partial bodies answered 408 and closed within {:.1}s (body timeout {BODY_TIMEOUT:?}); {SLOW_CLIENTS} silent connections closed within {:.1}s (header timeout {HANDSHAKE_TIMEOUT:?})",
        slowest.0.as_secs_f64(),
        slowest.1.as_secs_f64()
    );

    // A whole request on a fresh connection is served.
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/admission/service-compliant.json"
    ))
    .expect("fixture");
    let mut stream = connect(addr, &tls).await;
    let mut request = request_head(body.len())
        .replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n")
        .into_bytes();
    request.extend_from_slice(&body);
    stream.write_all(&request).await.expect("request");
    let answer = read_until_closed(&mut stream).await.expect("answered");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"allowed\":true"), "{answer}");
}

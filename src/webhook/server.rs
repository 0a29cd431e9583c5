//! HTTPS serving: an axum router behind rustls, one task per connection,
//! HTTP/1.1 with keep-alive. The same stack serves the webhook and the
//! benchmark's no-op baseline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::admission::{Webhook, error_body};

/// Largest accepted request body. The API server's own limit for an object
/// is 3 MiB (etcd's request size), and a review carries the object twice on
/// UPDATE only in pathological cases; larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// A client must finish the TLS handshake and send its headers within this;
/// hyper also closes a keep-alive connection idle this long (its header
/// timer runs while it waits for the next request).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's body must have arrived this long after its headers: a client
/// that sends a partial body otherwise holds its connection and task.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections served at once; further clients wait in the listen
/// backlog. The API server needs a handful per replica.
pub const MAX_CONNECTIONS: usize = 512;
/// In-flight requests get this long after shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The webhook's routes: `POST /validate` (and `GET /healthz` for probes
/// that speak TLS).
pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(webhook)
}

async fn validate(State(webhook): State<Arc<Webhook>>, request: Request) -> Response {
    let body: Result<Bytes, BytesRejection> =
        match tokio::time::timeout(BODY_TIMEOUT, Bytes::from_request(request, &())).await {
            Ok(body) => body,
            Err(_) => {
                webhook.metrics().count("other", "error");
                let message = format!("request body not received within {BODY_TIMEOUT:?}");
                // The rest of the body may still come: the connection cannot
                // carry another request, so close it with the answer.
                let mut response = json_response(StatusCode::REQUEST_TIMEOUT, error_body(&message));
                response.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
                return response;
            }
        };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            webhook.metrics().count("other", "error");
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("request body larger than {MAX_BODY_BYTES} bytes")
            } else {
                format!("reading the request body: {}", rejection.body_text())
            };
            return json_response(status, error_body(&message));
        }
    };
    let (status, body) = webhook.handle(&body).await;
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Serve `router` over TLS on `listener` until `shutdown`, then let
/// in-flight requests finish (up to a few seconds).
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .keep_alive(true);
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("webhook accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let http = http.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "webhook TLS handshake: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "webhook TLS handshake timed out");
                    return;
                }
            };
            let conn = http.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, "webhook connection: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("webhook: in-flight requests still running after {DRAIN_TIMEOUT:?}");
    }
}

//! The HTTP side: `/session` (and `/`, the same handler: the session
//! counter), `/healthz`, `/readyz`; and the draining that a graceful shutdown
//! starts with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header::{CONNECTION, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::memory_store::MemoryStore;
use crate::redis_store::{Store, StoreError};
use crate::session;

/// Readiness: Redis must answer PING within this.
const READY_TIMEOUT: Duration = Duration::from_secs(1);
/// A visit (connect if needed, MULTI INCR EXPIRE EXEC) must finish within this.
const VISIT_TIMEOUT: Duration = Duration::from_secs(2);
/// The most CPU one request may ask for with `?work_ms=`.
pub const MAX_WORK_MS: u64 = 200;

/// Where the sessions live.
pub enum Sessions {
    /// In Redis: every replica sees every session. The store, or why there is
    /// none (variable unset, bad URL).
    Redis(Result<Store, StoreError>),
    /// In this process (the anti-pattern, for contrast).
    Memory(MemoryStore),
}

impl Sessions {
    /// The `store` field of the answer: `redis` or `memory`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Redis(_) => "redis",
            Self::Memory(_) => "memory",
        }
    }

    async fn visit(&self, id: &str) -> Result<i64, StoreError> {
        match self {
            Self::Redis(Ok(store)) => store.visit(id, VISIT_TIMEOUT).await,
            Self::Redis(Err(e)) => Err(e.clone()),
            Self::Memory(store) => Ok(store.visit(id)),
        }
    }

    /// Whether the store answers (memory always does).
    async fn ready(&self) -> Result<(), StoreError> {
        match self {
            Self::Redis(Ok(store)) => store.ping(READY_TIMEOUT).await.map(drop),
            Self::Redis(Err(e)) => Err(e.clone()),
            Self::Memory(_) => Ok(()),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub sessions: Arc<Sessions>,
    pub pod: Arc<str>,
    /// Set on SIGTERM/SIGINT: the pod is leaving (see `main::drain_on_signal`).
    pub draining: Arc<AtomicBool>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/session", get(counter))
        // The same counter at `/`, where the README's curl points.
        .route("/", get(counter))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(middleware::map_response_with_state(
            state.clone(),
            close_while_draining,
        ))
        .with_state(state)
}

/// While draining, every answer says `Connection: close`, so a client that
/// keeps its connection alive comes back on a new one, which the Service
/// sends to a pod that is staying, instead of staying on this one until it
/// stops.
async fn close_while_draining(State(app): State<AppState>, mut response: Response) -> Response {
    if app.draining.load(Ordering::SeqCst) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The answer of `/session`. The contract other tests rely on: exactly these
/// fields.
#[derive(Serialize)]
struct Visit<'a> {
    visits: i64,
    served_by: &'a str,
    store: &'static str,
}

/// `?work_ms=N`: the request first spends N ms of CPU (at most
/// [`MAX_WORK_MS`]) — a heavier page, so that a bounded load makes the pods
/// busy and the HPA scale on real CPU.
#[derive(Deserialize, Default)]
pub struct Work {
    work_ms: Option<u64>,
}

/// Spend `ms` of CPU on a blocking thread (the async workers stay free).
async fn burn_cpu(ms: u64) {
    let budget = Duration::from_millis(ms.min(MAX_WORK_MS));
    let _ = tokio::task::spawn_blocking(move || {
        let start = std::time::Instant::now();
        let mut x: u64 = 1;
        while start.elapsed() < budget {
            for _ in 0..1000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        x
    })
    .await;
}

async fn counter(
    State(app): State<AppState>,
    Query(work): Query<Work>,
    headers: HeaderMap,
) -> Response {
    if let Some(ms) = work.work_ms.filter(|ms| *ms > 0) {
        burn_cpu(ms).await;
    }
    let cookies = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    // A known id keeps its cookie even when the store does not hold the
    // session (expired, or held by another replica's memory): it starts again
    // at 1 under the same id, which is how a lost session shows.
    let (id, is_new) = match session::id_from_cookies(cookies) {
        Some(id) => (id, false),
        None => match session::new_id() {
            Ok(id) => (id, true),
            Err(e) => {
                tracing::error!(error = %e, "cannot generate a session id");
                let body = json!({ "error": format!("cannot generate a session id: {e}") });
                return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
            }
        },
    };
    match app.sessions.visit(&id).await {
        Ok(visits) => {
            let body = Visit {
                visits,
                served_by: &app.pod,
                store: app.sessions.kind(),
            };
            let mut response = Json(body).into_response();
            if is_new {
                // The id is hex, so the header value is always valid.
                if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(&id)) {
                    response.headers_mut().insert(SET_COOKIE, cookie);
                }
            }
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, "session store unavailable");
            let body = json!({ "error": format!("session store unavailable: {e}") });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// Liveness: the process answers. Never depends on the store, nor on draining.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: not while draining (the pod is leaving the Service), else
/// whether the store answers.
async fn readyz(State(app): State<AppState>) -> (StatusCode, String) {
    if app.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining".to_owned());
    }
    match app.sessions.ready().await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}"))
        }
    }
}

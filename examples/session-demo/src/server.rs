//! The HTTP side: `/` (session counter), `/healthz`, `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use crate::redis_store::{Store, StoreError};
use crate::session;

/// Readiness: Redis must answer PING within this.
const READY_TIMEOUT: Duration = Duration::from_secs(1);
/// A visit (connect if needed, MULTI INCR EXPIRE EXEC) must finish within this.
const VISIT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct AppState {
    /// The store, or why there is none (variable unset, bad URL).
    pub store: Arc<Result<Store, StoreError>>,
    pub pod: Arc<str>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(counter))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Visit<'a> {
    session: &'a str,
    visits: i64,
    served_by: &'a str,
}

async fn counter(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let cookies = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
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
    let visits = match app.store.as_ref() {
        Ok(store) => store.visit(&id, VISIT_TIMEOUT).await,
        Err(e) => Err(e.clone()),
    };
    match visits {
        Ok(visits) => {
            let body = Visit {
                session: &id,
                visits,
                served_by: &app.pod,
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

/// Liveness: the process answers. Never depends on Redis.
async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(app): State<AppState>) -> (StatusCode, String) {
    let ping = match app.store.as_ref() {
        Ok(store) => store.ping(READY_TIMEOUT).await,
        Err(e) => Err(e.clone()),
    };
    match ping {
        Ok(_) => (StatusCode::OK, "ready".to_owned()),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}"))
        }
    }
}

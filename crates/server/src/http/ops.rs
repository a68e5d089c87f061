//! Operator routes: liveness, readiness and metrics.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::web::limit::Client;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Whether the request's client may read `/metrics` and `/readyz` (`server.ops_allow`).
fn allowed(s: &AppState, client: std::net::IpAddr) -> bool {
    let allow = &s.ctx.config.server.ops_allow;
    allow.is_empty() || allow.iter().any(|r| r.contains(client))
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "not allowed from this address (server.ops_allow)\n",
    )
        .into_response()
}

/// `GET /readyz`: the store answers (for every account's keys), and with `readiness =
/// "all_accounts"` every account has a usable access_token. 503 when not ready. The body
/// names the failing accounts (with their last fetch error) either way; the store's part
/// says its mode, its outages so far and, during one, what the gateway does meanwhile.
pub async fn readyz(State(s): State<AppState>, Client(client): Client) -> Response {
    if !allowed(&s, client) {
        return forbidden();
    }
    let store = crate::store::report(s.ctx.store.as_ref(), s.ctx.credentials.account_names()).await;
    let mut accounts = serde_json::Map::new();
    let mut failing = Vec::new();
    for (name, state) in s.ctx.credentials.readiness() {
        let v = match state {
            Ok(expires_in) => json!({ "ok": true, "access_token_expires_in": expires_in }),
            Err(e) => {
                failing.push(name.clone());
                json!({ "ok": false, "error": e })
            }
        };
        accounts.insert(name, v);
    }
    let all = s.ctx.config.readiness == crate::config::Readiness::AllAccounts;
    let ready = store.ok && (!all || failing.is_empty());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "ready": ready,
            "readiness": s.ctx.config.readiness,
            "store": store,
            "failing": failing,
            "accounts": accounts,
        })),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(s): State<AppState>, Client(client): Client) -> Response {
    if !allowed(&s, client) {
        return forbidden();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response()
}

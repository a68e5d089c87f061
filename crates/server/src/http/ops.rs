//! Operator routes: liveness, readiness and metrics.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the store answers (for every account's keys) and every account has a
/// usable access_token (else the last fetch error). 503 when not ready. The store's part
/// says its mode, its outages so far and, during one, what the gateway does meanwhile.
pub async fn readyz(State(s): State<AppState>) -> Response {
    let store = &s.ctx.store;
    let mut ping = store.ping().await;
    if ping.is_ok() {
        // A Cluster answers PING from the masters it knows while the slot of an account
        // has none (its master died, its replica not yet promoted): read each account's
        // own slot too. On one node or Sentinel it is the same node, and cheap.
        for name in s.ctx.credentials.account_names() {
            let key = crate::store::keys::credential(name, "access_token");
            if let Err(e) = store.get(&key).await {
                ping = Err(e);
                break;
            }
        }
    }
    // Read after the ping, which is a command too: it may have ended or begun an outage.
    let health = store.health();
    let mut store_state = json!({
        "kind": store.kind(),
        "mode": health.mode,
        "ok": ping.is_ok(),
        "outages": health.outages,
    });
    if let Err(e) = ping {
        store_state["error"] = json!(e.to_string());
        // What wxgate does meanwhile, so an operator need not read the source.
        store_state["state"] = json!("unavailable: valid tokens and tickets are served from memory; refreshes and pushes wait for the store");
        if let Some(ms) = health.down_for_ms {
            store_state["down_for_ms"] = json!(ms);
        }
    } else if health.outages > 0 {
        store_state["state"] = json!("recovered");
    } else {
        store_state["state"] = json!("up");
    }
    let mut ready = store_state["ok"] == true;
    let mut accounts = serde_json::Map::new();
    for (name, state) in s.ctx.credentials.readiness() {
        let v = match state {
            Ok(expires_in) => json!({ "ok": true, "access_token_expires_in": expires_in }),
            Err(e) => {
                ready = false;
                json!({ "ok": false, "error": e })
            }
        };
        accounts.insert(name, v);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": ready, "store": store_state, "accounts": accounts })),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response()
}

//! `GET /api/v1/component/{name}/status` (an API key; a key limited to accounts needs
//! `component:NAME` among them): the ticket's age, whether the fleet holds a component
//! token and how long it lives, without either value.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::api::key_of;
use super::{ApiError, AppState};

pub async fn status(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = key_of(&s, &headers)?;
    let scope = format!("component:{name}");
    if !key.accounts.is_empty() && !key.accounts.contains(&scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this API key may not use {scope:?}"),
        ));
    }
    let c = s.components.component(&name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_component",
            format!("no [components.{name}]"),
        )
    })?;
    let now = s.ctx.now();
    let ticket = s.components.ticket(c).await?;
    let token = s.components.component_access_token(c, now).await;
    Ok(Json(json!({
        "component": name,
        "component_appid": c.cfg.component_appid,
        "ticket_age_secs": ticket.map(|t| now - t.received_at),
        "component_access_token": match token {
            Ok((_, left)) => json!({ "ok": true, "expires_in": left }),
            Err(e) => json!({ "ok": false, "error": e.to_string() }),
        },
    }))
    .into_response())
}

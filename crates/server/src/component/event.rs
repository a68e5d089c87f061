//! `POST /wx/component/{name}/event`: the authorization-event URL (授权事件接收URL).
//! WeChat posts the `component_verify_ticket` and the authorization events here,
//! encrypted for the component. Checked in order: the timestamp window, the envelope's
//! `AppId`, `msg_signature` and decryption (the `receiveid` must be the component's), the
//! nonce (a replay is refused), the decrypted `AppId`; then acted on, and answered
//! `success`. Every refusal is a 4xx that stores nothing.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use wxgate_proto::component::{ComponentEnvelope, ComponentEvent, ComponentPush};

use super::ComponentService;
use crate::store::keys;
use crate::web::envelope::Reject;
use crate::web::query::query_struct;
use crate::web::Ctx;

query_struct! {
    /// The query WeChat puts on the authorization-event URL.
    pub struct EventQuery { signature, timestamp, nonce, encrypt_type, msg_signature }
}

fn refuse(component: &str, status: StatusCode, reason: &str) -> Response {
    crate::sampled_warn!(
        "component_event_refused",
        component,
        reason,
        "component event refused"
    );
    Reject::new(status, reason.to_owned()).into_response()
}

/// `POST /wx/component/{name}/event`
pub async fn event(
    State(ctx): State<Ctx>,
    State(components): State<Arc<ComponentService>>,
    Path(name): Path<String>,
    q: EventQuery,
    body: Body,
) -> Response {
    let Some(c) = components.component(&name) else {
        return Reject::new(StatusCode::NOT_FOUND, "no such component").into_response();
    };
    let name = c.name.as_str();
    let (Some(ts), Some(nonce), Some(msg_signature)) = (&q.timestamp, &q.nonce, &q.msg_signature)
    else {
        return refuse(
            name,
            StatusCode::BAD_REQUEST,
            "timestamp, nonce and msg_signature are required",
        );
    };
    let now = ctx.now();
    let window = ctx.config.service.replay_window;
    match ts.parse::<i64>() {
        Ok(t) if t.abs_diff(now) <= window as u64 => {}
        _ => return refuse(name, StatusCode::FORBIDDEN, "timestamp outside the window"),
    }
    let Ok(body) = to_bytes(body, ctx.config.service.max_body_bytes).await else {
        return refuse(name, StatusCode::PAYLOAD_TOO_LARGE, "body over the limit");
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return refuse(name, StatusCode::BAD_REQUEST, "the body is not UTF-8");
    };
    let envelope = match ComponentEnvelope::parse(text, ctx.config.service.max_body_bytes) {
        Ok(e) => e,
        Err(e) => return refuse(name, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if envelope
        .app_id
        .as_deref()
        .is_some_and(|a| a != c.cfg.component_appid)
    {
        return refuse(
            name,
            StatusCode::FORBIDDEN,
            "the push is for another component's AppId",
        );
    }
    let plaintext = match c.crypt.open(msg_signature, ts, nonce, &envelope.encrypt) {
        Ok(p) => p,
        Err(e) => {
            let r = Reject::from(e);
            return refuse(name, r.status, &r.msg);
        }
    };
    let seen = components
        .store
        .set_if_absent(
            &keys::component_nonce(name, ts, nonce),
            "1",
            Duration::from_secs(2 * window.max(1) as u64 + 1),
        )
        .await;
    match seen {
        Ok(true) => {}
        Ok(false) => {
            return refuse(
                name,
                StatusCode::FORBIDDEN,
                "a replay: this timestamp and nonce were used",
            )
        }
        Err(_) => {
            return Reject::new(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
                .into_response()
        }
    }
    let push = match ComponentPush::parse(&plaintext, ctx.config.service.max_body_bytes) {
        Ok(p) if p.app_id == c.cfg.component_appid => p,
        Ok(_) => {
            return refuse(
                name,
                StatusCode::FORBIDDEN,
                "the push is for another component",
            )
        }
        Err(e) => return refuse(name, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let kind = match &push.event {
        ComponentEvent::VerifyTicket { ticket } => {
            if let Err(e) = components.store_ticket(c, ticket, now).await {
                tracing::warn!(component = name, error = %e, "ticket not stored");
                return Reject::new(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
                    .into_response();
            }
            "component_verify_ticket"
        }
        ComponentEvent::Authorized(g) | ComponentEvent::UpdateAuthorized(g) => {
            if let Err(e) = components
                .exchange_code(c, &g.authorization_code, now)
                .await
            {
                tracing::warn!(component = name, authorizer = %g.authorizer_appid, error = %e, "authorization code not exchanged");
            }
            "authorized"
        }
        ComponentEvent::Unauthorized { authorizer_appid } => {
            if let Err(e) = components.remove_authorizer(c, authorizer_appid).await {
                tracing::warn!(component = name, error = %e, "authorizer not removed");
            }
            tracing::info!(component = name, authorizer = %authorizer_appid, "unauthorized");
            "unauthorized"
        }
        ComponentEvent::Other { info_type } => {
            tracing::info!(component = name, info_type = %info_type, "component event not acted on");
            "other"
        }
    };
    metrics::counter!("wxgate_component_events_total", "component" => name.to_owned(), "info_type" => kind).increment(1);
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "success",
    )
        .into_response()
}

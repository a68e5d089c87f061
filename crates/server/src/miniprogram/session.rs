//! Sessions: stored under the SHA-256 of their id, sliding by `miniprogram.session_ttl`,
//! read from `X-Wxgate-Session`; and the session routes (check, reset, logout).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use wxgate_proto::api::wxa::{CheckSession, ResetUserSessionKey};
use wxgate_proto::{miniprogram, ErrCode};

use super::{account, ok, refusal, SESSION_HEADER};
use crate::error::Error;
use crate::store::keys;
use crate::web::envelope::Reject;
use crate::web::limit::{Client, Family};
use crate::web::{Account, Ctx};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Session {
    pub(super) openid: String,
    #[serde(default)]
    pub(super) unionid: Option<String>,
    pub(super) session_key: String,
    pub(super) created_at: i64,
}

pub(super) fn digest(id: &str) -> String {
    wxgate_proto::signature::hex(&Sha256::digest(id.as_bytes()))
}

pub(super) fn new_session_id() -> String {
    // 256 bits from the thread-local CSPRNG (ChaCha, seeded by the OS).
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// How long a session lives after its last use.
pub(super) fn session_ttl(s: &Ctx) -> Duration {
    Duration::from_secs(s.config.miniprogram.session_ttl.max(1) as u64)
}

/// Writes the session under `key` for another [`session_ttl`].
pub(super) async fn store_session(s: &Ctx, key: &str, sess: &Session) -> Result<(), Error> {
    let value = serde_json::to_string(sess).unwrap_or_default();
    s.store.set(key, &value, Some(session_ttl(s))).await
}

/// The session named by the header, extended by a use; the refusal otherwise.
pub(super) async fn session(
    s: &Ctx,
    account: &str,
    headers: &HeaderMap,
) -> Result<(String, Session), Reject> {
    let unauthorized = |why: &str| {
        Reject::new(
            StatusCode::UNAUTHORIZED,
            format!("{why}: log in again (wx.login, then /wx/mp/login)"),
        )
    };
    let Some(id) = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    else {
        return Err(unauthorized("no X-Wxgate-Session header"));
    };
    let key = keys::mp_session(account, &digest(id));
    let store = &s.store;
    // A session stored by a version before the hash-tagged keys is moved, not copied,
    // so that a logout or a new login ends the one copy there is.
    let found = crate::store::find_migrating(store.as_ref(), &key)
        .await
        .map_err(|e| store_down(&e))?;
    let (raw, legacy) = found.unzip();
    let legacy = legacy.flatten();
    let Some(sess) = raw.and_then(|r| serde_json::from_str::<Session>(&r).ok()) else {
        return Err(unauthorized("no valid session"));
    };
    if let Err(e) = store_session(s, &key, &sess).await {
        tracing::debug!(account, error = %e, "session not extended");
    } else if let Some(old) = legacy {
        let _ = store.delete(&old).await;
        let user_key = keys::mp_user(account, &sess.openid);
        let _ = store.set(&user_key, &key, Some(session_ttl(s))).await;
    }
    Ok((key, sess))
}

pub(super) fn store_down(e: &Error) -> Reject {
    tracing::debug!(error = %e, "store unavailable");
    Reject::new(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
}

/// `GET /wx/{account}/mp/session`: whether the session is valid, and for whom.
pub async fn get_session(
    State(s): State<Ctx>,
    Account(name): Account,
    Client(client): Client,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Reject> {
    account(&s, &name).await?;
    let (_, sess) = session(&s, &name, &headers).await?;
    let mut data = json!({ "valid": true, "openid": sess.openid, "expires_in": s.config.miniprogram.session_ttl });
    if let Some(u) = &sess.unionid {
        data["unionid"] = u.clone().into();
    }
    // `remote=1`: also ask WeChat whether it still holds this session_key (a newer
    // wx.login elsewhere replaces it), signed with it, never sent.
    if q.get("remote").is_some_and(|v| v == "1") {
        // Each remote check spends a WeChat call: limited per client like a login.
        if let Err(refused) = s
            .limits
            .admit(Family::MiniProgram, "/wx/mp/session", &name, client)
        {
            return Ok(refused.into_response());
        }
        let req = CheckSession {
            openid: sess.openid.clone(),
            signature: miniprogram::session_signature(&sess.session_key, b""),
            sig_method: "hmac_sha256".into(),
        };
        data["remote_valid"] = match s.credentials.call_api(&name, &req).await {
            Ok(_) => true,
            Err(e) if e.errcode() == Some(ErrCode::InvalidSessionSignature) => false,
            Err(e) => {
                return Err(Reject::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("checksession: {e}"),
                ))
            }
        }
        .into();
    }
    Ok(ok(data))
}

/// `POST /wx/{account}/mp/session/reset`: asks WeChat for a new session_key for the
/// user (`/wxa/resetusersessionkey`, signed with the current one) and keeps it in the
/// session. The key itself never leaves the server.
pub async fn reset_session(
    State(s): State<Ctx>,
    Account(name): Account,
    Client(client): Client,
    headers: HeaderMap,
) -> Result<Response, Reject> {
    account(&s, &name).await?;
    let (key, mut sess) = session(&s, &name, &headers).await?;
    if let Err(refused) = s
        .limits
        .admit(Family::MiniProgram, "/wx/mp/session/reset", &name, client)
    {
        return Ok(refused.into_response());
    }
    let req = ResetUserSessionKey {
        openid: sess.openid.clone(),
        signature: miniprogram::session_signature(&sess.session_key, b""),
        sig_method: "hmac_sha256".into(),
    };
    let fresh = s.credentials.call_api(&name, &req).await.map_err(|e| {
        let status_of = |code| match code {
            ErrCode::InvalidSessionSignature => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_GATEWAY,
        };
        let hint = |_| ": log in again (wx.login, then /wx/mp/login)";
        refusal("resetusersessionkey", e, status_of, hint)
    })?;
    sess.session_key = fresh.session_key;
    store_session(&s, &key, &sess)
        .await
        .map_err(|e| store_down(&e))?;
    Ok(ok(json!({ "reset": true, "openid": sess.openid })))
}

/// `DELETE /wx/{account}/mp/session`: log out.
pub async fn delete_session(
    State(s): State<Ctx>,
    Account(name): Account,
    headers: HeaderMap,
) -> Result<Response, Reject> {
    account(&s, &name).await?;
    let (key, sess) = session(&s, &name, &headers).await?;
    let store = &s.store;
    let _ = store.delete(&key).await;
    let _ = store
        .compare_and_delete(&keys::mp_user(&name, &sess.openid), &key)
        .await;
    Ok(ok(json!({ "valid": false })))
}

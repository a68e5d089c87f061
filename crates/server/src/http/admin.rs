//! `/api/v1/admin/accounts`: the accounts kept in the store for the whole fleet
//! ([`crate::fleet_accounts`]), for an API key with `admin = true`. Secrets are
//! write-only: a listing never carries one.
//!
//! - `GET /api/v1/admin/accounts`: every account, the file's and the store's, with its
//!   source, kind and appid.
//! - `PUT /api/v1/admin/accounts/{name}` with the fields of `[accounts.NAME]` as JSON:
//!   creates or replaces a store account, once WeChat accepts its AppID and AppSecret
//!   (a `stable_token` in normal mode: nothing is ended or forced). 400 naming the field
//!   for an unknown field, a refused secret (40125/40001) or an unknown appid (40013);
//!   409 for a name the file defines or an appid another account has.
//! - `DELETE /api/v1/admin/accounts/{name}`: 404 when the store has no such account,
//!   409 for one of the file's.
//!
//! Every instance applies the change within `api.accounts_poll_ms`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use wxgate_proto::ErrCode;

use super::api::key_of;
use super::{ApiError, AppState};
use crate::fleet_accounts::{account_of, parse};
use crate::store::keys;

/// An `admin` key, or 401/403.
fn authorize_admin(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if key_of(s, headers)?.admin {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this API key may not manage accounts (admin = true in [[api.keys]])",
        ))
    }
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "conflict", message)
}

/// The store's accounts document.
async fn load(s: &AppState) -> Result<Map<String, Value>, ApiError> {
    match s.ctx.store.get(&keys::fleet_accounts()).await? {
        Some(doc) => Ok(parse(&doc)?),
        None => Ok(Map::new()),
    }
}

/// Rewrites the document with `change`, under a lock in the store so that two
/// instances' changes do not overwrite each other.
async fn update(
    s: &AppState,
    change: impl FnOnce(&mut Map<String, Value>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let store = &s.ctx.store;
    let lock = keys::fleet_accounts_lock();
    let owner = s.ctx.credentials.owner().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !store
        .set_if_absent(&lock, &owner, Duration::from_secs(10))
        .await?
    {
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "another instance is changing the accounts: retry",
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let result = async {
        let mut doc = load(s).await?;
        change(&mut doc)?;
        let text = Value::Object(doc).to_string();
        store.set(&keys::fleet_accounts(), &text, None).await?;
        Ok(())
    }
    .await;
    let _ = store.compare_and_delete(&lock, &owner).await;
    result
}

/// `GET /api/v1/admin/accounts`
pub async fn list(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize_admin(&s, &headers)?;
    let stored = load(&s).await?;
    let config = &s.ctx.config;
    let mut accounts = Vec::new();
    for (name, a) in &config.accounts {
        let source = if stored.contains_key(name) {
            "store"
        } else {
            "file"
        };
        accounts.push(json!({ "name": name, "source": source, "kind": a.kind, "appid": a.appid }));
    }
    // Stored but not (yet) applied here.
    for (name, v) in &stored {
        if !config.accounts.contains_key(name) {
            accounts.push(json!({ "name": name, "source": "store", "appid": v.get("appid"), "applied": false }));
        }
    }
    Ok(Json(json!({ "accounts": accounts })).into_response())
}

/// What WeChat says of an AppID and AppSecret, as a 400 naming the field.
async fn check_with_wechat(
    s: &AppState,
    name: &str,
    appid: &str,
    secret: &str,
) -> Result<(), ApiError> {
    use crate::credentials::AppCheck;
    let field_error =
        |field: &str, why: String| ApiError::bad_request(format!("accounts.{name}.{field}: {why}"));
    let (mut refused, code) = match crate::credentials::check_app(&s.ctx.upstream, appid, secret).await {
        AppCheck::Ok { .. } => return Ok(()),
        AppCheck::WrongSecret(c) => (field_error("secret", format!("WeChat refuses it ({})", c.code())), Some(c)),
        AppCheck::UnknownAppId(c) => (field_error("appid", format!("WeChat does not know it ({})", c.code())), Some(c)),
        AppCheck::IpNotWhitelisted(c, _) => (
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "ip_not_whitelisted",
                format!("WeChat refuses this server's IP for {appid} ({}): add it to the account's IP whitelist, then retry", c.code()),
            ),
            Some(c),
        ),
        AppCheck::Refused(c, _) => (
            ApiError::new(StatusCode::BAD_GATEWAY, "upstream_refused", format!("WeChat: {c}")),
            Some(c),
        ),
        AppCheck::Unreachable(e) => (
            ApiError::new(StatusCode::BAD_GATEWAY, "upstream_unavailable", e.to_string()),
            None,
        ),
    };
    refused.errcode = code.map(ErrCode::code);
    Err(refused)
}

/// 409 for a name the file defines, or an appid another account (the file's or the
/// store's document `doc`) has.
fn refuse_collision(
    s: &AppState,
    doc: &Map<String, Value>,
    name: &str,
    appid: &str,
) -> Result<(), ApiError> {
    if s.ctx.config.accounts.contains_key(name) && !doc.contains_key(name) {
        return Err(conflict(format!(
            "accounts.{name} is defined in the file; change it there"
        )));
    }
    let taken = s
        .ctx
        .config
        .accounts
        .iter()
        .filter(|(n, _)| *n != name)
        .any(|(_, a)| a.appid == appid)
        || doc
            .iter()
            .filter(|(n, _)| *n != name)
            .any(|(_, a)| a.get("appid").and_then(Value::as_str) == Some(appid));
    if taken {
        return Err(conflict(format!(
            "accounts.{name}.appid: {appid} is another account's"
        )));
    }
    Ok(())
}

/// `PUT /api/v1/admin/accounts/{name}`
pub async fn put(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize_admin(&s, &headers)?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let acc = account_of(&name, &v).map_err(ApiError::bad_request)?;
    // The file's checks of one account (name, keys, mode), before anything is asked.
    let mut probe = (*s.ctx.config).clone();
    probe.accounts.retain(|n, _| n != &name);
    probe.accounts.insert(name.clone(), acc.clone());
    if let Err(e) = probe.validate() {
        return Err(ApiError::bad_request(e.to_string()));
    }
    // Checked before WeChat is asked, and again under the lock that the write takes:
    // another instance may have written meanwhile.
    refuse_collision(&s, &load(&s).await?, &name, &acc.appid)?;
    check_with_wechat(&s, &name, &acc.appid, acc.secret.expose()).await?;
    let mut created = false;
    update(&s, |doc| {
        refuse_collision(&s, doc, &name, &acc.appid)?;
        created = doc.insert(name.clone(), v).is_none();
        Ok(())
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "account": name,
            "created": created,
            "applied_within_ms": s.ctx.config.api.accounts_poll_ms,
        })),
    )
        .into_response())
}

/// `DELETE /api/v1/admin/accounts/{name}`
pub async fn delete(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    authorize_admin(&s, &headers)?;
    let stored = load(&s).await?;
    if !stored.contains_key(&name) {
        if s.ctx.config.accounts.contains_key(&name) {
            return Err(conflict(format!(
                "accounts.{name} is defined in the file; remove it there"
            )));
        }
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_account",
            format!("no account {name:?} in the store"),
        ));
    }
    update(&s, |doc| {
        doc.remove(&name);
        Ok(())
    })
    .await?;
    Ok(Json(json!({ "account": name, "deleted": true })).into_response())
}

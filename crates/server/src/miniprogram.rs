//! Mini Program login sessions (`/wx/mp/...` and `/wx/{account}/mp/...`): `wx.login()`'s
//! code becomes a session of wxgate's; the `session_key` never leaves the server, and the
//! client proves itself with the session id in `X-Wxgate-Session`.
//!
//! - `POST login {"code"}`: `jscode2session`, a new random session (256 bits), answered
//!   with `{session, openid, unionid?, expires_in}`. A new login of the same user replaces
//!   their previous session (WeChat has rotated the session_key).
//! - `POST verify {"rawData","signature"}`: `sha1(rawData + session_key)` in constant time.
//! - `POST decrypt {"encryptedData","iv"}`: the decrypted JSON, watermark appid checked.
//! - `GET session` / `DELETE session`: the checkSession counterpart, and logout.
//!
//! Sessions live in the configured store (a fleet shares them), under the SHA-256 of the
//! id, and slide: each use extends them by `miniprogram.session_ttl`.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wxgate_proto::api::sns::JsCode2Session;
use wxgate_proto::api::wxa::{
    CheckSession, GetUserPhoneNumber, MsgSecCheck, ResetUserSessionKey, MSG_SEC_CHECK_MAX_CHARS,
};
use wxgate_proto::{miniprogram, ErrCode};

use crate::config::{AccountConfig, AccountKind};
use crate::error::Error;
use crate::store::keys;
use crate::web::envelope::{self, Reject};
use crate::web::limit::{Client, Family};
use crate::web::{Account, Ctx};

/// The header that carries the session id.
pub const SESSION_HEADER: &str = "x-wxgate-session";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    openid: String,
    #[serde(default)]
    unionid: Option<String>,
    session_key: String,
    created_at: i64,
}

fn digest(id: &str) -> String {
    wxgate_proto::signature::hex(&Sha256::digest(id.as_bytes()))
}

fn new_session_id() -> String {
    // 256 bits from the thread-local CSPRNG (ChaCha, seeded by the OS).
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn ok(data: Value) -> Response {
    Json(envelope::ok_value(data)).into_response()
}

fn account<'a>(s: &'a Ctx, name: &str) -> Result<&'a AccountConfig, Reject> {
    s.account(name)
        .ok()
        .filter(|a| a.kind == AccountKind::MiniProgram)
        .ok_or_else(|| {
            Reject::new(
                StatusCode::NOT_FOUND,
                format!("no mini program account {name:?}"),
            )
        })
}

fn body_json(body: &Bytes) -> Result<Value, Reject> {
    serde_json::from_slice(body).map_err(|_| {
        Reject::new(
            StatusCode::BAD_REQUEST,
            "Parameter Error: the body must be JSON",
        )
    })
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, Reject> {
    v.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Reject::new(
                StatusCode::BAD_REQUEST,
                format!("Parameter Error: {name} is required"),
            )
        })
}

/// The longest code accepted: WeChat's `wx.login` codes are 32 characters and the
/// phone-number codes 64; anything much longer is not a code, and is refused here
/// instead of costing a WeChat call (and its retries).
const MAX_CODE_LEN: usize = 128;

/// A code as WeChat issues them: letters, digits, `-` and `_`, at most
/// [`MAX_CODE_LEN`] characters.
fn check_code(code: &str) -> Result<(), Reject> {
    let plain = code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if code.len() > MAX_CODE_LEN || !plain {
        return Err(Reject::new(
            StatusCode::BAD_REQUEST,
            format!("Parameter Error: code is at most {MAX_CODE_LEN} letters, digits, - or _ (the code wx.login or getPhoneNumber gave)"),
        ));
    }
    Ok(())
}

/// How long a session lives after its last use.
fn session_ttl(s: &Ctx) -> Duration {
    Duration::from_secs(s.config.miniprogram.session_ttl.max(1) as u64)
}

/// Writes the session under `key` for another [`session_ttl`].
async fn store_session(s: &Ctx, key: &str, sess: &Session) -> Result<(), Error> {
    let value = serde_json::to_string(sess).unwrap_or_default();
    s.store.set(key, &value, Some(session_ttl(s))).await
}

/// The session named by the header, extended by a use; the refusal otherwise.
async fn session(s: &Ctx, account: &str, headers: &HeaderMap) -> Result<(String, Session), Reject> {
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

fn store_down(e: &Error) -> Reject {
    tracing::debug!(error = %e, "store unavailable");
    Reject::new(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
}

/// `POST /wx/{account}/mp/login {"code"}`
pub async fn login(
    State(s): State<Ctx>,
    Client(client): Client,
    Account(name): Account,
    body: Bytes,
) -> Result<Response, Reject> {
    let acc = account(&s, &name)?;
    let v = body_json(&body)?;
    let code = field(&v, "code")?;
    check_code(code)?;
    // Each login spends a jscode2session call: limited per client and per account,
    // charged only now that the request is well-formed.
    if let Err(refused) = s
        .limits
        .admit(Family::MiniProgram, "/wx/mp/login", &name, client)
    {
        return Ok(refused.into_response());
    }
    let answer = match s
        .upstream
        .call(&JsCode2Session::new(&acc.appid, acc.secret.expose(), code))
        .await
    {
        Ok(a) => a,
        Err(e) => {
            let wechat = e.errcode().is_some();
            let status_of = |code| match code {
                ErrCode::InvalidCode | ErrCode::CodeBeenUsed => StatusCode::BAD_REQUEST,
                ErrCode::ApiMinuteQuota => StatusCode::TOO_MANY_REQUESTS,
                ErrCode::SystemBusy => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            };
            let refused = refusal("jscode2session", e, status_of, |_| "");
            if wechat {
                crate::sampled_warn!("mp_login_refused", account = %name, msg = %refused.msg, "login refused");
            }
            return Err(refused);
        }
    };
    let openid = answer.openid;
    let sess = Session {
        openid: openid.clone(),
        unionid: answer.unionid,
        session_key: answer.session_key,
        created_at: s.now(),
    };
    let id = new_session_id();
    let key = keys::mp_session(&name, &digest(&id));
    let ttl = session_ttl(&s);
    let store = &s.store;
    let user_key = keys::mp_user(&name, &openid);
    // WeChat rotated the session_key: the user's previous session is over.
    if let Ok(Some(previous)) = store.get(&user_key).await {
        let _ = store.delete(&previous).await;
    }
    store_session(&s, &key, &sess)
        .await
        .map_err(|e| store_down(&e))?;
    if let Err(e) = store.set(&user_key, &key, Some(ttl)).await {
        tracing::debug!(account = %name, error = %e, "user's session index not stored");
    }
    let mut data = json!({ "session": id, "openid": openid, "expires_in": ttl.as_secs() });
    if let Some(u) = &sess.unionid {
        data["unionid"] = u.clone().into();
    }
    Ok(ok(data))
}

/// `POST /wx/{account}/mp/verify {"rawData","signature"}`
pub async fn verify(
    State(s): State<Ctx>,
    Account(name): Account,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    account(&s, &name)?;
    let v = body_json(&body)?;
    let (raw, signature) = (field(&v, "rawData")?, field(&v, "signature")?);
    let (_, sess) = session(&s, &name, &headers).await?;
    Ok(ok(
        json!({ "valid": miniprogram::verify_raw_data(raw, &sess.session_key, signature) }),
    ))
}

/// `POST /wx/{account}/mp/phone {"code"}`: the user's phone number from the code of
/// `<button open-type="getPhoneNumber">` (`/wxa/business/getuserphonenumber` with the
/// central token). Needs a session; the code works once; limited per client like a
/// login, since each call spends a WeChat call.
pub async fn phone(
    State(s): State<Ctx>,
    Account(name): Account,
    Client(client): Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let acc = account(&s, &name)?;
    let v = body_json(&body)?;
    let code = field(&v, "code")?;
    check_code(code)?;
    session(&s, &name, &headers).await?;
    if let Err(refused) = s
        .limits
        .admit(Family::MiniProgram, "/wx/mp/phone", &name, client)
    {
        return Ok(refused.into_response());
    }
    let req = GetUserPhoneNumber {
        code: code.to_owned(),
    };
    let used_or_unknown = |code| matches!(code, ErrCode::InvalidCode | ErrCode::CodeBeenUsed);
    let info = s
        .credentials
        .call_api(&name, &req)
        .await
        .map_err(|e| {
            let status_of = |code| match code {
                c if used_or_unknown(c) => StatusCode::BAD_REQUEST,
                ErrCode::SystemBusy => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            };
            let hint = |code| match code {
                c if used_or_unknown(c) => " (the code of <button open-type=\"getPhoneNumber\">, used once within 5 minutes; not the wx.login code)",
                _ => "",
            };
            refusal("getuserphonenumber", e, status_of, hint)
        })?
        .phone_info;
    if info.watermark.appid != acc.appid {
        return Err(Reject::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "the number is for another app ({}), not {}",
                info.watermark.appid, acc.appid
            ),
        ));
    }
    Ok(ok(json!({ "phone_info": {
        "phoneNumber": info.phone_number,
        "purePhoneNumber": info.pure_phone_number,
        "countryCode": info.country_code,
    } })))
}

/// `POST /wx/{account}/mp/check/text {"content", "scene"}`: WeChat's verdict on user
/// text (`/wxa/msg_sec_check` version 2, with the session's openid), so a Mini Program
/// checks text without holding a token. Limited per client: each is a WeChat call.
pub async fn check_text(
    State(s): State<Ctx>,
    Account(name): Account,
    Client(client): Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    account(&s, &name)?;
    let v = body_json(&body)?;
    let content = field(&v, "content")?;
    if content.chars().count() > MSG_SEC_CHECK_MAX_CHARS {
        return Err(Reject::new(
            StatusCode::BAD_REQUEST,
            format!("Parameter Error: content is at most {MSG_SEC_CHECK_MAX_CHARS} characters"),
        ));
    }
    // Absent: 2 (a comment). Present: exactly one of WeChat's four integers; a string,
    // a fraction or another number is refused, not read as the default.
    let scene = match v.get("scene") {
        None => Some(2),
        Some(s) => s.as_u64().filter(|n| (1..=4).contains(n)),
    };
    let Some(scene) = scene else {
        return Err(Reject::new(
            StatusCode::BAD_REQUEST,
            "Parameter Error: scene is 1 (profile), 2 (comment), 3 (forum) or 4 (social log)",
        ));
    };
    let (_, sess) = session(&s, &name, &headers).await?;
    if let Err(refused) = s
        .limits
        .admit(Family::MiniProgram, "/wx/mp/check/text", &name, client)
    {
        return Ok(refused.into_response());
    }
    let req = MsgSecCheck {
        content: content.to_owned(),
        version: 2,
        scene: scene as u32,
        openid: sess.openid,
    };
    let verdict = s
        .credentials
        .call_api(&name, &req)
        .await
        .map_err(|e| refusal("msg_sec_check", e, |_| StatusCode::BAD_GATEWAY, |_| ""))?;
    Ok(ok(json!({
        "suggest": verdict.result.suggest,
        "label": verdict.result.label,
        "trace_id": verdict.trace_id,
    })))
}

/// A failed WeChat call as the Mini Program's answer: WeChat's refusal with the status
/// `status_of` gives its errcode, WeChat's words and `hint`'s advice, the errcode in
/// `state.errcode`; anything else (transport, store, a lock) a 503.
fn refusal(
    endpoint: &str,
    e: Error,
    status_of: impl Fn(ErrCode) -> StatusCode,
    hint: impl Fn(ErrCode) -> &'static str,
) -> Reject {
    match e {
        Error::WeChat { code, errmsg, .. } => Reject::new(
            status_of(code),
            format!("{endpoint}: {code} ({errmsg}){}", hint(code)),
        )
        .with_errcode(code.code()),
        e => Reject::new(StatusCode::SERVICE_UNAVAILABLE, format!("{endpoint}: {e}")),
    }
}

/// Why decryption failed, in words that send the developer to the cause.
fn decrypt_reason(e: &wxgate_proto::Error, appid: &str) -> String {
    use wxgate_proto::Error as P;
    match e {
        P::Base64(_) => "encryptedData is not valid base64".to_owned(),
        P::InvalidIv => "iv must be 16 bytes in base64".to_owned(),
        P::CiphertextLength(_) => "encryptedData has a wrong length".to_owned(),
        P::Padding | P::Utf8 | P::Json(_) | P::MissingField(_) => "could not decrypt: the session_key is probably stale (the user logged in again since this data was made): call wx.login and /wx/mp/login again, then fetch the data again".to_owned(),
        P::WatermarkMismatch { actual } => format!("the data is for another app ({actual}), not {appid}"),
        other => other.to_string(),
    }
}

/// `POST /wx/{account}/mp/decrypt {"encryptedData","iv"}`
pub async fn decrypt(
    State(s): State<Ctx>,
    Account(name): Account,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let acc = account(&s, &name)?;
    let v = body_json(&body)?;
    let (data, iv) = (field(&v, "encryptedData")?, field(&v, "iv")?);
    let (_, sess) = session(&s, &name, &headers).await?;
    match miniprogram::decrypt(&sess.session_key, iv, data, &acc.appid) {
        Ok(open) => Ok(ok(open.value)),
        Err(e) => {
            crate::sampled_warn!("mp_decrypt_refused", account = %name, error = %e, "decrypt refused");
            Err(
                Reject::new(StatusCode::BAD_REQUEST, decrypt_reason(&e, &acc.appid))
                    .with_errcode(e.sample_code().code()),
            )
        }
    }
}

/// `GET /wx/{account}/mp/session`: whether the session is valid, and for whom.
pub async fn get_session(
    State(s): State<Ctx>,
    Account(name): Account,
    Client(client): Client,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Reject> {
    account(&s, &name)?;
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
    account(&s, &name)?;
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
    account(&s, &name)?;
    let (key, sess) = session(&s, &name, &headers).await?;
    let store = &s.store;
    let _ = store.delete(&key).await;
    let _ = store
        .compare_and_delete(&keys::mp_user(&name, &sess.openid), &key)
        .await;
    Ok(ok(json!({ "valid": false })))
}

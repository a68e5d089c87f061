//! `POST /wx/{account}/mp/login {"code"}`: `jscode2session`, then a new session.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use wxgate_proto::api::sns::JsCode2Session;
use wxgate_proto::ErrCode;

use super::session::{digest, new_session_id, session_ttl, store_down, store_session, Session};
use super::{account, body_json, check_code, field, ok, refusal};
use crate::store::keys;
use crate::web::envelope::Reject;
use crate::web::limit::{Client, Family};
use crate::web::{Account, Ctx};

/// `POST /wx/{account}/mp/login {"code"}`
pub async fn login(
    State(s): State<Ctx>,
    Client(client): Client,
    Account(name): Account,
    body: Bytes,
) -> Result<Response, Reject> {
    let acc = account(&s, &name).await?;
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
    let exchanged = match &acc.acting_through {
        // A merchant's Mini Program: its platform exchanges the code with its own token.
        Some(_) => match s.credentials.delegate_for(&name) {
            Ok(d) => d.jscode2session(&name, code).await,
            Err(e) => Err(e),
        },
        None => {
            s.upstream
                .call(&JsCode2Session::new(&acc.appid, acc.secret.expose(), code))
                .await
        }
    };
    let answer = match exchanged {
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

//! What a session is for: the user's open data checked and decrypted with the
//! `session_key` (`verify`, `decrypt`), and WeChat calls made for the user (`phone`,
//! `check_text`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use wxgate_proto::api::wxa::{GetUserPhoneNumber, MsgSecCheck, MSG_SEC_CHECK_MAX_CHARS};
use wxgate_proto::{miniprogram, ErrCode};

use super::session::session;
use super::{account, body_json, check_code, field, ok, refusal};
use crate::web::envelope::Reject;
use crate::web::limit::{Client, Family};
use crate::web::{Account, Ctx};

/// `POST /wx/{account}/mp/verify {"rawData","signature"}`
pub async fn verify(
    State(s): State<Ctx>,
    Account(name): Account,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    account(&s, &name).await?;
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
    let acc = account(&s, &name).await?;
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
    account(&s, &name).await?;
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

/// Why decryption failed, in words that send the developer to the cause.
pub(super) fn decrypt_reason(e: &wxgate_proto::Error, appid: &str) -> String {
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
    let acc = account(&s, &name).await?;
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

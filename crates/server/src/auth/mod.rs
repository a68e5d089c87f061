//! `/wx/auth` (and `/wx/{account}/auth`): OAuth2 web authorization that remembers a user
//! for 7 days, without open redirects.
//!
//! - Start: `dest` must be an absolute http(s) URL on an allowed host. A returning user
//!   (a valid signed cookie, a stored user) goes straight back to `dest` with `userinfo`;
//!   anyone else goes to WeChat's authorize page with a signed, expiring, single-use
//!   `state` and the dest in the redirect_uri's query (covered by the state's MAC), so it
//!   works without cookies, which WeChat's webview loses.
//! - Callback: the state is checked, the code exchanged, the user stored, the cookie set,
//!   and the user sent to `dest` with `userinfo` (or with `error`, a JSON object, when
//!   the user denied consent or WeChat failed). Only a reload of the same callback (the
//!   same state and the same code) gets the first result again, from a short cache
//!   keyed by both: a leaked code under another state is exchanged with WeChat, which
//!   refuses a used code.
//! - Binding: the start sets a short-lived cookie with a random binding whose MAC is the
//!   state's nonce. A reload sets the remembered-user cookie only in the browser that
//!   holds the binding. What remains: a browser that keeps no cookies (some WeChat
//!   webviews) cannot prove it started the flow, so the first load of a fresh callback
//!   URL logs in whoever loads it; a reload without the binding still gets the
//!   userinfo in its redirect (the dest page sees it), never the cookie.

mod cookies;
mod dest;
pub mod signed;
pub mod users;

pub use cookies::cookie_name;
use cookies::{binding_cookie, read_cookie, set_binding, set_cookie};
use dest::{checked_dest, dest_with, redirect};

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha1::{Digest, Sha1};

use crate::config::{AccountConfig, AccountKind, Config};
use crate::credentials::delegate::Purpose;
use crate::store::keys;
use crate::web::envelope::{self, Reject};
use crate::web::limit::{Client, Family};
use crate::web::{account_refusal, Account, Ctx, DEFAULT_ACCOUNT};
use signed::{Scope, StateError};
use users::{UserRecord, Users};

type Q = Query<HashMap<String, String>>;

pub(crate) fn route_prefix(account: &str) -> String {
    if account == DEFAULT_ACCOUNT {
        "/wx".into()
    } else {
        format!("/wx/{account}")
    }
}

fn bad(msg: impl AsRef<str>) -> Response {
    metrics::counter!("wxgate_auth_refused_total").increment(1);
    crate::sampled_warn!(
        "auth_refused",
        reason = msg.as_ref(),
        "auth request refused"
    );
    envelope::error(StatusCode::BAD_REQUEST, msg)
}

/// One request's web authorization: the context, the users, the account and its key.
pub(crate) struct Flow<'a> {
    s: &'a Ctx,
    users: &'a Users,
    account: String,
    /// A configured account, or a merchant a third-party platform acts for.
    acc: Cow<'a, AccountConfig>,
    secret: &'a [u8],
}

/// The account's flow, or the refusal.
async fn flow<'a>(s: &'a Ctx, users: &'a Users, account: String) -> Result<Flow<'a>, Reject> {
    let Some(secret) = s.config.auth.secret.as_ref() else {
        let off = "web authorization is off: set auth.secret";
        return Err(Reject::new(StatusCode::SERVICE_UNAVAILABLE, off));
    };
    let acc = s
        .credentials
        .account_for(&account, Purpose::WebAuthorization)
        .await
        .map_err(|e| {
            account_refusal(e, || {
                let shown = crate::util::truncate_chars(&account, 64);
                Reject::new(StatusCode::NOT_FOUND, format!("unknown account {shown:?}"))
            })
        })?;
    if acc.kind != AccountKind::Official {
        return Err(Reject::new(
            StatusCode::BAD_REQUEST,
            "web authorization is for official accounts",
        ));
    }
    Ok(Flow {
        s,
        users,
        account,
        acc,
        secret: secret.expose().as_bytes(),
    })
}

fn back_with_user(c: &Flow<'_>, dest: url::Url, user: &UserRecord) -> Response {
    let mut r = dest_with(dest, "userinfo", &user.userinfo);
    set_cookie(c, &mut r, &user.openid);
    r
}

/// `GET /wx/{account}/auth?dest=&scope=snsapi_userinfo|snsapi_base`
pub async fn start(
    State(s): State<Ctx>,
    State(users): State<SharedUsers>,
    Account(account): Account,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    let c = match flow(&s, &users, account).await {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let Some(raw_dest) = q.get("dest").filter(|d| !d.is_empty()) else {
        return bad("Parameter Error: dest is required");
    };
    let dest = match checked_dest(&s.config, &c.acc, raw_dest) {
        Ok(d) => d,
        Err(e) => return bad(e),
    };
    let Some(scope) = Scope::parse(
        q.get("scope")
            .map(String::as_str)
            .unwrap_or("snsapi_userinfo"),
    ) else {
        return bad("Parameter Error: scope is snsapi_userinfo or snsapi_base");
    };
    // A returning user skips consent.
    let now = s.now();
    if let Some(openid) = read_cookie(&headers, &cookie_name(&c.account))
        .and_then(|v| signed::verify_cookie(c.secret, &c.account, &v, now))
    {
        if let Some(user) = returning_user(&c, &openid, scope).await {
            tracing::info!(account = %c.account, "returning user: consent skipped");
            return dest_with(dest, "userinfo", &user.userinfo);
        }
    }
    let expiry = now + s.config.auth.state_ttl;
    let binding = crate::util::random_id();
    let nonce = signed::binding_nonce(c.secret, &binding);
    let state = signed::make_state(c.secret, &c.account, scope, &nonce, dest.as_str(), expiry);
    let mut redirect_uri = match url::Url::parse(&format!(
        "{}{}/auth/callback",
        s.config.base_url(),
        route_prefix(&c.account)
    )) {
        Ok(u) => u,
        Err(_) => {
            return envelope::error(StatusCode::INTERNAL_SERVER_ERROR, "public_url is not a URL")
        }
    };
    redirect_uri
        .query_pairs_mut()
        .append_pair("dest", dest.as_str());
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    // 代公众号发起网页授权: the platform names itself, after the state.
    let component = match &c.acc.acting_through {
        Some(component_appid) => format!("&component_appid={}", enc(component_appid)),
        None => String::new(),
    };
    let location = format!(
        "{}{}?appid={}&redirect_uri={}&response_type=code&scope={}&state={state}{component}#wechat_redirect",
        s.upstream.open_base(),
        wxgate_proto::api::sns::AUTHORIZE_PAGE,
        enc(&c.acc.appid),
        enc(redirect_uri.as_str()),
        scope.as_str(),
    );
    let mut r = redirect(&location);
    set_binding(&c, &mut r, &nonce, &binding);
    r
}

/// The stored user for a valid cookie, with a usable token and the asked scope.
async fn returning_user(c: &Flow<'_>, openid: &str, scope: Scope) -> Option<UserRecord> {
    let users = &c.users;
    let record = users.load(&c.account, openid).await.ok().flatten()?;
    if scope == Scope::UserInfo && !record.scope.split(',').any(|s| s == "snsapi_userinfo") {
        return None;
    }
    match users.usable(&c.account, &c.acc, record).await {
        Ok(user) => user,
        Err(e) => {
            tracing::warn!(account = %c.account, error = %e, "returning user's token could not be refreshed");
            None
        }
    }
}

/// The code cache's key: the state's nonce and the code together, so that only a
/// reload of the same callback finds the first result.
fn code_digest(nonce: &str, code: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce.as_bytes());
    h.update(b"\0");
    h.update(code.as_bytes());
    wxgate_proto::signature::hex(&h.finalize())
}

/// `GET /wx/{account}/auth/callback?dest=&code=&state=`: where WeChat sends the user back.
pub async fn callback(
    State(s): State<Ctx>,
    State(users): State<SharedUsers>,
    Account(account): Account,
    Client(client): Client,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    let c = match flow(&s, &users, account).await {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let raw_dest = q.get("dest").map(String::as_str).unwrap_or("");
    let dest = match checked_dest(&s.config, &c.acc, raw_dest) {
        Ok(d) => d,
        Err(e) => return bad(e),
    };
    let raw_state = q.get("state").map(String::as_str).unwrap_or("");
    let now = s.now();
    let state = match signed::verify_state(c.secret, &c.account, raw_state, dest.as_str(), now) {
        Ok(st) => st,
        Err(StateError::Expired) => {
            return bad("the authorization took too long (state expired): start again")
        }
        Err(_) => return bad("invalid state"),
    };
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        // The user denied consent: back to the page, which decides what to do.
        return dest_with(
            dest,
            "error",
            &json!({ "error": "access_denied", "errmsg": "the user did not allow authorization" }),
        );
    };
    let store = &s.store;
    let code_key = keys::oauth_code(&c.account, &code_digest(&state.nonce, code));
    // A reload of this very callback (same state, same code): the first exchange's
    // result; the remembered-user cookie only for the browser that started the flow.
    if let Ok(Some(openid)) = store.get(&code_key).await {
        if let Ok(Some(user)) = users.load(&c.account, &openid).await {
            let bound = read_cookie(&headers, &binding_cookie(&state.nonce))
                .is_some_and(|b| signed::binding_matches(c.secret, &b, &state.nonce));
            if bound {
                return back_with_user(&c, dest, &user);
            }
            tracing::info!(account = %c.account, "callback reloaded without the flow's binding: no cookie set");
            return dest_with(dest, "userinfo", &user.userinfo);
        }
    }
    // The exchange below spends a WeChat call: limited per client and per account.
    if let Err(refused) = s
        .limits
        .admit(Family::OAuth, "/wx/auth/callback", &c.account, client)
    {
        return refused.into_response();
    }
    let state_ttl = Duration::from_secs(s.config.auth.state_ttl.max(1) as u64);
    match store
        .set_if_absent(
            &keys::oauth_state(&c.account, &state.nonce),
            "used",
            state_ttl,
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => return bad("this authorization was already used (state replayed)"),
        Err(e) => {
            tracing::debug!(error = %e, "state memory unavailable");
            return envelope::error(StatusCode::SERVICE_UNAVAILABLE, "store unavailable");
        }
    }
    match users.login(&c.account, &c.acc, code).await {
        Ok(user) => {
            let ttl = Duration::from_secs(s.config.auth.code_cache_ttl.max(1) as u64);
            if let Err(e) = store.set(&code_key, &user.openid, Some(ttl)).await {
                tracing::debug!(error = %e, "code cache not stored");
            }
            back_with_user(&c, dest, &user)
        }
        Err(e) => {
            tracing::warn!(account = %c.account, error = %e, "code exchange failed");
            let (errcode, errmsg) = match &e {
                crate::error::Error::WeChat { code, errmsg, .. } => (code.code(), errmsg.clone()),
                other => (-1, other.to_string()),
            };
            dest_with(
                dest,
                "error",
                &json!({ "error": "upstream", "errcode": errcode, "errmsg": errmsg }),
            )
        }
    }
}

/// The accounts whose users the sweep keeps fresh.
pub fn sweep_accounts(config: &Config) -> Vec<(String, AccountConfig)> {
    if config.auth.secret.is_none() {
        return Vec::new();
    }
    config
        .accounts
        .iter()
        .filter(|(_, a)| a.kind == AccountKind::Official)
        .map(|(n, a)| (n.clone(), a.clone()))
        .collect()
}

pub type SharedUsers = Arc<users::Users>;

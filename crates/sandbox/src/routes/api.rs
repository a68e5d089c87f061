//! WeChat's server APIs: credentials, tickets, followers, messages and Mini Program login.
//! Each handler is an endpoint's rule on its typed request; [`super::wechat`] registers
//! it, checks the token and counts the call.

use serde_json::Value;
use wxgate_proto::api::component::{
    AuthorizerAccessToken, AuthorizerList, AuthorizerToken, ComponentAccessToken, ComponentToken,
    CreatePreAuthCode, GetAuthorizerList, PreAuthCode, QueryAuth, QueryAuthAnswer, StartPushTicket,
};
use wxgate_proto::api::menu::{CreateMenu, GetMenu, Menu};
use wxgate_proto::api::message::{CustomSend, SubscribeSend, TemplateMsgId, TemplateSend};
use wxgate_proto::api::openapi::{ApiDomainIp, ClearQuota, GetApiDomainIp};
use wxgate_proto::api::sns::{JsCode2Session, MiniProgramSession};
use wxgate_proto::api::ticket::{GetTicket, Ticket};
use wxgate_proto::api::token::{AccessToken, ClassicToken, StableToken};
use wxgate_proto::api::user::BATCH_MAX;
use wxgate_proto::api::user::{
    BatchGetUserInfo, Followers, GetFollowers, GetUserInfo, UserInfoList,
};
use wxgate_proto::api::wxa::{
    CheckSession, GenerateScheme, GenerateUrlLink, GetUserPhoneNumber, MsgSecCheck, NewSessionKey,
    PhoneNumber, ResetUserSessionKey, Scheme, SecCheckResult, SecVerdict, UrlLink,
    MSG_SEC_CHECK_MAX_CHARS,
};
use wxgate_proto::api::Ack;
use wxgate_proto::ErrCode;

use super::wechat::Call;
use crate::platform::{random_value, Grant, Platform, WxError, WxResult};

fn access_token(g: Grant) -> AccessToken {
    AccessToken {
        access_token: g.value,
        expires_in: g.expires_in,
    }
}

/// A platform answer kept as JSON, read as the endpoint's typed answer.
pub(crate) fn typed<A: serde::de::DeserializeOwned>(v: Value) -> WxResult<A> {
    serde_json::from_value(v).map_err(|e| WxError::with(ErrCode::SystemBusy, e.to_string()))
}

/// `GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`
pub fn token(p: &Platform, c: Call<ClassicToken>) -> WxResult<AccessToken> {
    p.check_ip(&c.app, c.peer)?;
    let r = c.req;
    p.classic_token(&r.grant_type, &r.appid, &r.secret)
        .map(access_token)
}

/// `POST /cgi-bin/stable_token {grant_type, appid, secret, force_refresh}`
pub fn stable_token(p: &Platform, c: Call<StableToken>) -> WxResult<AccessToken> {
    p.check_ip(&c.app, c.peer)?;
    let r = c.req;
    p.stable_token(&r.grant_type, &r.appid, &r.secret, r.force_refresh)
        .map(access_token)
}

/// `POST /cgi-bin/clear_quota?access_token= {appid}`
pub fn clear_quota(p: &Platform, c: Call<ClearQuota>) -> WxResult<Ack> {
    p.clear_quota(&c.app, &c.req.appid)?;
    Ok(Ack::ok())
}

/// `GET /cgi-bin/ticket/getticket?access_token=&type=jsapi|wx_card`
pub fn getticket(p: &Platform, c: Call<GetTicket>) -> WxResult<Ticket> {
    let g = p.ticket_for(&c.app, &c.req.ticket_type)?;
    Ok(Ticket {
        errcode: 0,
        errmsg: "ok".into(),
        ticket: g.value,
        expires_in: g.expires_in,
    })
}

/// `GET /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code`
pub fn jscode2session(p: &Platform, c: Call<JsCode2Session>) -> WxResult<MiniProgramSession> {
    let r = c.req;
    p.jscode2session(&r.appid, &r.secret, &r.js_code, &r.grant_type)
}

/// `GET /cgi-bin/user/get?access_token=&next_openid=`
pub fn user_get(p: &Platform, c: Call<GetFollowers>) -> WxResult<Followers> {
    typed(p.followers(&c.app, &c.req.next_openid)?)
}

/// `GET /cgi-bin/user/info?access_token=&openid=&lang=`
pub fn user_info(p: &Platform, c: Call<GetUserInfo>) -> WxResult<Value> {
    p.user_info(&c.app, &c.req.openid)
}

/// `POST /cgi-bin/user/info/batchget?access_token= {user_list: [{openid, lang}]}`: at most
/// 100 users a call. WeChat documents the limit but not the errcode beyond it; the
/// sandbox answers 40097 (invalid args).
pub fn user_batchget(p: &Platform, c: Call<BatchGetUserInfo>) -> WxResult<UserInfoList> {
    let list = c.req.user_list;
    if list.is_empty() || list.len() > BATCH_MAX {
        return Err(WxError::with(
            ErrCode::InvalidParameter,
            format!(
                "invalid args: user_list holds 1 to {BATCH_MAX} users, not {}",
                list.len()
            ),
        ));
    }
    let user_info_list = list
        .iter()
        .map(|u| p.user_info(&c.app, &u.openid))
        .collect::<WxResult<Vec<_>>>()?;
    Ok(UserInfoList { user_info_list })
}

const CUSTOM_TYPES: &[&str] = &[
    "text",
    "image",
    "voice",
    "video",
    "music",
    "news",
    "mpnews",
    "mpnewsarticle",
    "msgmenu",
    "wxcard",
    "miniprogrampage",
];

/// `POST /cgi-bin/message/custom/send?access_token=`: a customer-service message.
pub fn custom_send(p: &Platform, c: Call<CustomSend>) -> WxResult<Ack> {
    let b = c.req.0;
    let msgtype = b.get("msgtype").and_then(Value::as_str).unwrap_or("");
    if !CUSTOM_TYPES.contains(&msgtype) || b.get(msgtype).is_none() {
        return Err(WxError::with(ErrCode::Other(40008), "invalid message type"));
    }
    if msgtype == "text"
        && b.pointer("/text/content")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        return Err(WxError::with(ErrCode::Other(44003), "empty content"));
    }
    p.record_sent(&c.app, "custom", b)?;
    Ok(Ack::ok())
}

/// `POST /cgi-bin/message/template/send?access_token=`: a template message.
pub fn template_send(p: &Platform, c: Call<TemplateSend>) -> WxResult<TemplateMsgId> {
    let b = c.req.0;
    if b.get("template_id")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(WxError::with(ErrCode::Other(40037), "invalid template_id"));
    }
    let msgid = p.record_sent(&c.app, "template", b)?;
    Ok(TemplateMsgId {
        errcode: 0,
        errmsg: "ok".into(),
        msgid,
    })
}

/// `GET /cgi-bin/get_api_domain_ip?access_token=`: WeChat's API host IPs, for a valid
/// token (the cheapest authenticated call).
pub fn get_api_domain_ip(_: &Platform, _: Call<GetApiDomainIp>) -> WxResult<ApiDomainIp> {
    Ok(ApiDomainIp {
        ip_list: vec!["101.89.47.18".into(), "101.91.34.103".into()],
    })
}

/// `POST /cgi-bin/menu/create?access_token= {"button": [...]}`: 1 to 3 buttons (40016
/// otherwise), replacing the app's menu.
pub fn menu_create(p: &Platform, c: Call<CreateMenu>) -> WxResult<Ack> {
    let menu = c.req.0;
    let buttons = menu
        .get("button")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if !(1..=3).contains(&buttons) {
        return Err(WxError::new(ErrCode::InvalidButtonSize));
    }
    p.menus.lock().unwrap().insert(c.app, menu);
    Ok(Ack::ok())
}

/// `GET /cgi-bin/menu/get?access_token=`: the app's menu (46003 when it has none).
pub fn menu_get(p: &Platform, c: Call<GetMenu>) -> WxResult<Menu> {
    let menu = p.menus.lock().unwrap().get(&c.app).cloned();
    let menu = menu.ok_or_else(|| WxError::new(ErrCode::MenuNotExist))?;
    Ok(Menu { menu })
}

/// `POST /wxa/business/getuserphonenumber?access_token= {"code"}`
pub fn getuserphonenumber(p: &Platform, c: Call<GetUserPhoneNumber>) -> WxResult<PhoneNumber> {
    p.phone_number(&c.app, &c.req.code)
}

/// `GET /wxa/checksession?access_token=&openid=&signature=&sig_method=hmac_sha256`
pub fn checksession(p: &Platform, c: Call<CheckSession>) -> WxResult<Ack> {
    let r = c.req;
    p.check_session(&c.app, &r.openid, &r.signature, &r.sig_method)?;
    Ok(Ack::ok())
}

/// `GET /wxa/resetusersessionkey?access_token=&openid=&signature=&sig_method=hmac_sha256`
pub fn resetusersessionkey(p: &Platform, c: Call<ResetUserSessionKey>) -> WxResult<NewSessionKey> {
    let r = c.req;
    p.reset_session_key(&c.app, &r.openid, &r.signature, &r.sig_method)
}

/// `POST /wxa/msg_sec_check?access_token= {content, version: 2, scene, openid}`: the
/// sandbox's verdict is predictable: text holding `sandbox-risky` is risky (label
/// 20006), `sandbox-review` needs review (21000), anything else passes (100).
pub fn msg_sec_check(_: &Platform, c: Call<MsgSecCheck>) -> WxResult<SecCheckResult> {
    let r = c.req;
    let valid = r.version == 2
        && (1..=4).contains(&r.scene)
        && !r.openid.is_empty()
        && !r.content.is_empty()
        && r.content.chars().count() <= MSG_SEC_CHECK_MAX_CHARS;
    if !valid {
        return Err(WxError::with(ErrCode::InvalidParameter, "invalid args"));
    }
    let (suggest, label) = if r.content.contains("sandbox-risky") {
        ("risky", 20006)
    } else if r.content.contains("sandbox-review") {
        ("review", 21000)
    } else {
        ("pass", 100)
    };
    Ok(SecCheckResult {
        errcode: 0,
        errmsg: "ok".into(),
        result: SecVerdict {
            suggest: suggest.into(),
            label,
        },
        detail: vec![serde_json::json!({
            "strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label, "prob": 90
        })],
        trace_id: random_value("sbx-trace-", 16),
    })
}

/// The page path of a link or scheme: like WeChat, one starting with `/` is refused
/// (40165); none means the home page.
fn check_page_path(path: &str) -> WxResult<()> {
    if path.starts_with('/') {
        return Err(WxError::new(ErrCode::InvalidPagePath));
    }
    Ok(())
}

/// `POST /wxa/generatescheme?access_token= {jump_wxa: {path, query}}`
pub fn generatescheme(_: &Platform, c: Call<GenerateScheme>) -> WxResult<Scheme> {
    let path = c
        .req
        .0
        .pointer("/jump_wxa/path")
        .and_then(Value::as_str)
        .unwrap_or("");
    check_page_path(path)?;
    Ok(Scheme {
        errcode: 0,
        errmsg: "ok".into(),
        openlink: format!("weixin://dl/business/?t={}", random_value("", 12)),
    })
}

/// `POST /wxa/generate_urllink?access_token= {path, query}`
pub fn generate_urllink(_: &Platform, c: Call<GenerateUrlLink>) -> WxResult<UrlLink> {
    check_page_path(c.req.0.get("path").and_then(Value::as_str).unwrap_or(""))?;
    Ok(UrlLink {
        errcode: 0,
        errmsg: "ok".into(),
        url_link: format!("https://wxaurl.cn/{}", random_value("", 12)),
    })
}

/// `POST /cgi-bin/message/subscribe/send?access_token=`: takes one of the user's
/// acceptances of the template (43101 without one); `data` is an object of
/// `{"value": ...}` fields (47003 otherwise).
pub fn subscribe_send(p: &Platform, c: Call<SubscribeSend>) -> WxResult<Ack> {
    let b = c.req.0;
    let text = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (touser, template) = (text("touser"), text("template_id"));
    if touser.is_empty() || template.is_empty() {
        return Err(WxError::with(
            ErrCode::ArgumentInvalid,
            "argument invalid: touser and template_id",
        ));
    }
    let fits = b
        .get("data")
        .and_then(Value::as_object)
        .is_some_and(|d| !d.is_empty() && d.values().all(|v| v.get("value").is_some()));
    if !fits {
        return Err(WxError::new(ErrCode::ArgumentInvalid));
    }
    let key = (c.app.clone(), touser, template);
    {
        let mut subs = p.subscriptions.lock().unwrap();
        match subs.get_mut(&key) {
            Some(n) if *n > 0 => *n -= 1,
            _ => return Err(WxError::new(ErrCode::UserRefusedMessage)),
        }
    }
    p.record_sent(&c.app, "subscribe", b)?;
    Ok(Ack::ok())
}

/// `POST /cgi-bin/component/api_component_token {component_appid, component_appsecret,
/// component_verify_ticket}`
pub fn component_token(p: &Platform, c: Call<ComponentToken>) -> WxResult<ComponentAccessToken> {
    p.check_ip(&c.app, c.peer)?;
    let r = c.req;
    let g = p.component_token(
        &r.component_appid,
        &r.component_appsecret,
        &r.component_verify_ticket,
    )?;
    Ok(ComponentAccessToken {
        component_access_token: g.value,
        expires_in: g.expires_in,
    })
}

/// `POST /cgi-bin/component/api_start_push_ticket {component_appid, component_secret}`
pub fn start_push_ticket(p: &Platform, c: Call<StartPushTicket>) -> WxResult<Ack> {
    p.start_push_ticket(&c.req.component_appid, &c.req.component_secret)?;
    Ok(Ack::ok())
}

/// `POST /cgi-bin/component/api_create_preauthcode?component_access_token=`
pub fn create_preauthcode(p: &Platform, c: Call<CreatePreAuthCode>) -> WxResult<PreAuthCode> {
    Ok(PreAuthCode {
        pre_auth_code: p.pre_auth_code(&c.app),
        expires_in: 1800,
    })
}

/// `POST /cgi-bin/component/api_query_auth?component_access_token=`
pub fn query_auth(p: &Platform, c: Call<QueryAuth>) -> WxResult<QueryAuthAnswer> {
    typed(p.query_auth(&c.app, &c.req.authorization_code)?)
}

/// `POST /cgi-bin/component/api_authorizer_token?component_access_token=`
pub fn authorizer_token(p: &Platform, c: Call<AuthorizerToken>) -> WxResult<AuthorizerAccessToken> {
    let r = c.req;
    typed(p.authorizer_token(&c.app, &r.authorizer_appid, &r.authorizer_refresh_token)?)
}

/// `POST /cgi-bin/component/api_get_authorizer_list?component_access_token=`
pub fn authorizer_list(p: &Platform, c: Call<GetAuthorizerList>) -> WxResult<AuthorizerList> {
    typed(p.authorizer_list(&c.app, c.req.offset, c.req.count)?)
}

//! WeChat's `errcode`s, typed.
//!
//! The meanings are WeChat's documented ones (全局返回码, the WXBizMsgCrypt and
//! WXBizDataCrypt sample error codes). An errcode this project does not name is kept as
//! [`ErrCode::Other`], never lost.

use std::fmt;

macro_rules! errcodes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal => $meaning:literal, )*) => {
        /// A WeChat `errcode`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrCode {
            $( $(#[$doc])* $name, )*
            /// An errcode this project does not name.
            Other(i64),
        }

        impl ErrCode {
            /// The typed errcode of a number.
            pub fn from_code(code: i64) -> Self {
                match code {
                    $( $code => ErrCode::$name, )*
                    other => ErrCode::Other(other),
                }
            }

            /// The number WeChat sends.
            pub fn code(self) -> i64 {
                match self {
                    $( ErrCode::$name => $code, )*
                    ErrCode::Other(code) => code,
                }
            }

            /// WeChat's documented meaning, in English.
            pub fn meaning(self) -> &'static str {
                match self {
                    $( ErrCode::$name => $meaning, )*
                    ErrCode::Other(_) => "errcode not known to wxgate",
                }
            }
        }
    };
}

errcodes! {
    /// 系统繁忙: retry later.
    SystemBusy = -1 => "system busy, retry later",
    Ok = 0 => "ok",
    /// Returned both for a wrong AppSecret when fetching a token and for an invalid
    /// (for example superseded) access_token when calling an API.
    InvalidCredential = 40001 => "invalid credential: wrong AppSecret, or access_token invalid or not the latest",
    InvalidGrantType = 40002 => "invalid grant_type",
    InvalidOpenid = 40003 => "invalid openid",
    InvalidMediaType = 40004 => "invalid media type",
    InvalidFileType = 40005 => "invalid file type",
    InvalidFileSize = 40006 => "invalid file size: over the limit of the media type",
    InvalidMediaId = 40007 => "invalid media_id",
    InvalidButtonSize = 40016 => "invalid button size: a menu has 1 to 3 buttons",
    InvalidAppId = 40013 => "invalid appid",
    InvalidAccessToken = 40014 => "invalid access_token",
    InvalidCode = 40029 => "invalid code: unknown or expired oauth code / js_code",
    InvalidRefreshToken = 40030 => "invalid refresh_token",
    InvalidParameter = 40097 => "invalid args",
    InvalidAppSecret = 40125 => "invalid appsecret",
    CodeBeenUsed = 40163 => "code been used",
    /// getwxacodeunlimit: scene empty or over 32 characters, or the body not JSON.
    /// generatescheme / generate_urllink: the page path is not one of the Mini Program's
    /// (it starts with `/`, or does not exist in the published version).
    InvalidPagePath = 40165 => "invalid weapp pagepath",
    InvalidScene = 40169 => "invalid length for scene, or the data is not json string",
    InvalidIp = 40164 => "invalid ip: caller is not in the IP whitelist",
    /// The open platform's form of 40164: the caller is not in the third-party
    /// platform's IP whitelist.
    ClientIpNotRegistered = 61004 => "access clientip is not registered: caller is not in the platform's IP whitelist",
    /// The `component_verify_ticket` sent is older than its 12 hours: use the newest
    /// WeChat pushed (or ask for a push with `api_start_push_ticket`).
    ComponentTicketExpired = 61005 => "component ticket is expired",
    /// The `component_verify_ticket` sent is not one WeChat pushed to this component.
    ComponentTicketInvalid = 61006 => "component ticket is invalid",
    /// The authorizer's refresh token no longer works (the merchant must authorize again,
    /// or it was replaced by a newer one).
    RefreshTokenInvalid = 61023 => "refresh_token is invalid",
    /// The appid is not a third-party platform's (component's).
    InvalidComponent = 61011 => "invalid component",
    /// WeCom's form of 40164: the caller is not among the app's trusted IPs.
    IpNotAllowed = 60020 => "not allow to access from your ip: caller is not among the trusted IPs",
    AccessTokenMissing = 41001 => "access_token missing",
    AppIdMissing = 41002 => "appid missing",
    SecretMissing = 41004 => "appsecret missing",
    MediaDataMissing = 41005 => "media data missing",
    CodeMissing = 41008 => "code missing",
    OpenidMissing = 41009 => "openid missing",
    AccessTokenExpired = 42001 => "access_token expired",
    RefreshTokenExpired = 42002 => "refresh_token expired",
    CodeExpired = 42003 => "oauth code expired",
    RequirePost = 43002 => "POST request required",
    /// Subscribe messages: the user has not accepted (or has used up) this template.
    UserRefusedMessage = 43101 => "user refuse to accept the msg: no subscription for this template",
    RequireSubscribe = 43004 => "require subscribe: the user does not follow the account",
    DataFormatError = 44002 => "empty post data",
    ApiDailyQuota = 45009 => "reach max api daily quota limit",
    ApiMinuteQuota = 45011 => "api minute-quota reach limit, retry in a minute",
    ResponseOutOfTime = 45015 => "response out of time limit or subscription is canceled",
    ForceRefreshLimit = 45033 => "forced refresh of the stable access_token over its daily limit",
    /// Subscribe messages: `data` does not fit the template (each field `{"value": ...}`).
    ArgumentInvalid = 47003 => "argument invalid: data does not fit the template",
    InvalidJson = 47001 => "data format error: invalid JSON body",
    MenuNotExist = 46003 => "menu no exist",
    /// checksession / resetusersessionkey: the login-state signature does not match the
    /// session_key WeChat holds (a newer login replaced it).
    InvalidSessionSignature = 87009 => "invalid signature: the session_key is not the user's current one",
    ApiUnauthorized = 48001 => "api unauthorized: the account has no permission for this API",
    UserUnauthorized = 50001 => "user unauthorized: the user has not granted this API",
    ClearQuotaLimit = 48006 => "forbid to clear quota because of reaching the limit",
    /// WXBizMsgCrypt: 签名验证错误.
    ValidateSignatureError = -40001 => "msg_signature verification failed",
    /// WXBizMsgCrypt: xml解析失败.
    ParseXmlError = -40002 => "parsing the message failed",
    /// WXBizMsgCrypt: sha加密生成签名失败.
    ComputeSignatureError = -40003 => "computing the signature failed",
    /// WXBizMsgCrypt: encodingAesKey 非法.
    IllegalAesKey = -40004 => "illegal EncodingAESKey",
    /// WXBizMsgCrypt: appid 校验错误.
    ValidateAppidError = -40005 => "appid in the message does not match",
    /// WXBizMsgCrypt: aes 加密失败.
    EncryptAesError = -40006 => "AES encryption failed",
    /// WXBizMsgCrypt: aes 解密失败.
    DecryptAesError = -40007 => "AES decryption failed",
    /// WXBizMsgCrypt: 解密后得到的buffer非法.
    IllegalBuffer = -40008 => "decrypted buffer is illegal",
    /// WXBizMsgCrypt: base64加密失败.
    EncodeBase64Error = -40009 => "base64 encoding failed",
    /// WXBizMsgCrypt: base64解密失败.
    DecodeBase64Error = -40010 => "base64 decoding failed",
    /// WXBizMsgCrypt: 生成xml失败.
    GenReturnXmlError = -40011 => "generating the reply XML failed",
    /// WXBizDataCrypt: encodingAesKey 非法 (session_key is not 24 base64 characters).
    DataIllegalAesKey = -41001 => "illegal session_key",
    /// WXBizDataCrypt: iv 非法.
    DataIllegalIv = -41002 => "illegal iv",
    /// WXBizDataCrypt: aes 解密失败 / 解密后得到的buffer非法.
    DataIllegalBuffer = -41003 => "decrypted encryptedData is illegal (stale session_key?)",
}

impl ErrCode {
    /// Whether WeChat refused the caller's IP address (40164, and the open platform's
    /// 61004 and WeCom's 60020): the server's egress IP is not in the account's IP
    /// whitelist. [`refused_ip`] reads the address WeChat saw from the errmsg.
    pub fn is_ip_not_whitelisted(self) -> bool {
        matches!(
            self,
            ErrCode::InvalidIp | ErrCode::ClientIpNotRegistered | ErrCode::IpNotAllowed
        )
    }

    /// Whether the errcode says the access_token used for a call is no longer valid, so a
    /// fresh token (compare-and-refresh) and one retry are the right answer.
    pub fn is_access_token_invalid(self) -> bool {
        matches!(
            self,
            ErrCode::InvalidCredential | ErrCode::InvalidAccessToken | ErrCode::AccessTokenExpired
        )
    }

    /// Whether retrying the same call later may succeed (WeChat busy).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrCode::SystemBusy)
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "errcode {}: {}", self.code(), self.meaning())
    }
}

impl From<i64> for ErrCode {
    fn from(code: i64) -> Self {
        ErrCode::from_code(code)
    }
}

/// The IP address WeChat saw, from the errmsg of a refused IP: `invalid ip 1.2.3.4 ipv6
/// ::ffff:1.2.3.4, not in whitelist rid: ...` (40164), `... requestIP: 1.2.3.4 ...`
/// (61004) or `... from ip: 1.2.3.4, ...` (60020).
pub fn refused_ip(errmsg: &str) -> Option<std::net::IpAddr> {
    ["invalid ip ", "requestIP: ", "from ip: "]
        .iter()
        .find_map(|marker| {
            let rest = &errmsg[errmsg.find(marker)? + marker.len()..];
            let token = rest.split(|c: char| c.is_whitespace() || c == ',').next()?;
            token.parse().ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ip_wechat_saw_is_read_from_its_errmsg() {
        let ip = |m| refused_ip(m).map(|a| a.to_string());
        assert_eq!(
            ip("invalid ip 118.190.42.90 ipv6 ::ffff:118.190.42.90, not in whitelist rid: 60196b9b-4c5ba79c-066b49c8").as_deref(),
            Some("118.190.42.90")
        );
        assert_eq!(
            ip("invalid ip 123.123.123.123, not in whitelist").as_deref(),
            Some("123.123.123.123")
        );
        assert_eq!(
            ip("access clientip is not registered requestIP: 203.0.113.9 rid: 1").as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(
            ip("not allow to access from your ip, hint: [1], from ip: 198.51.100.4, more info at https://open.work.weixin.qq.com").as_deref(),
            Some("198.51.100.4")
        );
        assert_eq!(ip("invalid appsecret"), None);
        assert!(ErrCode::from_code(40164).is_ip_not_whitelisted());
        assert!(!ErrCode::from_code(40125).is_ip_not_whitelisted());
    }

    #[test]
    fn codes_round_trip() {
        for code in [
            -1, 0, 40001, 40002, 40013, 40014, 40029, 40125, 40163, 40164, 61004, 60020, 41001,
            42001, 42002, 43004, 45009, 45015, 48001, 50001, -41001, -41002, -41003,
        ] {
            let e = ErrCode::from_code(code);
            assert!(!matches!(e, ErrCode::Other(_)), "{code} should be named");
            assert_eq!(e.code(), code);
        }
        for code in -40011..=-40001 {
            assert!(!matches!(ErrCode::from_code(code), ErrCode::Other(_)));
        }
        assert_eq!(ErrCode::from_code(12345), ErrCode::Other(12345));
        assert_eq!(ErrCode::Other(12345).code(), 12345);
    }

    #[test]
    fn token_invalidity() {
        assert!(ErrCode::from_code(40001).is_access_token_invalid());
        assert!(ErrCode::from_code(40014).is_access_token_invalid());
        assert!(ErrCode::from_code(42001).is_access_token_invalid());
        assert!(!ErrCode::from_code(45009).is_access_token_invalid());
        assert!(!ErrCode::from_code(-1).is_access_token_invalid());
        assert!(ErrCode::from_code(-1).is_retryable());
    }

    #[test]
    fn display_names_code_and_meaning() {
        assert_eq!(
            ErrCode::AccessTokenExpired.to_string(),
            "errcode 42001: access_token expired"
        );
    }
}

//! Followers (`/cgi-bin/user/get`, `/cgi-bin/user/info`) and the messages an app sends
//! (customer-service and template messages), kept for tests to read back.

use wxgate_proto::ErrCode;

use super::{Platform, Sent, WxError, WxResult};

impl Platform {
    /// `GET /cgi-bin/user/get`: followers in pages of at most 10000.
    pub fn followers(&self, appid: &str, next_openid: &str) -> WxResult<serde_json::Value> {
        let all = self.followers.get(appid).cloned().unwrap_or_default();
        let start = if next_openid.is_empty() {
            0
        } else {
            all.iter()
                .position(|o| o == next_openid)
                .map(|i| i + 1)
                .ok_or_else(|| WxError::with(ErrCode::InvalidOpenid, "invalid next_openid"))?
        };
        let page: Vec<String> = all.iter().skip(start).take(10_000).cloned().collect();
        let next = page.last().cloned().unwrap_or_default();
        let mut v = serde_json::json!({
            "total": all.len(),
            "count": page.len(),
            "next_openid": next,
        });
        if !page.is_empty() {
            v["data"] = serde_json::json!({ "openid": page });
        }
        Ok(v)
    }

    /// `GET /cgi-bin/user/info` for a follower.
    pub fn user_info(&self, appid: &str, openid: &str) -> WxResult<serde_json::Value> {
        if openid.is_empty() {
            return Err(WxError::new(ErrCode::OpenidMissing));
        }
        let u = self
            .user(appid, openid)
            .ok_or_else(|| WxError::new(ErrCode::InvalidOpenid))?;
        let mut v = serde_json::json!({
            "subscribe": 1,
            "openid": u.openid,
            "language": "zh_CN",
            "subscribe_time": 1_700_000_000,
            "remark": "",
            "groupid": 0,
            "tagid_list": [],
            "subscribe_scene": "ADD_SCENE_QR_CODE",
            "qr_scene": 0,
            "qr_scene_str": "",
        });
        if let Some(unionid) = u.unionid {
            v["unionid"] = unionid.into();
        }
        Ok(v)
    }

    /// Records a message the app sent, after checking the recipient follows the app.
    pub fn record_sent(&self, appid: &str, kind: &str, body: serde_json::Value) -> WxResult<u64> {
        let touser = body
            .get("touser")
            .and_then(|t| t.as_str())
            .unwrap_or_default();
        if touser.is_empty() {
            return Err(WxError::new(ErrCode::OpenidMissing));
        }
        if self.user(appid, touser).is_none() {
            return Err(WxError::new(ErrCode::InvalidOpenid));
        }
        let now = self.now();
        let mut s = self.lock();
        s.next_msgid += 1;
        let id = s.next_msgid;
        s.sent.push(Sent {
            appid: appid.to_owned(),
            kind: kind.to_owned(),
            at: now,
            body,
        });
        Ok(id)
    }

    pub fn sent(&self, appid: Option<&str>) -> Vec<Sent> {
        self.lock()
            .sent
            .iter()
            .filter(|m| appid.is_none_or(|a| a == m.appid))
            .cloned()
            .collect()
    }
}

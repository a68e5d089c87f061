//! Events (`MsgType` = `event`): subscriptions, scans, location, menus, template and
//! mass-send job results, the Mini Program's customer-service session, media check and
//! subscribe-message events, and any other kept by name.

use serde::Serialize;

use super::{num, opt, owned, req, sub};
use crate::xml::{Fields, Value};
use crate::Result;

/// An event (`MsgType` = `event`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A follow; from a parametric QR code `event_key` is `qrscene_<scene>` with a ticket.
    Subscribe {
        event_key: Option<String>,
        ticket: Option<String>,
    },
    Unsubscribe,
    /// A follower scanned a parametric QR code.
    Scan {
        event_key: String,
        ticket: Option<String>,
    },
    /// Reported location (上报地理位置).
    Location {
        latitude: f64,
        longitude: f64,
        precision: f64,
    },
    Click {
        event_key: String,
    },
    View {
        /// The URL of the menu item.
        event_key: String,
        menu_id: Option<String>,
    },
    ScancodePush {
        event_key: String,
        scan_type: String,
        scan_result: String,
    },
    ScancodeWaitmsg {
        event_key: String,
        scan_type: String,
        scan_result: String,
    },
    PicSysphoto {
        event_key: String,
        count: u32,
        pic_md5_sums: Vec<String>,
    },
    PicPhotoOrAlbum {
        event_key: String,
        count: u32,
        pic_md5_sums: Vec<String>,
    },
    PicWeixin {
        event_key: String,
        count: u32,
        pic_md5_sums: Vec<String>,
    },
    LocationSelect {
        event_key: String,
        location_x: f64,
        location_y: f64,
        scale: f64,
        label: String,
        poiname: Option<String>,
    },
    TemplateSendJobFinish {
        msg_id: String,
        status: String,
    },
    MassSendJobFinish {
        msg_id: String,
        status: String,
        total_count: u64,
        filter_count: u64,
        sent_count: u64,
        error_count: u64,
    },
    ViewMiniprogram {
        /// The page path of the menu item.
        event_key: String,
        menu_id: Option<String>,
    },
    /// A user opened the Mini Program's customer-service session (进入会话事件).
    UserEnterTempsession {
        /// The `session-from` of the `<button open-type="contact">`.
        session_from: String,
    },
    /// The asynchronous result of `mediaCheckAsync` (音视频内容安全识别); `trace_id` names
    /// the check it answers.
    WxaMediaCheck {
        appid: String,
        trace_id: String,
        version: Option<u32>,
        /// `result.suggest`: `risky`, `pass` or `review` (version 2).
        suggest: Option<String>,
        /// `result.label`: the category, 100 for normal (version 2).
        label: Option<u64>,
    },
    /// The user answered a subscribe-message popup (`subscribe_msg_popup_event`).
    SubscribeMsgPopup {
        list: Vec<SubscribeChoice>,
    },
    /// The user changed subscriptions in the settings (`subscribe_msg_change_event`).
    SubscribeMsgChange {
        list: Vec<SubscribeChoice>,
    },
    /// The result of sending a subscribe message (`subscribe_msg_sent_event`).
    SubscribeMsgSent {
        list: Vec<SubscribeSent>,
    },
    /// An event wxgate does not model; its fields are in [`Message::raw`].
    Unknown {
        name: String,
    },
}

/// One template's answer in a subscribe-message popup or settings change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscribeChoice {
    pub template_id: String,
    /// `accept` or `reject`.
    pub subscribe_status_string: String,
    pub popup_scene: Option<String>,
}

/// One subscribe message's delivery result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscribeSent {
    pub template_id: String,
    pub msg_id: String,
    /// 0 when delivered.
    pub error_code: i64,
    pub error_status: String,
}

/// The `List` items of a subscribe-message event: in XML inside its wrapper element
/// (`SubscribeMsgPopupEvent`), in JSON at the top; one item or several (WeChat sends a
/// single item as an object, more as an array: both are the field repeated here).
fn subscribe_list<'a>(f: &'a Fields, wrapper: &str) -> impl Iterator<Item = &'a Fields> {
    f.node(wrapper)
        .unwrap_or(f)
        .all("List")
        .filter_map(Value::as_node)
}

fn choices(f: &Fields, wrapper: &str) -> Result<Vec<SubscribeChoice>> {
    subscribe_list(f, wrapper)
        .map(|item| {
            Ok(SubscribeChoice {
                template_id: owned(item, "TemplateId")?,
                subscribe_status_string: owned(item, "SubscribeStatusString")?,
                popup_scene: opt(item, "PopupScene"),
            })
        })
        .collect()
}

fn sent(f: &Fields) -> Result<Vec<SubscribeSent>> {
    subscribe_list(f, "SubscribeMsgSentEvent")
        .map(|item| {
            Ok(SubscribeSent {
                template_id: owned(item, "TemplateId")?,
                msg_id: owned(item, "MsgID")?,
                error_code: num(item, "ErrorCode")?,
                error_status: owned(item, "ErrorStatus")?,
            })
        })
        .collect()
}

fn pics(f: &Fields) -> Result<(u32, Vec<String>)> {
    let info = sub(f, "SendPicsInfo")?;
    let count = num(info, "Count")?;
    let md5s = info
        .node("PicList")
        .map(|list| {
            list.all("item")
                .filter_map(Value::as_node)
                .filter_map(|item| item.text("PicMd5Sum").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok((count, md5s))
}

fn scan_code(f: &Fields) -> Result<(String, String)> {
    let info = sub(f, "ScanCodeInfo")?;
    Ok((owned(info, "ScanType")?, owned(info, "ScanResult")?))
}

pub(super) fn parse_event(f: &Fields) -> Result<Event> {
    let name = req(f, "Event")?;
    let key = || owned(f, "EventKey");
    Ok(match name.to_ascii_lowercase().as_str() {
        "subscribe" => Event::Subscribe {
            event_key: opt(f, "EventKey").filter(|k| !k.is_empty()),
            ticket: opt(f, "Ticket").filter(|t| !t.is_empty()),
        },
        "unsubscribe" => Event::Unsubscribe,
        "scan" => Event::Scan {
            event_key: key()?,
            ticket: opt(f, "Ticket"),
        },
        "location" => Event::Location {
            latitude: num(f, "Latitude")?,
            longitude: num(f, "Longitude")?,
            precision: num(f, "Precision")?,
        },
        "click" => Event::Click { event_key: key()? },
        "view" => Event::View {
            event_key: key()?,
            menu_id: opt(f, "MenuId"),
        },
        "scancode_push" => {
            let (scan_type, scan_result) = scan_code(f)?;
            Event::ScancodePush {
                event_key: key()?,
                scan_type,
                scan_result,
            }
        }
        "scancode_waitmsg" => {
            let (scan_type, scan_result) = scan_code(f)?;
            Event::ScancodeWaitmsg {
                event_key: key()?,
                scan_type,
                scan_result,
            }
        }
        "pic_sysphoto" => {
            let (count, pic_md5_sums) = pics(f)?;
            Event::PicSysphoto {
                event_key: key()?,
                count,
                pic_md5_sums,
            }
        }
        "pic_photo_or_album" => {
            let (count, pic_md5_sums) = pics(f)?;
            Event::PicPhotoOrAlbum {
                event_key: key()?,
                count,
                pic_md5_sums,
            }
        }
        "pic_weixin" => {
            let (count, pic_md5_sums) = pics(f)?;
            Event::PicWeixin {
                event_key: key()?,
                count,
                pic_md5_sums,
            }
        }
        "location_select" => {
            let info = sub(f, "SendLocationInfo")?;
            Event::LocationSelect {
                event_key: key()?,
                location_x: num(info, "Location_X")?,
                location_y: num(info, "Location_Y")?,
                scale: num(info, "Scale")?,
                label: owned(info, "Label")?,
                poiname: opt(info, "Poiname"),
            }
        }
        "templatesendjobfinish" => Event::TemplateSendJobFinish {
            msg_id: owned(f, "MsgID")?,
            status: owned(f, "Status")?,
        },
        "masssendjobfinish" => Event::MassSendJobFinish {
            msg_id: owned(f, "MsgID")?,
            status: owned(f, "Status")?,
            total_count: num(f, "TotalCount")?,
            filter_count: num(f, "FilterCount")?,
            sent_count: num(f, "SentCount")?,
            error_count: num(f, "ErrorCount")?,
        },
        "view_miniprogram" => Event::ViewMiniprogram {
            event_key: key()?,
            menu_id: opt(f, "MenuId"),
        },
        "user_enter_tempsession" => Event::UserEnterTempsession {
            session_from: opt(f, "SessionFrom").unwrap_or_default(),
        },
        "wxa_media_check" => {
            let result = f.node("result");
            Event::WxaMediaCheck {
                appid: owned(f, "appid")?,
                trace_id: owned(f, "trace_id")?,
                version: f.text("version").and_then(|v| v.trim().parse().ok()),
                suggest: result.and_then(|r| opt(r, "suggest")),
                label: result.and_then(|r| r.text("label")?.trim().parse().ok()),
            }
        }
        "subscribe_msg_popup_event" => Event::SubscribeMsgPopup {
            list: choices(f, "SubscribeMsgPopupEvent")?,
        },
        "subscribe_msg_change_event" => Event::SubscribeMsgChange {
            list: choices(f, "SubscribeMsgChangeEvent")?,
        },
        "subscribe_msg_sent_event" => Event::SubscribeMsgSent { list: sent(f)? },
        _ => Event::Unknown {
            name: name.to_owned(),
        },
    })
}

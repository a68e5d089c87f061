//! Events (`MsgType` = `event`): subscriptions, scans, location, menus, template and
//! mass-send job results, and any other kept by name.

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
    /// An event wxgate does not model; its fields are in [`Message::raw`].
    Unknown {
        name: String,
    },
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
        _ => Event::Unknown {
            name: name.to_owned(),
        },
    })
}

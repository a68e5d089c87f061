//! WeChat's binary APIs: temporary media upload and download (`/cgi-bin/media/upload`,
//! `/cgi-bin/media/get`) and the unlimited Mini Program code
//! (`/wxa/getwxacodeunlimit`), which answers an image. They let a gateway's proxy be
//! shown carrying multipart uploads in and binary answers out, unchanged.

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Json, Response};
use serde_json::Value;
use wxgate_proto::api::media::UploadedMedia;
use wxgate_proto::ErrCode;

use super::param;
use super::wechat::RawCall;
use crate::platform::{random_value, Media, Platform, WxError, WxResult};

/// WeChat's size limit of a media type (新增临时素材): image 10 MB, voice 2 MB, video
/// 10 MB, thumb 64 KB.
fn size_limit(kind: &str) -> Option<usize> {
    match kind {
        "image" | "video" => Some(10 << 20),
        "voice" => Some(2 << 20),
        "thumb" => Some(64 << 10),
        _ => None,
    }
}

/// One part of a `multipart/form-data` body: its form name, file name, type and bytes.
struct Part<'a> {
    name: &'a str,
    filename: &'a str,
    content_type: &'a str,
    data: &'a [u8],
}

/// The parts of a multipart body with `boundary` (RFC 7578), enough for what SDKs send.
fn multipart_parts<'a>(body: &'a [u8], boundary: &str) -> Vec<Part<'a>> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, delimiter) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = std::str::from_utf8(&rest[..head_end]).unwrap_or("");
        let after = &rest[head_end + 4..];
        let Some(end) = find(after, delimiter) else {
            break;
        };
        // The data ends with the CRLF before the next delimiter.
        let data = after[..end].strip_suffix(b"\r\n").unwrap_or(&after[..end]);
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            head.find(&key).and_then(|i| {
                let v = &head[i + key.len()..];
                v.find('"').map(|j| &v[..j])
            })
        };
        let content_type = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-type"))
            })
            .map_or("application/octet-stream", |(_, v)| v.trim());
        parts.push(Part {
            name: attr(" name").or_else(|| attr(";name")).unwrap_or(""),
            filename: attr("filename").unwrap_or(""),
            content_type,
            data,
        });
        rest = &after[end..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `POST /cgi-bin/media/upload?access_token=&type=image|voice|video|thumb`, the file as
/// the multipart field `media`.
pub fn upload(p: &Platform, c: RawCall) -> WxResult<Response> {
    let kind = param(&c.query, "type");
    let limit = size_limit(kind).ok_or_else(|| WxError::new(ErrCode::InvalidMediaType))?;
    let boundary = c
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|ct| ct.starts_with("multipart/form-data"))
        .and_then(|ct| {
            ct.split(';')
                .find_map(|p| p.trim().strip_prefix("boundary="))
        })
        .map(|b| b.trim_matches('"').to_owned())
        .ok_or_else(|| WxError::new(ErrCode::MediaDataMissing))?;
    let parts = multipart_parts(&c.body, &boundary);
    let part = parts
        .iter()
        .find(|part| part.name == "media")
        .ok_or_else(|| WxError::new(ErrCode::MediaDataMissing))?;
    if part.data.len() > limit {
        return Err(WxError::new(ErrCode::InvalidFileSize));
    }
    let media_id = random_value("", 64);
    p.media.lock().unwrap().insert(
        media_id.clone(),
        Media {
            kind: kind.to_owned(),
            filename: part.filename.to_owned(),
            content_type: part.content_type.to_owned(),
            bytes: Bytes::copy_from_slice(part.data),
        },
    );
    let uploaded = UploadedMedia {
        media_type: kind.to_owned(),
        media_id,
        created_at: p.now(),
    };
    Ok(Json(uploaded).into_response())
}

/// `GET /cgi-bin/media/get?access_token=&media_id=`: the file, with its type and name.
pub fn get(p: &Platform, c: RawCall) -> WxResult<Response> {
    let store = p.media.lock().unwrap();
    let m = store
        .get(param(&c.query, "media_id"))
        .filter(|m| m.kind != "video")
        .ok_or_else(|| WxError::new(ErrCode::InvalidMediaId))?;
    let disposition = format!("attachment; filename=\"{}\"", m.filename.replace('"', ""));
    Ok((
        [
            (header::CONTENT_TYPE, m.content_type.clone()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        m.bytes.clone(),
    )
        .into_response())
}

/// `POST /wxa/getwxacodeunlimit?access_token= {scene, page, width, ...}`: a PNG (WeChat
/// answers an image; errors as JSON). The picture is the scene's digest drawn as a
/// grid, so identical requests give identical bytes, `width` pixels wide (430 by
/// default, held between WeChat's documented 280 and 1280).
pub fn getwxacodeunlimit(_: &Platform, c: RawCall) -> WxResult<Response> {
    let b: Value =
        serde_json::from_slice(&c.body).map_err(|_| WxError::new(ErrCode::InvalidScene))?;
    let scene = b.get("scene").and_then(Value::as_str).unwrap_or("");
    if scene.is_empty() || scene.chars().count() > 32 {
        return Err(WxError::new(ErrCode::InvalidScene));
    }
    // A number, or its digits as a string (SDKs send both).
    let width = match b.get("width") {
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(v) => v.as_u64(),
        None => None,
    };
    let width = width.unwrap_or(430);
    let png = crate::png::grid(scene.as_bytes(), width.clamp(280, 1280) as u32);
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parts_of_a_multipart_body() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\x00\x01\r\n\xff\r\n--XyZ\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\n{}\r\n--XyZ--\r\n";
        let parts = multipart_parts(body, "XyZ");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "media");
        assert_eq!(parts[0].filename, "a.jpg");
        assert_eq!(parts[0].content_type, "image/jpeg");
        assert_eq!(parts[0].data, b"\x00\x01\r\n\xff");
        assert_eq!(parts[1].name, "description");
        assert_eq!(parts[1].data, b"{}");
    }
}

//! 素材管理: temporary media and permanent material. An upload's body is multipart (the
//! file as the field `media`), not JSON, and a download answers the file itself, so the
//! request types carry only the query; the gateway proxies these calls as they come.

use serde::{Deserialize, Serialize};

/// `POST /cgi-bin/media/upload?access_token=&type=image|voice|video|thumb`, the file as
/// the multipart field `media`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadMedia {
    #[serde(rename = "type")]
    pub media_type: String,
}

/// An upload's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedMedia {
    #[serde(rename = "type")]
    pub media_type: String,
    pub media_id: String,
    pub created_at: i64,
}

/// `GET /cgi-bin/media/get?access_token=&media_id=`: the file, or WeChat's JSON error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetMedia {
    pub media_id: String,
}

super::proxied! {
    /// `POST /cgi-bin/media/uploadimg?access_token=`: an image for an article (multipart).
    UploadImage;
    /// `POST /cgi-bin/material/add_material?access_token=&type=` (multipart).
    AddMaterial;
    /// `POST /cgi-bin/material/get_material?access_token= {media_id}`
    GetMaterial;
    /// `POST /cgi-bin/material/del_material?access_token= {media_id}`
    DeleteMaterial;
    /// `POST /cgi-bin/material/batchget_material?access_token= {type, offset, count}`
    BatchGetMaterial;
}

super::endpoints! {
    UploadMedia: Post "/cgi-bin/media/upload", WithAccessToken -> UploadedMedia;
    UploadImage: Post "/cgi-bin/media/uploadimg", WithAccessToken -> serde_json::Value;
    GetMedia: Get "/cgi-bin/media/get", WithAccessToken -> super::Ack;
    AddMaterial: Post "/cgi-bin/material/add_material", WithAccessToken -> serde_json::Value;
    GetMaterial: Post "/cgi-bin/material/get_material", WithAccessToken -> serde_json::Value;
    DeleteMaterial: Post "/cgi-bin/material/del_material", WithAccessToken -> super::Ack;
    BatchGetMaterial: Post "/cgi-bin/material/batchget_material", WithAccessToken -> serde_json::Value;
}

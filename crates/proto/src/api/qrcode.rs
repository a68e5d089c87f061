//! 生成带参数的二维码: QR codes an Official Account's followers scan, proxied as the
//! caller writes them.

super::proxied! {
    /// `POST /cgi-bin/qrcode/create?access_token= {expire_seconds, action_name, action_info}`
    CreateQrCode;
}

super::endpoints! {
    CreateQrCode: Post "/cgi-bin/qrcode/create", WithAccessToken -> serde_json::Value;
}

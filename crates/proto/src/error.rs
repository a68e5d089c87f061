use crate::errcode::ErrCode;

/// Everything that can be wrong with protocol input. Each variant says what was wrong in
/// words a developer can act on; none carries a key or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("signature mismatch")]
    SignatureMismatch,
    #[error("invalid EncodingAESKey: {0}")]
    InvalidAesKey(&'static str),
    #[error("invalid base64 in {0}")]
    Base64(&'static str),
    #[error("ciphertext of {0} bytes is not a positive multiple of the AES block size")]
    CiphertextLength(usize),
    #[error("bad PKCS#7 padding")]
    Padding,
    #[error("declared message length does not fit the decrypted data")]
    MessageLength,
    #[error("appid mismatch: the message is for {actual:?}")]
    AppIdMismatch { actual: String },
    #[error("decrypted data is not UTF-8")]
    Utf8,
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("XML with a document type declaration (DTD) is refused")]
    Dtd,
    #[error("document of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("invalid field {field}: {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    #[error("a news reply carries 1 to 8 articles, not {0}")]
    NewsArticles(usize),
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("session_key must be 16 bytes in base64")]
    InvalidSessionKey,
    #[error("iv must be 16 bytes in base64")]
    InvalidIv,
    #[error("watermark appid mismatch: the data is for {actual:?}")]
    WatermarkMismatch { actual: String },
    #[error("no valid {0} PEM block")]
    Pem(&'static str),
    #[error("invalid key: {0}")]
    Key(&'static str),
    #[error("malformed DER: {0}")]
    Der(&'static str),
    #[error("the ciphertext does not open with this key, nonce and associated_data (bad GCM tag)")]
    Aead,
    #[error("a WeChat Pay signature probe (WECHATPAY/SIGNTEST/): refused by design")]
    SignTest,
    #[error("the signed timestamp is {by} s from now (at most 300 s allowed)")]
    Skewed { by: i64 },
    #[error("no key or certificate with serial {0:?}")]
    UnknownSerial(String),
}

impl Error {
    /// The error code Tencent's WXBizMsgCrypt / WXBizDataCrypt samples give this failure,
    /// so logs and CLI output can be held against WeChat's documentation.
    pub fn sample_code(&self) -> ErrCode {
        use Error::*;
        match self {
            SignatureMismatch => ErrCode::ValidateSignatureError,
            InvalidAesKey(_) => ErrCode::IllegalAesKey,
            Base64(_) => ErrCode::DecodeBase64Error,
            CiphertextLength(_) | Padding | MessageLength | Utf8 => ErrCode::DecryptAesError,
            AppIdMismatch { .. } => ErrCode::ValidateAppidError,
            Xml(_) | Dtd | TooLarge { .. } | MissingField(_) | InvalidField { .. } | Json(_) => {
                ErrCode::ParseXmlError
            }
            NewsArticles(_) => ErrCode::GenReturnXmlError,
            InvalidSessionKey => ErrCode::DataIllegalAesKey,
            InvalidIv => ErrCode::DataIllegalIv,
            WatermarkMismatch { .. } => ErrCode::DataIllegalBuffer,
            // WeChat Pay's rules have no such samples; the nearest meaning.
            SignTest | Skewed { .. } | UnknownSerial(_) => ErrCode::ValidateSignatureError,
            Pem(_) | Key(_) | Der(_) => ErrCode::IllegalAesKey,
            Aead => ErrCode::DecryptAesError,
        }
    }
}

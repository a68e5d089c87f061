//! # wxgate-proto: the WeChat wire protocol as pure functions
//!
//! This crate owns everything WeChat defines on the wire, and nothing else: no I/O, no
//! async, no configuration. Every other part of wxgate calls it; nothing re-implements it.
//!
//! - [`signature`]: the server signature (`signature`) and the message signature
//!   (`msg_signature`), with constant-time checks.
//! - [`b64`]: base64 as WeChat's samples read (leniently) and write it.
//! - [`crypto`]: WXBizMsgCrypt, the AES message encryption of the safe and compatible
//!   modes (`EncodingAESKey`, 32-byte PKCS#7, random + length + message + appid).
//! - [`xml`]: a small, safe reader for WeChat's flat `<xml>` documents (no DTD, no entity
//!   expansion, size-limited) and the CDATA writer.
//! - [`json`]: WeChat's JSON pushes (数据格式 JSON), read into the same fields as XML.
//! - [`message`]: the typed model of every message and event an Official Account receives.
//! - [`push`]: a push on the wire: the account's encryption mode and the encrypted
//!   envelope.
//! - [`reply`]: passive replies (text, image, voice, video, music, news, `success`) and the
//!   encrypted reply envelope.
//! - [`jssdk`]: the JS-SDK `wx.config` signature and the nonce generator.
//! - [`miniprogram`]: `rawData` signature checks and `encryptedData` decryption.
//! - [`pay`]: WeChat Pay's API v3 rules: request signatures, signed notifications and
//!   answers, the encrypted resource, the keys and certificates.
//! - [`component`]: the open platform's pushes (the verify ticket, authorization events).
//! - [`errcode`]: WeChat's `errcode`s as a typed enum with their documented meanings.
//! - [`api`]: WeChat's server API as types: each endpoint's path, method, request and
//!   answer, shared by the gateway and the sandbox.
//!
//! Functions that need randomness take it as an argument (`random16`, a nonce) and have a
//! convenience twin that draws it from the operating system, so every output can be
//! reproduced byte for byte in tests against WeChat's published examples.

pub mod api;
pub mod b64;
pub mod component;
pub mod crypto;
pub mod errcode;
mod error;
pub mod json;
pub mod jssdk;
pub mod message;
pub mod miniprogram;
pub mod pay;
pub mod push;
pub mod reply;
pub mod signature;
pub mod xml;

pub use crypto::{EncodingAesKey, MsgCrypt};
pub use errcode::ErrCode;
pub use error::Error;
pub use json::PushFormat;
pub use message::{Event, Message, MessageKind, SubscribeChoice, SubscribeSent};
pub use push::{Envelope, MessageMode};
pub use reply::{Article, Reply};

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

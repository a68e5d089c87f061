//! The crate's one error type.

use wxgate_proto::ErrCode;

/// What can go wrong in the gateway. Messages never carry a secret or a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The configuration is wrong; the message says where and how.
    #[error("config: {0}")]
    Config(String),
    /// The store failed or cannot be reached.
    #[error("store: {0}")]
    Store(String),
    /// WeChat could not be reached or answered something that is not WeChat's JSON.
    #[error("upstream {endpoint}: {reason}")]
    Transport { endpoint: String, reason: String },
    /// WeChat answered with an errcode.
    #[error("upstream {endpoint}: {code} ({errmsg})")]
    WeChat {
        endpoint: String,
        code: ErrCode,
        errmsg: String,
    },
    /// Another instance holds the refresh lock and no new value appeared in time.
    #[error("timed out waiting for another instance to refresh the {0}")]
    LockTimeout(String),
    /// A request named an account that is not configured.
    #[error("unknown account {0:?}")]
    UnknownAccount(String),
    /// A third-party platform may not act for this merchant in this way: it has not
    /// authorized the platform (or withdrew), must authorize it again, or did not grant
    /// the permission set the call needs. The message names what is missing.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// The protocol core refused input.
    #[error(transparent)]
    Proto(#[from] wxgate_proto::Error),
}

impl Error {
    /// WeChat's errcode, when WeChat gave one.
    pub fn errcode(&self) -> Option<ErrCode> {
        match self {
            Error::WeChat { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether a later attempt may succeed (WeChat busy, transport trouble).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::LockTimeout(_) | Error::Store(_) => true,
            Error::WeChat { code, .. } => code.is_retryable(),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The id of the request being answered, as a task-local: `http::observe` scopes every
//! request's handling in it, so a warning logged anywhere below (a refused push, a
//! failed fetch) can name its request, as can work the request spawns (a webhook call)
//! if it takes the id along. The console's recent problems read it.

tokio::task_local! {
    /// The id of the request being answered, for the warnings it logs.
    pub static REQUEST_ID: RequestId;
}

/// A request id held inline (at most 64 ASCII characters, as `http::observe` accepts):
/// scoping it costs a copy, where a cloned `HeaderValue` cost an allocation a request.
#[derive(Clone, Copy)]
pub struct RequestId {
    len: u8,
    bytes: [u8; 64],
}

impl RequestId {
    /// The id, cut to 64 bytes.
    pub fn new(id: &[u8]) -> RequestId {
        let len = id.len().min(64);
        let mut bytes = [0u8; 64];
        bytes[..len].copy_from_slice(&id[..len]);
        RequestId {
            len: len as u8,
            bytes,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

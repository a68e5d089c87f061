//! The id of the request being answered, as a task-local: `http::observe` scopes every
//! request's handling in it, so a warning logged anywhere below (a refused push, a
//! failed fetch) can name its request, as can work the request spawns through [`spawn`]
//! (a webhook call, a customer-service reply). The console's recent problems read it.

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

/// `tokio::spawn`, the task keeping the id of the request that starts it (if any).
pub fn spawn<F>(task: F) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    match REQUEST_ID.try_with(|id| *id) {
        Ok(id) => tokio::spawn(REQUEST_ID.scope(id, task)),
        Err(_) => tokio::spawn(task),
    }
}

//! Request bodies under a deadline: a slow client cannot hold a handler (and its
//! connection) by trickling bytes. The accept loop (`http::serve`) wraps every body;
//! a handler that reads one answers [`body_error_status`] when it cannot.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// A body that fails once its deadline passes, counted from the request's head: a slow
/// client cannot hold a handler (and its connection) by trickling bytes. The timer is
/// made only if a read has to wait, so a body that is already there costs none.
pub struct DeadlineBody<B> {
    inner: B,
    timeout: Duration,
    started: Instant,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Set once the whole body has been read (see [`BodyRead`]).
    read: BodyRead,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, timeout: Duration, read: BodyRead) -> Self {
        DeadlineBody {
            inner,
            timeout,
            started: Instant::now(),
            deadline: None,
            read,
        }
    }
}

/// Whether a request's body was read to its end, as the accept loop asks once the
/// answer is made: an answer given before (a refusal from the URL, a 413) closes the
/// connection and says so (`connection: close`), or the client would send its next
/// request on a connection the server is about to close.
#[derive(Clone, Default)]
pub struct BodyRead(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl BodyRead {
    pub fn is_done(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }

    fn done(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// The status for a body that could not be read: 408 when it missed its deadline, else
/// 413 (over the route's limit).
pub fn body_error_status(e: &axum::Error) -> axum::http::StatusCode {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<BodyTimeout>() {
            return axum::http::StatusCode::REQUEST_TIMEOUT;
        }
        source = err.source();
    }
    axum::http::StatusCode::PAYLOAD_TOO_LARGE
}

/// The error of a body that missed its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(Duration);

impl<B> hyper::body::Body for DeadlineBody<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if frame.is_none() || this.inner.is_end_stream() {
                this.read.done();
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let at = this.started + this.timeout;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

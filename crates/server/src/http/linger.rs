//! Lingering close: a connection the server ends after an answer (a request refused
//! before its body was read, a 408, a 413) first sends its FIN, then reads and discards
//! what the client still sends, for a bounded time and size, before the socket is
//! closed. A connection hyper cuts on its header deadline is dropped at once: this is
//! the shutdown of a connection that ended with an answer.
//!
//! Without it, closing a socket with unread bytes in its receive buffer sends a reset:
//! a client still writing a large body (a 4 MiB upload refused with 401, a 1 MiB push
//! refused from its URL) got "broken pipe" or "connection reset" instead of the answer
//! already sent to it. nginx does the same (`lingering_close`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long a closing connection reads what its client still sends (nginx: 30 s).
const LINGER_TIME: Duration = Duration::from_secs(5);
/// How much it reads at most before closing anyway: past the largest body a route
/// takes (the proxy's 16 MiB by default), so that an upload refused before it was read
/// still ends with its answer. Read from the socket and dropped, 4 KiB at a time.
const LINGER_BYTES: usize = 64 << 20;

/// A TCP stream whose shutdown lingers (see the module docs). What a stranger can make
/// it cost: one connection (of `server.max_connections`) for at most 5 s, reading at
/// most 64 MiB it sends, which costs it as much to send.
pub struct Lingering {
    stream: TcpStream,
    closing: Option<Closing>,
}

struct Closing {
    deadline: Pin<Box<tokio::time::Sleep>>,
    discarded: usize,
}

impl Lingering {
    pub fn new(stream: TcpStream) -> Self {
        Lingering {
            stream,
            closing: None,
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    /// Sends the FIN, then discards what comes until the client closes its side, the
    /// time or the size runs out, or the socket fails.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closing.is_none() {
            ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
            this.closing = Some(Closing {
                deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                discarded: 0,
            });
        }
        let Some(closing) = this.closing.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let mut scratch = [0u8; 4096];
        loop {
            if closing.discarded >= LINGER_BYTES || closing.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => closing.discarded += buf.filled().len(),
                // Reset by the client: nothing left to wait for.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_client_still_sending_reads_the_answer_before_the_close() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut s = Lingering::new(s);
            // Answers at once, reading nothing of the 4 MiB the client sends.
            s.write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            s.shutdown().await.unwrap();
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        // The whole body first, the answer after, as a simple client does: without the
        // linger the server's close resets the connection and the answer is lost.
        let chunk = vec![b'a'; 64 << 10];
        for _ in 0..64 {
            c.write_all(&chunk).await.unwrap();
        }
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 401"), "{answer:?}");
        // The client's close ends the linger at once.
        drop(c);
        server.await.unwrap();
    }
}

//! The accept loop: what a stranger's connection may cost. `axum::serve` has no limit
//! on connections and no deadline on a request's header or body, so a client sending
//! one header line a second held a connection for as long as it liked, and two
//! thousand half-sent requests all stayed open. Here:
//!
//! - at most `server.max_connections` connections are served at once; near that cap
//!   idle connections are closed first and one client address holds at most
//!   `server.max_connections_per_client` ([`super::conns`]), and past it new ones wait
//!   in the kernel's backlog until one closes;
//! - a request's header must arrive within `server.header_read_timeout_ms` (hyper's
//!   header timeout, which also closes a keep-alive connection idle that long);
//! - a request's body must arrive within `server.body_read_timeout_ms` of the first
//!   read (`web::body::DeadlineBody`), however slowly it trickles;
//! - a graceful stop lets requests in flight finish, then closes the rest;
//! - a connection the server closes lingers (`linger`), so that a client still sending
//!   a refused body reads its answer rather than a reset.
//!
//! Each connection's peer address is given to the router's requests as
//! `ConnectInfo<SocketAddr>` (the rate limits read it); the hot lane does not need it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use std::sync::Arc;

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_service::Service;

use super::conns::{ConnState, ConnTable, InFlight};
use super::hot::App;
use super::linger::Lingering;
use crate::config::ServerConfig;
use crate::web::body::{BodyRead, DeadlineBody};

/// How long an evicted connection may take to close (a request that raced in, the
/// close itself) before its socket is dropped; it does not linger.
const EVICTED_GRACE: Duration = Duration::from_millis(200);

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then waits (at
/// most 30 s) for the connections in flight.
pub async fn serve(
    listener: TcpListener,
    app: App,
    limits: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    // Below this many free permits, idle connections are closed to make room.
    let low_water = (max / 8).max(1);
    let table = ConnTable::new(&limits);
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms.max(1)))
        .keep_alive(true);
    let http = Arc::new(http);
    let body_timeout = Duration::from_millis(limits.body_read_timeout_ms.max(1));
    let mut full_logged = false;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let crowded = permits.available_permits() <= low_water;
        let Some(entry) = table.admit(peer.ip(), crowded) else {
            // The client holds its share, every connection busy: this one is closed.
            metrics::counter!("wxgate_connections_refused_total", "why" => "client_share")
                .increment(1);
            crate::sampled_warn!(
                "connection_share",
                client = %peer.ip(),
                "a client holds its share of connections (server.max_connections_per_client), all busy: closing its new one"
            );
            drop(stream);
            continue;
        };
        if crowded {
            table.evict_one();
        }
        let permit = if let Ok(p) = permits.clone().try_acquire_owned() {
            full_logged = false;
            p
        } else {
            if !full_logged {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached: closing idle connections, new ones wait"
                );
                metrics::counter!("wxgate_connections_limited_total").increment(1);
                full_logged = true;
            }
            // While waiting, keep closing idle connections (they become idle as time
            // passes): a new client is not stuck behind sockets nobody uses.
            let waited = loop {
                tokio::select! {
                    p = permits.clone().acquire_owned() => break p.ok(),
                    () = tokio::time::sleep(Duration::from_millis(10)) => {
                        table.evict_one();
                    }
                    () = &mut shutdown => break None,
                }
            };
            match waited {
                Some(p) => p,
                None => break,
            }
        };
        let _ = stream.set_nodelay(true);
        let service = Connection {
            app: app.clone().with_peer(peer),
            body_timeout,
            table: table.clone(),
            conn: entry.state.clone(),
        };
        let (http, mut stop) = (http.clone(), stop.clone());
        tokio::spawn(async move {
            let conn = http.serve_connection(TokioIo::new(Lingering::new(stream)), service);
            tokio::pin!(conn);
            // A client that vanishes or times out ends here; nothing to report.
            tokio::select! {
                _ = conn.as_mut() => {}
                () = entry.state.evict.notified() => {
                    // Idle: nothing to answer, so no lingering either; a request that
                    // raced in gets a moment to finish, then the socket is dropped.
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(EVICTED_GRACE, conn).await;
                }
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(entry);
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(Duration::from_secs(30), permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open 30 s after the stop: closing them");
    }
}

/// One connection's service: hyper's request, its body under a deadline, to the app.
#[derive(Clone)]
struct Connection {
    app: App,
    body_timeout: Duration,
    table: Arc<ConnTable>,
    conn: Arc<ConnState>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Connection {
    type Response = Response;
    type Error = Infallible;
    type Future = CloseIfUnread<<App as Service<Request>>::Future>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::new(&self.conn, &self.table);
        // A request without a body (every GET of the hot lane) pays no timer.
        if hyper::body::Body::is_end_stream(req.body()) {
            return CloseIfUnread {
                answer: self.app.answer(req.map(Body::new)),
                body: None,
                _in_flight: in_flight,
            };
        }
        let (timeout, read) = (self.body_timeout, BodyRead::default());
        let req = req.map(|b| Body::new(DeadlineBody::new(b, timeout, read.clone())));
        CloseIfUnread {
            answer: self.app.answer(req),
            body: Some(read),
            _in_flight: in_flight,
        }
    }
}

pin_project_lite::pin_project! {
    /// The app's answer, with `connection: close` when the request's body was not read
    /// to its end (see [`BodyRead`]).
    pub struct CloseIfUnread<F> {
        #[pin]
        answer: F,
        body: Option<BodyRead>,
        // The connection is busy (not idle, so not evicted) while the answer is made.
        _in_flight: InFlight,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for CloseIfUnread<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.answer.poll(cx));
        if this.body.as_ref().is_some_and(|b| !b.is_done()) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok(response))
    }
}

//! Per-request observation: a request id (the caller's `X-Request-Id` when it is sane,
//! else a new one) on the answer and on a debug-level tracing span, request counts and latency by
//! route (the matched pattern, never the path or query, which carry codes and
//! signatures), and an access log line at debug level (warn for 5xx).
//!
//! This runs on every request, so the metric handles are looked up once per thread, route
//! and status and then reused, and request ids come from a per-thread counter, not a
//! random generator.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use futures_util::future::BoxFuture;
use metrics::{Counter, Histogram};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

/// A `HeaderName` constant: a `&str` name is parsed and checked on every use.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new request id: this thread's random prefix and counter, 16 hex digits. Per thread,
/// so that two cores never write the same counter.
fn new_id() -> HeaderValue {
    thread_local! {
        static NEXT: Cell<u64> = Cell::new(u64::from(rand::random::<u32>()) << 32);
    }
    let n = NEXT.with(|next| {
        let n = next.get();
        next.set((n & !0xffff_ffff) | (n.wrapping_add(1) & 0xffff_ffff));
        n
    });
    let mut hex = [0u8; 16];
    for (i, b) in hex.iter_mut().enumerate() {
        *b = b"0123456789abcdef"[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&hex).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// One route's metric handles.
struct RouteMetrics {
    route: Box<str>,
    latency: Histogram,
    by_status: Vec<(u16, Counter)>,
}

/// Counts a request and records its latency. The handles are looked up once per thread,
/// route and status and kept in a thread-local list (a few dozen routes: a scan beats
/// hashing): no lock and no shared reference count on the way, both of which cost a
/// cache line passed between cores on every request.
fn record(route: &str, status: u16, latency: Duration) {
    thread_local! {
        static ROUTES: RefCell<Vec<RouteMetrics>> = const { RefCell::new(Vec::new()) };
    }
    ROUTES.with_borrow_mut(|routes| {
        let i = match routes.iter().position(|m| &*m.route == route) {
            Some(i) => i,
            None => {
                routes.push(RouteMetrics {
                    route: route.into(),
                    latency: metrics::histogram!("wxgate_http_request_duration_seconds", "route" => route.to_owned()),
                    by_status: Vec::new(),
                });
                routes.len() - 1
            }
        };
        let m = &mut routes[i];
        m.latency.record(latency.as_secs_f64());
        match m.by_status.iter().find(|(s, _)| *s == status) {
            Some((_, c)) => c.increment(1),
            None => {
                let c = metrics::counter!("wxgate_http_requests_total", "route" => route.to_owned(), "status" => status.to_string());
                c.increment(1);
                m.by_status.push((status, c));
            }
        }
    });
}

/// A request's route as metrics and logs name it: the router's matched pattern, or the
/// fixed pattern of a hot-lane route (see `http::hot`).
pub enum Route {
    Matched(Option<MatchedPath>),
    Fixed(&'static str),
}

impl Route {
    fn as_str(&self) -> &str {
        match self {
            Route::Matched(m) => m.as_ref().map_or("unmatched", MatchedPath::as_str),
            Route::Fixed(r) => r,
        }
    }
}

/// Observes one request (see the module docs): `handle` starts its handling inside the
/// request's span, and the returned future finishes it with the answer.
pub fn observed<F>(
    req: Request,
    route: Route,
    handle: impl FnOnce(Request) -> F,
) -> impl Future<Output = Response> + Send + 'static
where
    F: Future<Output = Response> + Send + 'static,
{
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| v.to_str().is_ok_and(sane))
        .cloned()
        .unwrap_or_else(new_id);
    // A debug-level span, as tower-http's tracing layer makes by default: at debug every
    // line of the request carries its id; at info the span costs nothing, where it cost
    // a tenth of a /wx/config answer (the fmt layer formats a span's fields when it
    // opens, whether or not anything is logged in it). Failures log the id themselves.
    let span = tracing::debug_span!("request", request_id = %id.to_str().unwrap_or_default());
    let method = req.method().clone();
    let answer = span.in_scope(|| handle(req));
    let answer = crate::web::request_id::REQUEST_ID.scope(
        crate::web::request_id::RequestId::new(id.as_bytes()),
        answer,
    );
    async move {
        let mut resp = answer.instrument(span.clone()).await;
        let route = route.as_str();
        let status = resp.status().as_u16();
        let elapsed = started.elapsed();
        record(route, status, elapsed);
        let latency_us = elapsed.as_micros() as u64;
        if status >= 500 {
            let request_id = id.to_str().unwrap_or_default();
            crate::sampled_warn!("request_failed", request_id, %method, %route, status, latency_us, "request failed");
        } else {
            span.in_scope(|| tracing::debug!(%method, %route, status, latency_us, "request"));
        }
        resp.headers_mut().insert(REQUEST_ID, id);
        resp
    }
}

/// The layer that observes every route of the router (see the module docs). A
/// hand-written tower layer rather than `middleware::from_fn`, which boxes and clones the
/// inner service on every request.
#[derive(Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = Route::Matched(req.extensions().get::<MatchedPath>().cloned());
        let answer = observed(req, route, |req| {
            let answer = self.inner.call(req);
            async move {
                let Ok(resp) = answer.await;
                resp
            }
        });
        Box::pin(async move { Ok(answer.await) })
    }
}

//! The hot lane: the three requests that arrive all day, `GET /wx/config` (every page
//! view), `GET /wx/service` and `POST /wx/service` (every WeChat push), for the default
//! account and under `/wx/{account}/...`, answered without axum's router. On those routes
//! the router's work (matching, cloning the boxed route service, extensions, extractors,
//! boxing the handler future) cost about 5,000 instructions and 2 µs a request, a fifth
//! of a `/wx/config` answer (`bench/profile.sh`).
//!
//! The lane matches the exact method and path and calls the same handler functions the
//! router's routes call, after the same query reading; every other request (`HEAD`,
//! `OPTIONS`, an account name that needs percent-decoding, every other route) goes to
//! the router. Both are observed alike (`observe`), under the same route names: the
//! patterns below, which the router registers too.

use std::borrow::Cow;
use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::Router;
use futures_util::future::{BoxFuture, Either};
use tower_service::Service;

use super::observe::{observed, Route};
use super::AppState;
use crate::jssdk::{self, ConfigQuery, Origin};
use crate::push::{self, PushQuery};
use crate::web::query::QuerySlots;
use crate::web::DEFAULT_ACCOUNT;

/// What one generation of the configuration serves: its state and its routers. A
/// reload swaps the whole of it at once; a request in flight finishes on the one it
/// started with.
pub struct Live {
    pub state: AppState,
    router: Router,
    /// The WeChat-compatible API alone, for its own listener (`compat.listen`).
    compat: Router,
}

impl Live {
    pub fn new(state: AppState) -> Self {
        Live {
            router: super::router(state.clone()),
            compat: super::compat_router(state.clone()),
            state,
        }
    }
}

/// The generation in service, shared by every connection and swapped by a reload.
pub type SharedLive = std::sync::Arc<arc_swap::ArcSwap<Live>>;

/// The whole HTTP surface: the hot lane in front of the router.
#[derive(Clone)]
pub struct App {
    live: SharedLive,
    /// The connection's peer, given to the router's requests as `ConnectInfo`.
    peer: Option<std::net::SocketAddr>,
    /// The main listener (the lane and every route), or the compatible API's own.
    main: bool,
}

impl App {
    pub fn new(live: SharedLive) -> Self {
        App {
            live,
            peer: None,
            main: true,
        }
    }

    /// The compatible API's router alone, without the lane (its own listener).
    pub fn compat_only(live: SharedLive) -> Self {
        App {
            live,
            peer: None,
            main: false,
        }
    }

    /// The app for one connection from `peer`.
    pub fn with_peer(mut self, peer: std::net::SocketAddr) -> Self {
        self.peer = Some(peer);
        self
    }
}

/// The route table the lane shares with `http::router`: the two prefixes the `/wx`
/// routes are mounted under, and the lane's routes under them. The lane's route names
/// (for metrics and logs) are made from the same pieces the router mounts.
pub(super) const WX: &str = "/wx";
pub(super) const ACCOUNT_WX: &str = "/wx/{account}";
pub(super) const CONFIG: &str = "/config";
pub(super) const SERVICE: &str = "/service";

/// `[WX + CONFIG, ACCOUNT_WX + CONFIG, WX + SERVICE, ACCOUNT_WX + SERVICE]`.
static ROUTE_NAMES: std::sync::LazyLock<[String; 4]> = std::sync::LazyLock::new(|| {
    [
        format!("{WX}{CONFIG}"),
        format!("{ACCOUNT_WX}{CONFIG}"),
        format!("{WX}{SERVICE}"),
        format!("{ACCOUNT_WX}{SERVICE}"),
    ]
});

/// The hot-lane routes.
#[derive(Clone, Copy)]
enum Hot {
    Config,
    Verify,
    Push,
}

/// A lane request: the route and the account its path names.
struct Lane {
    hot: Hot,
    /// `None` for the default account's path (`/wx/config`), else the `{account}` of
    /// `/wx/{account}/config`.
    account: Option<String>,
}

impl Lane {
    /// The lane's reading of a request, or `None` for the router. A named account is
    /// taken only when its path segment needs no percent-decoding: axum decodes one, and
    /// the router keeps that rule in one place.
    fn of(req: &Request) -> Option<Lane> {
        let rest = req.uri().path().strip_prefix(WX)?.strip_prefix('/')?;
        let (account, tail) = match rest.split_once('/') {
            None => (None, rest),
            Some((name, tail)) if !name.is_empty() && !name.contains('%') => (Some(name), tail),
            Some(_) => return None,
        };
        let tail = tail.as_bytes();
        let hot = match *req.method() {
            Method::GET if tail == &CONFIG.as_bytes()[1..] => Hot::Config,
            Method::GET if tail == &SERVICE.as_bytes()[1..] => Hot::Verify,
            Method::POST if tail == &SERVICE.as_bytes()[1..] => Hot::Push,
            _ => return None,
        };
        Some(Lane {
            hot,
            account: account.map(str::to_owned),
        })
    }

    /// The route name: the router's pattern for the same request.
    fn route(&self) -> &'static str {
        let names: &'static [String; 4] = &ROUTE_NAMES;
        let i = match (self.hot, self.account.is_some()) {
            (Hot::Config, false) => 0,
            (Hot::Config, true) => 1,
            (Hot::Verify | Hot::Push, false) => 2,
            (Hot::Verify | Hot::Push, true) => 3,
        };
        &names[i]
    }
}

/// The answer to a lane request; a query refusal is the one the router's extractor
/// gives. Boxed here, per route: the push future is a few KiB, and moving it unboxed
/// through the observation layer cost more than the router saved.
fn answer(s: AppState, lane: Lane, req: Request) -> BoxFuture<'static, Response> {
    let (parts, body): (_, Body) = req.into_parts();
    let query = parts.uri.query();
    let account: Cow<'static, str> = lane
        .account
        .map_or(Cow::Borrowed(DEFAULT_ACCOUNT), Cow::Owned);
    match lane.hot {
        Hot::Config => match ConfigQuery::parse(query) {
            Ok(q) => {
                let origin = Origin::of(&parts.headers);
                Box::pin(async move { jssdk::config_for(&s.ctx, origin, &account, q).await })
            }
            Err(refusal) => Box::pin(std::future::ready(refusal.into_response())),
        },
        Hot::Verify => {
            let answer = match PushQuery::parse(query) {
                Ok(q) => push::verify_for(&s.pushes, &account, q),
                Err(refusal) => refusal.into_response(),
            };
            Box::pin(std::future::ready(answer))
        }
        Hot::Push => match PushQuery::parse(query) {
            Ok(q) => {
                Box::pin(async move { push::push_for(&s.ctx, &s.pushes, &account, q, body).await })
            }
            Err(refusal) => Box::pin(std::future::ready(refusal.into_response())),
        },
    }
}

impl Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    /// The router's own future is passed on as it is, not boxed again.
    type Future = Either<BoxFuture<'static, Result<Response, Infallible>>, RouteFuture<Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready; so is the lane.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        self.answer(req)
    }
}

impl App {
    /// [`Service::call`] through a shared reference, so that a connection need not
    /// clone the whole app for each request: a lane request takes one reference count
    /// (the state's), a router request another (the router's). Each is a write to a
    /// count every worker thread shares.
    pub fn answer(&self, req: Request) -> <Self as Service<Request>>::Future {
        // One load of the generation in service (no reference count in its fast path).
        let live = self.live.load();
        let lane = if self.main && live.state.ctx.config.server.hot_lane {
            Lane::of(&req)
        } else {
            None
        };
        match lane {
            Some(lane) => {
                let s = live.state.clone();
                let route = Route::Fixed(lane.route());
                let answer = observed(req, route, move |req| answer(s, lane, req));
                Either::Left(Box::pin(async move { Ok(answer.await) }))
            }
            None => {
                let mut req = req;
                if let Some(peer) = self.peer {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                }
                let router = if self.main {
                    &live.router
                } else {
                    &live.compat
                };
                Either::Right(router.clone().call(req))
            }
        }
    }
}

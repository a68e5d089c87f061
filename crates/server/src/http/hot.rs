//! The hot lane: the three requests that arrive all day, `GET /wx/config` (every page
//! view), `GET /wx/service` and `POST /wx/service` (every WeChat push), answered without
//! axum's router. On those routes the router's work (matching, cloning the boxed route
//! service, extensions, extractors, boxing the handler future) cost about 5,000
//! instructions and 2 µs a request, a fifth of a `/wx/config` answer
//! (`bench/profile.sh`).
//!
//! The lane matches the exact method and path and calls the same handler functions the
//! router's routes call, after the same query reading; every other request, including
//! the `/wx/{account}/...` forms of these routes and `HEAD`/`OPTIONS`, goes to the
//! router. Both are observed alike (`observe`), under the same route names.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::future::BoxFuture;
use tower_service::Service;

use super::jssdk::{self, ConfigQuery, Origin};
use super::observe::{observed, Route};
use super::query::QuerySlots;
use super::AppState;
use crate::service::{self, PushQuery};

/// The whole HTTP surface: the hot lane in front of the router.
#[derive(Clone)]
pub struct App {
    state: AppState,
    router: Router,
}

impl App {
    pub fn new(state: AppState) -> Self {
        App {
            router: super::router(state.clone()),
            state,
        }
    }
}

/// The hot-lane routes.
#[derive(Clone, Copy)]
enum Hot {
    Config,
    Verify,
    Push,
}

impl Hot {
    fn of(req: &Request) -> Option<Hot> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/wx/config") => Some(Hot::Config),
            (&Method::GET, "/wx/service") => Some(Hot::Verify),
            (&Method::POST, "/wx/service") => Some(Hot::Push),
            _ => None,
        }
    }

    /// The route name, as the router's matched pattern would be.
    fn route(self) -> &'static str {
        match self {
            Hot::Config => "/wx/config",
            Hot::Verify | Hot::Push => "/wx/service",
        }
    }
}

/// The default account's answer to a hot-lane request; a query refusal is the one the
/// router's extractor gives. Boxed here, per route: the push future is a few KiB, and
/// moving it unboxed through the observation layer cost more than the router saved.
fn answer(s: AppState, hot: Hot, req: Request) -> BoxFuture<'static, Response> {
    let (parts, body): (_, Body) = req.into_parts();
    let query = parts.uri.query();
    match hot {
        Hot::Config => match ConfigQuery::parse(query) {
            Ok(q) => {
                let origin = Origin::of(&parts.headers);
                Box::pin(async move { jssdk::config_for(&s, origin, "default", q).await })
            }
            Err(refusal) => Box::pin(std::future::ready(refusal.into_response())),
        },
        Hot::Verify => {
            let answer = match PushQuery::parse(query) {
                Ok(q) => service::verify_for(&s, "default", q),
                Err(refusal) => refusal.into_response(),
            };
            Box::pin(std::future::ready(answer))
        }
        Hot::Push => match PushQuery::parse(query) {
            Ok(q) => Box::pin(async move { service::push_for(&s, "default", q, body).await }),
            Err(refusal) => Box::pin(std::future::ready(refusal.into_response())),
        },
    }
}

impl Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready; so is the lane.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match Hot::of(&req) {
            Some(hot) => {
                let s = self.state.clone();
                let answer = observed(req, Route::Fixed(hot.route()), move |req| {
                    answer(s, hot, req)
                });
                Box::pin(async move { Ok(answer.await) })
            }
            None => Box::pin(self.router.call(req)),
        }
    }
}

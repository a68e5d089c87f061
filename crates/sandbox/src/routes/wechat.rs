//! WeChat's endpoints served from their typed definitions (`wxgate_proto::api`): each is
//! registered at its own `PATH` with its own `METHOD`, its request parsed into its type
//! (the query for GET, the JSON body for POST) and its answer written from its type. The
//! access_token check and the per-app call count live here, once, so a handler holds
//! only the endpoint's own rule, and the sandbox cannot drift from what the gateway sends.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::{on, MethodFilter};
use axum::{Extension, Router};
use wxgate_proto::api::{
    Endpoint, Method, WithAccessToken, WithComponentAccessToken, WithoutAccessToken,
};
use wxgate_proto::ErrCode;

use super::{answer, app_faults, wx, wx_error, Params, Shared};
use crate::platform::{Platform, WxError, WxResult};

/// One call to an endpoint, as its handler sees it.
pub struct Call<E> {
    /// The app the call is for: the one whose access_token it carries (checked) for a
    /// [`WithAccessToken`] endpoint; else the appid the request names (the handler
    /// checks it with the request's secret or code).
    pub app: String,
    pub req: E,
    /// The caller's address, for the apps' IP whitelists.
    pub peer: Option<IpAddr>,
}

/// An endpoint's rule: the typed request in, the typed answer or WeChat's error out.
pub type Handler<E> = fn(&Platform, Call<E>) -> WxResult<<E as Endpoint>::Answer>;

/// A call whose request or answer is not JSON (a multipart upload, a file download).
pub struct RawCall {
    /// The app whose access_token the call carries.
    pub app: String,
    pub query: Params,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The rule of an endpoint that answers a file or reads multipart.
pub type RawHandler = fn(&Platform, RawCall) -> WxResult<Response>;

/// The sandbox's WeChat endpoints, added one typed definition at a time.
#[derive(Default)]
pub struct WeChat(Router<Shared>);

fn filter(method: Method) -> MethodFilter {
    match method {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
    }
}

/// The request's fields: the query for GET, the JSON body for POST. WeChat answers a
/// body that is not its JSON with 47001.
fn parse<E: Endpoint>(uri: &Uri, body: &[u8]) -> WxResult<E> {
    match E::METHOD {
        Method::Get => Query::<E>::try_from_uri(uri)
            .map(|Query(q)| q)
            .map_err(|_| WxError::with(ErrCode::InvalidParameter, "invalid args")),
        Method::Post => {
            serde_json::from_slice(body).map_err(|_| WxError::new(ErrCode::InvalidJson))
        }
    }
}

fn query(uri: &Uri) -> Params {
    Query::<Params>::try_from_uri(uri)
        .map(|Query(q)| q)
        .unwrap_or_default()
}

/// The app whose access_token the query carries, with the call counted under it.
fn token_app(p: &Platform, path: &str, query: &Params) -> WxResult<String> {
    let token = query.get("access_token").map(String::as_str).unwrap_or("");
    let app = p.check_token(token)?;
    p.count_call(path, Some(&app));
    Ok(app)
}

type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

impl WeChat {
    pub fn new() -> Self {
        Self::default()
    }

    /// An endpoint called with the app's access_token: the token is checked (WeChat's
    /// 41001/40001/42001) and the call counted under its app before the handler runs.
    pub fn with_token<E>(self, handler: Handler<E>) -> Self
    where
        E: WithAccessToken + Send + 'static,
    {
        let route = on(
            filter(E::METHOD),
            move |State(p): State<Shared>, peer: Peer, uri: Uri, body: Bytes| async move {
                wx((|| {
                    let app = token_app(&p, E::PATH, &query(&uri))?;
                    let req = parse::<E>(&uri, &body)?;
                    let peer = peer.map(|Extension(ConnectInfo(a))| a.ip());
                    handler(&p, Call { app, req, peer }).map(answer)
                })())
            },
        );
        WeChat(self.0.route(E::PATH, route))
    }

    /// An endpoint that carries its own credentials: the call is counted under the appid
    /// the request names and the faults set for that app strike before the handler runs.
    pub fn without_token<E>(self, handler: Handler<E>) -> Self
    where
        E: WithoutAccessToken + Send + 'static,
    {
        let route = on(
            filter(E::METHOD),
            move |State(p): State<Shared>, peer: Peer, uri: Uri, body: Bytes| async move {
                let req = parse::<E>(&uri, &body);
                let app = req.as_ref().map_or("", |r| r.appid()).to_owned();
                if !app.is_empty() {
                    p.count_call(E::PATH, Some(&app));
                    if let Some(r) = app_faults(&p, E::PATH, &app).await {
                        return r;
                    }
                }
                let peer = peer.map(|Extension(ConnectInfo(a))| a.ip());
                wx(req.and_then(|req| handler(&p, Call { app, req, peer }).map(answer)))
            },
        );
        WeChat(self.0.route(E::PATH, route))
    }

    /// An open-platform endpoint called with the component's `component_access_token`:
    /// the token is checked and the call counted under the component first.
    pub fn with_component_token<E>(self, handler: Handler<E>) -> Self
    where
        E: WithComponentAccessToken + Send + 'static,
    {
        let route = on(
            filter(E::METHOD),
            move |State(p): State<Shared>, peer: Peer, uri: Uri, body: Bytes| async move {
                wx((|| {
                    let q = query(&uri);
                    let token = q
                        .get("component_access_token")
                        .map(String::as_str)
                        .unwrap_or("");
                    let app = p.check_component_token(token)?;
                    p.count_call(E::PATH, Some(&app));
                    let req = parse::<E>(&uri, &body)?;
                    if req.appid() != app {
                        return Err(WxError::with(
                            ErrCode::InvalidComponent,
                            "component_appid is not the token's component",
                        ));
                    }
                    let peer = peer.map(|Extension(ConnectInfo(a))| a.ip());
                    handler(&p, Call { app, req, peer }).map(answer)
                })())
            },
        );
        WeChat(self.0.route(E::PATH, route))
    }

    /// An endpoint called with the app's access_token whose request or answer is not
    /// JSON; the token is checked and the call counted as for [`Self::with_token`].
    pub fn raw<E>(self, handler: RawHandler) -> Self
    where
        E: WithAccessToken + 'static,
    {
        let route = on(
            filter(E::METHOD),
            move |State(p): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes| async move {
                let query = query(&uri);
                let call = token_app(&p, E::PATH, &query).map(|app| RawCall {
                    app,
                    query,
                    headers,
                    body,
                });
                call.and_then(|c| handler(&p, c))
                    .unwrap_or_else(|e| wx_error(&e))
            },
        );
        WeChat(self.0.route(E::PATH, route))
    }

    /// A page or route that is not a JSON endpoint (the authorize page), at WeChat's path.
    pub fn page(self, path: &str, route: axum::routing::MethodRouter<Shared>) -> Self {
        WeChat(self.0.route(path, route))
    }

    pub fn into_router(self) -> Router<Shared> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wxgate_proto::api::token::StableToken;
    use wxgate_proto::api::user::GetFollowers;

    #[test]
    fn requests_are_read_from_the_query_or_the_body() {
        let uri: Uri = "/cgi-bin/user/get?access_token=T&next_openid=o1"
            .parse()
            .unwrap();
        let r: GetFollowers = parse(&uri, b"").unwrap();
        assert_eq!(r.next_openid, "o1");
        // An absent field is empty, for the handler to answer WeChat's errcode.
        let r: GetFollowers = parse(&"/x?access_token=T".parse().unwrap(), b"").unwrap();
        assert_eq!(r.next_openid, "");
        let uri: Uri = "/cgi-bin/stable_token".parse().unwrap();
        let r: StableToken = parse(&uri, br#"{"appid":"wx1","force_refresh":true}"#).unwrap();
        assert!(r.force_refresh && r.appid == "wx1" && r.secret.is_empty());
        let e = parse::<StableToken>(&uri, b"<xml/>").unwrap_err();
        assert_eq!(e.code, ErrCode::InvalidJson);
        let e = parse::<StableToken>(&uri, br#"{"force_refresh":"yes"}"#).unwrap_err();
        assert_eq!(e.code, ErrCode::InvalidJson);
    }
}

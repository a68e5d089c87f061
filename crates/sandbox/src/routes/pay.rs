//! WeChat Pay's v3 endpoints (`/v3/...`) and the sandbox's payment controls
//! (`/admin/pay/...`). Every v3 request must carry the merchant's valid signature, and
//! every answer carries WeChat Pay's (`crate::pay`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{param, Params, Shared};
use crate::pay::PayError;

fn refused(e: PayError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        Json(json!({ "code": e.code, "message": e.message })),
    )
        .into_response()
}

/// A signed JSON answer, as WeChat Pay writes them.
fn signed(p: &Shared, mchid: &str, value: &Value) -> Response {
    let body = value.to_string();
    let headers = p.pay.sign(mchid, body.as_bytes(), p.now());
    let mut r = (StatusCode::OK, [("content-type", "application/json")], body).into_response();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(&v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

/// The request's merchant, by its signature.
fn merchant<'p>(
    p: &'p Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<&'p crate::config::PayMerchantConfig, PayError> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let url = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    p.pay
        .authenticate(auth, method.as_str(), url, body, p.now())
}

/// `POST /v3/pay/transactions/{jsapi|native}`
pub async fn create(
    State(p): State<Shared>,
    Path(kind): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let m = match merchant(&p, &method, &uri, &headers, &body) {
        Ok(m) => m,
        Err(e) => return refused(e),
    };
    if kind != "jsapi" && kind != "native" {
        return refused(PayError {
            status: 404,
            code: "NOT_FOUND",
            message: "jsapi or native".into(),
        });
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return refused(PayError {
            status: 400,
            code: "PARAM_ERROR",
            message: "the body is not JSON".into(),
        });
    };
    match p.pay.create(m, &kind, &v, p.now()) {
        Ok(answer) => signed(&p, &m.mchid, &answer),
        Err(e) => refused(e),
    }
}

/// `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=`
pub async fn query(
    State(p): State<Shared>,
    Path(out_trade_no): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let m = match merchant(&p, &method, &uri, &headers, b"") {
        Ok(m) => m,
        Err(e) => return refused(e),
    };
    match p.pay.query(&m.mchid, &out_trade_no) {
        Ok(t) => signed(&p, &m.mchid, &t),
        Err(e) => refused(e),
    }
}

/// `POST /v3/refund/domestic/refunds`
pub async fn refund(
    State(p): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let m = match merchant(&p, &method, &uri, &headers, &body) {
        Ok(m) => m,
        Err(e) => return refused(e),
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return refused(PayError {
            status: 400,
            code: "PARAM_ERROR",
            message: "the body is not JSON".into(),
        });
    };
    match p.pay.refund(m, &v, p.now()) {
        Ok(answer) => signed(&p, &m.mchid, &answer),
        Err(e) => refused(e),
    }
}

/// `GET /v3/certificates`
pub async fn certificates(
    State(p): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match merchant(&p, &method, &uri, &headers, b"") {
        Ok(m) => signed(&p, &m.mchid, &p.pay.certificates(m, p.now())),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
pub struct PayOrder {
    mchid: String,
    out_trade_no: String,
}

/// `POST /admin/pay/pay {mchid, out_trade_no}`: the payer pays; the notification is
/// delivered by the next round (within a second).
pub async fn admin_pay(State(p): State<Shared>, Json(o): Json<PayOrder>) -> Response {
    match p.pay.pay(&o.mchid, &o.out_trade_no, p.now()) {
        Ok(n) => Json(json!({ "id": n.id, "event_type": n.event_type })).into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
pub struct Switch {
    mchid: String,
    signer: String,
}

/// `POST /admin/pay/switch {mchid, signer: certificate|public_key}`
pub async fn admin_switch(State(p): State<Shared>, Json(s): Json<Switch>) -> Response {
    match p.pay.switch(&s.mchid, &s.signer) {
        Ok(()) => Json(json!({ "ok": true, "signer": s.signer })).into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
pub struct Probe {
    mchid: String,
    url: String,
}

/// `POST /admin/pay/signtest {mchid, url}`: a signature probe, as WeChat Pay sends them.
pub async fn admin_probe(State(p): State<Shared>, Json(pr): Json<Probe>) -> Response {
    match p.pay.probe(&pr.mchid, &pr.url, p.now()) {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(e) => refused(e),
    }
}

/// `GET /admin/pay/notifications[?event_type=]`: every notification, its body, the last
/// try's headers, attempts and whether it was delivered.
pub async fn admin_notifications(State(p): State<Shared>, Query(q): Query<Params>) -> Response {
    let want = param(&q, "event_type");
    let list: Vec<_> = p
        .pay
        .outgoing()
        .into_iter()
        .filter(|o| want.is_empty() || o.event_type == want)
        .collect();
    Json(json!({ "notifications": list })).into_response()
}

/// `GET /admin/pay/requests`: the last v3 requests as they arrived, each with whether
/// its signature verified.
pub async fn admin_requests(State(p): State<Shared>) -> Response {
    Json(json!({ "requests": p.pay.requests() })).into_response()
}

/// The keys a gateway is configured with to trust this WeChat Pay (PEM), and the
/// merchant's test private key: for setting up a gateway against the sandbox.
pub async fn admin_keys() -> Response {
    use crate::pay::*;
    Json(json!({
        "platform_certificate": PLATFORM_CERT,
        "platform_serial": PLATFORM_SERIAL,
        "wechatpay_public_key": PUBLIC_KEY_PEM,
        "wechatpay_public_key_id": PUBLIC_KEY_ID,
        "merchant_private_key": MERCHANT_KEY,
        "merchant_serial": MERCHANT_SERIAL,
    }))
    .into_response()
}

//! The demo pages under `/demo/` (static files embedded in the binary) and `wxgate demo`:
//! the sandbox and a gateway wired to it, so a newcomer sees everything work in a browser
//! without a WeChat account.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::web::Ctx;

const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../assets/demo/index.html"),
    ),
    (
        "jssdk.html",
        "text/html; charset=utf-8",
        include_str!("../assets/demo/jssdk.html"),
    ),
    (
        "oauth.html",
        "text/html; charset=utf-8",
        include_str!("../assets/demo/oauth.html"),
    ),
    (
        "demo.js",
        "application/javascript; charset=utf-8",
        include_str!("../assets/demo/demo.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/demo/style.css"),
    ),
];

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, ct, body)) => ([(header::CONTENT_TYPE, *ct)], *body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /demo/`
pub async fn index(State(s): State<Ctx>) -> Response {
    if !s.config.demo.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    file("index.html")
}

/// `GET /demo/{file}`; `env.json` tells the pages where the sandbox is.
pub async fn asset(State(s): State<Ctx>, Path(name): Path<String>) -> Response {
    if !s.config.demo.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    if name == "env.json" {
        let sandbox = s
            .config
            .demo
            .sandbox_url
            .clone()
            .unwrap_or_else(|| s.upstream.open_base().to_owned());
        return Json(json!({ "sandbox": sandbox })).into_response();
    }
    file(&name)
}

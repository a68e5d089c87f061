//! The limit: a bare axum hello-world server, built with the same toolchain and runtime
//! as wxgate, measured in the same run. Usage: limit 127.0.0.1:PORT

use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18399".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let app = Router::new().route("/", get(|| async { "Hello, World!" }));
    axum::serve(listener, app).await.expect("serve");
}

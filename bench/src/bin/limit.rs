//! The limit, as the issues define it: a bare axum hello world on the system allocator.
//! Usage: limit 127.0.0.1:PORT (`GET /`, and the push-shaped `POST /wx/service`).

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18399".into());
    wxgate_bench::limit::serve(&addr, wxgate_bench::limit::Mode::Shape).await;
}

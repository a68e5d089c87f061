//! The limit, as the issues define it: a bare axum hello world on the system allocator.
//! Usage: limit 127.0.0.1:PORT (`GET /`, and the push-shaped `POST /wx/service`).

#[tokio::main]
async fn main() {
    wxgate_bench::limit::serve_from_args(wxgate_bench::limit::Mode::Shape, "127.0.0.1:18399").await;
}

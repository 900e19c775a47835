//! The trivial upstream API of `bench/gateway`: answers every request with `{"ok":true}` on one
//! thread, so that on a two-core machine the upstream is not what limits a gateway's throughput.
//!
//! ```sh
//! cargo run --release -p tessera-gateway --example bench_upstream -- 127.0.0.1:7000
//! ```

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7000".into());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        let ok = || async { ([(header::CONTENT_TYPE, "application/json")], "{\"ok\":true}").into_response() };
        axum::serve(listener, Router::new().fallback(ok)).await
    })
}

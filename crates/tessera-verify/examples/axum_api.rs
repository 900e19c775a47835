//! An API protected by `tessera-verify`: every request needs an access token from the issuer,
//! addressed to this API, carrying scope `invoices:read`, not revoked (the revocation feed is
//! followed), and, if bound, presented with its DPoP proof.
//!
//! ```sh
//! # A resource-server client for the feed, and a client that may call the API:
//! tessera client create --name invoices-api --introspection --audience https://api.example.com
//! tessera client create --name billing --scope invoices:read --audience https://api.example.com
//! ISSUER=http://127.0.0.1:8080 AUDIENCE=https://api.example.com FEED_CLIENT_ID=… FEED_CLIENT_SECRET=… \
//!   cargo run -p tessera-verify --example axum_api
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/invoices
//! ```

use axum::routing::get;
use axum::{Extension, Json, Router};
use tessera_verify::Claims;
use tessera_verify::layer::VerifyLayer;
use tessera_verify::remote::RemoteVerifier;

async fn invoices(Extension(claims): Extension<Claims>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"caller": claims.client_id, "subject": claims.sub, "invoices": []}))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let mut builder = RemoteVerifier::builder(&env("ISSUER")?, &env("AUDIENCE")?);
    if let (Ok(id), Ok(secret)) = (env("FEED_CLIENT_ID"), env("FEED_CLIENT_SECRET")) {
        builder = builder.revocation_feed(&id, &secret);
    }
    let verifier = builder.build().await?;
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let layer = VerifyLayer::new(verifier).public_origin(&format!("http://{listen}")).require_scope("invoices:read");
    let app = Router::new().route("/invoices", get(invoices)).layer(layer);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{listen}");
    axum::serve(listener, app).await?;
    Ok(())
}

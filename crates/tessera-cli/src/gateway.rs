//! `tessera gateway --config gateway.toml`: runs the token-enforcing reverse proxy
//! (`tessera-gateway`) until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tessera_gateway::GatewayConfig;
use tessera_server::config::LogFormat;

#[derive(Args)]
pub(crate) struct GatewayArgs {
    /// The gateway configuration (TOML): listener, issuer, feed client and routes.
    #[arg(long, env = "TESSERA_GATEWAY_CONFIG")]
    config: PathBuf,
}

pub(crate) async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    crate::serve::init_logging(LogFormat::Text);
    let config = GatewayConfig::from_file(&args.config)?;
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    tessera_gateway::run(config, Some(&args.config), listener, crate::serve::shutdown_signal()).await
}

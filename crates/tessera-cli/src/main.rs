//! The `tessera` binary: `serve` runs the authorization server; `client`, `key` and `token`
//! drive the admin API and verify tokens. Errors print one line and exit non-zero.

mod admin;
mod admin_self;
mod audit;
mod gateway;
mod serve;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The token endpoint allocates many small, short-lived buffers per request; glibc's malloc
// spent a quarter of the CPU of the opaque-issuance benchmark (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "tessera", version, about = "Issue, check and revoke access tokens")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the authorization server.
    Serve(serve::ServeArgs),
    /// Run the gateway that enforces tokens in front of APIs.
    Gateway(gateway::GatewayArgs),
    /// Manage OAuth clients through the admin API.
    #[command(subcommand)]
    Client(admin::ClientCommand),
    /// Manage users through the admin API.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Manage signing keys through the admin API.
    #[command(subcommand)]
    Key(admin::KeyCommand),
    /// Work with access tokens.
    #[command(subcommand)]
    Token(verify::TokenCommand),
    /// End sessions and revoke tokens of a user, a session or a client.
    Revoke(admin::RevokeArgs),
    /// Manage API keys (users' personal access tokens, clients' service keys).
    #[command(subcommand)]
    Apikey(admin::ApiKeyCommand),
    /// Check, follow, search and export the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The CLI's own admin client (the one admin.json holds).
    #[command(subcommand)]
    Admin(admin_self::AdminCommand),
}

fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::Gateway(args) => gateway::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::Client(command) => admin::client(command).await.map(|()| ExitCode::SUCCESS),
            Command::Key(command) => admin::key(command).await.map(|()| ExitCode::SUCCESS),
            Command::User(command) => admin::user(command).await.map(|()| ExitCode::SUCCESS),
            Command::Token(command) => verify::run(command).await,
            Command::Revoke(args) => admin::revoke(args).await.map(|()| ExitCode::SUCCESS),
            Command::Apikey(command) => admin::api_key(command).await.map(|()| ExitCode::SUCCESS),
            Command::Audit(command) => audit::run(command).await,
            Command::Admin(command) => admin_self::run(command).await.map(|()| ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::Cli;

    /// Ids are base64url, so one in 32 begins with `-`: every id argument must take it as a value.
    #[test]
    fn ids_that_begin_with_a_hyphen_are_values_not_flags() {
        let id = "-Wx3_K9aQeLr2";
        let commands: [&[&str]; 14] = [
            &["revoke", "--user", id],
            &["revoke", "--session", id],
            &["revoke", "--client", id],
            &["client", "show", id],
            &["client", "delete", id, "--json"],
            &["client", "rotate-secret", id],
            &["user", "show", id],
            &["user", "delete", id],
            &["user", "disable", id],
            &["user", "enable", id],
            &["apikey", "create", "--user", id, "--name", "ci"],
            &["apikey", "list", "--client", id],
            &["apikey", "revoke", id],
            &["audit", "query", "--user", id, "--client", id],
        ];
        for args in commands {
            let argv = std::iter::once("tessera").chain(args.iter().copied());
            if let Err(err) = Cli::try_parse_from(argv) {
                panic!("tessera {}: {err}", args.join(" "));
            }
        }
    }
}

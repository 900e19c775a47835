//! `tessera token verify`: checks a JWT access token exactly as a resource server must, using
//! `tessera-verify`, and prints its claims (exit 0) or the reason it is invalid (exit 1).

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tessera_proto::UnixTime;
use tessera_proto::discovery::ProviderMetadata;
use tessera_proto::jwks::JwkSet;
use tessera_server::clock::{Clock, SystemClock};
use tessera_verify::Verifier;

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Verify a JWT access token (RFC 9068) and print its claims.
    Verify(VerifyArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("keys").required(true).args(["jwks", "discover"])))]
pub(crate) struct VerifyArgs {
    /// The token, or `-` to read it from standard input (keeps it out of shell history).
    token: String,
    /// Expected issuer, compared exactly.
    #[arg(long)]
    issuer: String,
    /// The audience this resource server answers to.
    #[arg(long)]
    audience: String,
    /// JWK Set: a file path or an http(s) URL.
    #[arg(long)]
    jwks: Option<String>,
    /// Fetch the issuer's metadata and take its jwks_uri.
    #[arg(long)]
    discover: bool,
    /// Verify as of this Unix time instead of now.
    #[arg(long)]
    now: Option<u64>,
    /// Clock skew tolerated on exp, nbf and iat, in seconds.
    #[arg(long, default_value_t = 60)]
    leeway: u64,
    /// Print the result as JSON, including failures.
    #[arg(long)]
    json: bool,
    /// The DPoP proof that came with a DPoP-bound token (RFC 9449 §7.1): the proof, its `ath`
    /// and the token's `cnf.jkt` are checked; without it a DPoP-bound token is refused.
    #[arg(long, requires_all = ["method", "url"])]
    dpop: Option<String>,
    /// With --dpop: the HTTP method of the request the proof came with.
    #[arg(long, requires = "dpop")]
    method: Option<String>,
    /// With --dpop: the URL of the request the proof came with.
    #[arg(long, requires = "dpop")]
    url: Option<String>,
}

pub(crate) async fn run(command: TokenCommand) -> anyhow::Result<ExitCode> {
    let TokenCommand::Verify(args) = command;
    let token = if args.token == "-" {
        let mut buf = String::new();
        std::io::stdin().read_to_string(&mut buf).context("reading the token from standard input")?;
        buf.trim().to_owned()
    } else {
        args.token.clone()
    };
    let jwks = match (&args.jwks, args.discover) {
        (Some(source), _) => load_jwks(source).await?,
        (None, _) => discover(&args.issuer).await?,
    };
    let verifier = Verifier::new(&args.issuer, &args.audience, &jwks)
        .context("the key set cannot be used")?
        .with_leeway(args.leeway);
    let now = args.now.map(UnixTime).unwrap_or_else(|| SystemClock.now());
    let result = match (&args.dpop, &args.method, &args.url) {
        (Some(proof), Some(method), Some(url)) => {
            let request = tessera_verify::dpop::ResourceRequest {
                method,
                url,
                nonce: None,
                policy: tessera_verify::dpop::DpopPolicy::default(),
            };
            verifier.verify_dpop(&token, proof, &request, None, now).map(|(claims, _)| claims)
        }
        _ => verifier.verify(&token, now),
    };
    match result {
        Ok(claims) => {
            println!("{}", serde_json::to_string_pretty(claims.as_json())?);
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"valid": false, "error": "invalid_token", "reason": err.to_string()})
                );
            } else {
                eprintln!("invalid token: {err}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

async fn fetch_json<T: serde::de::DeserializeOwned>(url: &str) -> anyhow::Result<T> {
    let res = reqwest::get(url).await.with_context(|| format!("fetching {url}"))?;
    if !res.status().is_success() {
        bail!("fetching {url}: {}", res.status());
    }
    res.json().await.with_context(|| format!("parsing {url}"))
}

async fn load_jwks(source: &str) -> anyhow::Result<JwkSet> {
    if source.starts_with("https://") || source.starts_with("http://") {
        return fetch_json(source).await;
    }
    let bytes = std::fs::read(source).with_context(|| format!("reading {source}"))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {source}"))
}

/// RFC 8414 §3: the metadata of `issuer`, whose `issuer` member must equal it exactly.
async fn discover(issuer: &str) -> anyhow::Result<JwkSet> {
    let url = format!("{}/.well-known/oauth-authorization-server", issuer.trim_end_matches('/'));
    let metadata: ProviderMetadata = fetch_json(&url).await?;
    if metadata.issuer != issuer {
        bail!("the metadata at {url} names issuer {:?}, not {issuer:?}", metadata.issuer);
    }
    fetch_json(&metadata.jwks_uri).await
}

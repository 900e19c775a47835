//! `tessera client …`, `tessera key …`, `tessera user …` and `tessera revoke`: the admin API over
//! HTTP, authenticated with the bootstrap admin client from `admin.json`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use tessera_proto::admin::{
    AdminConfig, ApiKeyInfo, ApiKeyList, ClientInfo, ClientList, ClientMetadata, CreateApiKey, CreateKey, CreateUser,
    CreatedApiKey, KeyInfo, KeyList, RevocationRequest, RevocationResult, SetPassword, UserInfo, UserList,
};
use tessera_proto::error::ErrorBody;
use tessera_proto::registration::{CreateRegistrationToken, RegistrationToken};
use tessera_proto::token::TokenResponse;

#[derive(Args)]
pub(crate) struct Common {
    /// The admin.json written by `tessera serve`.
    #[arg(long, env = "TESSERA_ADMIN_CONFIG", default_value = "tessera-data/admin.json", global = true)]
    pub(crate) admin_config: PathBuf,
    /// Print JSON instead of a human-readable table.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub(crate) enum ClientCommand {
    /// Register a client; its secret is printed once.
    Create {
        #[command(flatten)]
        common: Common,
        /// Human-readable name.
        #[arg(long)]
        name: Option<String>,
        /// Space-separated scopes the client may request.
        #[arg(long)]
        scope: Option<String>,
        /// Grant type (repeatable) [default: client_credentials].
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// client_secret_basic, client_secret_post, none, private_key_jwt, tls_client_auth or
        /// self_signed_tls_client_auth [default: client_secret_basic].
        #[arg(long)]
        auth_method: Option<String>,
        /// Access-token format: jwt, opaque or split [default: jwt].
        #[arg(long)]
        format: Option<String>,
        /// Access-token lifetime in seconds [default: 600].
        #[arg(long)]
        ttl: Option<u64>,
        /// Allowed audience (repeatable); the first is the default [default: the issuer].
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// Redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// This client is a resource server that may introspect tokens for its audiences.
        #[arg(long)]
        introspection: bool,
        /// An admin client: its client_credentials tokens may use the admin API (client_credentials only).
        #[arg(long)]
        admin: bool,
        /// Where RP-initiated logout may return to (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Authorization requests must be pushed to /par.
        #[arg(long)]
        require_par: bool,
        /// A first-party application: users are not asked for consent.
        #[arg(long)]
        first_party: bool,
        /// Keep refresh tokens instead of rotating them (confidential clients only).
        #[arg(long)]
        no_refresh_rotation: bool,
        /// ID-token algorithm: RS256 or ES256 [default: RS256].
        #[arg(long)]
        id_token_alg: Option<String>,
        /// Every token request must carry a DPoP proof, so every access token is DPoP-bound (RFC 9449).
        #[arg(long)]
        require_dpop: bool,
        /// DPoP proofs must carry the server's current nonce (RFC 9449 §8).
        #[arg(long)]
        dpop_nonce: bool,
        /// The client's public keys: a JWK Set file (for private_key_jwt, self_signed_tls_client_auth).
        #[arg(long, conflicts_with = "jwks_uri")]
        jwks_file: Option<PathBuf>,
        /// Where the client publishes its JWK Set (https).
        #[arg(long)]
        jwks_uri: Option<String>,
        /// tls_client_auth: the certificate's subject DN, e.g. "CN=billing,O=Example".
        #[arg(long)]
        tls_subject_dn: Option<String>,
        /// tls_client_auth: a dNSName the certificate must carry.
        #[arg(long)]
        tls_san_dns: Option<String>,
        /// tls_client_auth: a URI the certificate must carry.
        #[arg(long)]
        tls_san_uri: Option<String>,
        /// Bind access tokens to the client's TLS certificate (RFC 8705 §3).
        #[arg(long)]
        certificate_bound: bool,
        /// Profile: default or fapi2 (FAPI 2.0 Security Profile).
        #[arg(long)]
        profile: Option<String>,
    },
    /// List clients.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Show one client.
    Show {
        #[command(flatten)]
        common: Common,
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Delete a client; its tokens stop being active at once.
    Delete {
        #[command(flatten)]
        common: Common,
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Replace a client's secret; the new one is printed once.
    RotateSecret {
        #[command(flatten)]
        common: Common,
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Initial access tokens for dynamic client registration (`registration = "token"`).
    #[command(subcommand)]
    RegistrationToken(RegistrationTokenCommand),
}

#[derive(Subcommand)]
pub(crate) enum RegistrationTokenCommand {
    /// Create an initial access token for POST /register; it is printed once.
    Create {
        #[command(flatten)]
        common: Common,
        /// Seconds until it stops working [default: never].
        #[arg(long)]
        expires_in: Option<u64>,
        /// How many registrations it allows [default: any number].
        #[arg(long)]
        uses: Option<u64>,
    },
}

#[derive(Subcommand)]
pub(crate) enum KeyCommand {
    /// List signing keys.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Generate a key; it is published at once and signs only after `activate`.
    Create {
        #[command(flatten)]
        common: Common,
        /// ES256, EdDSA, RS256 or PS256.
        #[arg(long, default_value = "ES256")]
        alg: String,
    },
    /// Make a key the signing key.
    Activate {
        #[command(flatten)]
        common: Common,
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Register a user. The password is read from standard input (never from a flag).
    Create {
        #[command(flatten)]
        common: Common,
        /// The login name.
        #[arg(long)]
        username: String,
        /// Read the password from standard input (its first line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Mark the email address as verified.
        #[arg(long)]
        email_verified: bool,
    },
    /// List users.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Show one user.
    Show {
        #[command(flatten)]
        common: Common,
        #[arg(allow_hyphen_values = true)]
        user_id: String,
    },
    /// Disable a user: they can no longer sign in.
    Disable {
        #[command(flatten)]
        common: Common,
        #[arg(allow_hyphen_values = true)]
        user_id: String,
    },
    /// Enable a disabled user.
    Enable {
        #[command(flatten)]
        common: Common,
        #[arg(allow_hyphen_values = true)]
        user_id: String,
    },
    /// Delete a user.
    Delete {
        #[command(flatten)]
        common: Common,
        #[arg(allow_hyphen_values = true)]
        user_id: String,
    },
    /// Set a user's password (read from standard input); their sessions and tokens are revoked.
    SetPassword {
        #[command(flatten)]
        common: Common,
        #[arg(allow_hyphen_values = true)]
        user_id: String,
        /// Read the password from standard input (its first line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum ApiKeyCommand {
    /// Create an API key for a user or a client; the key is printed once.
    Create {
        #[command(flatten)]
        common: Common,
        /// The owning user (a personal access token).
        #[arg(long, conflicts_with = "client", required_unless_present = "client", allow_hyphen_values = true)]
        user: Option<String>,
        /// The owning client (a service key).
        #[arg(long, allow_hyphen_values = true)]
        client: Option<String>,
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// Space-separated scopes, within the owner's [default: all of the owner's].
        #[arg(long)]
        scope: Option<String>,
        /// Audience (repeatable), within the owner's [default: the owner's first].
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// Lifetime in seconds [default: no expiry].
        #[arg(long)]
        expires_in: Option<u64>,
    },
    /// List API keys (never their secrets).
    List {
        #[command(flatten)]
        common: Common,
        /// Only this user's.
        #[arg(long, conflicts_with = "client", allow_hyphen_values = true)]
        user: Option<String>,
        /// Only this client's.
        #[arg(long, allow_hyphen_values = true)]
        client: Option<String>,
    },
    /// Revoke an API key (`ak_<n>`): refused everywhere within a second.
    Revoke {
        #[command(flatten)]
        common: Common,
        #[arg(allow_hyphen_values = true)]
        key_id: String,
    },
}

/// `tessera revoke`: end sessions and revoke refresh families and access tokens.
#[derive(Args)]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    common: Common,
    /// Everything of this user ("sign out all devices").
    #[arg(long, conflicts_with_all = ["session", "client"], required_unless_present_any = ["session", "client"], allow_hyphen_values = true)]
    user: Option<String>,
    /// One session.
    #[arg(long, conflicts_with = "client", allow_hyphen_values = true)]
    session: Option<String>,
    /// Everything issued to this client.
    #[arg(long, allow_hyphen_values = true)]
    client: Option<String>,
}

pub(crate) async fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let request = RevocationRequest { user_id: args.user, session_id: args.session, client_id: args.client };
    let session = AdminSession::open(&args.common.admin_config).await?;
    let res = session.send(reqwest::Method::POST, "/admin/revocations", Some(serde_json::to_value(request)?)).await?;
    let result: RevocationResult = parse(res).await?;
    emit(args.common.json, &result, |r| println!("ended {} session(s), revoked {} grant(s)", r.sessions, r.grants))
}

/// An authenticated session with the admin API.
pub(crate) struct AdminSession {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AdminSession {
    pub(crate) async fn open(path: &PathBuf) -> anyhow::Result<AdminSession> {
        let bytes = std::fs::read(path).with_context(|| {
            format!("reading {} (start `tessera serve` first, or pass --admin-config)", path.display())
        })?;
        let config: AdminConfig =
            serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
        let http = reqwest::Client::builder().build()?;
        let res = http
            .post(&config.token_endpoint)
            .basic_auth(form_encode(&config.client_id), Some(form_encode(&config.client_secret)))
            .form(&[("grant_type", "client_credentials"), ("scope", "tessera:admin")])
            .send()
            .await
            .with_context(|| format!("reaching {}", config.token_endpoint))?;
        let token: TokenResponse = parse(res).await.context("getting an admin token")?;
        Ok(AdminSession { http, base: config.admin_url, token: token.access_token })
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.with_context(|| format!("reaching {}", self.base))
    }
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
fn form_encode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap_or_default().trim_start_matches("v=").to_owned()
}

pub(crate) async fn parse<T: serde::de::DeserializeOwned>(res: reqwest::Response) -> anyhow::Result<T> {
    let status = res.status();
    let bytes = res.bytes().await?;
    if !status.is_success() {
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(err) => bail!("{} ({status}): {}", err.error, err.error_description.unwrap_or_default()),
            Err(_) => bail!("server answered {status}"),
        }
    }
    serde_json::from_slice(&bytes).context("unexpected response body")
}

async fn expect_empty(res: reqwest::Response) -> anyhow::Result<()> {
    if res.status().is_success() { Ok(()) } else { parse::<Value>(res).await.map(|_| ()) }
}

/// Prints `value` as JSON with `--json`, or through `human` otherwise.
pub(crate) fn emit<T: serde::Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human(value);
    }
    Ok(())
}

fn print_client(client: &ClientInfo) {
    println!("client_id:        {}", client.client_id);
    if let Some(secret) = &client.client_secret {
        println!("client_secret:    {secret}   (shown once: store it now)");
    }
    println!("name:             {}", client.client_name.as_deref().unwrap_or("-"));
    println!("created by:       {}", client.origin);
    println!("grant_types:      {}", client.grant_types.join(" "));
    println!("scope:            {}", client.scope);
    println!("auth_method:      {}", client.token_endpoint_auth_method);
    println!("token format:     {} ({} s)", client.access_token_format, client.access_token_ttl);
    println!("audience:         {}", client.audience.join(" "));
    println!("introspection:    {}", client.introspection);
    if client.dpop_bound_access_tokens || client.dpop_nonce_required {
        println!(
            "dpop:             required: {}, nonce: {}",
            client.dpop_bound_access_tokens, client.dpop_nonce_required
        );
    }
    if !client.redirect_uris.is_empty() {
        println!("redirect_uris:    {}", client.redirect_uris.join(" "));
    }
}

pub(crate) async fn client(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Create {
            common,
            name,
            scope,
            grant_types,
            auth_method,
            format,
            ttl,
            audiences,
            redirect_uris,
            introspection,
            admin,
            post_logout_redirect_uris,
            require_par,
            first_party,
            no_refresh_rotation,
            id_token_alg,
            require_dpop,
            dpop_nonce,
            jwks_file,
            jwks_uri,
            tls_subject_dn,
            tls_san_dns,
            tls_san_uri,
            certificate_bound,
            profile,
        } => {
            let jwks = match &jwks_file {
                Some(path) => Some(
                    serde_json::from_slice(
                        &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
                    )
                    .with_context(|| format!("{} is not JSON", path.display()))?,
                ),
                None => None,
            };
            let metadata = ClientMetadata {
                post_logout_redirect_uris: Some(post_logout_redirect_uris).filter(|r| !r.is_empty()),
                require_pushed_authorization_requests: Some(require_par).filter(|r| *r),
                first_party: Some(first_party).filter(|f| *f),
                refresh_token_rotation: Some(false).filter(|_| no_refresh_rotation),
                id_token_signed_response_alg: id_token_alg,
                response_types: None,
                client_name: name,
                grant_types: Some(grant_types).filter(|g| !g.is_empty()),
                scope,
                token_endpoint_auth_method: auth_method,
                redirect_uris: Some(redirect_uris).filter(|r| !r.is_empty()),
                access_token_format: format,
                access_token_ttl: ttl,
                audience: Some(audiences).filter(|a| !a.is_empty()),
                introspection: Some(introspection),
                admin: Some(admin).filter(|a| *a),
                dpop_bound_access_tokens: Some(require_dpop).filter(|d| *d),
                dpop_nonce_required: Some(dpop_nonce).filter(|d| *d),
                jwks,
                jwks_uri,
                tls_client_auth_subject_dn: tls_subject_dn,
                tls_client_auth_san_dns: tls_san_dns,
                tls_client_auth_san_uri: tls_san_uri,
                tls_client_auth_san_ip: None,
                tls_client_auth_san_email: None,
                tls_client_certificate_bound_access_tokens: Some(certificate_bound).filter(|c| *c),
                profile,
            };
            let session = AdminSession::open(&common.admin_config).await?;
            let res =
                session.send(reqwest::Method::POST, "/admin/clients", Some(serde_json::to_value(metadata)?)).await?;
            let client: ClientInfo = parse(res).await?;
            emit(common.json, &client, print_client)
        }
        ClientCommand::List { common } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let list: ClientList = parse(session.send(reqwest::Method::GET, "/admin/clients", None).await?).await?;
            emit(common.json, &list, |list| {
                println!(
                    "{:<24} {:<28} {:<7} {:<24} {:<18} AUDIENCE",
                    "CLIENT_ID", "NAME", "FORMAT", "SCOPE", "CREATED_BY"
                );
                for c in &list.clients {
                    println!(
                        "{:<24} {:<28} {:<7} {:<24} {:<18} {}",
                        c.client_id,
                        c.client_name.as_deref().unwrap_or("-"),
                        c.access_token_format,
                        c.scope,
                        c.origin,
                        c.audience.join(",")
                    );
                }
            })
        }
        ClientCommand::Show { common, client_id } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let client: ClientInfo = parse(
                session
                    .send(reqwest::Method::GET, &format!("/admin/clients/{}", path_segment(&client_id)), None)
                    .await?,
            )
            .await?;
            emit(common.json, &client, print_client)
        }
        ClientCommand::Delete { common, client_id } => {
            let session = AdminSession::open(&common.admin_config).await?;
            expect_empty(
                session
                    .send(reqwest::Method::DELETE, &format!("/admin/clients/{}", path_segment(&client_id)), None)
                    .await?,
            )
            .await?;
            emit(common.json, &serde_json::json!({ "deleted": client_id }), |_| println!("deleted {client_id}"))
        }
        ClientCommand::RotateSecret { common, client_id } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let path = format!("/admin/clients/{}/secret", path_segment(&client_id));
            let client: ClientInfo = parse(session.send(reqwest::Method::POST, &path, None).await?).await?;
            emit(common.json, &client, print_client)
        }
        ClientCommand::RegistrationToken(RegistrationTokenCommand::Create { common, expires_in, uses }) => {
            let session = AdminSession::open(&common.admin_config).await?;
            let body = serde_json::to_value(CreateRegistrationToken { expires_in, uses })?;
            let created: RegistrationToken =
                parse(session.send(reqwest::Method::POST, "/admin/registration-tokens", Some(body)).await?).await?;
            emit(common.json, &created, |t| {
                println!("token:       {}   (shown once: hand it to the developer now)", t.token);
                println!("id:          {}", t.id);
                println!("expires_at:  {}", t.expires_at.map_or_else(|| "never".to_owned(), |e| e.to_string()));
                println!("uses:        {}", t.uses.map_or_else(|| "any number".to_owned(), |u| u.to_string()));
            })
        }
    }
}

pub(crate) async fn key(command: KeyCommand) -> anyhow::Result<()> {
    let print_keys = |keys: &[KeyInfo]| {
        println!("{:<44} {:<6} {:<10} CREATED_AT", "KID", "ALG", "STATUS");
        for k in keys {
            println!("{:<44} {:<6} {:<10} {}", k.kid, k.alg, k.status, k.created_at);
        }
    };
    match command {
        KeyCommand::List { common } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let list: KeyList = parse(session.send(reqwest::Method::GET, "/admin/keys", None).await?).await?;
            emit(common.json, &list, |list| print_keys(&list.keys))
        }
        KeyCommand::Create { common, alg } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let body = serde_json::to_value(CreateKey { alg })?;
            let key: KeyInfo = parse(session.send(reqwest::Method::POST, "/admin/keys", Some(body)).await?).await?;
            emit(common.json, &key, |key| print_keys(std::slice::from_ref(key)))
        }
        KeyCommand::Activate { common, kid } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let path = format!("/admin/keys/{}/activate", path_segment(&kid));
            let key: KeyInfo = parse(session.send(reqwest::Method::POST, &path, None).await?).await?;
            emit(common.json, &key, |key| print_keys(std::slice::from_ref(key)))
        }
    }
}

fn print_user(user: &UserInfo) {
    println!("id:              {}", user.id);
    println!("username:        {}", user.username);
    println!(
        "email:           {}{}",
        user.email.as_deref().unwrap_or("-"),
        if user.email_verified { " (verified)" } else { "" }
    );
    println!("name:            {}", user.name.as_deref().unwrap_or("-"));
    println!("disabled:        {}", user.disabled);
    println!("created_at:      {}", user.created_at);
}

pub(crate) async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { common, username, password_stdin: _, email, name, email_verified } => {
            let password = read_password()?;
            let request = CreateUser { username, password, email, name, email_verified: Some(email_verified) };
            let session = AdminSession::open(&common.admin_config).await?;
            let res = session.send(reqwest::Method::POST, "/admin/users", Some(serde_json::to_value(request)?)).await?;
            let user: UserInfo = parse(res).await?;
            emit(common.json, &user, print_user)
        }
        UserCommand::List { common } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let list: UserList = parse(session.send(reqwest::Method::GET, "/admin/users", None).await?).await?;
            emit(common.json, &list, |list| {
                println!("{:<24} {:<24} {:<32} DISABLED", "ID", "USERNAME", "EMAIL");
                for u in &list.users {
                    println!(
                        "{:<24} {:<24} {:<32} {}",
                        u.id,
                        u.username,
                        u.email.as_deref().unwrap_or("-"),
                        u.disabled
                    );
                }
            })
        }
        UserCommand::Show { common, user_id } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let path = format!("/admin/users/{}", path_segment(&user_id));
            let user: UserInfo = parse(session.send(reqwest::Method::GET, &path, None).await?).await?;
            emit(common.json, &user, print_user)
        }
        UserCommand::Disable { common, user_id } => set_disabled(common, &user_id, "disable").await,
        UserCommand::Enable { common, user_id } => set_disabled(common, &user_id, "enable").await,
        UserCommand::SetPassword { common, user_id, password_stdin: _ } => {
            let password = read_password()?;
            let session = AdminSession::open(&common.admin_config).await?;
            let path = format!("/admin/users/{}/password", path_segment(&user_id));
            let body = serde_json::to_value(SetPassword { password })?;
            let user: UserInfo = parse(session.send(reqwest::Method::POST, &path, Some(body)).await?).await?;
            emit(common.json, &user, print_user)
        }
        UserCommand::Delete { common, user_id } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let path = format!("/admin/users/{}", path_segment(&user_id));
            expect_empty(session.send(reqwest::Method::DELETE, &path, None).await?).await?;
            emit(common.json, &serde_json::json!({ "deleted": user_id }), |_| println!("deleted {user_id}"))
        }
    }
}

fn read_password() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password).context("reading the password from standard input")?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
}

async fn set_disabled(common: Common, user_id: &str, action: &str) -> anyhow::Result<()> {
    let session = AdminSession::open(&common.admin_config).await?;
    let path = format!("/admin/users/{}/{action}", path_segment(user_id));
    let user: UserInfo = parse(session.send(reqwest::Method::POST, &path, None).await?).await?;
    emit(common.json, &user, print_user)
}

/// Percent-encodes a value for use as one URL path segment.
pub(crate) fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn print_api_key(key: &ApiKeyInfo) {
    println!("id:          {}", key.id);
    println!("display:     {}…", key.display);
    println!("owner:       {} {}", key.owner_kind, key.owner_id);
    println!("name:        {}", key.name);
    println!("scope:       {}", key.scope);
    println!("audience:    {}", key.audience.join(" "));
    println!("expires_at:  {}", key.expires_at.map_or("never".into(), |e| e.to_string()));
    if let Some(revoked) = key.revoked_at {
        println!("revoked_at:  {revoked}");
    }
}

pub(crate) async fn api_key(command: ApiKeyCommand) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create { common, user, client, name, scope, audiences, expires_in } => {
            let request = CreateApiKey {
                user_id: user,
                client_id: client,
                name,
                scope,
                audience: Some(audiences).filter(|a| !a.is_empty()),
                expires_in,
            };
            let session = AdminSession::open(&common.admin_config).await?;
            let res =
                session.send(reqwest::Method::POST, "/admin/api-keys", Some(serde_json::to_value(request)?)).await?;
            let created: CreatedApiKey = parse(res).await?;
            emit(common.json, &created, |created| {
                print_api_key(&created.info);
                println!("key:         {}", created.key);
                eprintln!("Store the key now: it is not shown again.");
            })
        }
        ApiKeyCommand::List { common, user, client } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let path = match (user, client) {
                (Some(user), _) => format!("/admin/api-keys?user_id={}", path_segment(&user)),
                (None, Some(client)) => format!("/admin/api-keys?client_id={}", path_segment(&client)),
                (None, None) => "/admin/api-keys".into(),
            };
            let list: ApiKeyList = parse(session.send(reqwest::Method::GET, &path, None).await?).await?;
            emit(common.json, &list, |list| {
                println!("{:<10} {:<18} {:<40} {:<24} STATE", "ID", "DISPLAY", "OWNER", "NAME");
                for k in &list.api_keys {
                    let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                    let owner = format!("{} {}", k.owner_kind, k.owner_id);
                    println!("{:<10} {:<18} {:<40} {:<24} {state}", k.id, format!("{}…", k.display), owner, k.name);
                }
            })
        }
        ApiKeyCommand::Revoke { common, key_id } => {
            let session = AdminSession::open(&common.admin_config).await?;
            let path = format!("/admin/api-keys/{}", path_segment(&key_id));
            expect_empty(session.send(reqwest::Method::DELETE, &path, None).await?).await?;
            if !common.json {
                println!("revoked {key_id}");
            }
            Ok(())
        }
    }
}

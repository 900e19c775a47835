//! `GET|POST /authorize` (RFC 6749 §4.1, OpenID Connect Core §3.1.2) and `POST /par`
//! (RFC 9126): validation of authorization requests, the decision between login, consent and an
//! immediate code, and completion into a single-use code.
//!
//! Until the client and redirect URI are known to belong together, every error is an error
//! page and never a redirect (RFC 6749 §4.1.2.1). After that, errors go back to the client with
//! `error`, `state` and `iss` (RFC 9207).

use serde::{Deserialize, Serialize};
use tessera_proto::UnixTime;

use crate::AppState;
use crate::client::{Client, GrantType, Profile, redirect_uri_matches};
use crate::flows::client_auth::{self, ClientRequest};
use crate::flows::dpop::{self, PresentedProof};
use crate::flows::error::OAuthError;
use crate::flows::metadata_document::{self, DocumentError};
use crate::flows::pending;
use crate::form::Form;
use crate::scope::Scope;
use crate::secret::{self, CODE_PREFIX};
use crate::store::{AuthRequestRow, CodeRow, SessionRow};
use crate::user::User;

/// The prefix of `request_uri` values from `/par` (RFC 9126 §2.2).
pub const PAR_URN_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Lifetime of a pushed request (RFC 9126 §2.2: short; we say 90 s).
pub const PAR_TTL: u64 = 90;
/// Lifetime of an authorization code (RFC 6749 §4.1.2: at most 10 minutes; FAPI 2: 60 s).
pub const CODE_TTL: u64 = 60;
/// How long a user has to finish signing in and consenting.
pub const INTERACTION_TTL: u64 = 600;

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthParams {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the request named the redirect URI (then the token request must repeat it).
    pub redirect_uri_sent: bool,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Vec<String>,
    pub max_age: Option<u64>,
    pub login_hint: Option<String>,
    pub resources: Vec<String>,
    /// RFC 9449 §10: the DPoP key the code will be bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}

impl AuthParams {
    fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }
}

/// Why an authorization request failed.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown to the user on an error page; the client is not told.
    Page(String),
    /// Sent back to the client's redirect URI.
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for AuthorizeError {
    fn from(err: anyhow::Error) -> AuthorizeError {
        AuthorizeError::Internal(err)
    }
}

impl From<OAuthError> for AuthorizeError {
    fn from(err: OAuthError) -> AuthorizeError {
        match err {
            OAuthError::Internal(err) => AuthorizeError::Internal(err),
            other => AuthorizeError::Page(other.description().unwrap_or_else(|| other.to_string())),
        }
    }
}

/// What the browser should see next.
#[derive(Debug)]
pub enum Next {
    /// Back to the client: a code, or an error.
    Redirect(String),
    /// The login page for this interaction handle.
    Login(String),
    /// The consent page for this interaction handle.
    Consent(String),
}

/// A request received at `/authorize`, resolved against its client (and its pushed request).
pub struct Resolved {
    pub client: Client,
    pub params: AuthParams,
    /// The pushed request this came from, consumed at completion.
    pub par_hash: Option<[u8; 32]>,
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// RFC 7636 §4.6 with S256, compared in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine as _;
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret::hash(verifier));
    secret::hashes_equal(computed.as_bytes(), challenge.as_bytes())
}

/// Appends `pairs` to a redirect URI's query.
pub fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in pairs {
                    query.append_pair(name, value);
                }
            }
            url.into()
        }
        // Registered URIs always parse; this only keeps the function total.
        Err(_) => redirect_uri.to_owned(),
    }
}

fn error_redirect(state: &AppState, params_redirect: &str, error: &str, description: &str, st: Option<&str>) -> String {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(st) = st {
        pairs.push(("state", st));
    }
    pairs.push(("iss", state.config.issuer.as_str()));
    redirect_with(params_redirect, &pairs)
}

impl AuthorizeError {
    /// The redirect for a `Redirect` error.
    pub fn redirect_url(&self, state: &AppState) -> Option<String> {
        match self {
            AuthorizeError::Redirect { redirect_uri, error, description, state: st } => {
                Some(error_redirect(state, redirect_uri, error, description, st.as_deref()))
            }
            _ => None,
        }
    }
}

/// Validates the parameters of an authorization request (from the query, a form body, or
/// `/par`) for `client`. `from_par` lifts the PAR requirement.
fn validate(client: &Client, form: &Form, from_par: bool) -> Result<AuthParams, AuthorizeError> {
    let redirect_uri = match form.get("redirect_uri") {
        Some(uri) if redirect_uri_matches(&client.redirect_uris, uri) => uri.to_owned(),
        Some(_) => return Err(AuthorizeError::Page("The redirect URI is not registered for this application.".into())),
        // FAPI 2.0 §5.3.1.2: the redirect URI is always named.
        None if client.redirect_uris.len() == 1 && client.profile != Profile::Fapi2 => client.redirect_uris[0].clone(),
        None => return Err(AuthorizeError::Page("The request does not name a redirect URI.".into())),
    };
    let state = form.get("state").map(str::to_owned);
    let fail = |error: &'static str, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description: description.to_owned(),
        state: state.clone(),
    };
    if state.as_ref().is_some_and(|s| s.len() > 2048) {
        return Err(fail("invalid_request", "state is longer than 2048 bytes"));
    }
    match form.get("response_type") {
        None => return Err(fail("invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => return Err(fail("unsupported_response_type", "only response_type=code is supported")),
    }
    if !client.may_use(GrantType::AuthorizationCode) {
        return Err(fail("unauthorized_client", "this client may not use the authorization code flow"));
    }
    if form.get("request").is_some() {
        return Err(fail("request_not_supported", "request objects are not supported; use /par"));
    }
    if form.get("request_uri").is_some() {
        return Err(fail("invalid_request", "request_uri cannot be pushed"));
    }
    if client.require_par && !from_par {
        return Err(fail("invalid_request", "this client must push its authorization requests to /par"));
    }
    match form.get("code_challenge_method") {
        Some("S256") => {}
        _ => return Err(fail("invalid_request", "PKCE is required with code_challenge_method=S256")),
    }
    let code_challenge = match form.get("code_challenge") {
        Some(c) if is_pkce_value(c) => c.to_owned(),
        Some(_) => return Err(fail("invalid_request", "code_challenge is malformed (RFC 7636 §4.2)")),
        None => return Err(fail("invalid_request", "code_challenge is required")),
    };
    let scope =
        Scope::parse(form.get("scope").unwrap_or("")).map_err(|_| fail("invalid_scope", "scope is malformed"))?;
    if !scope.is_subset(&client.scope) {
        return Err(fail("invalid_scope", "the requested scope exceeds what the client may request"));
    }
    let mut resources = Vec::new();
    for resource in form.resources() {
        if !client.audience.contains(resource) {
            return Err(fail("invalid_target", "the client may not request this resource"));
        }
        if !resources.contains(resource) {
            resources.push(resource.clone());
        }
    }
    let prompt: Vec<String> =
        form.get("prompt").unwrap_or("").split(' ').filter(|p| !p.is_empty()).map(str::to_owned).collect();
    if prompt.iter().any(|p| !["none", "login", "consent"].contains(&p.as_str())) {
        return Err(fail("invalid_request", "prompt supports none, login and consent"));
    }
    if prompt.len() > 1 && prompt.iter().any(|p| p == "none") {
        return Err(fail("invalid_request", "prompt=none cannot be combined with other values"));
    }
    let max_age = match form.get("max_age") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| fail("invalid_request", "max_age is not a number of seconds"))?),
    };
    let nonce = form.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > 2048) {
        return Err(fail("invalid_request", "nonce is longer than 2048 bytes"));
    }
    let login_hint = form.get("login_hint").filter(|h| h.len() <= 256).map(str::to_owned);
    let dpop_jkt = match form.get("dpop_jkt") {
        None => None,
        Some(jkt) if dpop::is_thumbprint(jkt) => Some(jkt.to_owned()),
        Some(_) => return Err(fail("invalid_request", "dpop_jkt is not a JWK SHA-256 thumbprint")),
    };
    Ok(AuthParams {
        client_id: client.client_id.clone(),
        redirect_uri_sent: form.get("redirect_uri").is_some(),
        redirect_uri,
        scope: scope.to_string(),
        state,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint,
        resources,
        dpop_jkt,
    })
}

/// RFC 9700 §4.11.2: anyone can register a client openly, with any https redirect URI, so an
/// error sent there before the person has seen the consent page (which names the redirect host)
/// would make this server an open redirector. For such a client it is shown here instead.
fn unverified_stays_here(client: &Client, err: AuthorizeError) -> AuthorizeError {
    match err {
        AuthorizeError::Redirect { error, description, .. } if client.origin.is_unverified() => {
            AuthorizeError::Page(format!("The application's request was refused ({error}): {description}."))
        }
        other => other,
    }
}

/// Resolves a request at `/authorize`: its client, and either its own parameters or those it
/// pushed earlier (RFC 9126 §4: then only `client_id` and `request_uri` count).
/// A `client_id` that is an https URL names the client's metadata document, fetched first
/// (`flows::metadata_document`; `ip` is the browser's, whose fetches are throttled).
pub async fn resolve(
    state: &AppState,
    form: &Form,
    ip: Option<std::net::IpAddr>,
    now: UnixTime,
) -> Result<Resolved, AuthorizeError> {
    let client_id =
        form.get("client_id").ok_or_else(|| AuthorizeError::Page("The request has no client_id.".into()))?;
    match metadata_document::load(state, client_id, ip, now).await {
        Ok(()) => {}
        Err(DocumentError::Refused(why)) => {
            return Err(AuthorizeError::Page(format!("The application cannot be used: {why}.")));
        }
        Err(DocumentError::TooMany(_)) => {
            return Err(AuthorizeError::Page(
                "Too many applications were looked up from this address. Please wait a moment and try again.".into(),
            ));
        }
        Err(DocumentError::Internal(err)) => return Err(AuthorizeError::Internal(err)),
    }
    let client = match state.store.client(client_id).await? {
        Some(stored) => stored.client.clone(),
        None => return Err(AuthorizeError::Page("The application is not registered here.".into())),
    };
    let Some(request_uri) = form.get("request_uri") else {
        let params = validate(&client, form, false).map_err(|err| unverified_stays_here(&client, err))?;
        return Ok(Resolved { client, params, par_hash: None });
    };
    let expired = || AuthorizeError::Page("The pushed authorization request is unknown, used or expired.".into());
    let handle = request_uri.strip_prefix(PAR_URN_PREFIX).ok_or_else(expired)?;
    let par_hash = secret::hash(handle);
    let row = state.store.auth_request(&par_hash).await?.ok_or_else(expired)?;
    if !row.par || row.client_id != client.client_id || row.consumed_at.is_some() || row.expires_at <= now.secs() {
        return Err(expired());
    }
    let params: AuthParams = serde_json::from_str(&row.params).map_err(anyhow::Error::from)?;
    Ok(Resolved { client, params, par_hash: Some(par_hash) })
}

/// `POST /par`: authenticates the client, validates the request as `/authorize` would, and
/// stores it. Returns `(request_uri, expires_in)`.
pub async fn push(
    state: &AppState,
    request: &ClientRequest<'_>,
    form: &Form,
    proof: &PresentedProof<'_>,
    now: UnixTime,
) -> Result<(String, u64), OAuthError> {
    let client = client_auth::require(state, request, form, now).await?;
    let proof_jkt = dpop::proof_key(state, &client, proof, now).await?;
    if form.get("request_uri").is_some() {
        return Err(OAuthError::InvalidRequest("request_uri must not be sent to the PAR endpoint".into()));
    }
    let mut params = match validate(&client, form, true) {
        Ok(params) => params,
        Err(AuthorizeError::Page(why)) => return Err(OAuthError::InvalidRequest(why)),
        Err(AuthorizeError::Redirect { error, description, .. }) => {
            return Err(match error {
                "invalid_scope" => OAuthError::InvalidScope("the requested scope exceeds what the client may request"),
                "invalid_target" => OAuthError::InvalidTarget("the client may not request this resource"),
                "unauthorized_client" => {
                    OAuthError::UnauthorizedClient("this client may not use the authorization code flow")
                }
                _ => OAuthError::InvalidRequest(description),
            });
        }
        Err(AuthorizeError::Internal(err)) => return Err(OAuthError::Internal(err)),
    };
    // RFC 9449 §10.1: a proof at PAR binds the code to its key; with `dpop_jkt` too, both agree.
    match (&params.dpop_jkt, proof_jkt) {
        (Some(named), Some(proven)) if *named != proven => {
            return Err(OAuthError::InvalidDpopProof("dpop_jkt does not match the key of the DPoP proof"));
        }
        (None, Some(proven)) => params.dpop_jkt = Some(proven),
        _ => {}
    }
    let handle = secret::random_b64(32);
    let row = AuthRequestRow {
        handle_hash: secret::hash(&handle),
        client_id: client.client_id.clone(),
        params: serde_json::to_string(&params).map_err(anyhow::Error::from)?,
        par: true,
        par_hash: None,
        browser_hash: None,
        login_session_id: None,
        created_at: now.secs(),
        expires_at: now.plus(PAR_TTL).secs(),
        consumed_at: None,
    };
    state.store.insert_auth_request(&row).await?;
    Ok((format!("{PAR_URN_PREFIX}{handle}"), PAR_TTL))
}

/// The signed-in user of this browser, if the session is still good.
pub struct SignedIn {
    pub session: SessionRow,
    pub user: User,
}

/// Decides what happens with a resolved request for this browser: an immediate code, an
/// immediate error (`prompt=none`), or an interaction (login or consent) bound to `browser`.
pub async fn begin(
    state: &AppState,
    resolved: Resolved,
    signed_in: Option<&SignedIn>,
    browser: &str,
    now: UnixTime,
) -> Result<Next, AuthorizeError> {
    let Resolved { client, params, par_hash } = resolved;
    decide(state, &client, &params, signed_in, None, false, par_hash, Some(browser), now).await
}

/// Continues an interaction after a login or on a revisit.
pub async fn resume(
    state: &AppState,
    handle: &str,
    browser: Option<&str>,
    signed_in: Option<&SignedIn>,
    now: UnixTime,
) -> Result<Next, AuthorizeError> {
    continue_interaction(state, handle, browser, signed_in, false, now).await
}

/// [`resume`] once the person has answered the consent page of this interaction: `prompt=consent`
/// is satisfied.
pub async fn resume_after_consent(
    state: &AppState,
    handle: &str,
    browser: Option<&str>,
    signed_in: Option<&SignedIn>,
    now: UnixTime,
) -> Result<Next, AuthorizeError> {
    continue_interaction(state, handle, browser, signed_in, true, now).await
}

async fn continue_interaction(
    state: &AppState,
    handle: &str,
    browser: Option<&str>,
    signed_in: Option<&SignedIn>,
    consented_here: bool,
    now: UnixTime,
) -> Result<Next, AuthorizeError> {
    let (row, client, params) = interaction(state, handle, browser, now).await?;
    decide(state, &client, &params, signed_in, Some((&row, handle)), consented_here, row.par_hash, None, now).await
}

/// Continues an interaction once the person has signed in at its login page, as the session
/// `signed_in`. A sealed request (`flows::pending`) is stored now, under a fresh handle, with
/// that session; a stored one notes the session.
pub async fn after_login(
    state: &AppState,
    handle: &str,
    browser: &str,
    signed_in: &SignedIn,
    now: UnixTime,
) -> Result<Next, AuthorizeError> {
    let session_id = signed_in.session.id.clone();
    if pending::is_sealed(handle) {
        // What the sealed handle holds goes on as is: nothing to read back after storing it.
        let (mut row, client, params) = interaction(state, handle, Some(browser), now).await?;
        let stored = secret::random_b64(32);
        row.handle_hash = secret::hash(&stored);
        row.login_session_id = Some(session_id);
        state.store.insert_auth_request(&row).await?;
        let par_hash = row.par_hash;
        return decide(state, &client, &params, Some(signed_in), Some((&row, &stored)), false, par_hash, None, now)
            .await;
    }
    state.store.set_login_session(&secret::hash(handle), &session_id).await?;
    continue_interaction(state, handle, Some(browser), Some(signed_in), false, now).await
}

/// A pending interaction that belongs to this browser, with its client and parameters.
pub async fn interaction(
    state: &AppState,
    handle: &str,
    browser: Option<&str>,
    now: UnixTime,
) -> Result<(AuthRequestRow, Client, AuthParams), AuthorizeError> {
    let gone = || {
        AuthorizeError::Page(
            "This sign-in request is finished or has expired. Go back to the application and start again.".into(),
        )
    };
    let row = if pending::is_sealed(handle) {
        pending::open(state, handle).ok_or_else(gone)?
    } else {
        state.store.auth_request(&secret::hash(handle)).await?.ok_or_else(gone)?
    };
    let bound = match (&row.browser_hash, browser) {
        (Some(expected), Some(browser)) => secret::hashes_equal(expected, &secret::hash(browser)),
        _ => false,
    };
    if row.par || !bound || row.consumed_at.is_some() || row.expires_at <= now.secs() {
        return Err(gone());
    }
    let client = state.store.client(&row.client_id).await?.ok_or_else(gone)?.client.clone();
    let params: AuthParams = serde_json::from_str(&row.params).map_err(anyhow::Error::from)?;
    Ok((row, client, params))
}

#[allow(clippy::too_many_arguments)]
async fn decide(
    state: &AppState,
    client: &Client,
    params: &AuthParams,
    signed_in: Option<&SignedIn>,
    interaction: Option<(&AuthRequestRow, &str)>,
    consented_here: bool,
    par_hash: Option<[u8; 32]>,
    browser: Option<&str>,
    now: UnixTime,
) -> Result<Next, AuthorizeError> {
    let (interaction, existing_handle) = match interaction {
        Some((row, handle)) => (Some(row), Some(handle.to_owned())),
        None => (None, None),
    };
    let fail = |error: &'static str, description: &str| {
        let redirect = AuthorizeError::Redirect {
            redirect_uri: params.redirect_uri.clone(),
            error,
            description: description.to_owned(),
            state: params.state.clone(),
        };
        unverified_stays_here(client, redirect)
    };
    let logged_in_here =
        |s: &SignedIn| interaction.and_then(|i| i.login_session_id.as_deref()) == Some(s.session.id.as_str());
    let needs_login = match signed_in {
        None => true,
        Some(s) => {
            (params.prompts("login") && !logged_in_here(s))
                || params.max_age.is_some_and(|max| now.secs().saturating_sub(s.session.auth_time) > max)
        }
    };
    let none = params.prompts("none");
    if needs_login && none {
        return Err(fail("login_required", "the user is not signed in"));
    }
    // A first-party client skips consent, unless the request insists (`prompt=consent`), which
    // holds until the person answers this interaction's consent page, a login first or not (#23).
    let forced = params.prompts("consent") && !consented_here;
    let needs_consent = match signed_in {
        Some(_) if needs_login => false,
        Some(_) if client.first_party => forced,
        // Anyone may register a client openly: its name proves nothing, so the person is asked
        // every time (the page says the app is not verified and where it sends them).
        Some(_) if client.origin.is_unverified() => !consented_here,
        Some(s) => {
            let granted = state.store.consent(&s.user.id, &client.client_id).await?;
            let granted = Scope::parse(granted.as_deref().unwrap_or("")).unwrap_or_default();
            let requested = Scope::parse(&params.scope).unwrap_or_default();
            forced || !requested.is_subset(&granted)
        }
        None => false,
    };
    if needs_consent && none {
        return Err(fail("consent_required", "the user has not consented to this scope"));
    }
    if !needs_login && !needs_consent {
        let Some(signed_in) = signed_in else { return Err(AuthorizeError::Internal(anyhow::anyhow!("no session"))) };
        let mut consume: Vec<[u8; 32]> = interaction.map(|i| i.handle_hash).into_iter().collect();
        consume.extend(par_hash);
        return complete(state, client, params, signed_in, &consume, now).await.map(Next::Redirect);
    }
    let handle = match existing_handle {
        Some(handle) => handle,
        None => {
            let browser = browser.ok_or_else(|| AuthorizeError::Internal(anyhow::anyhow!("no browser binding")))?;
            let mut row = AuthRequestRow {
                // Set below for a stored row; a sealed one is its own handle.
                handle_hash: [0; 32],
                client_id: client.client_id.clone(),
                params: serde_json::to_string(params).map_err(anyhow::Error::from)?,
                par: false,
                par_hash,
                browser_hash: Some(secret::hash(browser)),
                login_session_id: None,
                created_at: now.secs(),
                expires_at: now.plus(INTERACTION_TTL).secs(),
                consumed_at: None,
            };
            if signed_in.is_some() {
                let handle = secret::random_b64(32);
                row.handle_hash = secret::hash(&handle);
                state.store.insert_auth_request(&row).await?;
                handle
            } else {
                // Nobody is signed in to this browser: nothing is stored until someone is (T-08).
                pending::seal(state, &row)?
            }
        }
    };
    Ok(if needs_login { Next::Login(handle) } else { Next::Consent(handle) })
}

/// Consumes the pending requests and issues a code; returns the redirect back to the client.
pub async fn complete(
    state: &AppState,
    client: &Client,
    params: &AuthParams,
    signed_in: &SignedIn,
    consume: &[[u8; 32]],
    now: UnixTime,
) -> Result<String, AuthorizeError> {
    let code = format!("{CODE_PREFIX}{}", secret::random_b64(32));
    let row = CodeRow {
        code_hash: secret::hash(&code),
        client_id: client.client_id.clone(),
        user_id: signed_in.user.id.clone(),
        session_id: signed_in.session.id.clone(),
        redirect_uri: params.redirect_uri.clone(),
        redirect_uri_sent: params.redirect_uri_sent,
        scope: params.scope.clone(),
        resources: params.resources.clone(),
        nonce: params.nonce.clone(),
        code_challenge: params.code_challenge.clone(),
        auth_time: signed_in.session.auth_time,
        expires_at: now.plus(CODE_TTL).secs(),
        consumed_at: None,
        grant_id: None,
        dpop_jkt: params.dpop_jkt.clone(),
    };
    if !state.store.complete_authorization(consume, &row, now.secs()).await? {
        return Err(AuthorizeError::Page("This sign-in request was already completed.".into()));
    }
    state.store.touch_session(&signed_in.session.id, now.secs()).await?;
    tracing::info!(client_id = %client.client_id, user_id = %signed_in.user.id, "authorization code issued");
    let mut pairs = vec![("code", code.as_str())];
    if let Some(st) = &params.state {
        pairs.push(("state", st));
    }
    pairs.push(("iss", state.config.issuer.as_str()));
    Ok(redirect_with(&params.redirect_uri, &pairs))
}

/// The user declined: the interaction ends and the client hears `access_denied`.
pub async fn deny(
    state: &AppState,
    row: &AuthRequestRow,
    params: &AuthParams,
    now: UnixTime,
) -> Result<String, AuthorizeError> {
    let mut consume = vec![row.handle_hash];
    consume.extend(row.par_hash);
    for hash in consume {
        state.store.consume_auth_request(&hash, now.secs()).await?;
    }
    Ok(error_redirect(state, &params.redirect_uri, "access_denied", "the user declined", params.state.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B (d.1).
    #[test]
    fn rfc7636_s256_vector() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK", challenge));
        assert!(is_pkce_value(verifier) && is_pkce_value(challenge));
        assert!(!is_pkce_value(&"a".repeat(42)) && !is_pkce_value(&"a".repeat(129)));
        assert!(!is_pkce_value(&format!("{}+", "a".repeat(42))) && !is_pkce_value(&format!("{}=", "a".repeat(42))));
    }

    #[test]
    fn redirects_keep_an_existing_query() {
        assert_eq!(redirect_with("https://c.example/cb?x=1", &[("code", "a b")]), "https://c.example/cb?x=1&code=a+b");
    }
}

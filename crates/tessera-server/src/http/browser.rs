//! What a browser sees: `/authorize`, the login, consent and account pages, and `/logout`.
//!
//! Every page carries `Content-Security-Policy` (no third-party sources, `frame-ancestors
//! 'none'`), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and `Cache-Control:
//! no-store`. Every form has a CSRF token; every successful POST answers 303. Two cookies, both
//! `HttpOnly`, `SameSite=Lax`, `Path=/`, without `Domain`: the session, and a random browser
//! id that binds pending sign-in requests to the browser that started them. With an https issuer
//! they are `__Host-` prefixed and `Secure`; a plain-http loopback issuer (development) can set
//! neither, so there they go without both.

use axum::Router;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use cookie::{Cookie, SameSite};
use minijinja::context;
use tessera_proto::UnixTime;

use crate::AppState;
use crate::audit::{Event, Record};
use crate::flows::authorize::{self, AuthorizeError, Next, SignedIn};
use crate::flows::session::{self, Device};
use crate::form::Form;
use crate::scope::Scope;
use crate::secret::{self, SecretString};
use crate::store::RevocationTarget;

/// No `form-action`: browsers apply it to the redirect after a form post, and the consent
/// form's 303 goes to the client.
mod device;

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The browser-facing routes, with the page headers applied to every response.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize).post(authorize))
        .route("/login", get(login_page).post(login_submit))
        .route("/consent", get(consent_page).post(consent_submit))
        .route("/account", get(account_page))
        .route("/account/sessions/end", post(end_one_session))
        .route("/account/sign-out-all", post(sign_out_all))
        .route("/account/api-keys", post(create_api_key))
        .route("/account/api-keys/revoke", post(revoke_api_key))
        .route("/device", get(device::page).post(device::submit))
        .route("/device/decide", post(device::decide))
        .route("/logout", get(logout).post(logout))
        .route("/assets/tessera.css", get(stylesheet))
        .layer(axum::middleware::map_response(page_headers))
}

async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// The client's address (the peer's, or from a trusted proxy the forwarded one: see
/// [`tessera_listener::client_ip`]), when the server was started with connect info.
struct ClientIp(Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<ClientIp, Self::Rejection> {
        Ok(ClientIp(super::request_ip(state, &parts.extensions, &parts.headers)))
    }
}

/// The two cookies, named for this deployment.
struct Cookies {
    secure: bool,
    session: Option<String>,
    browser: Option<String>,
}

impl Cookies {
    fn read(state: &AppState, headers: &HeaderMap) -> Cookies {
        let secure = state.config.issuer.as_str().starts_with("https://");
        let (session_name, browser_name) = names(secure);
        let mut cookies = Cookies { secure, session: None, browser: None };
        for value in headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            for cookie in Cookie::split_parse(value).flatten() {
                if cookie.name() == session_name {
                    cookies.session = Some(cookie.value().to_owned());
                } else if cookie.name() == browser_name && cookie.value().len() <= 64 {
                    cookies.browser = Some(cookie.value().to_owned());
                }
            }
        }
        cookies
    }

    fn set(&self, response: &mut Response, which: Which, value: Option<&str>) {
        let (session_name, browser_name) = names(self.secure);
        let name = match which {
            Which::Session => session_name,
            Which::Browser => browser_name,
        };
        let mut cookie = Cookie::build((name, value.unwrap_or("").to_owned()))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax);
        if value.is_none() {
            cookie = cookie.max_age(cookie::time::Duration::ZERO);
        }
        if let Ok(header) = HeaderValue::from_str(&cookie.build().to_string()) {
            response.headers_mut().append(header::SET_COOKIE, header);
        }
    }
}

#[derive(Clone, Copy)]
enum Which {
    Session,
    Browser,
}

fn names(secure: bool) -> (&'static str, &'static str) {
    if secure { ("__Host-tessera-session", "__Host-tessera-browser") } else { ("tessera-session", "tessera-browser") }
}

fn render(state: &AppState, status: StatusCode, template: &str, ctx: minijinja::Value) -> Response {
    match state.pages.render(template, ctx) {
        Ok(html) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(err) => {
            tracing::error!(err = format!("{err:#}"), template, "page rendering failed");
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], "The page cannot be shown right now.")
                .into_response()
        }
    }
}

fn error_page(state: &AppState, status: StatusCode, message: &str) -> Response {
    render(state, status, "error.html", context! { message => message })
}

fn unavailable(state: &AppState, err: anyhow::Error) -> Response {
    tracing::error!(err = format!("{err:#}"), "browser request failed");
    let mut response =
        error_page(state, StatusCode::SERVICE_UNAVAILABLE, "The service is unavailable. Please try again in a moment.");
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

fn next_response(state: &AppState, next: Result<Next, AuthorizeError>) -> Response {
    match next {
        Ok(Next::Redirect(url)) => see_other(&url),
        Ok(Next::Login(handle)) => see_other(&format!("/login?request={handle}")),
        Ok(Next::Consent(handle)) => see_other(&format!("/consent?request={handle}")),
        Err(AuthorizeError::Page(message)) => error_page(state, StatusCode::BAD_REQUEST, &message),
        Err(AuthorizeError::Internal(err)) => unavailable(state, err),
        Err(err) => match err.redirect_url(state) {
            Some(url) => see_other(&url),
            None => error_page(state, StatusCode::BAD_REQUEST, "The request is invalid."),
        },
    }
}

/// A form body (`application/x-www-form-urlencoded`); repeated parameters are refused.
fn page_form(headers: &HeaderMap, body: &Bytes) -> Result<Form, String> {
    super::form(headers, body).map_err(|e| format!("The request is invalid: {}.", e.description().unwrap_or_default()))
}

fn query_form(query: Option<&str>) -> Result<Form, String> {
    Form::parse(query.unwrap_or("").as_bytes()).map_err(|e| format!("The request is invalid: {}.", e.0))
}

/// The parameters of a request that may come as a GET query or a POST form (`/authorize`,
/// `/logout`), or the error page for a malformed one.
struct Params(Result<Form, String>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Params {
    type Rejection = std::convert::Infallible;
    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Params, Self::Rejection> {
        if request.method() == axum::http::Method::GET {
            return Ok(Params(query_form(request.uri().query())));
        }
        let headers = request.headers().clone();
        Ok(Params(match Bytes::from_request(request, state).await {
            Ok(body) => page_form(&headers, &body),
            Err(_) => Err("The request body could not be read.".into()),
        }))
    }
}

async fn authorize(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Params(form): Params,
) -> Response {
    let form = match form {
        Ok(form) => form,
        Err(message) => return error_page(&state, StatusCode::BAD_REQUEST, &message),
    };
    let state = &state;
    // A pending request of a signed-in browser is a row: an address that opened too many waits
    // (T-08). A browser nobody is signed in to stores nothing (`flows::pending`).
    let ip_key = ip.map(crate::abuse::address_key);
    if let Some(wait) = ip_key.as_deref().and_then(|k| state.abuse.pending_requests.blocked(k)) {
        let mut response = error_page(
            state,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in requests from this address. Please wait a moment and try again.",
        );
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let now = state.clock.now();
    let cookies = Cookies::read(state, &headers);
    let resolved = match authorize::resolve(state, &form, ip, now).await {
        Ok(resolved) => resolved,
        Err(err) => return next_response(state, Err(err)),
    };
    let signed_in = match session::signed_in(state, cookies.session.as_deref(), now).await {
        Ok(signed_in) => signed_in,
        Err(err) => return unavailable(state, err),
    };
    let (browser, fresh) = match &cookies.browser {
        Some(browser) => (browser.clone(), false),
        None => (secret::random_b64(32), true),
    };
    let next = authorize::begin(state, resolved, signed_in.as_ref(), &browser, now).await;
    // Only a stored row counts: a browser nobody is signed in to gets a sealed handle.
    if let Ok(authorize::Next::Login(handle) | authorize::Next::Consent(handle)) = &next
        && !crate::flows::pending::is_sealed(handle)
        && let Some(key) = &ip_key
    {
        state.abuse.pending_requests.failed(key);
    }
    let mut response = next_response(state, next);
    if fresh {
        cookies.set(&mut response, Which::Browser, Some(&browser));
    }
    response
}

async fn current(state: &AppState, cookies: &Cookies, now: UnixTime) -> Result<Option<SignedIn>, Response> {
    session::signed_in(state, cookies.session.as_deref(), now).await.map_err(|err| unavailable(state, err))
}

/// For a login inside a pending request (`request` non-empty): the client's name and the
/// `login_hint`. An account login (`request` empty) has neither.
async fn login_for(
    state: &AppState,
    request: &str,
    browser: &str,
    now: UnixTime,
) -> Result<(Option<String>, String), Response> {
    // An account login, or one on the way to `/device` (RFC 8628): no client yet.
    if request.is_empty() || is_device_login(request) {
        return Ok((None, String::new()));
    }
    match authorize::interaction(state, request, Some(browser), now).await {
        Ok((_, client, params)) => {
            Ok((Some(client.client_name.unwrap_or(client.client_id)), params.login_hint.unwrap_or_default()))
        }
        Err(AuthorizeError::Internal(err)) => Err(unavailable(state, err)),
        Err(_) => Err(error_page(
            state,
            StatusCode::BAD_REQUEST,
            "This sign-in request is finished or has expired. Go back to the application and start again.",
        )),
    }
}

/// A login that returns to `/device` (with the typed code, when there was one).
fn is_device_login(request: &str) -> bool {
    request == "device" || request.starts_with("device:")
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let now = state.clock.now();
    let cookies = Cookies::read(&state, &headers);
    let form = match query_form(query.as_deref()) {
        Ok(form) => form,
        Err(message) => return error_page(&state, StatusCode::BAD_REQUEST, &message),
    };
    let (browser, fresh) = match &cookies.browser {
        Some(browser) => (browser.clone(), false),
        None => (secret::random_b64(32), true),
    };
    let request = form.get("request").unwrap_or("");
    let (client_name, username) = match login_for(&state, request, &browser, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let csrf = session::csrf_token(&state, "login", &[request, &browser]);
    let ctx = context! { request => request, client_name => client_name, username => username, csrf_token => csrf, error => None::<String> };
    let mut response = render(&state, StatusCode::OK, "login.html", ctx);
    if fresh {
        cookies.set(&mut response, Which::Browser, Some(&browser));
    }
    response
}

async fn login_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let cookies = Cookies::read(&state, &headers);
    let form = match page_form(&headers, &body) {
        Ok(form) => form,
        Err(message) => return error_page(&state, StatusCode::BAD_REQUEST, &message),
    };
    let request = form.get("request").unwrap_or("");
    let Some(browser) = cookies.browser.as_deref() else {
        return error_page(&state, StatusCode::FORBIDDEN, "Cookies must be enabled to sign in.");
    };
    if !session::csrf_ok(&state, "login", &[request, browser], form.get("csrf_token")) {
        return error_page(
            &state,
            StatusCode::FORBIDDEN,
            "The form expired or did not come from this site. Please try again.",
        );
    }
    let client_name = match login_for(&state, request, browser, now).await {
        Ok((client_name, _)) => client_name,
        Err(response) => return response,
    };
    let username = form.get("username").unwrap_or("");
    let password = SecretString::new(form.get("password").unwrap_or("").to_owned());
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let ip_key = ip.map(crate::abuse::address_key);
    let ip = ip.map(|ip| ip.to_string());
    let retry_page = |wait: u64| {
        let csrf = session::csrf_token(&state, "login", &[request, browser]);
        let ctx = context! {
            request => request, client_name => client_name.clone(), username => username, csrf_token => csrf,
            error => "Too many failed attempts. Please wait a moment and try again.",
        };
        let mut response = render(&state, StatusCode::TOO_MANY_REQUESTS, "login.html", ctx);
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    };
    if let Some(wait) = ip_key.as_deref().and_then(|k| state.abuse.login_ip.blocked(k)) {
        return retry_page(wait);
    }
    let outcome = session::login(&state, username, password, Device { user_agent, ip }, now).await;
    let (signed_in, cookie) = match outcome {
        Ok(session::LoginOutcome::SignedIn(signed_in, cookie)) => (*signed_in, cookie),
        Ok(session::LoginOutcome::Locked(wait)) => return retry_page(wait),
        Ok(session::LoginOutcome::Wrong) => {
            if let Some(key) = &ip_key {
                state.abuse.login_ip.failed(key);
            }
            let csrf = session::csrf_token(&state, "login", &[request, browser]);
            let ctx = context! {
                request => request, client_name => client_name, username => username, csrf_token => csrf,
                error => "The username or password is wrong.",
            };
            return render(&state, StatusCode::UNAUTHORIZED, "login.html", ctx);
        }
        Err(err) => return unavailable(&state, err),
    };
    let mut response = if request.is_empty() {
        see_other("/account")
    } else if is_device_login(request) {
        match request.strip_prefix("device:").and_then(crate::flows::device::normalize) {
            Some(code) => see_other(&format!("/device?user_code={code}")),
            None => see_other("/device"),
        }
    } else {
        next_response(&state, authorize::after_login(&state, request, browser, &signed_in, now).await)
    };
    cookies.set(&mut response, Which::Session, Some(cookie.expose()));
    response
}

/// What each scope means, for the consent page.
fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are",
        "profile" => "See your name and username",
        "email" => "See your email address",
        "offline_access" => "Stay signed in and act for you while you are away",
        _ => "Access",
    }
}

async fn consent_page(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let now = state.clock.now();
    let cookies = Cookies::read(&state, &headers);
    let form = match query_form(query.as_deref()) {
        Ok(form) => form,
        Err(message) => return error_page(&state, StatusCode::BAD_REQUEST, &message),
    };
    let request = form.get("request").unwrap_or("");
    let (_, client, params) = match authorize::interaction(&state, request, cookies.browser.as_deref(), now).await {
        Ok(found) => found,
        Err(err) => return next_response(&state, Err(err)),
    };
    let signed_in = match current(&state, &cookies, now).await {
        Ok(Some(signed_in)) => signed_in,
        Ok(None) => return see_other(&format!("/login?request={request}")),
        Err(response) => return response,
    };
    let scopes: Vec<minijinja::Value> = Scope::parse(&params.scope)
        .unwrap_or_default()
        .iter()
        .map(|s| context! { name => s, description => describe(s) })
        .collect();
    let csrf = session::csrf_token(&state, "consent", &[request, &signed_in.session.id]);
    // A self-registered client's name is its own claim: say so, and show where the answer goes.
    let redirect_host = url::Url::parse(&params.redirect_uri).ok().and_then(|u| u.host_str().map(str::to_owned));
    // A metadata document's client: its id is the document's URL; the host is who vouches for it.
    let document_host = (client.origin == crate::client::ClientOrigin::MetadataDocument)
        .then(|| url::Url::parse(&client.client_id).ok().and_then(|u| u.host_str().map(str::to_owned)))
        .flatten();
    let ctx = context! {
        request => request, client_name => client.client_name.unwrap_or(client.client_id),
        username => signed_in.user.username, scopes => scopes, csrf_token => csrf,
        unverified => client.origin.is_registered(), redirect_host => redirect_host,
        document_host => document_host,
    };
    render(&state, StatusCode::OK, "consent.html", ctx)
}

async fn consent_submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let now = state.clock.now();
    let cookies = Cookies::read(&state, &headers);
    let form = match page_form(&headers, &body) {
        Ok(form) => form,
        Err(message) => return error_page(&state, StatusCode::BAD_REQUEST, &message),
    };
    let request = form.get("request").unwrap_or("");
    let signed_in = match current(&state, &cookies, now).await {
        Ok(Some(signed_in)) => signed_in,
        Ok(None) => return error_page(&state, StatusCode::FORBIDDEN, "You are not signed in."),
        Err(response) => return response,
    };
    if !session::csrf_ok(&state, "consent", &[request, &signed_in.session.id], form.get("csrf_token")) {
        return error_page(
            &state,
            StatusCode::FORBIDDEN,
            "The form expired or did not come from this site. Please try again.",
        );
    }
    let (row, client, params) = match authorize::interaction(&state, request, cookies.browser.as_deref(), now).await {
        Ok(found) => found,
        Err(err) => return next_response(&state, Err(err)),
    };
    match form.get("decision") {
        Some("allow") => {
            let previous = match state.store.consent(&signed_in.user.id, &client.client_id).await {
                Ok(previous) => previous,
                Err(err) => return unavailable(&state, err),
            };
            let mut granted: Vec<String> =
                Scope::parse(previous.as_deref().unwrap_or("")).unwrap_or_default().iter().map(str::to_owned).collect();
            for scope in Scope::parse(&params.scope).unwrap_or_default().iter() {
                if !granted.iter().any(|g| g == scope) {
                    granted.push(scope.to_owned());
                }
            }
            let granted = Scope::parse(&granted.join(" ")).unwrap_or_default().to_string();
            let record = Record::new(Event::ConsentGranted, now.secs(), format!("user:{}", signed_in.user.id))
                .subject(&signed_in.user.id)
                .client(&client.client_id)
                .session(Some(&signed_in.session.id))
                .detail("scope", &params.scope)
                .detail("granted", &granted);
            if let Err(err) =
                state.store.save_consent(&signed_in.user.id, &client.client_id, &granted, now.secs(), record).await
            {
                return unavailable(&state, err);
            }
            tracing::info!(user_id = %signed_in.user.id, client_id = %client.client_id, scope = %params.scope, "consent given");
            next_response(
                &state,
                authorize::resume_after_consent(&state, request, cookies.browser.as_deref(), Some(&signed_in), now)
                    .await,
            )
        }
        Some("deny") => match authorize::deny(&state, &row, &params, now).await {
            Ok(url) => see_other(&url),
            Err(err) => next_response(&state, Err(err)),
        },
        _ => error_page(&state, StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    }
}

async fn account_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let now = state.clock.now();
    let cookies = Cookies::read(&state, &headers);
    let signed_in = match current(&state, &cookies, now).await {
        Ok(Some(signed_in)) => signed_in,
        Ok(None) => return see_other("/login"),
        Err(response) => return response,
    };
    account(&state, &signed_in, now, StatusCode::OK, None, None).await
}

/// The account page: sessions and personal access tokens; with a key just created (shown this
/// once) or an error about the last form.
async fn account(
    state: &AppState,
    signed_in: &SignedIn,
    now: UnixTime,
    status: StatusCode,
    new_key: Option<&str>,
    key_error: Option<&str>,
) -> Response {
    let sessions = match session::account_sessions(state, signed_in, now).await {
        Ok(sessions) => sessions,
        Err(err) => return unavailable(state, err),
    };
    let sessions: Vec<minijinja::Value> = sessions
        .into_iter()
        .map(|s| {
            context! {
                id => s.id, current => s.current, clients => s.clients, user_agent => s.user_agent, ip => s.ip,
                created_at => s.created_at, last_used_at => s.last_used_at,
            }
        })
        .collect();
    let keys = match state.store.api_keys(Some(("user", &signed_in.user.id))).await {
        Ok(keys) => keys,
        Err(err) => return unavailable(state, err),
    };
    let keys: Vec<minijinja::Value> = keys
        .into_iter()
        .filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now.secs()))
        .map(|k| {
            context! {
                id => crate::apikey::key_jti(k.id), display => k.display, name => k.name, scope => k.scope,
                created_at => k.created_at, expires_at => k.expires_at, last_used_at => k.last_used_at,
            }
        })
        .collect();
    let csrf = session::csrf_token(state, "account", &[&signed_in.session.id]);
    let ctx = context! {
        username => signed_in.user.username.clone(), sessions => sessions, csrf_token => csrf, api_keys => keys,
        new_key => new_key, key_error => key_error,
    };
    render(state, status, "account.html", ctx)
}

/// A signed-in POST from the account page with a valid CSRF token.
async fn account_post(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Cookies, SignedIn, Form), Response> {
    let now = state.clock.now();
    let cookies = Cookies::read(state, headers);
    let form = page_form(headers, body).map_err(|message| error_page(state, StatusCode::BAD_REQUEST, &message))?;
    let Some(signed_in) = current(state, &cookies, now).await? else {
        return Err(see_other("/login"));
    };
    if !session::csrf_ok(state, "account", &[&signed_in.session.id], form.get("csrf_token")) {
        return Err(error_page(state, StatusCode::FORBIDDEN, "The form expired or did not come from this site."));
    }
    Ok((cookies, signed_in, form))
}

async fn end_one_session(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let now = state.clock.now();
    let (cookies, signed_in, form) = match account_post(&state, &headers, &body).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let Some(target) = form.get("session_id") else {
        return error_page(&state, StatusCode::BAD_REQUEST, "No session was chosen.");
    };
    // Only the user's own sessions.
    match state.store.session(target).await {
        Ok(Some(found)) if found.user_id == signed_in.user.id => {}
        Ok(_) => return error_page(&state, StatusCode::BAD_REQUEST, "No such session."),
        Err(err) => return unavailable(&state, err),
    }
    let record = logout_record(&signed_in.user.id, now).session(Some(target)).detail("via", "account");
    if let Err(err) = session::revoke(&state, RevocationTarget::Session(target), now, record).await {
        return unavailable(&state, err);
    }
    if target == signed_in.session.id {
        let mut response = see_other("/login");
        cookies.set(&mut response, Which::Session, None);
        return response;
    }
    see_other("/account")
}

async fn sign_out_all(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let now = state.clock.now();
    let (cookies, signed_in, _) = match account_post(&state, &headers, &body).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let record = logout_record(&signed_in.user.id, now).detail("via", "account").detail("sessions", "all");
    if let Err(err) = session::revoke(&state, RevocationTarget::User(&signed_in.user.id), now, record).await {
        return unavailable(&state, err);
    }
    let mut response = see_other("/login");
    cookies.set(&mut response, Which::Session, None);
    response
}

/// How recent the sign-in must be to create a personal access token on the account page.
const KEY_FRESH_SIGN_IN: u64 = 600;
/// The lifetime of an account-page key when none is chosen, and the longest one.
const DEFAULT_KEY_DAYS: u64 = 90;
const MAX_KEY_DAYS: u64 = 365;

/// A personal access token made on the account page: within what the user has granted, from a
/// fresh sign-in, always expiring; shown once on the page that answers.
async fn create_api_key(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let now = state.clock.now();
    let (_, signed_in, form) = match account_post(&state, &headers, &body).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    // A key outlives the session that made it: only a fresh sign-in makes one (#23, T-10), so a
    // browser left signed in, or a stolen session cookie, cannot mint a long-lived credential.
    if now.secs().saturating_sub(signed_in.session.auth_time) > KEY_FRESH_SIGN_IN {
        let why = "Sign in again to create an API key: your last sign-in was more than ten minutes ago.";
        return account(&state, &signed_in, now, StatusCode::FORBIDDEN, None, Some(why)).await;
    }
    // Keys made here always expire: 90 days unless a shorter or longer lifetime (up to a year)
    // is chosen. Keys that never expire are an administrator's to make.
    let expires_in = match form.get("expires_in_days").unwrap_or("") {
        "" => Some(DEFAULT_KEY_DAYS * 86_400),
        days => match days.parse::<u64>() {
            Ok(days) if (1..=MAX_KEY_DAYS).contains(&days) => Some(days * 86_400),
            _ => {
                return account(&state, &signed_in, now, StatusCode::BAD_REQUEST, None, Some("Choose a lifetime."))
                    .await;
            }
        },
    };
    let request = tessera_proto::admin::CreateApiKey {
        user_id: Some(signed_in.user.id.clone()),
        client_id: None,
        name: form.get("name").unwrap_or("").to_owned(),
        scope: form.get("scope").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned),
        audience: None,
        expires_in,
    };
    match crate::flows::api_keys::create(&state, request, &format!("user:{}", signed_in.user.id), now).await {
        Ok((key, _)) => account(&state, &signed_in, now, StatusCode::OK, Some(&key), None).await,
        Err(err) => {
            let why = err.description().unwrap_or_else(|| "The key could not be created.".into());
            account(&state, &signed_in, now, StatusCode::BAD_REQUEST, None, Some(&why)).await
        }
    }
}

/// Revokes one of the user's own API keys.
async fn revoke_api_key(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let now = state.clock.now();
    let (_, signed_in, form) = match account_post(&state, &headers, &body).await {
        Ok(ok) => ok,
        Err(response) => return response,
    };
    let Some(id) = form.get("key_id").and_then(crate::flows::api_keys::parse_key_id) else {
        return error_page(&state, StatusCode::BAD_REQUEST, "No API key was chosen.");
    };
    // Only the user's own keys.
    match state.store.api_key(id).await {
        Ok(Some(key)) if key.owner_kind == "user" && key.owner_id == signed_in.user.id => {}
        Ok(_) => return error_page(&state, StatusCode::BAD_REQUEST, "No such API key."),
        Err(err) => return unavailable(&state, err),
    }
    if let Err(err) = crate::flows::api_keys::revoke(&state, id, &format!("user:{}", signed_in.user.id), now).await {
        return unavailable(&state, anyhow::anyhow!("{err}"));
    }
    see_other("/account")
}

/// RP-initiated logout. With a valid `id_token_hint` naming this browser's session, that session
/// ends at once; otherwise the signed-in user confirms on a page (whose form posts back here with
/// a CSRF token), and a hint for a session this browser does not hold ends nothing.
async fn logout(State(state): State<AppState>, headers: HeaderMap, Params(form): Params) -> Response {
    let form = match form {
        Ok(form) => form,
        Err(message) => return error_page(&state, StatusCode::BAD_REQUEST, &message),
    };
    let state = &state;
    let now = state.clock.now();
    let cookies = Cookies::read(state, &headers);
    let request = session::logout_request(
        state,
        form.get("id_token_hint"),
        form.get("client_id"),
        form.get("post_logout_redirect_uri"),
        form.get("state"),
    )
    .await;
    let request = match request {
        Ok(request) => request,
        Err(message) => return error_page(state, StatusCode::BAD_REQUEST, &message),
    };
    let signed_in = match current(state, &cookies, now).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let confirmed = form.get("csrf_token").is_some();
    let ending = match (&request.hinted_session, &signed_in, confirmed) {
        // The hint names this browser's own session: it ends at once.
        (Some(sid), Some(me), _) if me.session.id == *sid => Some(sid.clone()),
        // A hint is no credential (#23, docs/threat-model.md T-14): an old ID token, sent from a
        // browser that does not hold its session, ends nothing on its own word; a person signed
        // in here is asked about their own session instead.
        (_, Some(me), true) => {
            if !session::csrf_ok(state, "logout", &[&me.session.id], form.get("csrf_token")) {
                return error_page(state, StatusCode::FORBIDDEN, "The form expired or did not come from this site.");
            }
            Some(me.session.id.clone())
        }
        (_, Some(me), false) => {
            let csrf = session::csrf_token(state, "logout", &[&me.session.id]);
            let ctx = context! {
                signed_out => false, username => &me.user.username, csrf_token => csrf,
                post_logout_redirect_uri => form.get("post_logout_redirect_uri"),
                client_id => form.get("client_id"), state => form.get("state"),
            };
            return render(state, StatusCode::OK, "logout.html", ctx);
        }
        (_, None, _) => None,
    };
    let mut clear_cookie = false;
    if let Some(sid) = &ending {
        let record = match &signed_in {
            Some(me) => logout_record(&me.user.id, now),
            None => Record::new(Event::Logout, now.secs(), "anonymous"),
        };
        let record = record.session(Some(sid)).detail("via", "end_session");
        if let Err(err) = session::revoke(state, RevocationTarget::Session(sid), now, record).await {
            return unavailable(state, err);
        }
        clear_cookie = signed_in.as_ref().is_some_and(|me| &me.session.id == sid);
    }
    let mut response = match &request.redirect {
        Some(url) => see_other(url),
        None => render(state, StatusCode::OK, "logout.html", context! { signed_out => true }),
    };
    if clear_cookie {
        cookies.set(&mut response, Which::Session, None);
    }
    response
}

async fn stylesheet(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
        ],
        state.pages.css().to_owned(),
    )
        .into_response()
}

/// The record of a user ending their own session(s).
fn logout_record(user_id: &str, now: UnixTime) -> Record {
    Record::new(Event::Logout, now.secs(), format!("user:{user_id}")).subject(user_id)
}

//! The admin listener: JSON API over clients and signing keys, authenticated with a Bearer
//! access token of this server carrying scope `tessera:admin`, and its OpenAPI document.

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use tessera_proto::admin::{
    ApiKeyInfo, ApiKeyList, ClientInfo, ClientList, ClientMetadata, CreateApiKey, CreateKey, CreateUser, CreatedApiKey,
    KeyInfo, KeyList, RevocationRequest, RevocationResult, SetPassword, UserInfo, UserList,
};
use tessera_proto::error::ErrorBody;
use utoipa::OpenApi;

use crate::AppState;
use crate::flows::admin::{self, AdminError};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera admin API", description = "Clients, signing keys, users and revocations. Every operation needs a Bearer access token with scope tessera:admin."),
    paths(
        create_client, list_clients, get_client, delete_client, rotate_secret, create_registration_token,
        create_key, list_keys, activate_key,
        create_user, list_users, get_user, delete_user, disable_user, enable_user, set_password, revoke,
        create_api_key, list_api_keys, get_api_key, revoke_api_key, audit_query, audit_verify
    ),
    components(schemas(
        ClientMetadata, ClientInfo, ClientList, CreateKey, KeyInfo, KeyList, CreateUser, UserInfo, UserList,
        SetPassword, RevocationRequest, RevocationResult, ErrorBody, CreateApiKey, CreatedApiKey, ApiKeyInfo,
        ApiKeyList, tessera_proto::admin::AuditEntry, tessera_proto::admin::AuditPage,
        tessera_proto::admin::AuditBreak, tessera_proto::admin::AuditVerification,
        tessera_proto::registration::CreateRegistrationToken, tessera_proto::registration::RegistrationToken
    )),
    modifiers(&BearerAuth, &AuthErrors),
    security(("bearer" = []))
)]
struct AdminApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every operation can answer 400 (its description says why), 401 (no or a bad token) and 403 (a
/// token that is not an admin client's own `tessera:admin` token), and one that names a resource
/// in its path 404, with the error body; documented once here (#30).
struct AuthErrors;

impl utoipa::Modify for AuthErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Ref, ResponseBuilder, content::ContentBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
        };
        for (path, item) in &mut openapi.paths.paths {
            let names_a_resource = path.contains('{');
            for operation in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch].into_iter().flatten()
            {
                let responses = &mut operation.responses.responses;
                responses
                    .entry("400".into())
                    .or_insert_with(|| error("the request is invalid; error_description says why").into());
                if names_a_resource {
                    responses.entry("404".into()).or_insert_with(|| error("no such resource").into());
                }
                responses
                    .entry("401".into())
                    .or_insert_with(|| error("no access token, or one that is not active").into());
                responses.entry("403".into()).or_insert_with(|| {
                    error("the token is not an admin client's own client_credentials token with scope tessera:admin")
                        .into()
                });
            }
        }
    }
}

/// A query string the handler cannot read is a JSON `invalid_request` error, like every other
/// error of the admin API (never axum's `text/plain` rejection).
struct JsonQuery<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for JsonQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(JsonQuery(value)),
            Err(rejection) => Err(oauth_error(crate::flows::error::OAuthError::InvalidRequest(format!(
                "the query string is invalid: {}",
                rejection.body_text()
            )))),
        }
    }
}

/// The admin listener's router.
pub fn admin_app(state: AppState) -> Router {
    let protected = Router::new()
        .route("/admin/clients", post(create_client).get(list_clients))
        .route("/admin/clients/{client_id}", get(get_client).delete(delete_client))
        .route("/admin/clients/{client_id}/secret", post(rotate_secret))
        .route("/admin/registration-tokens", post(create_registration_token))
        .route("/admin/keys", post(create_key).get(list_keys))
        .route("/admin/keys/{kid}/activate", post(activate_key))
        .route("/admin/users", post(create_user).get(list_users))
        .route("/admin/users/{user_id}", get(get_user).delete(delete_user))
        .route("/admin/users/{user_id}/disable", post(disable_user))
        .route("/admin/users/{user_id}/enable", post(enable_user))
        .route("/admin/users/{user_id}/password", post(set_password))
        .route("/admin/revocations", post(revoke))
        .route("/admin/api-keys", post(create_api_key).get(list_api_keys))
        .route("/admin/api-keys/{key_id}", get(get_api_key).delete(revoke_api_key))
        .route("/admin/audit", get(audit_query))
        .route("/admin/audit/verify", get(audit_verify))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    let router = Router::new()
        .route("/admin/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(|State(state): State<AppState>| async move { super::metrics_text(&state).await }))
        .merge(protected)
        .fallback(|| async { super::error::json_error(StatusCode::NOT_FOUND, "not_found", Some("no such endpoint")) })
        .layer(DefaultBodyLimit::max(super::MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::new());
    super::with_catch_up(router, &state)
        .layer(middleware::from_fn_with_state(state.clone(), super::count_server_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            |State(state): State<AppState>, request: Request, next: Next| async move {
                super::observe(&state, "admin", request, next).await
            },
        ))
        .with_state(state)
}

async fn require_admin(State(state): State<AppState>, headers: HeaderMap, request: Request, next: Next) -> Response {
    // No id of ours contains NUL (and PostgreSQL cannot compare one): such a path names nothing.
    if request.uri().path().to_ascii_lowercase().contains("%00") {
        return AdminError::NotFound.into_response();
    }
    let now = state.clock.now();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match admin::authorize(&state, authorization, now).await {
        Ok(actor) => {
            let context = crate::audit::Context { actor: Some(actor), ..crate::audit::context() };
            crate::audit::in_context(context, next.run(request)).await
        }
        Err(err) => err.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct AuditQuery {
    after: Option<u64>,
    user: Option<String>,
    client: Option<String>,
    event: Option<String>,
    since: Option<u64>,
    until: Option<u64>,
    limit: Option<u32>,
    /// The newest `limit` records instead (with no other filter).
    tail: Option<bool>,
}

/// Audit records, oldest first: by user (subject or actor), client, event and time range.
#[utoipa::path(get, path = "/admin/audit",
    params(("after" = Option<u64>, Query, description = "only records after this position"),
           ("user" = Option<String>, Query), ("client" = Option<String>, Query),
           ("event" = Option<String>, Query, description = "token.issued, user.login, …"),
           ("since" = Option<u64>, Query, description = "seconds since the epoch"),
           ("until" = Option<u64>, Query), ("limit" = Option<u32>, Query, description = "at most 1000 (default 100)"),
           ("tail" = Option<bool>, Query, description = "the newest `limit` records")),
    responses((status = 200, body = tessera_proto::admin::AuditPage), (status = 400, body = ErrorBody)))]
async fn audit_query(State(state): State<AppState>, JsonQuery(query): JsonQuery<AuditQuery>) -> Response {
    let limit = query.limit.unwrap_or(100).clamp(1, 1_000);
    if let Some(event) = &query.event
        && crate::audit::Event::parse(event).is_none()
    {
        return oauth_error(crate::flows::error::OAuthError::InvalidRequest(format!("unknown event {event:?}")));
    }
    let after = query.after.unwrap_or(0);
    let entries = if query.tail == Some(true) {
        state.store.audit_tail(limit).await
    } else {
        let filter = crate::store::audit::AuditFilter {
            after,
            user: query.user,
            client: query.client,
            event: query.event,
            since: query.since,
            until: query.until,
        };
        state.store.audit_entries(&filter, limit).await
    };
    match entries {
        Ok(entries) => {
            let next_after = entries.last().map_or(after, |e| e.seq);
            Json(tessera_proto::admin::AuditPage { entries, next_after }).into_response()
        }
        Err(err) => oauth_error(err.into()),
    }
}

#[derive(serde::Deserialize)]
struct VerifyQuery {
    /// `SEQ:HASH` from an earlier check.
    anchor: Option<String>,
}

/// Checks the audit log's hash chain; reports the first break.
#[utoipa::path(get, path = "/admin/audit/verify",
    params(("anchor" = Option<String>, Query, description = "SEQ:HASH from an earlier check, which the log must still contain")),
    responses((status = 200, body = tessera_proto::admin::AuditVerification), (status = 400, body = ErrorBody)))]
async fn audit_verify(State(state): State<AppState>, JsonQuery(query): JsonQuery<VerifyQuery>) -> Response {
    let anchor = match query.anchor.as_deref().map(crate::audit::parse_anchor) {
        None => None,
        Some(Some(anchor)) => Some(anchor),
        Some(None) => {
            return oauth_error(crate::flows::error::OAuthError::InvalidRequest(
                "anchor must be SEQ:HASH (64 hex digits)".into(),
            ));
        }
    };
    match state.store.verify_audit(anchor).await {
        Ok(verification) => Json(verification).into_response(),
        Err(err) => oauth_error(err.into()),
    }
}

/// The admin API's caller, as the audit log names it.
fn admin_actor() -> String {
    crate::audit::context().actor.unwrap_or_else(|| "admin".to_owned())
}

async fn openapi() -> Response {
    Json(AdminApi::openapi()).into_response()
}

/// A JSON object body as `T`. An array is refused even where serde would read it as the
/// struct's fields in order: the documented shape is an object (#30, schemathesis).
fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes, invalid: fn(String) -> AdminError) -> Result<T, AdminError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    if !value.is_object() {
        return Err(invalid("the body must be a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

fn respond<T: serde::Serialize>(status: StatusCode, result: Result<T, AdminError>) -> Response {
    match result {
        Ok(body) => (status, Json(body)).into_response(),
        Err(err) => err.into_response(),
    }
}

/// Register a client (RFC 7591 metadata plus Tessera extensions).
#[utoipa::path(post, path = "/admin/clients", request_body = ClientMetadata,
    responses((status = 201, description = "Created; client_secret is shown only here", body = ClientInfo),
              (status = 400, description = "invalid_client_metadata, naming the field", body = ErrorBody)))]
async fn create_client(State(state): State<AppState>, body: Bytes) -> Response {
    let now = state.clock.now();
    let result = async {
        let metadata: ClientMetadata = json_body(&body, AdminError::InvalidClientMetadata)?;
        admin::create_client(&state, metadata, now).await
    }
    .await;
    respond(StatusCode::CREATED, result)
}

/// Create an initial access token for `POST /register` (RFC 7591 §3; `registration = "token"`),
/// shown once.
#[utoipa::path(post, path = "/admin/registration-tokens",
    request_body = tessera_proto::registration::CreateRegistrationToken,
    responses((status = 201, body = tessera_proto::registration::RegistrationToken), (status = 400, body = ErrorBody)))]
async fn create_registration_token(State(state): State<AppState>, body: Bytes) -> Response {
    let now = state.clock.now();
    let result = async {
        let request: tessera_proto::registration::CreateRegistrationToken =
            json_body(&body, AdminError::InvalidRequest)?;
        admin::create_registration_token(&state, request, now).await
    }
    .await;
    respond(StatusCode::CREATED, result)
}

/// List every client.
#[utoipa::path(get, path = "/admin/clients", responses((status = 200, body = ClientList)))]
async fn list_clients(State(state): State<AppState>) -> Response {
    respond(StatusCode::OK, admin::list_clients(&state).await)
}

/// Show one client.
#[utoipa::path(get, path = "/admin/clients/{client_id}", params(("client_id" = String, Path)),
    responses((status = 200, body = ClientInfo), (status = 404, body = ErrorBody)))]
async fn get_client(State(state): State<AppState>, Path(client_id): Path<String>) -> Response {
    respond(StatusCode::OK, admin::client(&state, &client_id).await)
}

/// Delete a client; its tokens stop being active at once.
#[utoipa::path(delete, path = "/admin/clients/{client_id}", params(("client_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_client(State(state): State<AppState>, Path(client_id): Path<String>) -> Response {
    match admin::delete_client(&state, &client_id, state.clock.now()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => err.into_response(),
    }
}

/// Replace a client's secret; the new one is shown only here.
#[utoipa::path(post, path = "/admin/clients/{client_id}/secret", params(("client_id" = String, Path)),
    responses((status = 200, body = ClientInfo), (status = 404, body = ErrorBody)))]
async fn rotate_secret(State(state): State<AppState>, Path(client_id): Path<String>) -> Response {
    respond(StatusCode::OK, admin::rotate_secret(&state, &client_id, state.clock.now()).await)
}

/// Generate a signing key; it is published in JWKS and signs only once activated.
#[utoipa::path(post, path = "/admin/keys", request_body = CreateKey,
    responses((status = 201, body = KeyInfo), (status = 400, body = ErrorBody)))]
async fn create_key(State(state): State<AppState>, body: Bytes) -> Response {
    let now = state.clock.now();
    let result = async {
        let request: CreateKey = json_body(&body, AdminError::InvalidRequest)?;
        admin::create_key(&state, request, now).await
    }
    .await;
    respond(StatusCode::CREATED, result)
}

/// List signing keys, newest first.
#[utoipa::path(get, path = "/admin/keys", responses((status = 200, body = KeyList)))]
async fn list_keys(State(state): State<AppState>) -> Response {
    respond(StatusCode::OK, Ok(admin::list_keys(&state)))
}

/// Make a key the signing key.
#[utoipa::path(post, path = "/admin/keys/{kid}/activate", params(("kid" = String, Path)),
    responses((status = 200, body = KeyInfo), (status = 404, body = ErrorBody)))]
async fn activate_key(State(state): State<AppState>, Path(kid): Path<String>) -> Response {
    respond(StatusCode::OK, admin::activate_key(&state, &kid, state.clock.now()).await)
}

/// Register a user; the password is stored only as an argon2id hash.
#[utoipa::path(post, path = "/admin/users", request_body = CreateUser,
    responses((status = 201, body = UserInfo), (status = 400, body = ErrorBody), (status = 409, description = "username taken", body = ErrorBody)))]
async fn create_user(State(state): State<AppState>, body: Bytes) -> Response {
    let now = state.clock.now();
    let result = async {
        let request: CreateUser = json_body(&body, AdminError::InvalidRequest)?;
        admin::create_user(&state, request, now).await
    }
    .await;
    respond(StatusCode::CREATED, result)
}

/// List every user.
#[utoipa::path(get, path = "/admin/users", responses((status = 200, body = UserList)))]
async fn list_users(State(state): State<AppState>) -> Response {
    respond(StatusCode::OK, admin::list_users(&state).await)
}

/// Show one user.
#[utoipa::path(get, path = "/admin/users/{user_id}", params(("user_id" = String, Path)),
    responses((status = 200, body = UserInfo), (status = 404, body = ErrorBody)))]
async fn get_user(State(state): State<AppState>, Path(user_id): Path<String>) -> Response {
    respond(StatusCode::OK, admin::user(&state, &user_id).await)
}

/// Delete a user.
#[utoipa::path(delete, path = "/admin/users/{user_id}", params(("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_user(State(state): State<AppState>, Path(user_id): Path<String>) -> Response {
    match admin::delete_user(&state, &user_id, state.clock.now()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => err.into_response(),
    }
}

/// Disable a user: they can no longer sign in.
#[utoipa::path(post, path = "/admin/users/{user_id}/disable", params(("user_id" = String, Path)),
    responses((status = 200, body = UserInfo), (status = 404, body = ErrorBody)))]
async fn disable_user(State(state): State<AppState>, Path(user_id): Path<String>) -> Response {
    let now = state.clock.now();
    respond(StatusCode::OK, admin::set_user_disabled(&state, &user_id, true, now).await)
}

/// Enable a disabled user.
#[utoipa::path(post, path = "/admin/users/{user_id}/enable", params(("user_id" = String, Path)),
    responses((status = 200, body = UserInfo), (status = 404, body = ErrorBody)))]
async fn enable_user(State(state): State<AppState>, Path(user_id): Path<String>) -> Response {
    let now = state.clock.now();
    respond(StatusCode::OK, admin::set_user_disabled(&state, &user_id, false, now).await)
}

/// Set a user's password; every session and token of the user is revoked.
#[utoipa::path(post, path = "/admin/users/{user_id}/password", params(("user_id" = String, Path)), request_body = SetPassword,
    responses((status = 200, body = UserInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_password(State(state): State<AppState>, Path(user_id): Path<String>, body: Bytes) -> Response {
    let now = state.clock.now();
    let result = async {
        let request: SetPassword = json_body(&body, AdminError::InvalidRequest)?;
        admin::set_password(&state, &user_id, request, now).await
    }
    .await;
    respond(StatusCode::OK, result)
}

/// Revoke everything under one user, session or client: sessions end, refresh families and
/// their access tokens (opaque and JWT) are inactive at introspection at once.
#[utoipa::path(post, path = "/admin/revocations", request_body = RevocationRequest,
    responses((status = 200, body = RevocationResult), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke(State(state): State<AppState>, body: Bytes) -> Response {
    let now = state.clock.now();
    let result = async {
        let request: RevocationRequest = json_body(&body, AdminError::InvalidRequest)?;
        admin::revoke(&state, request, now).await
    }
    .await;
    respond(StatusCode::OK, result)
}

fn oauth_error(err: crate::flows::error::OAuthError) -> Response {
    err.into_response()
}

/// Create an API key (a user's personal access token or a client's service key). The key is in
/// this answer only.
#[utoipa::path(post, path = "/admin/api-keys", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 400, body = ErrorBody)))]
async fn create_api_key(State(state): State<AppState>, body: Bytes) -> Response {
    let request: CreateApiKey = match json_body(&body, AdminError::InvalidRequest) {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    match crate::flows::api_keys::create(&state, request, &admin_actor(), state.clock.now()).await {
        Ok((key, row)) => {
            let created = CreatedApiKey { key, info: crate::flows::api_keys::info(&row) };
            let mut response = (StatusCode::CREATED, Json(created)).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
            response
        }
        Err(err) => oauth_error(err),
    }
}

#[derive(serde::Deserialize)]
struct ApiKeyFilter {
    user_id: Option<String>,
    client_id: Option<String>,
}

/// List API keys, newest first: all, or one user's or client's.
#[utoipa::path(get, path = "/admin/api-keys",
    params(("user_id" = Option<String>, Query), ("client_id" = Option<String>, Query)),
    responses((status = 200, body = ApiKeyList)))]
async fn list_api_keys(State(state): State<AppState>, JsonQuery(filter): JsonQuery<ApiKeyFilter>) -> Response {
    let owner = match (&filter.user_id, &filter.client_id) {
        (Some(user), None) => Some(("user", user.as_str())),
        (None, Some(client)) => Some(("client", client.as_str())),
        (None, None) => None,
        _ => {
            return oauth_error(crate::flows::error::OAuthError::InvalidRequest(
                "filter by user_id or client_id, not both".into(),
            ));
        }
    };
    match state.store.api_keys(owner).await {
        Ok(rows) => {
            Json(ApiKeyList { api_keys: rows.iter().map(crate::flows::api_keys::info).collect() }).into_response()
        }
        Err(err) => oauth_error(err.into()),
    }
}

/// Show one API key.
#[utoipa::path(get, path = "/admin/api-keys/{key_id}", params(("key_id" = String, Path)),
    responses((status = 200, body = ApiKeyInfo), (status = 404, body = ErrorBody)))]
async fn get_api_key(State(state): State<AppState>, Path(key_id): Path<String>) -> Response {
    let row = match crate::flows::api_keys::parse_key_id(&key_id) {
        Some(id) => state.store.api_key(id).await,
        None => Ok(None),
    };
    match row {
        Ok(Some(row)) => Json(crate::flows::api_keys::info(&row)).into_response(),
        Ok(None) => super::error::json_error(StatusCode::NOT_FOUND, "not_found", Some("no such API key")),
        Err(err) => oauth_error(err.into()),
    }
}

/// Revoke an API key: refused at once by introspection, and by gateways and embedded verifiers
/// within a second (revocation feed), with every token exchanged for it.
#[utoipa::path(delete, path = "/admin/api-keys/{key_id}", params(("key_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_api_key(State(state): State<AppState>, Path(key_id): Path<String>) -> Response {
    let Some(id) = crate::flows::api_keys::parse_key_id(&key_id) else {
        return super::error::json_error(StatusCode::NOT_FOUND, "not_found", Some("no such API key"));
    };
    match state.store.api_key(id).await {
        Ok(Some(_)) => {}
        Ok(None) => return super::error::json_error(StatusCode::NOT_FOUND, "not_found", Some("no such API key")),
        Err(err) => return oauth_error(err.into()),
    }
    match crate::flows::api_keys::revoke(&state, id, &admin_actor(), state.clock.now()).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => oauth_error(err),
    }
}

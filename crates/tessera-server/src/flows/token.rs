//! `POST /token`: dispatch by grant type, RFC 6749 §4.4 client credentials, and access-token
//! issuance in both formats: RFC 9068 JWTs and opaque reference tokens stored only as their
//! hash. The code and refresh grants live in [`crate::flows::code_grant`].

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;
use tessera_proto::UnixTime;
use tessera_proto::token::{Audience, TokenResponse};
use tessera_verify::Confirmation;

use crate::AppState;
use crate::audit::{Event, Record};
use crate::client::{Client, Profile, TokenFormat, is_resource_uri};
use crate::flows::client_auth::{self, ClientRequest};
use crate::flows::code_grant;
use crate::flows::dpop::{self, PresentedProof};
use crate::flows::error::OAuthError;
use crate::form::Form;
use crate::scope::Scope;
use crate::secret::{self, OpaqueToken};
use crate::store::{IssuedJwt, OpaqueTokenRow};

/// RFC 9068 §2.2 claims of a JWT access token.
#[derive(Serialize)]
struct AccessTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a Audience,
    client_id: &'a str,
    scope: &'a str,
    iat: u64,
    exp: u64,
    jti: &'a str,
    /// The browser session of a token issued under a grant (its revocation feed cut-off key).
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<serde_json::Value>,
    /// draft-ietf-oauth-status-list: where this token's revocation bit lives.
    status: serde_json::Value,
}

/// What the tokens of one token request are bound to (RFC 9449 §5, RFC 8705 §3).
#[derive(Debug, Clone, Default)]
pub struct Binding {
    /// The thumbprint of the key of the request's DPoP proof.
    pub dpop_jkt: Option<String>,
    /// The thumbprint of the client certificate, for a client with certificate-bound tokens.
    pub certificate: Option<String>,
}

impl Binding {
    /// The confirmation access tokens carry: the DPoP key when there is a proof, else the certificate.
    pub fn cnf(&self) -> Option<Confirmation> {
        match (&self.dpop_jkt, &self.certificate) {
            (Some(jkt), _) => Some(Confirmation::Jkt(jkt.clone())),
            (None, Some(x5t)) => Some(Confirmation::X5tS256(x5t.clone())),
            (None, None) => None,
        }
    }
}

/// What a grant decided to issue.
pub struct Grant<'a> {
    /// The `grant_type` that issues it (for metrics).
    pub grant_type: &'static str,
    pub client: &'a Client,
    pub sub: &'a str,
    pub scope: Scope,
    pub audience: Vec<String>,
    /// The grant (code redemption) this token belongs to; revoking the grant revokes the token.
    pub grant_id: Option<&'a str>,
    /// What the token is bound to, if it is sender-constrained.
    pub cnf: Option<Confirmation>,
    /// The browser session the grant came from.
    pub sid: Option<&'a str>,
}

pub async fn token(
    state: &AppState,
    request: &ClientRequest<'_>,
    form: &Form,
    proof: &PresentedProof<'_>,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    let grant_type =
        form.get("grant_type").ok_or_else(|| OAuthError::InvalidRequest("grant_type is required".into()))?;
    let client = client_auth::require(state, request, form, now).await?;
    if !["client_credentials", "authorization_code", "refresh_token"].contains(&grant_type) {
        return Err(OAuthError::UnsupportedGrantType);
    }
    let binding = binding(state, &client, request, proof, now).await?;
    match grant_type {
        "client_credentials" => client_credentials(state, &client, form, &binding, now).await,
        // Boxed: their futures are kilobytes that every client_credentials request would
        // otherwise carry and copy.
        "authorization_code" => Box::pin(code_grant::redeem(state, &client, form, &binding, now)).await,
        _ => Box::pin(code_grant::refresh(state, &client, form, &binding, now)).await,
    }
}

/// RFC 9449 §5: a DPoP proof binds every token the request issues to the proof's key; RFC 8705
/// §3: a client registered for certificate-bound tokens gets them bound to its certificate.
/// A FAPI 2.0 client gets nothing that is not bound.
async fn binding(
    state: &AppState,
    client: &Client,
    request: &ClientRequest<'_>,
    proof: &PresentedProof<'_>,
    now: UnixTime,
) -> Result<Binding, OAuthError> {
    let dpop_jkt = dpop::client_key(state, client, proof, now).await?;
    let certificate = match (client.certificate_bound, request.certificate) {
        (false, _) => None,
        (true, Some(certificate)) => Some(tessera_verify::certificate_thumbprint(certificate.leaf())),
        (true, None) if dpop_jkt.is_some() => None,
        (true, None) => {
            return Err(OAuthError::InvalidRequest(
                "this client's tokens are bound to its TLS client certificate: present one".into(),
            ));
        }
    };
    let binding = Binding { dpop_jkt, certificate };
    if client.profile == Profile::Fapi2 && binding.cnf().is_none() {
        return Err(OAuthError::InvalidRequest("FAPI 2.0: tokens must be sender-constrained (DPoP or mTLS)".into()));
    }
    Ok(binding)
}

/// RFC 6749 §4.4: the client acts on its own behalf; `sub` is its client id.
async fn client_credentials(
    state: &AppState,
    client: &Client,
    form: &Form,
    binding: &Binding,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    if !client.may_use("client_credentials") {
        return Err(OAuthError::UnauthorizedClient("this client may not use client_credentials"));
    }
    let scope = narrowed_scope(form, &client.scope, "the requested scope exceeds what the client was granted")?;
    let audience = select_audience(client, form.resources())?;
    let cnf = binding.cnf();
    issue(
        state,
        Grant {
            grant_type: "client_credentials",
            client,
            sub: &client.client_id,
            scope,
            audience,
            grant_id: None,
            cnf,
            sid: None,
        },
        now,
    )
    .await
}

/// The form's `scope` if it is within `granted` (else `invalid_scope` saying `wider`), or all of
/// `granted` when the form names none (RFC 6749 §3.3, §6).
pub fn narrowed_scope(form: &Form, granted: &Scope, wider: &'static str) -> Result<Scope, OAuthError> {
    let Some(requested) = form.get("scope") else { return Ok(granted.clone()) };
    let requested = Scope::parse(requested).map_err(|_| OAuthError::InvalidScope("scope is malformed"))?;
    if !requested.is_subset(granted) {
        return Err(OAuthError::InvalidScope(wider));
    }
    Ok(requested)
}

/// RFC 8707 §2: each `resource` must be an absolute URI the client may address; none means
/// the client's default audience.
pub fn select_audience(client: &Client, resources: &[String]) -> Result<Vec<String>, OAuthError> {
    if resources.is_empty() {
        return Ok(client.audience.iter().take(1).cloned().collect());
    }
    let mut audience: Vec<String> = Vec::new();
    for resource in resources {
        if !is_resource_uri(resource) {
            return Err(OAuthError::InvalidTarget("resource must be an absolute URI without a fragment"));
        }
        if !client.audience.contains(resource) {
            return Err(OAuthError::InvalidTarget("the client may not request this resource"));
        }
        if !audience.contains(resource) {
            audience.push(resource.clone());
        }
    }
    Ok(audience)
}

/// Issues an access token in the client's format. An opaque token is durable before it is returned.
pub async fn issue(state: &AppState, grant: Grant<'_>, now: UnixTime) -> Result<TokenResponse, OAuthError> {
    let client = grant.client;
    let grant_type = grant.grant_type;
    let ttl = client.access_token_ttl;
    let iat = now.secs();
    let exp = now.plus(ttl).secs();
    // One draw for the jti and an opaque token's secret (independent bytes of the CSPRNG's output).
    let mut random = [0u8; 48];
    secret::fill_random(&mut random);
    let (jti_bytes, secret_bytes) = random.split_at(16);
    let jti = URL_SAFE_NO_PAD.encode(jti_bytes);
    let scope = grant.scope.to_string();
    let token_type = if matches!(grant.cnf, Some(Confirmation::Jkt(_))) { "DPoP" } else { "Bearer" };
    let cnf = grant.cnf.as_ref().map(Confirmation::to_json);
    // Made once nothing is left to await but storing it, so that the request future does not
    // carry the record (a future is moved whole each time it is nested in the next).
    let bound = cnf.is_some();
    let record = || {
        Record::new(Event::TokenIssued, iat, format!("client:{}", client.client_id))
            .subject(grant.sub)
            .client(&client.client_id)
            .session(grant.sid)
            .detail("token", "access_token")
            .detail("grant_type", grant_type)
            .detail("format", client.token_format.as_str())
            .detail("jti", &jti)
            .detail("scope", &scope)
            .detail("exp", exp)
            .detail("grant_id", grant.grant_id)
            .detail("sender_constrained", bound)
    };
    let access_token = match client.token_format {
        TokenFormat::Jwt | TokenFormat::Split => {
            let aud = Audience::from_list(grant.audience);
            let status_idx = state.status_lists.next(state, now).await?;
            let claims = AccessTokenClaims {
                iss: state.config.issuer.as_str(),
                sub: grant.sub,
                aud: &aud,
                client_id: &client.client_id,
                scope: &scope,
                iat,
                exp,
                jti: &jti,
                sid: grant.sid,
                cnf,
                status: crate::flows::status_list::claim(state, status_idx),
            };
            let payload = serde_json::to_vec(&claims).map_err(anyhow::Error::from)?;
            let token = state.keys.current().signing.sign_jws(&payload)?;
            let mut jwt =
                IssuedJwt { jti: &jti, exp, status_idx: Some(status_idx), grant_id: grant.grant_id, split: None };
            let issued = match client.token_format {
                // The client gets the signature part only; gateways fetch the rest by its hash.
                TokenFormat::Split => {
                    let (header_payload, signature) =
                        token.rsplit_once('.').ok_or_else(|| anyhow::anyhow!("a JWS has a signature part"))?;
                    jwt.split = Some((secret::hash(signature), header_payload));
                    signature.to_owned()
                }
                _ => token.clone(),
            };
            state.store.record_jwt(jwt, record()).await?;
            issued
        }
        TokenFormat::Opaque => {
            let mut secret = [0u8; 32];
            secret.copy_from_slice(secret_bytes);
            let row = OpaqueTokenRow {
                id: 0,
                secret_hash: secret::hash_bytes(&secret),
                jti: jti.clone(),
                client_id: client.client_id.clone(),
                sub: grant.sub.to_owned(),
                aud: grant.audience,
                scope: scope.clone(),
                iat,
                exp,
                revoked: false,
                grant_id: grant.grant_id.map(str::to_owned),
                cnf: cnf.map(|c| c.to_string()),
            };
            let id = state.store.insert_opaque_token(row, record()).await?;
            OpaqueToken { id, secret }.encode().expose().to_owned()
        }
    };
    crate::metrics::token_issued(grant_type, client.token_format.as_str());
    tracing::info!(client_id = %client.client_id, %jti, format = client.token_format.as_str(), "access token issued");
    Ok(TokenResponse {
        access_token,
        token_type: token_type.into(),
        expires_in: ttl,
        scope: Some(scope).filter(|s| !s.is_empty()),
        refresh_token: None,
        id_token: None,
        issued_token_type: None,
    })
}

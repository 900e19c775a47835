//! Access-token issuance, shared by every grant and calling none: RFC 9068 JWTs (whole or
//! split) and opaque reference tokens stored only as their hash; the scope and audience a grant
//! may narrow to (RFC 6749 §3.3, RFC 8707); what tokens are bound to (RFC 9449, RFC 8705); ID
//! tokens (OpenID Connect Core §2); and the user check every user grant makes.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;
use tessera_proto::UnixTime;
use tessera_proto::token::{Audience, TokenResponse};
use tessera_verify::Confirmation;

use crate::AppState;
use crate::audit::{Event, Record};
use crate::client::{Client, TokenFormat, is_resource_uri};
use crate::flows::error::OAuthError;
use crate::form::Form;
use crate::scope::Scope;
use crate::secret::{self, OpaqueToken};
use crate::store::{GrantRow, IssuedJwt, OpaqueTokenRow};
use crate::user::User;

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
pub(crate) struct Binding {
    /// The thumbprint of the key of the request's DPoP proof.
    pub dpop_jkt: Option<String>,
    /// The thumbprint of the client certificate, for a client with certificate-bound tokens.
    pub certificate: Option<String>,
}

impl Binding {
    /// The confirmation access tokens carry: the DPoP key when there is a proof, else the certificate.
    pub(crate) fn cnf(&self) -> Option<Confirmation> {
        match (&self.dpop_jkt, &self.certificate) {
            (Some(jkt), _) => Some(Confirmation::Jkt(jkt.clone())),
            (None, Some(x5t)) => Some(Confirmation::X5tS256(x5t.clone())),
            (None, None) => None,
        }
    }
}

/// What a grant decided to issue.
pub(crate) struct Grant<'a> {
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

/// The form's `scope` if it is within `granted` (else `invalid_scope` saying `wider`), or all of
/// `granted` when the form names none (RFC 6749 §3.3, §6).
pub(crate) fn narrowed_scope(form: &Form, granted: &Scope, wider: &'static str) -> Result<Scope, OAuthError> {
    let Some(requested) = form.get("scope") else { return Ok(granted.clone()) };
    let requested = Scope::parse(requested).map_err(|_| OAuthError::InvalidScope("scope is malformed"))?;
    if !requested.is_subset(granted) {
        return Err(OAuthError::InvalidScope(wider));
    }
    Ok(requested)
}

/// RFC 8707 §2: each `resource` must be an absolute URI the client may address; none means
/// the client's default audience.
pub(crate) fn select_audience(client: &Client, resources: &[String]) -> Result<Vec<String>, OAuthError> {
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
pub(crate) async fn issue(state: &AppState, grant: Grant<'_>, now: UnixTime) -> Result<TokenResponse, OAuthError> {
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
            let status_idx = state.status_lists.next(&state.store, now).await?;
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
        expires_in: Some(ttl),
        scope: Some(scope).filter(|s| !s.is_empty()),
        refresh_token: None,
        id_token: None,
        issued_token_type: None,
    })
}

/// ID-token lifetime.
pub(crate) const ID_TOKEN_TTL: u64 = 3600;

/// OpenID Connect Core §2 claims.
#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: u64,
    iat: u64,
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    sid: &'a str,
}

/// `at_hash` (Core §3.1.3.6): the left half of SHA-256 of the access token, base64url. Every
/// algorithm we sign ID tokens with (RS256, ES256) uses SHA-256.
fn at_hash(access_token: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&secret::hash(access_token)[..16])
}

fn id_token(
    state: &AppState,
    client: &Client,
    grant: &GrantRow,
    nonce: Option<&str>,
    access_token: &str,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let claims = IdTokenClaims {
        iss: state.config.issuer.as_str(),
        sub: &grant.user_id,
        aud: &client.client_id,
        azp: &client.client_id,
        exp: now.plus(ID_TOKEN_TTL).secs(),
        iat: now.secs(),
        auth_time: grant.auth_time,
        nonce,
        at_hash: at_hash(access_token),
        sid: &grant.session_id,
    };
    let keys = state.keys.current();
    let signer = keys
        .id_token_signer(&client.id_token_alg)
        .ok_or_else(|| anyhow::anyhow!("no {} key for ID tokens", client.id_token_alg))?;
    let payload = serde_json::to_vec(&claims).map_err(anyhow::Error::from)?;
    Ok(signer.sign_jws(&payload)?)
}

/// The grant's user, if they may still get tokens: not deleted, not disabled, and, while locked
/// out, only for a grant `created` before the streak of failures that locked them began. A
/// lockout protects, never punishes (#23): the sessions the person had before someone started
/// guessing keep working; a grant created during the streak (RT-14: through a session, since a
/// correct password would have ended the streak) waits for the lock to end.
pub(crate) async fn active_user(
    state: &AppState,
    user_id: &str,
    created: u64,
    now: UnixTime,
) -> Result<User, OAuthError> {
    match state.store.user(user_id).await? {
        Some(user) if user.locked_until > now.secs() && created >= user.failures_since => {
            Err(OAuthError::InvalidGrant("the user is locked out after repeated failed sign-ins"))
        }
        Some(user) if !user.disabled => Ok(user),
        _ => Err(OAuthError::InvalidGrant("the user is disabled or deleted")),
    }
}

/// Issues the access token (and ID token) of a grant, bound as `binding` says.
/// Which grant issues: a code redemption (with the authorization request's `nonce`) or a refresh.
pub(crate) enum Issuing<'a> {
    Code(Option<&'a str>),
    Refresh,
    /// A device code's redemption (RFC 8628).
    Device,
}

pub(crate) async fn respond(
    state: &AppState,
    issuing: Issuing<'_>,
    client: &Client,
    grant: &GrantRow,
    scope: Scope,
    binding: &Binding,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    let (grant_type, nonce) = match issuing {
        Issuing::Code(nonce) => ("authorization_code", nonce),
        Issuing::Refresh => ("refresh_token", None),
        Issuing::Device => (crate::client::GrantType::DeviceCode.as_str(), None),
    };
    let audience = select_audience(client, &grant.resources)?;
    let openid = scope.contains("openid");
    let cnf = binding.cnf();
    let issued = Grant {
        grant_type,
        client,
        sub: &grant.user_id,
        scope,
        audience,
        grant_id: Some(&grant.id),
        cnf,
        sid: Some(&grant.session_id),
    };
    let mut response = issue(state, issued, now).await?;
    if openid {
        response.id_token = Some(id_token(state, client, grant, nonce, &response.access_token, now)?);
    }
    Ok(response)
}

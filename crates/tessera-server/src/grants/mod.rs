//! `POST /token`: the grant type is parsed once ([`GrantType`]), the client authenticated (every
//! grant but token exchange, whose subject token is the credential), what the tokens are bound
//! to decided ([`issue::Binding`]), and the grant's own file called. Each grant is one file with
//! one `grant` function; issuance ([`issue`]) is shared and calls no grant, so a new grant type
//! is one new file and one arm below.

pub(crate) mod authorization_code;
pub(crate) mod client_credentials;
pub(crate) mod device_code;
pub(crate) mod issue;
pub(crate) mod refresh_token;
pub(crate) mod start;
pub(crate) mod token_exchange;

use tessera_proto::UnixTime;
use tessera_proto::token::TokenResponse;

use crate::AppState;
use crate::client::{Client, GrantType, Profile};
use crate::flows::client_auth::{self, ClientRequest};
use crate::flows::dpop::{self, PresentedProof};
use crate::flows::error::OAuthError;
use crate::form::Form;
use issue::Binding;

impl GrantType {
    /// The form's `grant_type`: `invalid_request` when absent, `None` when unsupported (which
    /// is said only after the client has authenticated).
    pub(crate) fn of(form: &Form) -> Result<Option<GrantType>, OAuthError> {
        let value =
            form.get("grant_type").ok_or_else(|| OAuthError::InvalidRequest("grant_type is required".into()))?;
        Ok(GrantType::parse(value))
    }
}

/// The token endpoint for a client-authenticated grant (`grant_type` from [`GrantType::of`];
/// token exchange goes to [`token_exchange::grant`] without client authentication).
pub(crate) async fn token(
    state: &AppState,
    grant_type: Option<GrantType>,
    request: &ClientRequest<'_>,
    form: &Form,
    proof: &PresentedProof<'_>,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    let client = client_auth::require(state, request, form, now).await?;
    let grant_type = match grant_type {
        Some(GrantType::TokenExchange) | None => return Err(OAuthError::UnsupportedGrantType),
        Some(grant_type) => grant_type,
    };
    let binding = binding(state, &client, request, proof, now).await?;
    match grant_type {
        GrantType::ClientCredentials => client_credentials::grant(state, &client, form, &binding, now).await,
        // Boxed: their futures are kilobytes that every client_credentials request would
        // otherwise carry and copy.
        GrantType::AuthorizationCode => Box::pin(authorization_code::grant(state, &client, form, &binding, now)).await,
        GrantType::RefreshToken => Box::pin(refresh_token::grant(state, &client, form, &binding, now)).await,
        GrantType::DeviceCode => Box::pin(device_code::grant(state, &client, form, &binding, now)).await,
        GrantType::TokenExchange => Err(OAuthError::UnsupportedGrantType),
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

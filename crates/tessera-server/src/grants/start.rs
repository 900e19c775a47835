//! Starting a grant a person approved — an authorization code or an approved device code being
//! redeemed: the grant row, its first refresh token (when the client may refresh) and the token
//! response, issued before the redemption commits (an outage in between leaves the code unused
//! and a retry works; tokens of a grant that never comes into being read as revoked). The
//! grant's own file then redeems in one transaction and calls [`Starting::finish`].

use tessera_proto::UnixTime;
use tessera_proto::token::TokenResponse;

use super::issue::{Binding, Issuing, respond};
use crate::AppState;
use crate::audit::{Event, Record};
use crate::client::{Client, GrantType};
use crate::flows::error::OAuthError;
use crate::scope::Scope;
use crate::secret::{self, OpaqueToken, REFRESH_TOKEN_PREFIX};
use crate::store::GrantRow;

/// Who approved what.
pub(crate) struct Approved {
    pub user_id: String,
    pub session_id: String,
    pub scope: String,
    pub resources: Vec<String>,
    pub auth_time: u64,
}

/// A grant about to be created by a redemption.
pub(crate) struct Starting {
    pub grant: GrantRow,
    /// The first refresh token's hash and idle expiry, for the store.
    pub refresh: Option<([u8; 32], u64)>,
    refresh_secret: Option<[u8; 32]>,
    response: TokenResponse,
}

/// Builds the grant and issues its tokens (`issuing` says which grant type they are stamped with).
pub(crate) async fn start(
    state: &AppState,
    issuing: Issuing<'_>,
    client: &Client,
    approved: Approved,
    binding: &Binding,
    now: UnixTime,
) -> Result<Starting, OAuthError> {
    let grant = GrantRow {
        id: secret::random_b64(16),
        client_id: client.client_id.clone(),
        user_id: approved.user_id,
        session_id: approved.session_id,
        scope: approved.scope,
        resources: approved.resources,
        auth_time: approved.auth_time,
        created_at: now.secs(),
        expires_at: now.plus(state.config.refresh_token_ttl).secs(),
        revoked_at: None,
        // RFC 9449 §5: a public client's refresh tokens are bound to its DPoP key.
        dpop_jkt: binding.dpop_jkt.clone().filter(|_| client.is_public()),
    };
    let refresh_secret = client.may_use(GrantType::RefreshToken).then(OpaqueToken::secret);
    let idle = now.plus(state.config.refresh_token_idle_ttl).secs().min(grant.expires_at);
    let refresh = refresh_secret.map(|s| (secret::hash_bytes(&s), idle));
    let scope = Scope::parse(&grant.scope).map_err(|_| anyhow::anyhow!("stored scope is corrupt"))?;
    let response = respond(state, issuing, client, &grant, scope, binding, now).await?;
    Ok(Starting { grant, refresh, refresh_secret, response })
}

impl Starting {
    /// The `token.issued` record the redemption appends.
    pub(crate) fn record(&self, client: &Client, grant_type: &str, now: UnixTime) -> Record {
        Record::new(Event::TokenIssued, now.secs(), format!("client:{}", client.client_id))
            .subject(&self.grant.user_id)
            .client(&client.client_id)
            .session(Some(&self.grant.session_id))
            .detail("token", "refresh_token")
            .detail("grant_type", grant_type)
            .detail("grant_id", &self.grant.id)
            .detail("scope", &self.grant.scope)
            .detail("refresh_token", self.refresh.is_some())
    }

    /// The response, with the refresh token the store numbered `refresh_id`.
    pub(crate) fn finish(self, refresh_id: Option<u64>) -> TokenResponse {
        let mut response = self.response;
        response.refresh_token = match (refresh_id, self.refresh_secret) {
            (Some(id), Some(secret)) => {
                Some(OpaqueToken { id, secret }.encode_as(REFRESH_TOKEN_PREFIX).expose().to_owned())
            }
            _ => None,
        };
        response
    }
}

//! The token handler as the issuer's OAuth client: discovery, the token endpoint, and silent
//! refresh with one refresh in flight per refresh token.

use std::sync::Arc;

use anyhow::Context as _;
use http::StatusCode;
use tessera_proto::discovery::IssuerMetadata;
use tessera_proto::error::ErrorBody;
pub(super) use tessera_proto::token::TokenResponse;

use crate::{now, sha256};

use super::{Bff, Session};

/// The issuer's endpoints the token handler calls, from its discovery document.
#[derive(Debug)]
pub(super) struct Endpoints {
    pub(super) authorization_endpoint: String,
    pub(super) token_endpoint: String,
    pub(super) userinfo_endpoint: Option<String>,
    pub(super) revocation_endpoint: Option<String>,
    pub(super) end_session_endpoint: Option<String>,
}

impl Endpoints {
    /// The endpoints of `issuer`'s metadata, which must name `issuer` itself (RFC 8414 §3.3:
    /// another issuer's document is a mix-up) and the two endpoints a login needs.
    pub(super) fn of(issuer: &str, metadata: IssuerMetadata) -> anyhow::Result<Endpoints> {
        anyhow::ensure!(
            metadata.issuer.trim_end_matches('/') == issuer,
            "the discovery document names issuer {:?}, not {issuer:?}",
            metadata.issuer
        );
        Ok(Endpoints {
            authorization_endpoint: metadata
                .authorization_endpoint
                .context("the discovery document names no authorization_endpoint")?,
            token_endpoint: metadata.token_endpoint.context("the discovery document names no token_endpoint")?,
            userinfo_endpoint: metadata.userinfo_endpoint,
            revocation_endpoint: metadata.revocation_endpoint,
            end_session_endpoint: metadata.end_session_endpoint,
        })
    }
}

/// Why the issuer did not give tokens.
#[derive(Debug, Clone)]
pub(super) enum IssuerError {
    /// It answered with an OAuth error.
    Refused(String),
    /// It could not be reached, or failed.
    Unavailable,
}

impl Bff {
    pub(super) async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, IssuerError> {
        let response = self
            .http
            .post(&self.endpoints.token_endpoint)
            .basic_auth(form_encode(&self.config.client_id), Some(form_encode(self.config.client_secret.expose())))
            .form(form)
            .send()
            .await
            .map_err(|err| {
                tracing::warn!(err = %err, "the issuer's token endpoint cannot be reached");
                IssuerError::Unavailable
            })?;
        let status = response.status();
        // A busy issuer, or one rate-limiting the token handler, says nothing about the session:
        // ending every SPA user's session on a 429 would let whoever causes it log them out
        // (docs/threat-model.md, T-02).
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            tracing::warn!(%status, "the issuer could not answer the token handler's token request");
            return Err(IssuerError::Unavailable);
        }
        if !status.is_success() {
            let code = response.json::<ErrorBody>().await.map_or_else(|_| "invalid_request".to_owned(), |b| b.error);
            tracing::info!(%status, error = %code, "the issuer refused the token handler's token request");
            return Err(IssuerError::Refused(code));
        }
        response.json().await.map_err(|_| IssuerError::Unavailable)
    }

    pub(super) fn session_from(&self, tokens: TokenResponse, previous_rt: Option<String>, csrf: String) -> Session {
        let exp = now().saturating_add(tokens.expires_in.unwrap_or(60));
        Session { at: tokens.access_token, rt: tokens.refresh_token.or(previous_rt), exp, csrf }
    }

    /// Refreshes `session` once, however many requests ask at the same time.
    pub(super) async fn refresh(&self, session: &Session) -> Result<Session, IssuerError> {
        let Some(rt) = session.rt.clone() else { return Err(IssuerError::Refused("invalid_grant".into())) };
        let key = sha256(rt.as_bytes());
        let csrf = session.csrf.clone();
        self.refreshes
            .try_get_with(key, async move {
                let tokens = self.token_request(&[("grant_type", "refresh_token"), ("refresh_token", &rt)]).await;
                crate::metrics::bff("refresh", outcome(&tokens));
                Ok(self.session_from(tokens?, Some(rt), csrf))
            })
            .await
            .map_err(|err: Arc<IssuerError>| (*err).clone())
    }

    /// A session whose access token is good for at least `refresh_before_expiry` more seconds:
    /// the same one, or a refreshed one (`true`: set the cookie again).
    pub(super) async fn fresh(&self, session: Session) -> Result<(Session, bool), IssuerError> {
        if session.exp > now().saturating_add(self.config.refresh_before_expiry) {
            return Ok((session, false));
        }
        Ok((self.refresh(&session).await?, true))
    }
}

pub(super) fn outcome<T>(result: &Result<T, IssuerError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(IssuerError::Refused(_)) => "refused",
        Err(IssuerError::Unavailable) => "unavailable",
    }
}

/// RFC 6749 §2.3.1: client credentials in HTTP Basic are form-encoded first.
pub(super) fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

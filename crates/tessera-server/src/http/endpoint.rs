//! [`EndpointRequest`]: what every endpoint of the token family (`/token`, `/introspect`,
//! `/revoke`, `/par`) reads from a request, extracted once: the time, the URL the client
//! addressed, the form body, the presented client credentials and certificate, and the DPoP
//! header. A body that is no form is refused here, RFC-shaped and never cached.

use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tessera_proto::UnixTime;

use super::{Certificate, authorization, dpop_header, form, no_store};
use crate::AppState;
use crate::flows::client_auth::ClientRequest;
use crate::flows::dpop::PresentedProof;
use crate::flows::error::OAuthError;
use crate::form::Form;

/// A request to an endpoint of the token family.
pub(crate) struct EndpointRequest {
    /// Read once, when the request arrived.
    pub(crate) now: UnixTime,
    /// The URL the client addressed: the issuer joined with the endpoint's path.
    pub(crate) url: String,
    pub(crate) form: Form,
    pub(crate) headers: HeaderMap,
    certificate: Certificate,
    /// The peer's address (for records of where an API key was used).
    pub(crate) peer: Option<std::net::IpAddr>,
    /// The caller's address: the peer's, or behind a trusted proxy the forwarded one.
    pub(crate) ip: Option<std::net::IpAddr>,
}

impl EndpointRequest {
    /// The client's credentials as presented (checked by `client_auth`).
    pub(crate) fn client(&self) -> Result<ClientRequest<'_>, OAuthError> {
        Ok(ClientRequest {
            authorization: authorization(&self.headers)?,
            certificate: self.certificate.as_ref().map(|c| &c.0),
            endpoint: &self.url,
            ip: self.ip,
        })
    }

    /// The request's DPoP proof, if any (RFC 9449 §4.3: at most one).
    pub(crate) fn proof(&self) -> Result<PresentedProof<'_>, OAuthError> {
        Ok(PresentedProof { proof: dpop_header(&self.headers)?, method: "POST", url: &self.url })
    }
}

impl FromRequest<AppState> for EndpointRequest {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let now = state.clock.now();
        let url = state.config.issuer.join(request.uri().path());
        let certificate = request.extensions().get::<crate::tls::ClientCertificate>().cloned().map(axum::Extension);
        let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
        let ip = super::request_ip(state, request.extensions(), request.headers());
        // The headers are moved out, not copied: this runs on every introspection.
        let (mut parts, body) = request.into_parts();
        let headers = std::mem::take(&mut parts.headers);
        let body =
            Bytes::from_request(Request::from_parts(parts, body), state).await.map_err(IntoResponse::into_response)?;
        let form = form(&headers, &body).map_err(|err| no_store(err.into_response()))?;
        Ok(EndpointRequest { now, url, form, headers, certificate, peer, ip })
    }
}

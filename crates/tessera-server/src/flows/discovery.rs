//! Authorization server metadata (RFC 8414), advertising only what works.

use tessera_proto::discovery::ProviderMetadata;

use crate::client::SUPPORTED_GRANT_TYPES;
use crate::config::IssuerUrl;

/// Scopes with a meaning to the server itself.
pub const SERVER_SCOPES: [&str; 1] = [crate::ADMIN_SCOPE];

pub fn metadata(issuer: &IssuerUrl) -> ProviderMetadata {
    let auth_methods = || vec!["client_secret_basic".to_owned(), "client_secret_post".to_owned()];
    ProviderMetadata {
        issuer: issuer.as_str().to_owned(),
        token_endpoint: issuer.join("/token"),
        jwks_uri: issuer.join("/jwks.json"),
        introspection_endpoint: issuer.join("/introspect"),
        revocation_endpoint: issuer.join("/revoke"),
        grant_types_supported: SUPPORTED_GRANT_TYPES.iter().map(|g| (*g).to_owned()).collect(),
        token_endpoint_auth_methods_supported: auth_methods(),
        introspection_endpoint_auth_methods_supported: auth_methods(),
        revocation_endpoint_auth_methods_supported: auth_methods(),
        scopes_supported: SERVER_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        response_types_supported: Vec::new(),
    }
}

//! Authorization server metadata (RFC 8414, OpenID Connect Discovery 1.0), advertising only
//! what works.

use tessera_proto::discovery::{MtlsEndpointAliases, ProviderMetadata};

use crate::client::SUPPORTED_GRANT_TYPES;
use crate::config::{Config, Registration};

/// The scopes discovery advertises. `tessera:admin` is not among them: only admin clients may
/// ask for it (#23, principle 5), and RFC 8414 §2 lets a server leave scopes unadvertised.
pub const SERVER_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The metadata, advertising `/register` and client ID metadata documents only when enabled.
pub fn metadata(config: &Config) -> ProviderMetadata {
    let issuer = &config.issuer;
    let registration = config.registration != Registration::Off;
    let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let confidential = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "tls_client_auth",
        "self_signed_tls_client_auth",
    ];
    let auth_methods = || strings(&confidential);
    let with_public = || strings(&[&confidential[..], &["none"]].concat());
    ProviderMetadata {
        issuer: issuer.as_str().to_owned(),
        token_endpoint: issuer.join("/token"),
        jwks_uri: issuer.join("/jwks.json"),
        introspection_endpoint: issuer.join("/introspect"),
        revocation_endpoint: issuer.join("/revoke"),
        grant_types_supported: SUPPORTED_GRANT_TYPES.iter().map(|g| (*g).to_owned()).collect(),
        token_endpoint_auth_methods_supported: with_public(),
        introspection_endpoint_auth_methods_supported: auth_methods(),
        revocation_endpoint_auth_methods_supported: with_public(),
        scopes_supported: SERVER_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        response_types_supported: strings(&["code"]),
        authorization_endpoint: issuer.join("/authorize"),
        pushed_authorization_request_endpoint: issuer.join("/par"),
        userinfo_endpoint: issuer.join("/userinfo"),
        end_session_endpoint: issuer.join("/logout"),
        response_modes_supported: strings(&["query"]),
        code_challenge_methods_supported: strings(&["S256"]),
        subject_types_supported: strings(&["public"]),
        id_token_signing_alg_values_supported: strings(&crate::client::ID_TOKEN_ALGS),
        claims_supported: strings(&crate::flows::userinfo::CLAIMS_SUPPORTED),
        authorization_response_iss_parameter_supported: true,
        request_parameter_supported: false,
        request_uri_parameter_supported: true,
        claims_parameter_supported: false,
        pushed_authorization_request_endpoint_auth_methods_supported: with_public(),
        dpop_signing_alg_values_supported: strings(&crate::flows::dpop::ALGS),
        token_endpoint_auth_signing_alg_values_supported: strings(&crate::flows::client_auth::ASSERTION_ALGS),
        tls_client_certificate_bound_access_tokens: true,
        // The public listener asks every client for a certificate (HTTPS), or a trusted proxy
        // passes it on: the aliases are the endpoints themselves.
        mtls_endpoint_aliases: MtlsEndpointAliases {
            token_endpoint: issuer.join("/token"),
            pushed_authorization_request_endpoint: issuer.join("/par"),
            introspection_endpoint: issuer.join("/introspect"),
            revocation_endpoint: issuer.join("/revoke"),
            userinfo_endpoint: issuer.join("/userinfo"),
        },
        registration_endpoint: registration.then(|| issuer.join("/register")),
        client_id_metadata_document_supported: config.client_id_metadata_documents,
        device_authorization_endpoint: issuer.join("/device_authorization"),
    }
}

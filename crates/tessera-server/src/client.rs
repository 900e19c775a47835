//! Registered clients: the domain type and the validation of RFC 7591 metadata into it.

use std::str::FromStr;

use tessera_proto::admin::{ClientInfo, ClientMetadata};

use crate::config::IssuerUrl;
use crate::scope::Scope;

/// Grant types this server implements today.
/// The grant types of the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantType {
    ClientCredentials,
    AuthorizationCode,
    RefreshToken,
    /// RFC 8693, for API keys.
    TokenExchange,
    /// RFC 8628: devices without a browser.
    DeviceCode,
}

impl GrantType {
    /// Every grant type.
    pub(crate) const ALL: [GrantType; 5] = [
        GrantType::ClientCredentials,
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::TokenExchange,
        GrantType::DeviceCode,
    ];

    /// The `grant_type` value, as registered in RFC 6749 §4 and RFC 8693 §2.1.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            GrantType::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    /// A `grant_type` value we support.
    pub(crate) fn parse(value: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == value)
    }
}

pub(crate) const SUPPORTED_GRANT_TYPES: [&str; 4] = [
    GrantType::AuthorizationCode.as_str(),
    GrantType::RefreshToken.as_str(),
    GrantType::ClientCredentials.as_str(),
    GrantType::DeviceCode.as_str(),
];

/// Algorithms an ID token may be signed with.
pub(crate) const ID_TOKEN_ALGS: [&str; 2] = ["RS256", "ES256"];

/// How a client authenticates at the token, introspection and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// RFC 6749 §2.3.1, HTTP Basic.
    ClientSecretBasic,
    /// RFC 6749 §2.3.1, form body.
    ClientSecretPost,
    /// A public client (RFC 6749 §2.1): identified by `client_id` only, PKCE required.
    None,
    /// RFC 8705 §2.1: a certificate chained to a configured CA, with a registered subject or SAN.
    TlsClientAuth,
    /// RFC 8705 §2.2: a certificate listed (`x5c`) in the client's JWK Set.
    SelfSignedTlsClientAuth,
    /// RFC 7523 §2.2: a JWT signed with a key in the client's JWK Set.
    PrivateKeyJwt,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
            AuthMethod::TlsClientAuth => "tls_client_auth",
            AuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// Whether the method proves possession of a private key (FAPI 2.0 accepts only these).
    pub fn is_asymmetric(self) -> bool {
        matches!(self, AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth | AuthMethod::PrivateKeyJwt)
    }

    /// Whether the method is mutual TLS (RFC 8705 §2).
    pub fn is_mtls(self) -> bool {
        matches!(self, AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth)
    }
}

impl FromStr for AuthMethod {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<AuthMethod> {
        match s {
            "client_secret_basic" => Ok(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Ok(AuthMethod::ClientSecretPost),
            "none" => Ok(AuthMethod::None),
            "tls_client_auth" => Ok(AuthMethod::TlsClientAuth),
            "self_signed_tls_client_auth" => Ok(AuthMethod::SelfSignedTlsClientAuth),
            "private_key_jwt" => Ok(AuthMethod::PrivateKeyJwt),
            other => anyhow::bail!("unsupported token_endpoint_auth_method {other:?}"),
        }
    }
}

/// The access-token format a client receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// RFC 9068 JWT.
    Jwt,
    /// A random reference token, looked up at introspection.
    Opaque,
    /// An RFC 9068 JWT of which the client receives only the signature part; gateways fetch the
    /// header and payload by its hash and verify the reassembled JWT.
    Split,
}

impl TokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Jwt => "jwt",
            TokenFormat::Opaque => "opaque",
            TokenFormat::Split => "split",
        }
    }
}

impl FromStr for TokenFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<TokenFormat> {
        match s {
            "jwt" => Ok(TokenFormat::Jwt),
            "opaque" => Ok(TokenFormat::Opaque),
            "split" => Ok(TokenFormat::Split),
            other => anyhow::bail!("unsupported access_token_format {other:?}"),
        }
    }
}

/// What a `tls_client_auth` client's certificate must carry (RFC 8705 §2.1.2): exactly one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateIdentity {
    /// The subject distinguished name, RFC 4514 string form.
    SubjectDn(String),
    /// A dNSName subject alternative name.
    SanDns(String),
    /// A uniformResourceIdentifier subject alternative name.
    SanUri(String),
    /// An iPAddress subject alternative name.
    SanIp(String),
    /// An rfc822Name subject alternative name.
    SanEmail(String),
}

/// Rules a client is held to beyond its own metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// RFC 6749 with RFC 9700's recommendations.
    Default,
    /// FAPI 2.0 Security Profile: PAR, PKCE S256, sender-constrained tokens, `private_key_jwt`
    /// or mTLS client authentication, no RS256 anywhere.
    Fapi2,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Fapi2 => "fapi2",
        }
    }
}

impl FromStr for Profile {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Profile> {
        match s {
            "default" => Ok(Profile::Default),
            "fapi2" => Ok(Profile::Fapi2),
            other => anyhow::bail!("unknown profile {other:?}"),
        }
    }
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub client_name: Option<String>,
    pub grant_types: Vec<String>,
    pub scope: Scope,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub token_format: TokenFormat,
    pub access_token_ttl: u64,
    pub audience: Vec<String>,
    pub introspection: bool,
    pub post_logout_redirect_uris: Vec<String>,
    pub require_par: bool,
    pub first_party: bool,
    pub refresh_rotation: bool,
    pub id_token_alg: String,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof.
    pub dpop_bound: bool,
    /// RFC 9449 §8: DPoP proofs must carry the server's current nonce.
    pub dpop_nonce_required: bool,
    /// The client's inline JWK Set (`{"keys": […]}`), public keys only.
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its JWK Set.
    pub jwks_uri: Option<String>,
    /// `tls_client_auth`: what the certificate must carry.
    pub certificate_identity: Option<CertificateIdentity>,
    /// RFC 8705 §3: access tokens are bound to the client certificate.
    pub certificate_bound: bool,
    pub profile: Profile,
    /// Tokens of this client issued before this instant are inactive.
    pub tokens_not_before: u64,
    pub created_at: u64,
    /// How the client came to be: by an administrator, or by registering itself.
    pub origin: ClientOrigin,
}

/// How a client came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOrigin {
    /// Created through the admin API or the CLI.
    Admin,
    /// Registered itself at `/register` with `registration = "open"` (RFC 7591): constrained by
    /// the open-registration policy, shown as unverified on the consent page.
    OpenRegistration,
    /// Registered itself at `/register` with an initial access token.
    TokenRegistration,
    /// Its `client_id` is the https URL of its own client ID metadata document, fetched when it
    /// is used (`flows::metadata_document`): constrained and shown like an open registration.
    MetadataDocument,
}

impl ClientOrigin {
    /// The stored and shown name: `admin`, `open_registration`, `token_registration`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientOrigin::Admin => "admin",
            ClientOrigin::OpenRegistration => "open_registration",
            ClientOrigin::TokenRegistration => "token_registration",
            ClientOrigin::MetadataDocument => "metadata_document",
        }
    }

    /// Whether anyone at all could have created the client, so that its name and redirect
    /// URIs prove nothing: consent is asked every time and errors are never redirected before it.
    pub fn is_unverified(self) -> bool {
        matches!(self, ClientOrigin::OpenRegistration | ClientOrigin::MetadataDocument)
    }

    /// Whether the client registered itself (RFC 7591) or is described by its own document.
    pub fn is_registered(self) -> bool {
        self != ClientOrigin::Admin
    }
}

impl FromStr for ClientOrigin {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ClientOrigin::Admin,
            ClientOrigin::OpenRegistration,
            ClientOrigin::TokenRegistration,
            ClientOrigin::MetadataDocument,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| anyhow::anyhow!("unknown client origin {s:?}"))
    }
}

/// Metadata that failed validation; the message names the field (RFC 7591 §3.2.2).
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidMetadata(pub String);

/// The longest access-token lifetime a client may ask for: one day.
pub(crate) const MAX_ACCESS_TOKEN_TTL: u64 = 86_400;

impl Client {
    /// The name shown to people: `client_name` or the id; for a metadata document's client also
    /// the document's host, which is who vouches for the name (`Example App (app.example)`).
    pub fn display_name(&self) -> String {
        let name = self.client_name.clone().unwrap_or_else(|| self.client_id.clone());
        let host = (self.origin == ClientOrigin::MetadataDocument)
            .then(|| url::Url::parse(&self.client_id).ok()?.host_str().map(str::to_owned))
            .flatten();
        match host {
            Some(host) if self.client_name.is_some() => format!("{name} ({host})"),
            _ => name,
        }
    }

    /// The stand-in client of the tokens exchanged for API key `jti` (`ak_<id>`): JWT access
    /// tokens of `ttl` seconds whose `client_id` is the key's id.
    pub fn for_api_key(jti: &str, ttl: u64) -> Client {
        Client {
            client_id: jti.to_owned(),
            client_name: None,
            grant_types: Vec::new(),
            scope: Scope::default(),
            auth_method: AuthMethod::None,
            redirect_uris: Vec::new(),
            token_format: TokenFormat::Jwt,
            access_token_ttl: ttl,
            audience: Vec::new(),
            introspection: false,
            post_logout_redirect_uris: Vec::new(),
            require_par: false,
            first_party: false,
            refresh_rotation: true,
            id_token_alg: "ES256".into(),
            dpop_bound: false,
            dpop_nonce_required: false,
            jwks: None,
            jwks_uri: None,
            certificate_identity: None,
            certificate_bound: false,
            profile: Profile::Default,
            tokens_not_before: 0,
            created_at: 0,
            origin: ClientOrigin::Admin,
        }
    }

    /// Validates registration metadata into a client with the given id.
    pub fn register(
        client_id: String,
        metadata: ClientMetadata,
        issuer: &IssuerUrl,
        now: u64,
    ) -> Result<Client, InvalidMetadata> {
        let invalid = |msg: String| Err(InvalidMetadata(msg));
        let client_name = metadata.client_name;
        if client_name.as_ref().is_some_and(|n| n.chars().count() > 200 || n.chars().any(char::is_control)) {
            return invalid("client_name: at most 200 printable characters".into());
        }
        let grant_types =
            metadata.grant_types.unwrap_or_else(|| vec![GrantType::ClientCredentials.as_str().to_owned()]);
        if grant_types.is_empty() {
            return invalid("grant_types: must not be empty".into());
        }
        if let Some(unsupported) = grant_types.iter().find(|g| !SUPPORTED_GRANT_TYPES.contains(&g.as_str())) {
            return invalid(format!("grant_types: {unsupported:?} is not supported"));
        }
        let mut scope = Scope::parse(metadata.scope.as_deref().unwrap_or(""))
            .map_err(|_| InvalidMetadata("scope: not a space-separated list of scope tokens".into()))?;
        // Admin is an identity, not a scope anyone can request (docs/threat-model.md, T-06): only
        // a confidential client acting for itself holds `tessera:admin`, never a person's sign-in.
        match metadata.admin {
            Some(true) => scope = scope.with(crate::ADMIN_SCOPE),
            Some(false) if scope.contains(crate::ADMIN_SCOPE) => {
                return invalid(format!("scope: {} is the admin clients' (admin: true)", crate::ADMIN_SCOPE));
            }
            _ => {}
        }
        if scope.contains(crate::ADMIN_SCOPE) && grant_types.iter().any(|g| g != GrantType::ClientCredentials.as_str())
        {
            return invalid(format!(
                "scope: {} is for admin clients, whose only grant type is client_credentials",
                crate::ADMIN_SCOPE
            ));
        }
        let profile: Profile = metadata
            .profile
            .as_deref()
            .unwrap_or("default")
            .parse()
            .map_err(|_| InvalidMetadata("profile: use default or fapi2".into()))?;
        let auth_method: AuthMethod =
            metadata.token_endpoint_auth_method.as_deref().unwrap_or("client_secret_basic").parse().map_err(|_| {
                InvalidMetadata(
                    "token_endpoint_auth_method: use client_secret_basic, client_secret_post, none, private_key_jwt, tls_client_auth or self_signed_tls_client_auth".into(),
                )
            })?;
        if profile == Profile::Fapi2 && !auth_method.is_asymmetric() {
            return invalid(
                "token_endpoint_auth_method: the fapi2 profile needs private_key_jwt, tls_client_auth or self_signed_tls_client_auth".into(),
            );
        }
        let identities = [
            metadata.tls_client_auth_subject_dn.map(CertificateIdentity::SubjectDn),
            metadata.tls_client_auth_san_dns.map(CertificateIdentity::SanDns),
            metadata.tls_client_auth_san_uri.map(CertificateIdentity::SanUri),
            metadata.tls_client_auth_san_ip.map(CertificateIdentity::SanIp),
            metadata.tls_client_auth_san_email.map(CertificateIdentity::SanEmail),
        ];
        let mut identities: Vec<CertificateIdentity> = identities.into_iter().flatten().collect();
        let certificate_identity = match (auth_method, identities.len()) {
            (AuthMethod::TlsClientAuth, 1) => identities.pop(),
            (AuthMethod::TlsClientAuth, _) => {
                return invalid("tls_client_auth_subject_dn: tls_client_auth needs exactly one of tls_client_auth_subject_dn, tls_client_auth_san_dns, tls_client_auth_san_uri, tls_client_auth_san_ip and tls_client_auth_san_email".into());
            }
            (_, 0) => None,
            (_, _) => {
                return invalid(
                    "tls_client_auth_subject_dn: only with token_endpoint_auth_method tls_client_auth".into(),
                );
            }
        };
        if let Some(CertificateIdentity::SubjectDn(dn)) = &certificate_identity
            && crate::dn::parse_dn(dn).is_none()
        {
            return invalid("tls_client_auth_subject_dn: not a distinguished name such as CN=client,O=Example".into());
        }
        if let Some(CertificateIdentity::SanIp(ip)) = &certificate_identity
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return invalid("tls_client_auth_san_ip: not an IP address".into());
        }
        let (jwks, jwks_uri) = (metadata.jwks, metadata.jwks_uri);
        if jwks.is_some() && jwks_uri.is_some() {
            return invalid("jwks: give jwks or jwks_uri, not both".into());
        }
        if let Some(jwks) = &jwks {
            check_public_jwks(jwks)?;
        }
        if let Some(uri) = &jwks_uri {
            check_jwks_uri(uri, issuer)?;
        }
        let needs_keys = matches!(auth_method, AuthMethod::PrivateKeyJwt | AuthMethod::SelfSignedTlsClientAuth);
        if needs_keys && jwks.is_none() && jwks_uri.is_none() {
            return invalid(format!("jwks: {} needs jwks or jwks_uri", auth_method.as_str()));
        }
        let code_flow = grant_types.iter().any(|g| g == GrantType::AuthorizationCode.as_str());
        let person_grant = code_flow || grant_types.iter().any(|g| g == GrantType::DeviceCode.as_str());
        if grant_types.iter().any(|g| g == GrantType::RefreshToken.as_str()) && !person_grant {
            return invalid("grant_types: refresh_token needs authorization_code or the device code grant".into());
        }
        if auth_method == AuthMethod::None && grant_types.iter().any(|g| g == GrantType::ClientCredentials.as_str()) {
            return invalid("token_endpoint_auth_method: a public client (none) cannot use client_credentials".into());
        }
        match metadata.response_types.as_deref() {
            None => {}
            Some([only]) if only == "code" && code_flow => {}
            Some(_) => return invalid("response_types: only [\"code\"], with the authorization_code grant".into()),
        }
        let redirect_uris = metadata.redirect_uris.unwrap_or_default();
        for uri in &redirect_uris {
            check_redirect_uri(uri, "redirect_uris")?;
        }
        if code_flow && redirect_uris.is_empty() {
            return invalid("redirect_uris: required with the authorization_code grant".into());
        }
        let post_logout_redirect_uris = metadata.post_logout_redirect_uris.unwrap_or_default();
        for uri in &post_logout_redirect_uris {
            check_redirect_uri(uri, "post_logout_redirect_uris")?;
        }
        // FAPI 2.0 §5.3.2.1: a retry with the previous refresh token must succeed, so its
        // (sender-constrained) refresh tokens do not rotate.
        if profile == Profile::Fapi2 && metadata.refresh_token_rotation == Some(true) {
            return invalid("refresh_token_rotation: the fapi2 profile does not rotate refresh tokens".into());
        }
        let refresh_rotation = metadata.refresh_token_rotation.unwrap_or(profile != Profile::Fapi2);
        if auth_method == AuthMethod::None && !refresh_rotation {
            return invalid("refresh_token_rotation: always on for public clients (RFC 9700 §4.14.2)".into());
        }
        let default_alg = if profile == Profile::Fapi2 { "ES256" } else { "RS256" };
        let id_token_alg = metadata.id_token_signed_response_alg.unwrap_or_else(|| default_alg.to_owned());
        if !ID_TOKEN_ALGS.contains(&id_token_alg.as_str()) {
            return invalid("id_token_signed_response_alg: use RS256 or ES256".into());
        }
        if profile == Profile::Fapi2 && id_token_alg == "RS256" {
            return invalid("id_token_signed_response_alg: the fapi2 profile does not allow RS256".into());
        }
        if profile == Profile::Fapi2 && metadata.require_pushed_authorization_requests == Some(false) {
            return invalid("require_pushed_authorization_requests: the fapi2 profile requires PAR".into());
        }
        let token_format = metadata
            .access_token_format
            .as_deref()
            .unwrap_or("jwt")
            .parse()
            .map_err(|_| InvalidMetadata("access_token_format: use jwt, opaque or split".into()))?;
        let access_token_ttl = metadata.access_token_ttl.unwrap_or(600);
        if !(1..=MAX_ACCESS_TOKEN_TTL).contains(&access_token_ttl) {
            return invalid(format!("access_token_ttl: between 1 and {MAX_ACCESS_TOKEN_TTL} seconds"));
        }
        let audience = metadata.audience.unwrap_or_else(|| vec![issuer.as_str().to_owned()]);
        if audience.is_empty() {
            return invalid("audience: must not be empty".into());
        }
        for aud in &audience {
            if !is_resource_uri(aud) {
                return invalid(format!("audience: {aud:?} is not an absolute URI without a fragment"));
            }
        }
        Ok(Client {
            client_id,
            client_name,
            grant_types,
            scope,
            auth_method,
            redirect_uris,
            token_format,
            access_token_ttl,
            audience,
            introspection: metadata.introspection.unwrap_or(false) && auth_method != AuthMethod::None,
            post_logout_redirect_uris,
            require_par: metadata.require_pushed_authorization_requests.unwrap_or(false) || profile == Profile::Fapi2,
            first_party: metadata.first_party.unwrap_or(false),
            refresh_rotation,
            id_token_alg,
            dpop_bound: metadata.dpop_bound_access_tokens.unwrap_or(false),
            dpop_nonce_required: metadata.dpop_nonce_required.unwrap_or(false),
            jwks,
            jwks_uri,
            certificate_identity,
            certificate_bound: metadata.tls_client_certificate_bound_access_tokens.unwrap_or(false),
            profile,
            tokens_not_before: 0,
            created_at: now,
            origin: ClientOrigin::Admin,
        })
    }

    /// The admin API view; the secret is added by the caller when it is new.
    pub fn info(&self, client_secret: Option<String>) -> ClientInfo {
        ClientInfo {
            client_id: self.client_id.clone(),
            client_secret_expires_at: client_secret.as_ref().map(|_| 0),
            client_secret,
            client_id_issued_at: self.created_at,
            origin: self.origin.as_str().to_owned(),
            client_name: self.client_name.clone(),
            grant_types: self.grant_types.clone(),
            scope: self.scope.to_string(),
            token_endpoint_auth_method: self.auth_method.as_str().to_owned(),
            redirect_uris: self.redirect_uris.clone(),
            access_token_format: self.token_format.as_str().to_owned(),
            access_token_ttl: self.access_token_ttl,
            audience: self.audience.clone(),
            introspection: self.introspection,
            admin: self.is_admin(),
            response_types: if self.may_use(GrantType::AuthorizationCode) {
                vec!["code".to_owned()]
            } else {
                Vec::new()
            },
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            require_pushed_authorization_requests: self.require_par,
            first_party: self.first_party,
            refresh_token_rotation: self.refresh_rotation,
            id_token_signed_response_alg: self.id_token_alg.clone(),
            dpop_bound_access_tokens: self.dpop_bound,
            dpop_nonce_required: self.dpop_nonce_required,
            jwks: self.jwks.clone(),
            jwks_uri: self.jwks_uri.clone(),
            tls_client_auth_subject_dn: self.identity(|i| matches!(i, CertificateIdentity::SubjectDn(_))),
            tls_client_auth_san_dns: self.identity(|i| matches!(i, CertificateIdentity::SanDns(_))),
            tls_client_auth_san_uri: self.identity(|i| matches!(i, CertificateIdentity::SanUri(_))),
            tls_client_auth_san_ip: self.identity(|i| matches!(i, CertificateIdentity::SanIp(_))),
            tls_client_auth_san_email: self.identity(|i| matches!(i, CertificateIdentity::SanEmail(_))),
            tls_client_certificate_bound_access_tokens: self.certificate_bound,
            profile: self.profile.as_str().to_owned(),
        }
    }

    fn identity(&self, kind: impl Fn(&CertificateIdentity) -> bool) -> Option<String> {
        match self.certificate_identity.as_ref().filter(|i| kind(i))? {
            CertificateIdentity::SubjectDn(v)
            | CertificateIdentity::SanDns(v)
            | CertificateIdentity::SanUri(v)
            | CertificateIdentity::SanIp(v)
            | CertificateIdentity::SanEmail(v) => Some(v.clone()),
        }
    }

    /// Whether the client is registered for `grant_type`.
    /// Whether the client is an admin client: a confidential client whose one grant type is
    /// `client_credentials` and whose registration holds `tessera:admin`. Only such a client's
    /// own tokens are accepted by the admin API; a registration made before this rule that holds
    /// the scope with another grant type is not an admin client.
    pub fn is_admin(&self) -> bool {
        self.scope.contains(crate::ADMIN_SCOPE)
            && self.grant_types.iter().all(|g| g == GrantType::ClientCredentials.as_str())
            && self.auth_method != AuthMethod::None
    }

    pub(crate) fn may_use(&self, grant_type: GrantType) -> bool {
        self.grant_types.iter().any(|g| g == grant_type.as_str())
    }

    /// Whether the client authenticates with a client secret.
    pub fn uses_secret(&self) -> bool {
        matches!(self.auth_method, AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost)
    }

    /// A public client cannot keep a secret.
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }
}

/// RFC 9700 §4.1.3: a redirect URI matches a registered one by simple string comparison. The
/// one exception is RFC 8252 §7.3: a native app's loopback redirect registered as
/// `http://127.0.0.1/…` or `http://[::1]/…` (IP literals, never `localhost`) may carry any port.
pub(crate) fn redirect_uri_matches(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    for host in ["http://127.0.0.1", "http://[::1]"] {
        let Some(rest) = requested.strip_prefix(host).and_then(|r| r.strip_prefix(':')) else { continue };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=5).contains(&digits) {
            return false;
        }
        let without_port = format!("{host}{}", &rest[digits..]);
        return registered.contains(&without_port);
    }
    false
}

/// An inline JWK Set: `{"keys": [...]}` of at most 20 public keys (no private members).
fn check_public_jwks(jwks: &serde_json::Value) -> Result<(), InvalidMetadata> {
    let bad = |why: &str| InvalidMetadata(format!("jwks: {why}"));
    let keys =
        jwks.get("keys").and_then(serde_json::Value::as_array).ok_or_else(|| bad("must be {\"keys\": [...]}"))?;
    if keys.is_empty() || keys.len() > 20 {
        return Err(bad("between 1 and 20 keys"));
    }
    for key in keys {
        let object = key.as_object().ok_or_else(|| bad("every key is a JSON object"))?;
        if ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|m| object.contains_key(*m)) {
            return Err(bad("public keys only: a key has private or symmetric material"));
        }
        if !object.get("kty").is_some_and(serde_json::Value::is_string) {
            return Err(bad("every key needs kty"));
        }
    }
    Ok(())
}

/// A `jwks_uri` is https, or http on loopback when the issuer itself is on loopback (development).
fn check_jwks_uri(uri: &str, issuer: &IssuerUrl) -> Result<(), InvalidMetadata> {
    let bad = || InvalidMetadata(format!("jwks_uri: {uri:?} is not an https URL"));
    let url = url::Url::parse(uri).map_err(|_| bad())?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if issuer.is_loopback() && matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback()) => Ok(()),
        _ => Err(bad()),
    }
}

/// RFC 8707 §2: a resource indicator is an absolute URI without a fragment.
pub(crate) fn is_resource_uri(s: &str) -> bool {
    !s.chars().any(char::is_control)
        && url::Url::parse(s).is_ok_and(|url| url.fragment().is_none() && !url.cannot_be_a_base())
}

/// RFC 9700 §2.1, §4.1.3: absolute, no fragment, https (or http on loopback for native apps),
/// or a private-use scheme; never a script-bearing scheme.
fn check_redirect_uri(uri: &str, field: &str) -> Result<(), InvalidMetadata> {
    let bad = || InvalidMetadata(format!("{field}: {uri:?} is not an acceptable redirect URI"));
    if uri.chars().any(char::is_control) {
        return Err(bad());
    }
    let url = url::Url::parse(uri).map_err(|_| bad())?;
    if url.fragment().is_some() {
        return Err(bad());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Domain("localhost")) => Ok(()),
            _ => Err(bad()),
        },
        "javascript" | "data" | "vbscript" | "file" | "about" | "blob" => Err(bad()),
        // Private-use schemes of native apps (RFC 8252 §7.1) contain a period.
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(metadata: ClientMetadata) -> Result<Client, InvalidMetadata> {
        Client::register("c".into(), metadata, &IssuerUrl::parse("https://as.example.test").unwrap(), 0)
    }

    #[test]
    fn defaults() {
        let client = register(ClientMetadata::default()).unwrap();
        assert_eq!(client.grant_types, ["client_credentials"]);
        assert_eq!(client.audience, ["https://as.example.test"]);
        assert_eq!(
            (client.token_format, client.access_token_ttl, client.introspection),
            (TokenFormat::Jwt, 600, false)
        );
        assert_eq!(client.auth_method, AuthMethod::ClientSecretBasic);
    }

    #[test]
    fn invalid_fields_are_named() {
        let cases = [
            (ClientMetadata { grant_types: Some(vec!["password".into()]), ..Default::default() }, "grant_types"),
            (ClientMetadata { scope: Some("a  b".into()), ..Default::default() }, "scope"),
            (
                ClientMetadata { token_endpoint_auth_method: Some("none".into()), ..Default::default() },
                "token_endpoint_auth_method",
            ),
            (
                ClientMetadata { token_endpoint_auth_method: Some("private_key_jwt".into()), ..Default::default() },
                "jwks",
            ),
            (
                ClientMetadata { grant_types: Some(vec!["authorization_code".into()]), ..Default::default() },
                "redirect_uris",
            ),
            (ClientMetadata { grant_types: Some(vec!["refresh_token".into()]), ..Default::default() }, "grant_types"),
            (
                ClientMetadata { id_token_signed_response_alg: Some("none".into()), ..Default::default() },
                "id_token_signed_response_alg",
            ),
            (
                ClientMetadata {
                    grant_types: Some(vec!["authorization_code".into()]),
                    redirect_uris: Some(vec!["https://c.example/cb".into()]),
                    token_endpoint_auth_method: Some("none".into()),
                    refresh_token_rotation: Some(false),
                    ..Default::default()
                },
                "refresh_token_rotation",
            ),
            (
                ClientMetadata { access_token_format: Some("paseto".into()), ..Default::default() },
                "access_token_format",
            ),
            (ClientMetadata { access_token_ttl: Some(0), ..Default::default() }, "access_token_ttl"),
            (ClientMetadata { access_token_ttl: Some(86_401), ..Default::default() }, "access_token_ttl"),
            (ClientMetadata { audience: Some(vec![]), ..Default::default() }, "audience"),
            (ClientMetadata { audience: Some(vec!["not a uri".into()]), ..Default::default() }, "audience"),
            (
                ClientMetadata { redirect_uris: Some(vec!["javascript:alert(1)".into()]), ..Default::default() },
                "redirect_uris",
            ),
            (
                ClientMetadata { redirect_uris: Some(vec!["JavaScript:alert(1)".into()]), ..Default::default() },
                "redirect_uris",
            ),
            (
                ClientMetadata { redirect_uris: Some(vec!["data:text/html,x".into()]), ..Default::default() },
                "redirect_uris",
            ),
            (
                ClientMetadata {
                    redirect_uris: Some(vec!["http://client.example.org/cb".into()]),
                    ..Default::default()
                },
                "redirect_uris",
            ),
            (
                ClientMetadata {
                    redirect_uris: Some(vec!["https://client.example.org/cb#f".into()]),
                    ..Default::default()
                },
                "redirect_uris",
            ),
            (ClientMetadata { client_name: Some("a\nb".into()), ..Default::default() }, "client_name"),
        ];
        for (metadata, field) in cases {
            let err = register(metadata).unwrap_err();
            assert!(err.0.starts_with(field), "{err:?} should name {field}");
        }
    }

    #[test]
    fn redirect_uris_match_exactly_except_loopback_ports() {
        let registered = vec!["https://client.example.org/cb".to_owned(), "http://127.0.0.1/cb".to_owned()];
        assert!(redirect_uri_matches(&registered, "https://client.example.org/cb"));
        assert!(redirect_uri_matches(&registered, "http://127.0.0.1:51004/cb"));
        assert!(redirect_uri_matches(&registered, "http://127.0.0.1/cb"));
        for bad in [
            "https://client.example.org/cb/",
            "https://client.example.org/cb/x",
            "https://client.example.org/cbx",
            "https://client.example.org/cb?x=1",
            "https://client.example.org/cb#f",
            "https://CLIENT.example.org/cb",
            "https://client.example.org:443/cb",
            "http://client.example.org/cb",
            "https://client.example.org/cb/../evil",
            "https://client.example.org/cb/..;/evil",
            "https://client.example.org/cb%2F..%2Fevil",
            "https://client.example.org.evil.example/cb",
            "https://client.example.org@evil.example/cb",
            "https://evil.example@@client.example.org/cb",
            "http://localhost.evil.example:51004/cb",
            "http://127.0.0.1:51004/cb/",
            "http://127.0.0.1:/cb",
            "http://127.0.0.1:123456/cb",
            "http://127.0.0.1:80@evil.example/cb",
        ] {
            assert!(!redirect_uri_matches(&registered, bad), "{bad}");
        }
        // A registered localhost is not a wildcard (CVE-2024-8883).
        let localhost = vec!["http://localhost/cb".to_owned()];
        assert!(!redirect_uri_matches(&localhost, "http://localhost:8080/cb"));
        assert!(!redirect_uri_matches(&localhost, "http://localhost.evil.example/cb"));
    }

    #[test]
    fn acceptable_redirect_uris() {
        for uri in
            ["https://client.example.org/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb", "com.example.app:/cb"]
        {
            assert!(
                register(ClientMetadata { redirect_uris: Some(vec![uri.into()]), ..Default::default() }).is_ok(),
                "{uri}"
            );
        }
    }
}

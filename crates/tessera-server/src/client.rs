//! Registered clients: the domain type and the validation of RFC 7591 metadata into it.

use std::str::FromStr;

use tessera_proto::admin::{ClientInfo, ClientMetadata};

use crate::config::IssuerUrl;
use crate::scope::Scope;

/// Grant types this server implements today.
pub const SUPPORTED_GRANT_TYPES: [&str; 1] = ["client_credentials"];

/// How a client authenticates at the token, introspection and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// RFC 6749 §2.3.1, HTTP Basic.
    ClientSecretBasic,
    /// RFC 6749 §2.3.1, form body.
    ClientSecretPost,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
        }
    }
}

impl FromStr for AuthMethod {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<AuthMethod> {
        match s {
            "client_secret_basic" => Ok(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Ok(AuthMethod::ClientSecretPost),
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
}

impl TokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Jwt => "jwt",
            TokenFormat::Opaque => "opaque",
        }
    }
}

impl FromStr for TokenFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<TokenFormat> {
        match s {
            "jwt" => Ok(TokenFormat::Jwt),
            "opaque" => Ok(TokenFormat::Opaque),
            other => anyhow::bail!("unsupported access_token_format {other:?}"),
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
    pub created_at: u64,
}

/// Metadata that failed validation; the message names the field (RFC 7591 §3.2.2).
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidMetadata(pub String);

/// The longest access-token lifetime a client may ask for: one day.
pub const MAX_ACCESS_TOKEN_TTL: u64 = 86_400;

impl Client {
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
        let grant_types = metadata.grant_types.unwrap_or_else(|| vec!["client_credentials".to_owned()]);
        if grant_types.is_empty() {
            return invalid("grant_types: must not be empty".into());
        }
        if let Some(unsupported) = grant_types.iter().find(|g| !SUPPORTED_GRANT_TYPES.contains(&g.as_str())) {
            return invalid(format!("grant_types: {unsupported:?} is not supported"));
        }
        let scope = Scope::parse(metadata.scope.as_deref().unwrap_or(""))
            .map_err(|_| InvalidMetadata("scope: not a space-separated list of scope tokens".into()))?;
        let auth_method =
            metadata.token_endpoint_auth_method.as_deref().unwrap_or("client_secret_basic").parse().map_err(|_| {
                InvalidMetadata("token_endpoint_auth_method: use client_secret_basic or client_secret_post".into())
            })?;
        let redirect_uris = metadata.redirect_uris.unwrap_or_default();
        for uri in &redirect_uris {
            check_redirect_uri(uri)?;
        }
        let token_format = metadata
            .access_token_format
            .as_deref()
            .unwrap_or("jwt")
            .parse()
            .map_err(|_| InvalidMetadata("access_token_format: use jwt or opaque".into()))?;
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
            introspection: metadata.introspection.unwrap_or(false),
            created_at: now,
        })
    }

    /// The admin API view; the secret is added by the caller when it is new.
    pub fn info(&self, client_secret: Option<String>) -> ClientInfo {
        ClientInfo {
            client_id: self.client_id.clone(),
            client_secret_expires_at: client_secret.as_ref().map(|_| 0),
            client_secret,
            client_id_issued_at: self.created_at,
            client_name: self.client_name.clone(),
            grant_types: self.grant_types.clone(),
            scope: self.scope.to_string(),
            token_endpoint_auth_method: self.auth_method.as_str().to_owned(),
            redirect_uris: self.redirect_uris.clone(),
            access_token_format: self.token_format.as_str().to_owned(),
            access_token_ttl: self.access_token_ttl,
            audience: self.audience.clone(),
            introspection: self.introspection,
        }
    }
}

/// RFC 8707 §2: a resource indicator is an absolute URI without a fragment.
pub fn is_resource_uri(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|url| url.fragment().is_none() && !url.cannot_be_a_base())
}

/// RFC 9700 §2.1, §4.1.3: absolute, no fragment, https (or http on loopback for native apps),
/// or a private-use scheme; never a script-bearing scheme.
fn check_redirect_uri(uri: &str) -> Result<(), InvalidMetadata> {
    let bad = || InvalidMetadata(format!("redirect_uris: {uri:?} is not an acceptable redirect URI"));
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

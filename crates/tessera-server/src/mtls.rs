//! Mutual-TLS client authentication (RFC 8705 §2): what a presented client certificate proves
//! about a client. The TLS layer (or a trusted proxy) has already checked that the client holds
//! the certificate's key; here the certificate is judged against the client's registration:
//!
//! - `tls_client_auth`: the chain verifies up to a CA of `tls_client_ca` (rustls' WebPKI
//!   verifier, with the client-auth key usage), and the leaf carries the registered subject DN
//!   or subject alternative name;
//! - `self_signed_tls_client_auth`: the leaf is, byte for byte, the first `x5c` certificate of
//!   a key in the client's JWK Set, and is within its validity period.

use std::sync::Arc;

use base64::Engine as _;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, UnixTime as PkiTime};
use tessera_proto::UnixTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::client::CertificateIdentity;
use crate::dn::parse_dn;
use crate::tls::ClientCertificate;

/// Verifies client certificate chains against the CAs of `tls_client_ca`.
#[derive(Clone)]
pub struct ChainVerifier(Arc<dyn ClientCertVerifier>);

impl std::fmt::Debug for ChainVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainVerifier")
    }
}

impl ChainVerifier {
    /// Reads the CA certificates (PEM) of `tls_client_ca`.
    pub fn load(ca_file: &std::path::Path) -> anyhow::Result<ChainVerifier> {
        use anyhow::Context as _;
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_file).with_context(|| format!("reading {}", ca_file.display()))? {
            let cert = cert.with_context(|| format!("parsing {}", ca_file.display()))?;
            roots.add(cert).with_context(|| format!("{} holds an unusable CA certificate", ca_file.display()))?;
        }
        if roots.is_empty() {
            anyhow::bail!("{} holds no CA certificate", ca_file.display());
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .context("building the client certificate verifier")?;
        Ok(ChainVerifier(verifier))
    }

    /// Whether the chain verifies at `now` (validity, signatures, CA constraints, client-auth usage).
    pub fn verifies(&self, certificate: &ClientCertificate, now: UnixTime) -> bool {
        let Some((leaf, intermediates)) = certificate.0.split_first() else { return false };
        let now = PkiTime::since_unix_epoch(std::time::Duration::from_secs(now.secs()));
        self.0.verify_client_cert(leaf, intermediates, now).is_ok()
    }
}

/// The subject of a certificate as `(attribute, value)` pairs, in certificate order.
fn subject(cert: &X509Certificate<'_>) -> Option<Vec<(String, String)>> {
    let registry = x509_parser::objects::oid_registry();
    let mut out = Vec::new();
    for rdn in cert.subject().iter() {
        for attribute in rdn.iter() {
            let name = x509_parser::objects::oid2abbrev(attribute.attr_type(), registry).ok()?.to_ascii_uppercase();
            out.push((name, attribute.as_str().ok()?.to_owned()));
        }
    }
    Some(out)
}

/// Whether the leaf certificate carries `identity` (RFC 8705 §2.1.2). A subject DN matches in
/// RFC 4514 order (most specific first) or in certificate order.
pub(crate) fn carries(leaf: &[u8], identity: &CertificateIdentity) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(leaf) else { return false };
    let names = || -> Vec<GeneralName<'_>> {
        cert.subject_alternative_name().ok().flatten().map(|san| san.value.general_names.clone()).unwrap_or_default()
    };
    match identity {
        CertificateIdentity::SubjectDn(dn) => {
            let (Some(expected), Some(mut actual)) = (parse_dn(dn), subject(&cert)) else { return false };
            if actual == expected {
                return true;
            }
            actual.reverse();
            actual == expected
        }
        CertificateIdentity::SanDns(dns) => {
            names().iter().any(|n| matches!(n, GeneralName::DNSName(d) if d.eq_ignore_ascii_case(dns)))
        }
        CertificateIdentity::SanUri(uri) => names().iter().any(|n| matches!(n, GeneralName::URI(u) if u == uri)),
        CertificateIdentity::SanEmail(email) => {
            names().iter().any(|n| matches!(n, GeneralName::RFC822Name(e) if e.eq_ignore_ascii_case(email)))
        }
        CertificateIdentity::SanIp(ip) => {
            let Ok(expected) = ip.parse::<std::net::IpAddr>() else { return false };
            names().iter().any(|n| match n {
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).is_ok_and(|b| std::net::IpAddr::from(b) == expected),
                    16 => <[u8; 16]>::try_from(*bytes).is_ok_and(|b| std::net::IpAddr::from(b) == expected),
                    _ => false,
                },
                _ => false,
            })
        }
    }
}

/// `self_signed_tls_client_auth`: the leaf is the first `x5c` certificate of a key in `jwks`
/// and is valid at `now`.
pub(crate) fn listed_in(leaf: &[u8], jwks: &serde_json::Value, now: UnixTime) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(leaf) else { return false };
    let now = i64::try_from(now.secs()).unwrap_or(i64::MAX);
    let validity = cert.validity();
    if now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
        return false;
    }
    let keys = jwks.get("keys").and_then(serde_json::Value::as_array).map(Vec::as_slice).unwrap_or_default();
    keys.iter().any(|key| {
        let first = key.get("x5c").and_then(|x5c| x5c.get(0)).and_then(serde_json::Value::as_str);
        first
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .is_some_and(|der| crate::secret::hashes_equal(&der, leaf))
    })
}

/// RFC 9440 `Client-Cert` (and `Client-Cert-Chain`) from a TLS-terminating proxy: structured
/// field byte sequences, `:base64-of-DER:`. `None` when malformed.
pub(crate) fn from_proxy_headers(cert: &str, chain: Option<&str>) -> Option<ClientCertificate> {
    fn byte_sequence(item: &str) -> Option<CertificateDer<'static>> {
        let inner = item.trim().strip_prefix(':')?.strip_suffix(':')?;
        let der = base64::engine::general_purpose::STANDARD.decode(inner).ok()?;
        X509Certificate::from_der(&der).ok()?;
        Some(CertificateDer::from(der))
    }
    let mut certificates = vec![byte_sequence(cert)?];
    if let Some(chain) = chain {
        for item in chain.split(',') {
            certificates.push(byte_sequence(item)?);
        }
    }
    Some(ClientCertificate(Arc::new(certificates)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguished_names_parse_with_escapes() {
        assert_eq!(
            parse_dn("CN=client-a, O=Example\\, Inc.,c=US"),
            Some(vec![
                ("CN".into(), "client-a".into()),
                ("O".into(), "Example, Inc.".into()),
                ("C".into(), "US".into())
            ])
        );
        for bad in ["", "CN", "=x", "CN=", "CN=a,,O=b", "CN=a\\"] {
            assert_eq!(parse_dn(bad), None, "{bad}");
        }
    }

    #[test]
    fn proxy_headers_must_be_byte_sequences_of_certificates() {
        assert!(from_proxy_headers("not-a-certificate", None).is_none());
        assert!(from_proxy_headers(":AAAA:", None).is_none());
    }
}

//! A test certificate authority made fresh for each test, its server and client certificates,
//! and HTTP clients that trust it.

use base64::Engine as _;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::dpop::b64url;

/// An HTTP client without automatic redirects that trusts the test CA (if any) and presents
/// `identity` as its TLS client certificate (if any).
pub(crate) fn client_for(pki: Option<&TestPki>, identity: Option<&TestCert>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().redirect(Policy::none());
    if let Some(pki) = pki {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap());
    }
    if let Some(cert) = identity {
        let pem = format!("{}{}", cert.cert_pem, cert.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// A test certificate authority, made fresh for each test (nothing expires in the repository).
pub struct TestPki {
    pub ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A certificate and its key.
#[derive(Clone)]
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
    /// The public key as an uncompressed P-256 point.
    public_point: Vec<u8>,
}

impl Default for TestPki {
    fn default() -> TestPki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "Tessera Test CA");
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestPki { ca_pem: cert.pem(), issuer: rcgen::Issuer::new(params, key) }
    }
}

fn finish(cert: rcgen::Certificate, key: &rcgen::KeyPair) -> TestCert {
    TestCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
        public_point: key.public_key_raw().to_vec(),
    }
}

impl TestPki {
    /// The server's certificate: `127.0.0.1` and `localhost`.
    pub fn server_cert(&self) -> TestCert {
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "127.0.0.1");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        finish(cert, &key)
    }

    /// A client certificate issued by this CA, with subject `CN=<cn>, O=Tessera Tests` and the
    /// given DNS names.
    pub fn client_cert(&self, cn: &str, dns_names: &[&str]) -> TestCert {
        let mut params =
            rcgen::CertificateParams::new(dns_names.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Tessera Tests");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        finish(cert, &key)
    }
}

impl TestCert {
    /// A self-signed client certificate with subject `CN=<cn>`.
    pub fn self_signed(cn: &str) -> TestCert {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        finish(cert, &key)
    }

    /// The certificate as a public JWK with `x5c` (RFC 8705 §2.2 self-signed registration).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig",
            "x": b64url(&self.public_point[1..33]), "y": b64url(&self.public_point[33..65]),
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.der)],
        })
    }

    /// RFC 8705 §3.1 `x5t#S256`, computed here independently of the server.
    pub fn thumbprint(&self) -> String {
        b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der).as_ref())
    }

    /// The certificate as an RFC 9440 `Client-Cert` header value.
    pub fn client_cert_header(&self) -> String {
        format!(":{}:", base64::engine::general_purpose::STANDARD.encode(&self.der))
    }
}

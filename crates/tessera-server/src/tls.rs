//! HTTPS on the public listener (RFC 9325, BCP 195): TLS 1.3 preferred, TLS 1.2 only with the
//! AEAD ECDHE suites rustls offers, never TLS 1.0/1.1; the certificate and key reloaded from
//! their files without a restart; and optional client certificates for RFC 8705.
//!
//! The TLS layer asks every client for a certificate and accepts any certificate whose
//! handshake signature verifies (the client holds its key). Whether a certificate means
//! anything is decided per client by the protocol code (`flows::mtls`): chained to the
//! configured CAs for `tls_client_auth`, listed in the client's JWKS for
//! `self_signed_tls_client_auth`. The chain reaches handlers as the [`ClientCertificate`]
//! request extension, set by the accept loop here or, behind a TLS-terminating proxy, from the
//! proxy's RFC 9440 `Client-Cert` header (see `http::client_certificate`).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

/// The certificate chain a client presented, leaf first.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<Vec<CertificateDer<'static>>>);

impl ClientCertificate {
    /// The client's own certificate, DER.
    pub fn leaf(&self) -> &[u8] {
        self.0.first().map(|c| c.as_ref()).unwrap_or_default()
    }
}

/// The server certificate and key files, read again on [`ServerCertificate::reload`].
#[derive(Debug)]
pub(crate) struct ServerCertificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn load_certified_key(cert_file: &Path, key_file: &Path) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("reading {}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", cert_file.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no certificate", cert_file.display());
    }
    let key = PrivateKeyDer::from_pem_file(key_file).with_context(|| format!("reading {}", key_file.display()))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("{} is not a usable private key", key_file.display()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().with_context(|| format!("{} does not match {}", key_file.display(), cert_file.display()))?;
    Ok(certified)
}

impl ServerCertificate {
    /// Loads the certificate chain (PEM, leaf first) and its private key (PEM).
    pub(crate) fn load(cert_file: &Path, key_file: &Path) -> anyhow::Result<ServerCertificate> {
        let current = load_certified_key(cert_file, key_file)?;
        Ok(ServerCertificate {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again; new connections use the new certificate. On error the current
    /// certificate stays.
    pub(crate) fn reload(&self) -> anyhow::Result<()> {
        let fresh = Arc::new(load_certified_key(&self.cert_file, &self.key_file)?);
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }
}

/// Asks for a client certificate, does not require one, and accepts any whose handshake
/// signature verifies; what the certificate is worth is decided per client later.
#[derive(Debug)]
struct OptionalClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for OptionalClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The rustls configuration of the public listener.
pub(crate) fn server_config(certificate: Arc<ServerCertificate>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = provider();
    let verifier = Arc::new(OptionalClientCertificate { algorithms: provider.signature_verification_algorithms });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reloads the certificate when its files change (checked every 5 s) and on SIGHUP. Ends when
/// `stop` resolves.
pub(crate) fn reload_on_change(certificate: Arc<ServerCertificate>, stop: impl Future<Output = ()> + Send + 'static) {
    let files = vec![certificate.cert_file.clone(), certificate.key_file.clone()];
    tessera_listener::reload_on_change(files, Duration::from_secs(5), stop, move || {
        let result = certificate.reload();
        async move {
            match result {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(err) => {
                    tracing::error!(err = format!("{err:#}"), "TLS certificate reload failed; keeping the current one")
                }
            }
            true
        }
    });
}

/// TLS for a `tessera_listener` listener: each request carries the client's certificate chain
/// as a [`ClientCertificate`] when the client presented one.
pub(crate) fn listener_tls(config: Arc<rustls::ServerConfig>) -> tessera_listener::Tls {
    tessera_listener::Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(config),
        on_tls: Arc::new(|session: &rustls::ServerConnection, extensions: &mut axum::http::Extensions| {
            let certificate = session
                .peer_certificates()
                .filter(|chain| !chain.is_empty())
                .map(|chain| ClientCertificate(Arc::new(chain.iter().map(|c| c.clone().into_owned()).collect())));
            if let Some(certificate) = certificate {
                extensions.insert(certificate);
            }
        }),
    }
}

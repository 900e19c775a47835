//! Signing keys: generation (ES256, EdDSA, RS256, PS256), sealing of private keys at rest,
//! the published JWK Set, and JWS signing in the hot path with parsed key pairs kept in memory.
//!
//! Key material in memory: the master key's bytes and every unsealed private key are
//! zeroized as soon as aws-lc has parsed them; the parsed key pairs live inside aws-lc, which
//! clears its allocations when they are freed (`OPENSSL_free` cleanses).

use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::{Context, anyhow, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{self, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tessera_proto::admin::KeyInfo;
use tessera_proto::jwks::JwkSet;
use tessera_verify::{KeySet, Verifier};
use zeroize::{Zeroize as _, Zeroizing};

use crate::audit::{Event, Record};
use crate::store::{KeyRow, Store};

/// A JWS algorithm we can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    Es256,
    EdDsa,
    Rs256,
    Ps256,
}

impl SigningAlg {
    pub fn parse(s: &str) -> Option<SigningAlg> {
        match s {
            "ES256" => Some(SigningAlg::Es256),
            "EdDSA" => Some(SigningAlg::EdDsa),
            "RS256" => Some(SigningAlg::Rs256),
            "PS256" => Some(SigningAlg::Ps256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Ps256 => "PS256",
        }
    }
}

enum KeyPairKind {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
}

/// A parsed private key with its precomputed JWS header.
pub struct SigningKey {
    kid: String,
    pair: KeyPairKind,
    header_b64: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    fn from_pkcs8(alg: SigningAlg, pkcs8: &[u8]) -> anyhow::Result<(KeyPairKind, Value)> {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        Ok(match alg {
            SigningAlg::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|e| anyhow!("EC key rejected: {e}"))?;
                let point = pair.public_key().as_ref();
                let jwk = json!({"kty":"EC","crv":"P-256","x":b64(&point[1..33]),"y":b64(&point[33..65])});
                (KeyPairKind::Ec(pair), jwk)
            }
            SigningAlg::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| anyhow!("Ed25519 key rejected: {e}"))?;
                let jwk = json!({"kty":"OKP","crv":"Ed25519","x":b64(pair.public_key().as_ref())});
                (KeyPairKind::Ed(pair), jwk)
            }
            SigningAlg::Rs256 | SigningAlg::Ps256 => {
                let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| anyhow!("RSA key rejected: {e}"))?;
                let public = pair.public_key();
                let jwk = json!({"kty":"RSA",
                    "n":b64(public.modulus().big_endian_without_leading_zero()),
                    "e":b64(public.exponent().big_endian_without_leading_zero())});
                let padding: &'static dyn signature::RsaEncoding =
                    if alg == SigningAlg::Rs256 { &signature::RSA_PKCS1_SHA256 } else { &signature::RSA_PSS_SHA256 };
                (KeyPairKind::Rsa(pair, padding), jwk)
            }
        })
    }

    /// Signs `payload` (JSON) as a compact JWS under this key's header.
    pub fn sign_jws(&self, payload_json: &[u8]) -> anyhow::Result<String> {
        self.sign_with_header(&self.header_b64, payload_json)
    }

    /// Signs `payload` (JSON) with this key under the same header but with `typ` = `typ`
    /// (RFC 8725 §3.11: each kind of JWT its own type).
    pub fn sign_jws_typed(&self, typ: &str, payload_json: &[u8]) -> anyhow::Result<String> {
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&self.header_b64)?)?;
        let mut header = header;
        header["typ"] = Value::String(typ.to_owned());
        self.sign_with_header(&URL_SAFE_NO_PAD.encode(header.to_string()), payload_json)
    }

    fn sign_with_header(&self, header_b64: &str, payload_json: &[u8]) -> anyhow::Result<String> {
        let mut out = String::with_capacity(header_b64.len() + payload_json.len() * 4 / 3 + 100);
        out.push_str(header_b64);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(payload_json, &mut out);
        let signature = match &self.pair {
            KeyPairKind::Ec(pair) => pair
                .sign(&SystemRandom::new(), out.as_bytes())
                .map_err(|_| anyhow!("signing failed"))?
                .as_ref()
                .to_vec(),
            KeyPairKind::Ed(pair) => pair.sign(out.as_bytes()).as_ref().to_vec(),
            KeyPairKind::Rsa(pair, padding) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(*padding, &SystemRandom::new(), out.as_bytes(), &mut sig)
                    .map_err(|_| anyhow!("signing failed"))?;
                sig
            }
        };
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut out);
        Ok(out)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order.
pub(crate) fn thumbprint(jwk: &Value) -> anyhow::Result<String> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str).ok_or_else(|| anyhow!("JWK lacks {name}"));
    let canonical = match member("kty")? {
        "EC" => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, member("crv")?, member("x")?, member("y")?),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, member("crv")?, member("x")?),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, member("e")?, member("n")?),
        other => bail!("unsupported kty {other}"),
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// Seals private keys with AES-256-GCM under a master key kept in the data directory.
pub struct Sealer {
    key: LessSafeKey,
    /// HKDF pseudo-random key from the master key, for deriving purpose-bound HMAC keys.
    prk: aws_lc_rs::hkdf::Prk,
}

impl Sealer {
    /// Reads the master key file, creating it (mode 0600) on first start. A file that others
    /// may read or write is refused: whoever reads it can open every private key.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Sealer> {
        let mut bytes = match std::fs::read(path) {
            Ok(bytes) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    let mode = std::fs::metadata(path)
                        .with_context(|| format!("reading {}", path.display()))?
                        .permissions()
                        .mode();
                    if mode & 0o077 != 0 {
                        anyhow::bail!(
                            "{} has mode {:o}: the master key must be readable by its owner only (chmod 600 {})",
                            path.display(),
                            mode & 0o777,
                            path.display()
                        );
                    }
                }
                bytes
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = vec![0u8; 32];
                rand::fill(&mut bytes).map_err(|_| anyhow!("random number generator failed"))?;
                write_private_file(path, &bytes)?;
                bytes
            }
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        let unbound =
            UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| anyhow!("{} is not a 32-byte key", path.display()))?;
        let prk = aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, b"tessera master key").extract(&bytes);
        // aws-lc keeps its own copies (and clears them); ours goes now.
        bytes.zeroize();
        Ok(Sealer { key: LessSafeKey::new(unbound), prk })
    }

    /// An HMAC-SHA256 key for one purpose, derived from the master key with HKDF (RFC 5869), so
    /// every node sharing the master key derives the same one.
    pub fn derive_hmac_key(&self, purpose: &str) -> anyhow::Result<aws_lc_rs::hmac::Key> {
        let info = [purpose.as_bytes()];
        let okm = self.prk.expand(&info, aws_lc_rs::hmac::HMAC_SHA256).map_err(|_| anyhow!("HKDF failed"))?;
        Ok(aws_lc_rs::hmac::Key::from(okm))
    }

    /// An AES-256-GCM key for one purpose, derived from the master key with HKDF like
    /// [`Sealer::derive_hmac_key`], so every node sharing the master key opens what another sealed.
    pub fn derive_aead_key(&self, purpose: &str) -> anyhow::Result<LessSafeKey> {
        let info = [purpose.as_bytes()];
        let okm = self.prk.expand(&info, &AES_256_GCM).map_err(|_| anyhow!("HKDF failed"))?;
        Ok(LessSafeKey::new(UnboundKey::from(okm)))
    }

    fn seal(&self, kid: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| anyhow!("random number generator failed"))?;
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_bytes()), &mut sealed)
            .map_err(|_| anyhow!("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(out)
    }

    /// The private key sealed under `kid`; the plaintext is zeroized when the caller drops it.
    fn open(&self, kid: &str, sealed: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN {
            bail!("sealed key {kid} is truncated");
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| anyhow!("key {kid} does not open with this master key"))?
            .len();
        // The tag follows the plaintext; truncating keeps the bytes in the zeroized buffer.
        buf.truncate(len);
        Ok(buf)
    }
}

/// Writes a file readable only by its owner.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Everything derived from the stored keys at one moment; swapped whole on change.
pub struct KeySnapshot {
    pub signing: SigningKey,
    /// ID-token signers (`typ: JWT`), one per algorithm of [`crate::client::ID_TOKEN_ALGS`].
    pub id_token_signers: Vec<(SigningAlg, SigningKey)>,
    /// Every published key, for checking our own ID tokens (`id_token_hint`).
    pub published: KeySet,
    pub jwks: JwkSet,
    pub jwks_json: String,
    /// Verifies our own tokens (every check except the audience, which depends on the caller).
    pub verifier: Verifier,
    pub infos: Vec<KeyInfo>,
}

impl KeySnapshot {
    /// The key that signs ID tokens with `alg`.
    pub fn id_token_signer(&self, alg: &str) -> Option<&SigningKey> {
        self.id_token_signers.iter().find(|(a, _)| a.as_str() == alg).map(|(_, key)| key)
    }
}

/// The key ring shared by all requests.
pub struct KeyRing {
    issuer: String,
    sealer: Arc<Sealer>,
    current: RwLock<Arc<KeySnapshot>>,
}

impl KeyRing {
    /// Loads the keys, generating an ES256 signing key on first start.
    pub async fn load(store: &Store, sealer: Sealer, issuer: &str, now: u64) -> anyhow::Result<KeyRing> {
        if store.keys().await?.is_empty() {
            let row = generate(&sealer, SigningAlg::Es256, "active", now)?;
            store.insert_key(&row, key_record(&row, now)).await?;
            tracing::info!(kid = %row.kid, alg = %row.alg, "generated the first signing key");
        }
        // OpenID Connect's default ID-token algorithm is RS256 (Core §3.1.3.7): keep one published.
        if !store.keys().await?.iter().any(|k| k.alg == "RS256") {
            let row = generate(&sealer, SigningAlg::Rs256, "published", now)?;
            store.insert_key(&row, key_record(&row, now)).await?;
            tracing::info!(kid = %row.kid, "generated an RS256 key for ID tokens");
        }
        let snapshot = snapshot(&sealer, store.keys().await?, issuer)?;
        Ok(KeyRing { issuer: issuer.to_owned(), sealer: Arc::new(sealer), current: RwLock::new(Arc::new(snapshot)) })
    }

    /// The current keys.
    pub fn current(&self) -> Arc<KeySnapshot> {
        // A poisoned lock only means a panic elsewhere mid-swap; the Arc inside is still whole.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Rebuilds the snapshot from the store after a change.
    pub async fn reload(&self, store: &Store) -> anyhow::Result<()> {
        let snapshot = snapshot(&self.sealer, store.keys().await?, &self.issuer)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        Ok(())
    }

    /// Generates a new key, published (verify-only) until activated.
    pub async fn create(&self, store: &Store, alg: SigningAlg, now: u64) -> anyhow::Result<KeyInfo> {
        // RSA generation takes tens of milliseconds: keep it off the async workers.
        let sealer = self.sealer.clone();
        let row = tokio::task::spawn_blocking(move || generate(&sealer, alg, "published", now)).await??;
        store.insert_key(&row, key_record(&row, now)).await?;
        self.reload(store).await?;
        tracing::info!(kid = %row.kid, alg = %row.alg, "generated a signing key");
        Ok(KeyInfo { kid: row.kid, alg: row.alg, status: row.status, created_at: row.created_at })
    }
}

/// The audit record of a new key: by the admin API's caller, or by the server at start-up.
fn key_record(row: &KeyRow, now: u64) -> Record {
    Record::by_context(Event::KeyCreated, now, "server")
        .subject(format!("key:{}", row.kid))
        .detail("alg", &row.alg)
        .detail("status", &row.status)
}

fn generate(sealer: &Sealer, alg: SigningAlg, status: &str, now: u64) -> anyhow::Result<KeyRow> {
    // The private key leaves this function only sealed; its plaintext is zeroized here.
    let pkcs8: Zeroizing<Vec<u8>> = match alg {
        SigningAlg::Es256 => EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map(|d| d.as_ref().to_vec()),
        SigningAlg::EdDsa => Ed25519KeyPair::generate().and_then(|k| k.to_pkcs8()).map(|d| d.as_ref().to_vec()),
        SigningAlg::Rs256 | SigningAlg::Ps256 => {
            RsaKeyPair::generate(KeySize::Rsa2048).and_then(|k| k.as_der()).map(|d| d.as_ref().to_vec())
        }
    }
    .map(Zeroizing::new)
    .map_err(|_| anyhow!("key generation failed"))?;
    let (_, public) = SigningKey::from_pkcs8(alg, &pkcs8)?;
    let kid = thumbprint(&public)?;
    let mut jwk = public;
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!(alg.as_str());
    jwk["use"] = json!("sig");
    Ok(KeyRow {
        sealed_private_key: sealer.seal(&kid, &pkcs8)?,
        public_jwk: jwk.to_string(),
        kid,
        alg: alg.as_str().to_owned(),
        status: status.to_owned(),
        created_at: now,
    })
}

fn snapshot(sealer: &Sealer, rows: Vec<KeyRow>, issuer: &str) -> anyhow::Result<KeySnapshot> {
    let active = rows.iter().find(|r| r.status == "active").ok_or_else(|| anyhow!("no active signing key"))?;
    let alg = SigningAlg::parse(&active.alg).ok_or_else(|| anyhow!("unknown alg {}", active.alg))?;
    let pkcs8 = sealer.open(&active.kid, &active.sealed_private_key)?;
    let (pair, _) = SigningKey::from_pkcs8(alg, &pkcs8)?;
    let header = json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": active.kid});
    let signing = SigningKey { kid: active.kid.clone(), pair, header_b64: URL_SAFE_NO_PAD.encode(header.to_string()) };
    // For each ID-token algorithm: the active key if it has that algorithm, else the newest one.
    let mut id_token_signers = Vec::new();
    for alg in [SigningAlg::Rs256, SigningAlg::Es256] {
        let Some(row) = rows
            .iter()
            .filter(|r| r.alg == alg.as_str())
            .max_by_key(|r| (r.status == "active", r.created_at, r.kid.clone()))
        else {
            continue;
        };
        let pkcs8 = sealer.open(&row.kid, &row.sealed_private_key)?;
        let (pair, _) = SigningKey::from_pkcs8(alg, &pkcs8)?;
        let header = json!({"alg": alg.as_str(), "typ": "JWT", "kid": row.kid});
        let key = SigningKey { kid: row.kid.clone(), pair, header_b64: URL_SAFE_NO_PAD.encode(header.to_string()) };
        id_token_signers.push((alg, key));
    }
    let keys = rows
        .iter()
        .map(|r| serde_json::from_str(&r.public_jwk).context("corrupt public JWK"))
        .collect::<anyhow::Result<Vec<Value>>>()?;
    let jwks = JwkSet { keys };
    let verify_keys = KeySet::from_jwks(&jwks).map_err(|e| anyhow!("published keys are unusable: {e}"))?;
    let infos = rows
        .iter()
        .map(|r| KeyInfo { kid: r.kid.clone(), alg: r.alg.clone(), status: r.status.clone(), created_at: r.created_at })
        .collect();
    let verifier = Verifier::for_issuer_itself(issuer, verify_keys.clone()).with_leeway(0);
    Ok(KeySnapshot {
        signing,
        id_token_signers,
        published: verify_keys,
        jwks_json: serde_json::to_string(&jwks)?,
        jwks,
        verifier,
        infos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Regression: #23. Whoever reads the master key opens every private key.
    #[cfg(unix)]
    #[test]
    fn a_master_key_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        assert!(Sealer::load_or_create(&path).is_ok(), "created 0600");
        assert!(Sealer::load_or_create(&path).is_ok(), "read back");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Sealer::load_or_create(&path).err().unwrap().to_string();
        assert!(err.contains("mode 644") && err.contains("chmod 600"), "{err}");
    }

    // RFC 7638 §3.1.
    #[test]
    fn rfc7638_rsa_thumbprint() {
        let jwk = json!({"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(thumbprint(&jwk).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    // RFC 8037 Appendix A.3.
    #[test]
    fn rfc8037_okp_thumbprint() {
        let jwk = json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert_eq!(thumbprint(&jwk).unwrap(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    // RFC 9449 §6.1 (d.6): the DPoP example key's jkt.
    #[test]
    fn rfc9449_ec_thumbprint() {
        let jwk = json!({"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"});
        assert_eq!(thumbprint(&jwk).unwrap(), "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    }

    #[test]
    fn every_algorithm_signs_what_the_verifier_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::load_or_create(&dir.path().join("master.key")).unwrap();
        for alg in [SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Rs256, SigningAlg::Ps256] {
            let row = generate(&sealer, alg, "active", 1).unwrap();
            let snapshot = snapshot(&sealer, vec![row], "https://as").unwrap();
            let claims =
                json!({"iss":"https://as","sub":"c","aud":"https://api","client_id":"c","iat":100,"exp":200,"jti":"j"});
            let token = snapshot.signing.sign_jws(claims.to_string().as_bytes()).unwrap();
            let verifier = tessera_verify::Verifier::new("https://as", "https://api", &snapshot.jwks).unwrap();
            assert!(verifier.verify(&token, tessera_proto::UnixTime(150)).is_ok(), "{alg:?}");
        }
    }

    #[test]
    fn sealed_keys_do_not_open_under_another_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = Sealer::load_or_create(&dir.path().join("a.key")).unwrap();
        let b = Sealer::load_or_create(&dir.path().join("b.key")).unwrap();
        let sealed = a.seal("kid", b"private").unwrap();
        assert_eq!(a.open("kid", &sealed).unwrap().as_slice(), b"private");
        assert!(b.open("kid", &sealed).is_err());
        assert!(a.open("other-kid", &sealed).is_err());
    }
}

//! JWTs that may be presented once (DPoP proofs, client assertions): one insert decides.

use super::{Store, to_i64};

/// JWTs that may be presented once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingleUse {
    /// A DPoP proof (RFC 9449 §11.1), by key thumbprint and `jti`.
    DpopProof,
    /// A `private_key_jwt` client assertion (RFC 7523 §3), by client and `jti`.
    ClientAssertion,
}

impl Store {
    /// Records a single-use JWT (by SHA-256 of its issuer and `jti`) as used until
    /// `expires_at`. `false` when it was recorded before, by whatever node: a replay.
    pub async fn spend(&self, kind: SingleUse, id_hash: &[u8; 32], expires_at: u64) -> anyhow::Result<bool> {
        let sql = match kind {
            SingleUse::DpopProof => {
                "INSERT INTO dpop_proofs (proof_hash, expires_at) VALUES ($1, $2) ON CONFLICT (proof_hash) DO NOTHING"
            }
            SingleUse::ClientAssertion => {
                "INSERT INTO client_assertions (assertion_hash, expires_at) VALUES ($1, $2) ON CONFLICT (assertion_hash) DO NOTHING"
            }
        };
        on_pool!(self, write, |pool| {
            let res = sqlx::query(sql).bind(&id_hash[..]).bind(to_i64(expires_at)).execute(pool).await?;
            Ok(res.rows_affected() == 1)
        })
    }
}

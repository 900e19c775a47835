//! Clients: registration, lookup through the invalidating cache, secret rotation and deletion
//! (which revokes their tokens through the feed and their API keys).

use std::sync::Arc;

use anyhow::Context as _;

use super::audit::AppendAudit as _;
use super::rows::StoredClient;
use super::rows::decode;
use super::{Change, RecordChange as _, Store, api_keys, feed, json_list, to_i64};
use crate::audit::Record;
use crate::client::Client;

impl Store {
    pub async fn insert_client(&self, client: &Client, secret_hash: &[u8; 32], audit: Record) -> anyhow::Result<()> {
        const SQL: &str = "INSERT INTO clients (client_id, secret_hash, client_name, grant_types, scope,
                token_endpoint_auth_method, redirect_uris, access_token_format, access_token_ttl, audience,
                introspection, created_at, post_logout_redirect_uris, require_pushed_authorization_requests,
                first_party, refresh_token_rotation, id_token_signed_response_alg, tokens_not_before,
                dpop_bound_access_tokens, dpop_nonce_required, jwks, jwks_uri, certificate_identity,
                tls_client_certificate_bound_access_tokens, profile)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                $21, $22, $23, $24, $25)";
        let certificate_identity = client
            .certificate_identity
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .context("certificate identity")?;
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(SQL)
                .bind(&client.client_id)
                .bind(&secret_hash[..])
                .bind(&client.client_name)
                .bind(json_list(&client.grant_types))
                .bind(client.scope.to_string())
                .bind(client.auth_method.as_str())
                .bind(json_list(&client.redirect_uris))
                .bind(client.token_format.as_str())
                .bind(to_i64(client.access_token_ttl))
                .bind(json_list(&client.audience))
                .bind(client.introspection)
                .bind(to_i64(client.created_at))
                .bind(json_list(&client.post_logout_redirect_uris))
                .bind(client.require_par)
                .bind(client.first_party)
                .bind(client.refresh_rotation)
                .bind(&client.id_token_alg)
                .bind(to_i64(client.tokens_not_before))
                .bind(client.dpop_bound)
                .bind(client.dpop_nonce_required)
                .bind(client.jwks.as_ref().map(|j| j.to_string()))
                .bind(&client.jwks_uri)
                .bind(&certificate_identity)
                .bind(client.certificate_bound)
                .bind(client.profile.as_str())
                .execute(&mut *tx)
                .await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The client and its secret hash, from a cache that every client change on this node
    /// invalidates.
    pub async fn client(&self, client_id: &str) -> anyhow::Result<Option<Arc<StoredClient>>> {
        if let Some(found) = self.clients.get(client_id) {
            return Ok(Some(found));
        }
        let ticket = self.clients.ticket();
        let stored = on_pool!(self, read, |pool| {
            let row =
                sqlx::query("SELECT * FROM clients WHERE client_id = $1").bind(client_id).fetch_optional(pool).await?;
            row.as_ref().map(decode::<_, StoredClient>).transpose()?
        });
        let Some(stored) = stored else { return Ok(None) };
        let stored = Arc::new(stored);
        self.clients.insert(ticket, client_id.to_owned(), stored.clone());
        Ok(Some(stored))
    }

    pub async fn clients(&self) -> anyhow::Result<Vec<Client>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, client_id").fetch_all(pool).await?;
            rows.iter().map(|r| decode::<_, StoredClient>(r).map(|s| s.client)).collect()
        })
    }

    /// Deletes a client; its grants, codes and pending requests go with it, and its tokens are
    /// inactive at once through the client check (and leave through the revocation feed).
    pub async fn delete_client(&self, client_id: &str, now: u64, audit: Record) -> anyhow::Result<bool> {
        let now = to_i64(now);
        let res = on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.record(&Change::Client(client_id.to_owned())).await?;
            tx.record(&Change::Revocation).await?;
            feed::feed_grant_tokens!(tx, feed::EVENTS_OF_CLIENT, now, client_id);
            let aud = feed::audiences_of!(tx, feed::AUDIENCES_OF_CLIENT, client_id);
            let res = sqlx::query("DELETE FROM clients WHERE client_id = $1").bind(client_id).execute(&mut *tx).await?;
            if res.rows_affected() == 1 {
                feed::feed_cutoff!(tx, "client", client_id, now, aud);
                let keys = api_keys::revoke_keys_of!(tx, "client", client_id, now);
                tx.audit(std::slice::from_ref(&audit.clone().detail("api_keys_revoked", keys))).await?;
            }
            tx.commit().await?;
            res.rows_affected()
        });
        self.client_changed(client_id);
        Ok(res == 1)
    }

    pub async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8; 32],
        audit: Record,
    ) -> anyhow::Result<bool> {
        let res = on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let res = sqlx::query("UPDATE clients SET secret_hash = $1 WHERE client_id = $2")
                .bind(&secret_hash[..])
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
            tx.record(&Change::Client(client_id.to_owned())).await?;
            tx.audit_if_one(res.rows_affected(), &audit).await?;
            tx.commit().await?;
            res.rows_affected()
        });
        self.client_changed(client_id);
        Ok(res == 1)
    }
}

//! Clients: registration, lookup through the invalidating cache, secret rotation and deletion
//! (which revokes their tokens through the feed and their API keys).

use std::sync::Arc;

use anyhow::Context as _;

use super::audit::AppendAudit as _;
use super::rows::{StoredClient, column, column_u64, decode};
use super::{Change, RecordChange as _, Store, api_keys, feed, json_list, to_i64};
use crate::audit::Record;
use crate::client::Client;

/// Binds a client's metadata columns ($1…$21 of `insert_client` and `replace_client`), in order.
macro_rules! bind_metadata {
    ($query:expr, $client:expr, $certificate_identity:expr) => {{
        let client: &Client = $client;
        $query
            .bind(&client.client_name)
            .bind(json_list(&client.grant_types))
            .bind(client.scope.to_string())
            .bind(client.auth_method.as_str())
            .bind(json_list(&client.redirect_uris))
            .bind(client.token_format.as_str())
            .bind(to_i64(client.access_token_ttl))
            .bind(json_list(&client.audience))
            .bind(client.introspection)
            .bind(json_list(&client.post_logout_redirect_uris))
            .bind(client.require_par)
            .bind(client.first_party)
            .bind(client.refresh_rotation)
            .bind(&client.id_token_alg)
            .bind(client.dpop_bound)
            .bind(client.dpop_nonce_required)
            .bind(client.jwks.as_ref().map(|j| j.to_string()))
            .bind(&client.jwks_uri)
            .bind($certificate_identity.clone())
            .bind(client.certificate_bound)
            .bind(client.profile.as_str())
    }};
}

fn certificate_identity(client: &Client) -> anyhow::Result<Option<String>> {
    client.certificate_identity.as_ref().map(serde_json::to_string).transpose().context("certificate identity")
}

impl Store {
    /// Stores a new client with its secret's hash and, for a self-registered one, the hash of
    /// its registration access token (RFC 7592).
    pub async fn insert_client(
        &self,
        client: &Client,
        secret_hash: &[u8; 32],
        registration_hash: Option<&[u8; 32]>,
        audit: Record,
    ) -> anyhow::Result<()> {
        const SQL: &str = "INSERT INTO clients (client_name, grant_types, scope,
                token_endpoint_auth_method, redirect_uris, access_token_format, access_token_ttl, audience,
                introspection, post_logout_redirect_uris, require_pushed_authorization_requests,
                first_party, refresh_token_rotation, id_token_signed_response_alg,
                dpop_bound_access_tokens, dpop_nonce_required, jwks, jwks_uri, certificate_identity,
                tls_client_certificate_bound_access_tokens, profile,
                client_id, secret_hash, created_at, tokens_not_before, origin, registration_token_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                $21, $22, $23, $24, $25, $26, $27)";
        let certificate_identity = certificate_identity(client)?;
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            bind_metadata!(sqlx::query(SQL), client, certificate_identity)
                .bind(&client.client_id)
                .bind(&secret_hash[..])
                .bind(to_i64(client.created_at))
                .bind(to_i64(client.tokens_not_before))
                .bind(client.origin.as_str())
                .bind(registration_hash.map(|h| &h[..]))
                .execute(&mut *tx)
                .await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Replaces a client's metadata (RFC 7592 §2.2: the whole registration); its id, secret,
    /// origin and creation time stay. Whether the client exists.
    pub async fn replace_client(&self, client: &Client, audit: Record) -> anyhow::Result<bool> {
        const SQL: &str = "UPDATE clients SET client_name = $1, grant_types = $2, scope = $3,
                token_endpoint_auth_method = $4, redirect_uris = $5, access_token_format = $6,
                access_token_ttl = $7, audience = $8, introspection = $9, post_logout_redirect_uris = $10,
                require_pushed_authorization_requests = $11, first_party = $12, refresh_token_rotation = $13,
                id_token_signed_response_alg = $14, dpop_bound_access_tokens = $15, dpop_nonce_required = $16,
                jwks = $17, jwks_uri = $18, certificate_identity = $19,
                tls_client_certificate_bound_access_tokens = $20, profile = $21
             WHERE client_id = $22";
        let certificate_identity = certificate_identity(client)?;
        let res = on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let res = bind_metadata!(sqlx::query(SQL), client, certificate_identity)
                .bind(&client.client_id)
                .execute(&mut *tx)
                .await?;
            tx.record(&Change::Client(client.client_id.clone())).await?;
            tx.audit_if_one(res.rows_affected(), &audit).await?;
            tx.commit().await?;
            res.rows_affected()
        });
        self.client_changed(&client.client_id);
        Ok(res == 1)
    }

    /// Self-registered clients that have not completed an authorization yet.
    pub async fn unused_registrations(&self) -> anyhow::Result<u64> {
        on_pool!(self, read, |pool| {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM clients WHERE origin <> 'admin' AND used_at IS NULL")
                .fetch_one(pool)
                .await?;
            column_u64(&row, "n")
        })
    }

    /// The ids of self-registered clients created before `before` and never used, at most
    /// `limit` of them (the janitor deletes them one by one, each with its audit record).
    pub async fn stale_registrations(&self, before: u64, limit: u32) -> anyhow::Result<Vec<String>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT client_id FROM clients WHERE origin <> 'admin' AND used_at IS NULL AND created_at < $1
                 ORDER BY created_at LIMIT $2",
            )
            .bind(to_i64(before))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| column(r, "client_id")).collect()
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

//! The PostgreSQL backend: several stateless `tessera serve` nodes on one database.
//!
//! One pool for everything. Every commit is durable when it returns (PostgreSQL's default
//! `synchronous_commit`); single-use steps are conditional updates, atomic on any number of
//! nodes. Requests never wait long for a connection: when the database is unreachable they
//! fail after `acquire_timeout` with a 503, and the pool reconnects by itself when it is back.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{OpaqueTokenRow, json_list, to_i64, to_u64};

/// Connection settings (`database_*` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// Connections per node.
    pub max_connections: u32,
    /// How long a request waits for a connection before it fails with 503.
    pub acquire_timeout: Duration,
    /// Statement timeout set on every connection.
    pub statement_timeout: Duration,
}

impl Default for PostgresSettings {
    fn default() -> PostgresSettings {
        PostgresSettings {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone)]
pub(crate) struct PgDb {
    pub(crate) pool: PgPool,
}

impl PgDb {
    /// Connects and runs the migrations. TLS follows the URL's `sslmode` (`require`,
    /// `verify-ca`, `verify-full` with `sslrootcert`).
    pub(crate) async fn open(url: &str, settings: &PostgresSettings) -> anyhow::Result<PgDb> {
        let options = PgConnectOptions::from_str(url)
            .context("database URL is not a valid postgres:// URL")?
            .application_name("tessera")
            .options([("statement_timeout", format!("{}", settings.statement_timeout.as_millis()))]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await
            .context("connecting to PostgreSQL")?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await.context("running migrations")?;
        Ok(PgDb { pool })
    }

    pub(crate) async fn insert_opaque_token(&self, token: &OpaqueTokenRow) -> anyhow::Result<u64> {
        let row = sqlx::query(
            "INSERT INTO opaque_tokens (secret_hash, jti, client_id, sub, aud, scope, iat, exp, grant_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&token.secret_hash[..])
        .bind(&token.jti)
        .bind(&token.client_id)
        .bind(&token.sub)
        .bind(json_list(&token.aud))
        .bind(&token.scope)
        .bind(to_i64(token.iat))
        .bind(to_i64(token.exp))
        .bind(&token.grant_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(to_u64(row.get("id")))
    }
}

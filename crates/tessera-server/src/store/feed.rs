//! The revocation feed: `revocation_events`, one row per thing a resource server must stop
//! accepting, appended by the revoking transaction itself (so a committed revocation always has
//! its events and vice versa) and numbered in commit order (SQLite has one writer; on
//! PostgreSQL the writer holds the `changes` advisory lock, taken by `RecordChange::record`
//! before any event is inserted).
//!
//! - `jti`: one token (JWT or opaque), until its `exp`;
//! - `user`, `session`, `client`: a cut-off: every token whose `sub`, `sid` or `client_id` is
//!   `value` and whose `iat` is at or before `at`; kept for the longest access-token lifetime.
//!
//! Each event also names the audiences it concerns (`aud`, a JSON list), and a reader gets only
//! the events that share an audience with it (#23, docs/threat-model.md T-14c). The list may be
//! wider than the tokens' own `aud`, never narrower: a token's audience is always among its
//! client's (or its API key's), so a token's event carries its client's audiences, and a
//! cut-off carries those of every client holding a grant of that user or session (and of the
//! user's API keys), computed in the revoking transaction before anything is deleted.

use super::rows::{column, column_u64};
use super::{Store, to_i64};
use crate::client::MAX_ACCESS_TOKEN_TTL;

/// One entry of the feed as stored (the wire form is `tessera_proto::feed::RevocationEvent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRow {
    /// Position in the feed; strictly increasing in commit order.
    pub seq: u64,
    /// `jti`, `user`, `session` or `client`.
    pub kind: String,
    pub value: String,
    /// When the revocation happened; for a cut-off, tokens issued at or before it are revoked.
    pub at: u64,
    /// After this instant the event no longer matters (every token it covers has expired).
    pub exp: u64,
    /// The audiences the event concerns; `None` for events written before they were recorded,
    /// which concern everyone.
    pub aud: Option<Vec<String>>,
}

impl FeedRow {
    /// The event as readers receive it.
    pub fn wire(&self) -> tessera_proto::feed::RevocationEvent {
        tessera_proto::feed::RevocationEvent {
            seq: self.seq,
            kind: tessera_proto::feed::RevocationKind::parse(&self.kind),
            value: self.value.clone(),
            at: self.at,
            exp: self.exp,
        }
    }

    /// Whether a resource server with `audiences` may read this event.
    pub fn concerns(&self, audiences: &[String]) -> bool {
        self.aud.as_ref().is_none_or(|aud| aud.iter().any(|a| audiences.contains(a)))
    }
}

pub(super) const INSERT_EVENT: &str =
    "INSERT INTO revocation_events (kind, value, at, exp, aud) VALUES ($1, $2, $3, $4, $5)";

/// The audiences (JSON lists, one per row) a `user` cut-off concerns: those of the clients
/// holding a grant of that user, and of the user's API keys. `$1` is the user's id.
pub(super) const AUDIENCES_OF_USER: &str = "SELECT c.audience AS audience FROM clients c
     WHERE c.client_id IN (SELECT client_id FROM grants WHERE user_id = $1)
     UNION SELECT audience FROM api_keys WHERE owner_kind = 'user' AND owner_id = $1";
/// The audiences a `session` cut-off concerns: those of the clients holding a grant of it.
pub(super) const AUDIENCES_OF_SESSION: &str = "SELECT c.audience AS audience FROM clients c
     WHERE c.client_id IN (SELECT client_id FROM grants WHERE session_id = $1)";
/// The audiences a `client` cut-off concerns: the client's own.
pub(super) const AUDIENCES_OF_CLIENT: &str = "SELECT audience FROM clients WHERE client_id = $1";

/// How long a cut-off stays in the feed: the longest access-token lifetime.
pub(super) const CUTOFF_TTL: u64 = MAX_ACCESS_TOKEN_TTL;

/// `jti` events for every live token (JWT, then opaque) of the unrevoked grants with
/// `g.<column> = $2`, at `$1`: run just before the statement that revokes those grants, so each
/// token is announced once. A JWT's event carries its client's audiences (a superset of its
/// `aud`); an opaque token's, its own `aud`.
macro_rules! grant_token_events {
    ($column:literal) => {
        [
            concat!(
                "INSERT INTO revocation_events (kind, value, at, exp, status_idx, aud)
                 SELECT 'jti', j.jti, $1, j.exp, j.status_idx, c.audience FROM grant_jwts j
                 JOIN grants g ON g.id = j.grant_id JOIN clients c ON c.client_id = g.client_id
                 WHERE g.",
                $column,
                " = $2 AND g.revoked_at IS NULL AND j.exp > $1"
            ),
            concat!(
                "INSERT INTO revocation_events (kind, value, at, exp, aud)
                 SELECT 'jti', o.jti, $1, o.exp, o.aud FROM opaque_tokens o JOIN grants g ON g.id = o.grant_id
                 WHERE g.",
                $column,
                " = $2 AND g.revoked_at IS NULL AND o.exp > $1 AND o.revoked_at IS NULL"
            ),
        ]
    };
}

pub(super) const EVENTS_OF_GRANT: [&str; 2] = grant_token_events!("id");
pub(super) const EVENTS_OF_USER: [&str; 2] = grant_token_events!("user_id");
pub(super) const EVENTS_OF_SESSION: [&str; 2] = grant_token_events!("session_id");
pub(super) const EVENTS_OF_CLIENT: [&str; 2] = grant_token_events!("client_id");

/// Runs `statements` (from [`grant_token_events!`]) in `$tx` with `now` and `key`.
macro_rules! feed_grant_tokens {
    ($tx:expr, $statements:expr, $now:expr, $key:expr) => {
        for sql in $statements {
            sqlx::query(sql).bind($now).bind($key).execute(&mut *$tx).await?;
        }
    };
}

/// The union of the audience lists `$sql` (one of the `AUDIENCES_OF_*` statements) returns for
/// `$key` in `$tx`, as the JSON list an event stores.
macro_rules! audiences_of {
    ($tx:expr, $sql:expr, $key:expr) => {{
        let rows = sqlx::query($sql).bind($key).fetch_all(&mut *$tx).await?;
        let mut lists = Vec::with_capacity(rows.len());
        for row in &rows {
            lists.push(sqlx::Row::try_get::<String, _>(row, "audience")?);
        }
        $crate::store::feed::union_of(&lists)?
    }};
}

/// Appends an event in `$tx` (`$at` and `$exp` as `i64`) concerning the audiences `$aud` (a
/// JSON list).
macro_rules! feed_event {
    ($tx:expr, $kind:expr, $value:expr, $at:expr, $exp:expr, $aud:expr) => {
        sqlx::query($crate::store::feed::INSERT_EVENT)
            .bind($kind)
            .bind($value)
            .bind($at)
            .bind($exp)
            .bind($aud)
            .execute(&mut *$tx)
            .await?;
    };
}

/// Appends a cut-off event in `$tx` concerning `$aud`, kept for the longest access-token lifetime.
macro_rules! feed_cutoff {
    ($tx:expr, $kind:expr, $value:expr, $now:expr, $aud:expr) => {
        $crate::store::feed::feed_event!(
            $tx,
            $kind,
            $value,
            $now,
            $now.saturating_add($crate::store::to_i64($crate::store::feed::CUTOFF_TTL)),
            $aud
        );
    };
}

pub(crate) use {audiences_of, feed_cutoff, feed_event, feed_grant_tokens};

/// The sorted union of JSON audience lists, as one JSON list.
pub(crate) fn union_of(lists: &[String]) -> anyhow::Result<String> {
    let mut union = std::collections::BTreeSet::new();
    for list in lists {
        union.extend(super::parse_list(list)?);
    }
    Ok(super::json_list(&union.into_iter().collect::<Vec<_>>()))
}

impl Store {
    /// Events after `after`, oldest first, at most `limit`, whoever they concern (the reader
    /// filters with [`FeedRow::concerns`]).
    pub async fn revocation_events(&self, after: u64, limit: u32) -> anyhow::Result<Vec<FeedRow>> {
        const SQL: &str =
            "SELECT seq, kind, value, at, exp, aud FROM revocation_events WHERE seq > $1 ORDER BY seq LIMIT $2";
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(SQL).bind(to_i64(after)).bind(i64::from(limit)).fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let aud: Option<String> = column(r, "aud")?;
                    Ok(FeedRow {
                        seq: column_u64(r, "seq")?,
                        kind: column(r, "kind")?,
                        value: column(r, "value")?,
                        at: column_u64(r, "at")?,
                        exp: column_u64(r, "exp")?,
                        aud: aud.as_deref().map(super::parse_list).transpose()?,
                    })
                })
                .collect()
        })
    }

    /// The token-status indexes in `from..to` of tokens revoked and not yet expired at `now`.
    pub async fn revoked_status_indexes(&self, from: u64, to: u64, now: u64) -> anyhow::Result<Vec<u64>> {
        const SQL: &str = "SELECT DISTINCT status_idx FROM revocation_events
             WHERE status_idx >= $1 AND status_idx < $2 AND exp > $3";
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(SQL).bind(to_i64(from)).bind(to_i64(to)).bind(to_i64(now)).fetch_all(pool).await?;
            rows.iter().map(|r| column_u64(r, "status_idx")).collect()
        })
    }

    /// Reserves the next block of token-status indexes; its number (from 1).
    pub async fn reserve_status_block(&self, now: u64) -> anyhow::Result<u64> {
        on_pool!(self, write, |pool| {
            let row = sqlx::query("INSERT INTO status_blocks (reserved_at) VALUES ($1) RETURNING id")
                .bind(to_i64(now))
                .fetch_one(pool)
                .await?;
            column_u64(&row, "id")
        })
    }

    /// How many blocks of token-status indexes have been reserved.
    pub async fn status_blocks(&self) -> anyhow::Result<u64> {
        on_pool!(self, read, |pool| {
            let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS blocks FROM status_blocks").fetch_one(pool).await?;
            column_u64(&row, "blocks")
        })
    }

    /// The newest event's position (0 for an empty feed).
    pub async fn revocation_head(&self) -> anyhow::Result<u64> {
        on_pool!(self, write, |pool| {
            let row =
                sqlx::query("SELECT COALESCE(MAX(seq), 0) AS head FROM revocation_events").fetch_one(pool).await?;
            column_u64(&row, "head")
        })
    }
}

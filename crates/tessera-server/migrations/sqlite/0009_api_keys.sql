-- API keys: the secret part only as its SHA-256; the first characters for display. Revoking a
-- key writes revocation events (its `jti` `ak_<id>`, and a `client` cut-off for the tokens
-- exchanged for it, whose `client_id` is that same `ak_<id>`).
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_hash BLOB NOT NULL,
    display TEXT NOT NULL,
    owner_kind TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    audience TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    last_used_ip TEXT,
    revoked_at INTEGER
) STRICT;
CREATE INDEX api_keys_owner ON api_keys (owner_kind, owner_id);

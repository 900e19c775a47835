-- Clients, signing keys, opaque access tokens and JWT revocations.
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    secret_hash BLOB NOT NULL,
    client_name TEXT,
    grant_types TEXT NOT NULL,
    scope TEXT NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    access_token_format TEXT NOT NULL,
    access_token_ttl INTEGER NOT NULL,
    audience TEXT NOT NULL,
    introspection INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    sealed_private_key BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('published', 'active')),
    created_at INTEGER NOT NULL
) STRICT;

-- At most one active signing key.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';

-- Opaque access tokens: `tat_` + base64url(id as 8 bytes big-endian ‖ 32 random bytes).
-- The id is the public selector (a rowid, so inserts append); only SHA-256 of the random
-- part is kept, compared in constant time. No other index: a deleted client's tokens are
-- inactive at once through the client check and are purged by retention.
CREATE TABLE opaque_tokens (
    id INTEGER PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    jti TEXT NOT NULL,
    client_id TEXT NOT NULL,
    sub TEXT NOT NULL,
    aud TEXT NOT NULL,
    scope TEXT NOT NULL,
    iat INTEGER NOT NULL,
    exp INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

-- Revoked JWT access tokens, kept until they expire.
CREATE TABLE revoked_jwts (
    jti TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    exp INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
) STRICT;

CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

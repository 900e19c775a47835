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

CREATE TABLE opaque_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    jti TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    sub TEXT NOT NULL,
    aud TEXT NOT NULL,
    scope TEXT NOT NULL,
    iat INTEGER NOT NULL,
    exp INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE INDEX opaque_tokens_client ON opaque_tokens (client_id);
CREATE INDEX opaque_tokens_exp ON opaque_tokens (exp);

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

-- Sign-in: client settings for the code flow, browser sessions, pending authorization
-- requests (interactive and pushed), authorization codes, grants (one per code redemption:
-- the refresh-token family), refresh tokens, the JWT access tokens of each grant, consents.
-- Every secret (code, refresh token, session cookie, request handle) is stored as SHA-256.

ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN first_party INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN refresh_token_rotation INTEGER NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256';
-- Tokens of this client issued before this instant are inactive (client-wide revocation).
ALTER TABLE clients ADD COLUMN tokens_not_before INTEGER NOT NULL DEFAULT 0;

-- Opaque access tokens issued under a grant die with it.
ALTER TABLE opaque_tokens ADD COLUMN grant_id TEXT;

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    secret_hash BLOB NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    user_agent TEXT,
    ip TEXT,
    ended_at INTEGER
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

-- An authorization request waiting for the user (`par` = 0) or pushed by a client (`par` = 1,
-- RFC 9126). `handle_hash` is SHA-256 of the handle in page URLs or of the request_uri.
CREATE TABLE auth_requests (
    handle_hash BLOB PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    params TEXT NOT NULL,
    par INTEGER NOT NULL,
    par_hash BLOB,
    browser_hash BLOB,
    login_session_id TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER
) STRICT;

CREATE TABLE authorization_codes (
    code_hash BLOB PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_uri_sent INTEGER NOT NULL,
    scope TEXT NOT NULL,
    resources TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER,
    grant_id TEXT
) STRICT;

CREATE TABLE grants (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    resources TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX grants_user ON grants (user_id);
CREATE INDEX grants_session ON grants (session_id);
CREATE INDEX grants_client ON grants (client_id);

-- `trt_` + base64url(id as 8 bytes ‖ 32 random bytes); rotation sets rotated_at exactly once.
CREATE TABLE refresh_tokens (
    id INTEGER PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    secret_hash BLOB NOT NULL,
    parent_id INTEGER,
    created_at INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    rotated_at INTEGER,
    successor_id INTEGER
) STRICT;

-- JWT access tokens issued under a grant. No foreign key: a token whose grant is gone
-- (revoked or deleted with its user or client) must read as revoked, not as unknown.
CREATE TABLE grant_jwts (
    jti TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL,
    exp INTEGER NOT NULL
) STRICT;

CREATE TABLE consents (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT;

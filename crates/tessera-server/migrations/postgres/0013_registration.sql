-- Clients that register themselves (RFC 7591, issue #25). `origin`: how the client came to be
-- (`admin`, `open_registration`, `token_registration`). `registration_token_hash`: SHA-256 of
-- the RFC 7592 registration access token. `used_at`: when the client first completed an
-- authorization; self-registered clients never used within `registration_expiry` are deleted.
ALTER TABLE clients ADD COLUMN origin TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE clients ADD COLUMN registration_token_hash BYTEA;
ALTER TABLE clients ADD COLUMN used_at BIGINT;
CREATE INDEX clients_unused_registrations ON clients (created_at) WHERE origin <> 'admin' AND used_at IS NULL;

-- Initial access tokens (RFC 7591 §3): SHA-256 only; `uses_left` NULL means unlimited.
CREATE TABLE registration_tokens (
    id TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    uses_left BIGINT,
    revoked_at BIGINT
);

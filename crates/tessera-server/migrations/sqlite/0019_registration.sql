-- Clients that register themselves (RFC 7591, issue #25). `origin`: how the client came to be
-- (`admin`, `open_registration`, `token_registration`). `registration_token_hash`: SHA-256 of
-- the RFC 7592 registration access token. `used_at`: when the client first completed an
-- authorization; self-registered clients never used within `registration_expiry` are deleted.
ALTER TABLE clients ADD COLUMN origin TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE clients ADD COLUMN registration_token_hash BLOB;
ALTER TABLE clients ADD COLUMN used_at INTEGER;
CREATE INDEX clients_unused_registrations ON clients (created_at) WHERE origin <> 'admin' AND used_at IS NULL;

-- Initial access tokens (RFC 7591 §3): SHA-256 only; `uses_left` NULL means unlimited.
CREATE TABLE registration_tokens (
    id TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    uses_left INTEGER,
    revoked_at INTEGER
);

-- Sender-constrained tokens (RFC 9449 DPoP, RFC 8705 mTLS): per-client DPoP settings, the
-- confirmation (`cnf`, JSON) of opaque access tokens, the DPoP key a code is bound to
-- (`dpop_jkt`, RFC 9449 §10), the DPoP key a public client's refresh-token family is bound to,
-- and the proofs seen recently, so that a proof is used once across every node.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN dpop_nonce_required INTEGER NOT NULL DEFAULT 0;
-- Asymmetric client authentication (RFC 8705 mTLS, RFC 7523 private_key_jwt) and profiles.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE clients ADD COLUMN certificate_identity TEXT;
ALTER TABLE clients ADD COLUMN tls_client_certificate_bound_access_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN profile TEXT NOT NULL DEFAULT 'default';
ALTER TABLE opaque_tokens ADD COLUMN cnf TEXT;
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
ALTER TABLE grants ADD COLUMN dpop_jkt TEXT;

-- private_key_jwt assertions seen (SHA-256 of `client_id.jti`), kept until they expire:
-- an assertion is used once across every node (OpenID Connect Core §9).
CREATE TABLE client_assertions (
    assertion_hash BLOB PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX client_assertions_expires ON client_assertions (expires_at);

-- SHA-256 of `jkt.jti`; kept until the proof's iat window has passed.
CREATE TABLE dpop_proofs (
    proof_hash BLOB PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX dpop_proofs_expires ON dpop_proofs (expires_at);

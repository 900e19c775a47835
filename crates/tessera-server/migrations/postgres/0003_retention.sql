-- Indexes the retention janitor deletes by. Opaque tokens are purged in id order (ids grow
-- with time), so they need none and issuance stays append-only.
CREATE INDEX revoked_jwts_exp ON revoked_jwts (exp);
CREATE INDEX grant_jwts_exp ON grant_jwts (exp);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);
CREATE INDEX auth_requests_expires ON auth_requests (expires_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX grants_expires ON grants (expires_at);
CREATE INDEX refresh_tokens_idle ON refresh_tokens (idle_expires_at);
CREATE INDEX changes_at ON changes (at);

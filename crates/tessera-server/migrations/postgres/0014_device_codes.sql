-- The device authorization grant (RFC 8628, issue #25). A device code is stored as its SHA-256;
-- `user_code` is the 8 letters a person types (without the dash). `status`: `pending`,
-- `approved` (with the person's user, session and auth time), `denied`, `redeemed`.
-- `interval_secs` grows by 5 s at each `slow_down`; `polled_at` is the last poll.
CREATE TABLE device_codes (
    device_code_hash BYTEA PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    resources TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    interval_secs BIGINT NOT NULL,
    polled_at BIGINT,
    status TEXT NOT NULL DEFAULT 'pending',
    user_id TEXT,
    session_id TEXT,
    auth_time BIGINT,
    grant_id TEXT
);
CREATE INDEX device_codes_expiry ON device_codes (expires_at);

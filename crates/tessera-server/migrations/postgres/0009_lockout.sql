-- Password lockout: consecutive failures and the instant until which the user may neither sign
-- in nor redeem codes or refresh tokens (exponential backoff; a success or "enable" resets it).
ALTER TABLE users ADD COLUMN failed_logins BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT NOT NULL DEFAULT 0;

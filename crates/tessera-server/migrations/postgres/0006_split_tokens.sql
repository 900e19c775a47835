-- Split tokens: the client holds only a JWT's signature part; its header and payload are kept
-- here by SHA-256 of that part (base64url text), for gateways to reassemble and verify.
CREATE TABLE split_tokens (
    signature_hash BYTEA PRIMARY KEY NOT NULL,
    header_payload TEXT NOT NULL,
    exp BIGINT NOT NULL
);
CREATE INDEX split_tokens_exp ON split_tokens (exp);

-- The audit log: append-only, one row per security-relevant event, hash-chained in `seq` order
-- (`hash` = SHA-256 over the previous record's hash and this record's fields; see `audit.rs`).
-- `audit_head` is the chain's one-row head: every writer first bumps its `seq` (a row lock
-- held until commit, so appends from every node are serialized and numbered without gaps),
-- then stores the new hash, in the same transaction as the change the records describe.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT,
    client_id TEXT,
    session_id TEXT,
    ip TEXT,
    request_id TEXT,
    details TEXT NOT NULL,
    hash BYTEA NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_subject ON audit_log (subject);
CREATE INDEX audit_log_client ON audit_log (client_id);
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

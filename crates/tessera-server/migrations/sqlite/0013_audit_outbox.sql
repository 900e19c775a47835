-- The audit outbox (`store/outbox.rs`): records of events that change nothing else are appended
-- to a file beside the database and moved into `audit_log` in batches. `drained` is the number
-- of the last outbox record moved, stored in the same transaction as the records, so that none
-- is moved twice after a crash.
CREATE TABLE audit_outbox (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    drained INTEGER NOT NULL
);
INSERT INTO audit_outbox (id, drained) VALUES (1, 0);

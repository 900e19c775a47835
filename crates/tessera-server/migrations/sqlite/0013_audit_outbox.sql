-- The audit outbox (`store/outbox.rs`): records of events that change nothing else are appended
-- to a file beside the database and moved into `audit_log` in batches. `drained` is the number
-- of the last outbox record moved, stored in the same transaction as the records, so that none
-- is moved twice after a crash. `database` is random per database and heads the outbox file, so an
-- outbox left beside a database that was deleted and created again is not moved into the new log.
CREATE TABLE audit_outbox (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    drained INTEGER NOT NULL,
    database TEXT NOT NULL
);
INSERT INTO audit_outbox (id, drained, database) VALUES (1, 0, lower(hex(randomblob(16))));

-- Batches of audit records moved from the outbox into the log, one row per batch (issue #8's
-- cost on issuance).
--
-- Moving the outbox inserted one `audit_log` row per record: twelve values bound, a table and an
-- index entry, and the record's bytes through the WAL and the checkpoint, which together cost
-- more than every other step of the audit path (BENCHMARKS.md). A segment holds up to 512
-- consecutive records as one JSON array, each element the object its chain hash covers (`seq`
-- first, then the fields in the order of `audit_log`'s columns: `crate::audit`), and their hashes,
-- 32 bytes each, in the same order. Records written any other way (with the change they describe,
-- in a transaction of the critical connection) are still rows of `audit_log`; the log is the
-- union of both in `seq` order, and `tessera audit verify` reads it so. `at_min` and `at_max`
-- let a query by time range pass over the segments outside it without reading their records.
CREATE TABLE audit_segments (
    last INTEGER PRIMARY KEY,
    first INTEGER NOT NULL,
    at_min INTEGER NOT NULL,
    at_max INTEGER NOT NULL,
    records TEXT NOT NULL,
    hashes BLOB NOT NULL
);

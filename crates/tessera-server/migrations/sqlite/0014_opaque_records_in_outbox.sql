-- The records of opaque tokens' issuance go through the audit outbox too (`store/sqlite.rs`): a
-- round appends its records to the outbox, then commits its tokens, each naming the number of its
-- record in `outbox` (NULL when the record was committed with the token, as a process that does
-- not own the outbox does). A power loss can keep either write without the other, so start-up
-- matches them: a token whose record is not in the outbox is deleted (it fails closed, as a token
-- lost with its commit does), and a record whose token was not committed is dropped.
ALTER TABLE opaque_tokens ADD COLUMN outbox INTEGER;
-- The group commit's next token id when the outbox was last moved into the log: only tokens from
-- it on can have their record still in the outbox, so start-up reads no more of the table.
ALTER TABLE audit_outbox ADD COLUMN token_floor INTEGER NOT NULL DEFAULT 0;
UPDATE audit_outbox SET token_floor = (SELECT COALESCE(MAX(id), 0) + 1 FROM opaque_tokens);

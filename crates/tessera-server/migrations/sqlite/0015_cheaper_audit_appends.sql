-- Cheaper appends to the audit log (issue #8's cost on issuance).
--
-- The head is moved once per transaction instead of once per record: migration 0012's two
-- triggers on `audit_log` ran for every record, and moving the outbox into the log inserts
-- hundreds at a time. A writer reads the head under the write lock, inserts the records after it
-- and stores the new head, all in one transaction (`store/audit.rs`). A record at a position
-- already taken is still refused (`seq` is the primary key); one that skips a position is not
-- refused, but `tessera audit verify` reports the gap. The `issuance` view keeps refusing a round
-- chained onto a head that has moved, and moves the head itself.
DROP TRIGGER audit_log_in_order;
DROP TRIGGER audit_log_moves_head;
DROP TRIGGER issuance_insert;

CREATE TRIGGER issuance_insert INSTEAD OF INSERT ON issuance
BEGIN
    SELECT RAISE(ABORT, 'audit chain head moved')
    WHERE NOT EXISTS (SELECT 1 FROM audit_head WHERE id = 1 AND seq + 1 = NEW.seq AND hash = NEW.prev);
    INSERT INTO opaque_tokens (id, secret_hash, jti, client_id, sub, aud, scope, iat, exp, grant_id, cnf)
    SELECT NEW.token_id, NEW.secret_hash, NEW.jti, NEW.token_client_id, NEW.token_sub, NEW.aud,
        NEW.scope, NEW.iat, NEW.exp, NEW.grant_id, NEW.cnf
    WHERE NEW.token_id IS NOT NULL;
    INSERT INTO audit_log (seq, at, event, outcome, actor, subject, client_id, session_id, ip,
        request_id, details, hash)
    VALUES (NEW.seq, NEW.at, NEW.event, NEW.outcome, NEW.actor, NEW.subject, NEW.client_id,
        NEW.session_id, NEW.ip, NEW.request_id, NEW.details, NEW.hash);
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
END;

-- The subject and client indexes served no query (the filters of `tessera audit query` were
-- written so that SQLite could use no index) and cost two index entries per record. A query by
-- user, client or event reads the log in `seq` order and stops at its limit; one by time range
-- uses `audit_log_at`.
DROP INDEX audit_log_subject;
DROP INDEX audit_log_client;

-- Appending to the audit log in one statement (issue #8's cost on issuance).
--
-- The chain head now follows the log by itself: a record is accepted only as the next position
-- after the head (any other is refused, so a writer holding a stale head learns it and retries),
-- and accepting it moves the head to it. A writer therefore needs no statements of its own to
-- read, bump and move the head once it knows where the chain ends.
--
-- `issuance` is a view that exists only to be inserted into: one row per group-commit request,
-- an opaque token (when `token_id` is set) and the audit record of its issuance, so that one
-- multi-row INSERT, atomic on its own, writes a whole round: tokens and records together or
-- neither. Its writer keeps the head in memory, so each row also names the hash it chains onto
-- (`prev`), and a row whose `seq` and `prev` are not the head's refuses the whole statement.
CREATE TRIGGER audit_log_in_order BEFORE INSERT ON audit_log
WHEN NEW.seq IS NOT (SELECT seq + 1 FROM audit_head WHERE id = 1)
BEGIN
    SELECT RAISE(ABORT, 'audit chain head moved');
END;

CREATE TRIGGER audit_log_moves_head AFTER INSERT ON audit_log
BEGIN
    UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
END;

CREATE VIEW issuance AS SELECT
    NULL AS token_id, NULL AS secret_hash, NULL AS jti, NULL AS token_client_id, NULL AS token_sub,
    NULL AS aud, NULL AS scope, NULL AS iat, NULL AS exp, NULL AS grant_id, NULL AS cnf, NULL AS prev,
    seq, at, event, outcome, actor, subject, client_id, session_id, ip, request_id, details, hash
FROM audit_log WHERE 0;

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
END;

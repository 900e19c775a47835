-- The revocation feed: what resource servers and gateways must stop accepting, in commit order.
-- `kind` is `jti` (one token, until `exp`), or a cut-off `user`, `session` or `client`: every token
-- of that subject, session or client issued at or before `at`. Written in the revoking transaction.
CREATE TABLE revocation_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    at INTEGER NOT NULL,
    exp INTEGER NOT NULL
) STRICT;
CREATE INDEX revocation_events_exp ON revocation_events (exp);
-- Finding the tokens of a revoked grant.
CREATE INDEX grant_jwts_grant ON grant_jwts (grant_id);
CREATE INDEX opaque_tokens_grant ON opaque_tokens (grant_id) WHERE grant_id IS NOT NULL;

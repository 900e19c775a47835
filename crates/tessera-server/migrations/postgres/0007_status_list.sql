-- Token Status List (draft-ietf-oauth-status-list): every JWT access token carries an index
-- into a status list. Nodes reserve indexes a block at a time (one row per block, so issuing
-- a token writes nothing); the index travels with the token's revocation events, so a list is
-- read from the revocation feed.
CREATE TABLE status_blocks (
    id BIGSERIAL PRIMARY KEY,
    reserved_at BIGINT NOT NULL
);
ALTER TABLE grant_jwts ADD COLUMN status_idx BIGINT;
ALTER TABLE revocation_events ADD COLUMN status_idx BIGINT;
CREATE INDEX revocation_events_status ON revocation_events (status_idx) WHERE status_idx IS NOT NULL;

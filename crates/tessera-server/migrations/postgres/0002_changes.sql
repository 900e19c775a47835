-- Cross-node cache invalidation. Every change that another node may have cached (a client, the
-- keys, a revocation) appends a row here in the same transaction as the change, and notifies
-- channel `tessera_changes`. Writers serialize on an advisory lock, so `seq` order is commit
-- order and a node that has applied every row up to N has missed nothing before N.
CREATE TABLE changes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    at BIGINT NOT NULL
);

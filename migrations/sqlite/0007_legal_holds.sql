-- Legal holds: a hold on a user or a channel blocks erasure and retention of what it
-- covers until it is released. Rows are never deleted (a released hold keeps its record).
CREATE TABLE legal_holds (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,               -- user | channel
    target TEXT NOT NULL,              -- user id or cid
    reason TEXT NOT NULL,              -- sealed: matter names can identify people
    placed_by TEXT,
    placed_at BIGINT NOT NULL,
    released_by TEXT,
    released_at BIGINT
);
CREATE INDEX legal_holds_target ON legal_holds (scope, target);

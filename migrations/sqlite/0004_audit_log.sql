-- The verifiable audit log (audit/README.md specifies the entry format).
--
-- audit_outbox: records written in the same transaction as the audited action; the one
--   appender drains it in batches. Rows hold natural ids only until they are chained.
-- audit_log: the entries, append-only; `entry` holds the exact hashed bytes. The other
--   columns are copies of fields inside `entry`, for searching.
-- audit_nodes: complete Merkle subtree hashes at levels 8, 16, 24, … (leaf hashes are in
--   audit_log), enough to build any proof from at most 128 hashes per proof node.
-- audit_checkpoints: every signed checkpoint.
-- audit_pseudonyms: the only link from a pseudonym in the log to a user, channel or message
--   id; erasure deletes a subject's rows here.

CREATE TABLE audit_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms BIGINT NOT NULL,
    event_type INTEGER NOT NULL,
    actor TEXT,
    subject TEXT,
    object_kind TEXT,
    object_id TEXT,
    pii BLOB NOT NULL,            -- ciphertext under the subject's key, or empty
    meta BLOB NOT NULL            -- canonical non-personal metadata (entry v1 encoding)
);

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,       -- the Merkle leaf index; unique, so two writers cannot fork
    ts BIGINT NOT NULL,           -- ms
    event_type INTEGER NOT NULL,
    actor BLOB NOT NULL,          -- 16-byte pseudonyms
    subject BLOB NOT NULL,
    object_ref TEXT NOT NULL,
    outcome TEXT NOT NULL,
    entry BLOB NOT NULL,
    chain_hash BLOB NOT NULL CHECK (length(chain_hash) = 32),
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)
);
CREATE INDEX audit_log_ts ON audit_log (ts);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);
CREATE INDEX audit_log_event ON audit_log (event_type, seq);
CREATE INDEX audit_log_object ON audit_log (object_ref, seq);

CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_checkpoints (
    size BIGINT PRIMARY KEY,
    root BLOB NOT NULL CHECK (length(root) = 32),
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE audit_pseudonyms (
    kind TEXT NOT NULL,
    natural_id TEXT NOT NULL,
    pseudonym BLOB NOT NULL UNIQUE,
    PRIMARY KEY (kind, natural_id)
);

-- Append-only in the database itself. SQLite has no roles: anyone who can write the file
-- can drop these triggers, which is why checkpoints are also published outside it.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_nodes_no_update BEFORE UPDATE ON audit_nodes
BEGIN SELECT RAISE(ABORT, 'audit_nodes is append-only'); END;
CREATE TRIGGER audit_nodes_no_delete BEFORE DELETE ON audit_nodes
BEGIN SELECT RAISE(ABORT, 'audit_nodes is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;

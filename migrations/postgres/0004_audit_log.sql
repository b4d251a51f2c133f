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
--
-- Append-only: triggers block UPDATE, DELETE and TRUNCATE for every role, superusers
-- included, and fire even with session_replication_role = replica (ENABLE ALWAYS). The
-- application's own role gets only SELECT and INSERT on these tables: see
-- deploy/postgres/app-role.sql. Someone who owns the tables can still drop the triggers;
-- only checkpoints published outside the database defend against that.

CREATE TABLE audit_outbox (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    event_type INTEGER NOT NULL,
    actor TEXT,
    subject TEXT,
    object_kind TEXT,
    object_id TEXT,
    pii BYTEA NOT NULL,            -- ciphertext under the subject's key, or empty
    meta BYTEA NOT NULL            -- canonical non-personal metadata (entry v1 encoding)
);

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,        -- the Merkle leaf index; unique, so two writers cannot fork
    ts BIGINT NOT NULL,            -- ms
    event_type INTEGER NOT NULL,
    actor BYTEA NOT NULL,          -- 16-byte pseudonyms
    subject BYTEA NOT NULL,
    object_ref TEXT NOT NULL,
    outcome TEXT NOT NULL,
    entry BYTEA NOT NULL,
    chain_hash BYTEA NOT NULL CHECK (length(chain_hash) = 32),
    leaf_hash BYTEA NOT NULL CHECK (length(leaf_hash) = 32)
);
CREATE INDEX audit_log_ts ON audit_log (ts);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);
CREATE INDEX audit_log_event ON audit_log (event_type, seq);
CREATE INDEX audit_log_object ON audit_log (object_ref, seq);

CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_checkpoints (
    size BIGINT PRIMARY KEY,
    root BYTEA NOT NULL CHECK (length(root) = 32),
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE audit_pseudonyms (
    kind TEXT NOT NULL,
    natural_id TEXT NOT NULL,
    pseudonym BYTEA NOT NULL UNIQUE,
    PRIMARY KEY (kind, natural_id)
);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION '% is append-only (% blocked)', TG_TABLE_NAME, TG_OP; END $$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_change;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;

CREATE TRIGGER audit_nodes_no_change BEFORE UPDATE OR DELETE ON audit_nodes
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
ALTER TABLE audit_nodes ENABLE ALWAYS TRIGGER audit_nodes_no_change;
ALTER TABLE audit_nodes ENABLE ALWAYS TRIGGER audit_nodes_no_truncate;

CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_no_change;
ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_no_truncate;

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, audit_nodes, audit_checkpoints FROM PUBLIC;

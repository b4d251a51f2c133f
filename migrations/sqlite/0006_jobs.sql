-- The durable job queue (src/jobs): GDPR export and erasure, retention, key rotation and
-- checkpoint publication run here.
--
-- A worker claims the job due first (pending, or running under an expired lease: its
-- worker crashed) and holds a lease it renews while the job runs. Every claim counts one
-- attempt; `locked_by` and `attempts` together name the claim, so a worker whose lease was
-- taken over can no longer write. A job resumes from its own `checkpoint`.
--
-- On SQLite the claim runs in a BEGIN IMMEDIATE transaction (one writer at a time); on
-- PostgreSQL it uses FOR UPDATE SKIP LOCKED. Same table in both dialects.

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,                 -- UUIDv7, made by the app (it is the Stream task id)
    kind TEXT NOT NULL,                  -- stable job name, e.g. gdpr.export
    payload TEXT NOT NULL,               -- JSON parameters: ids, never personal data in clear
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    attempts BIGINT NOT NULL,            -- claims so far
    max_attempts BIGINT NOT NULL,
    run_at BIGINT NOT NULL,              -- due from (retries move it by the backoff)
    locked_by TEXT,                      -- the worker holding the lease
    locked_until BIGINT,                 -- lease expiry; claimable again after it
    progress_done BIGINT NOT NULL,
    progress_total BIGINT,               -- unknown until the job reports it
    result TEXT,                         -- JSON, once completed
    error TEXT,                          -- the last failure, short; never personal data
    checkpoint TEXT,                     -- JSON: the job's own resume cursor
    cancel_requested BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);

-- Claims scan the unfinished jobs by due time; finished ones stay out of the index.
CREATE INDEX jobs_due ON jobs (run_at) WHERE status IN ('pending', 'running');

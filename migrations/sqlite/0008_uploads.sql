-- phase: expand
-- Uploaded files and images (`POST /channels/{type}/{id}/file|image`, `POST /uploads/file|image`).
-- The content itself is a blob (under the data dir or in S3), sealed under the uploader's
-- key; this row says whose it is, where it belongs and what it is. Deleting the row and
-- the blob is how a file is deleted; erasure also shreds the key, so a copy of the blob
-- (a backup) stays unreadable.
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,               -- UUIDv7, also the blob's name and the AAD row id
    cid TEXT,                          -- the channel, or NULL for app-level uploads
    user_id TEXT NOT NULL,             -- the uploader (the blob's key subject)
    kind TEXT NOT NULL,                -- file | image
    name TEXT NOT NULL,                -- sealed: file names can identify patients
    mime_type TEXT NOT NULL,           -- sniffed from the content, never the client's word
    size BIGINT NOT NULL,              -- bytes of plaintext (after metadata stripping)
    storage TEXT NOT NULL,             -- local | s3
    created_at BIGINT NOT NULL
);
CREATE INDEX uploads_user ON uploads (user_id);
CREATE INDEX uploads_cid ON uploads (cid);

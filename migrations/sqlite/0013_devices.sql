-- phase: expand
-- Push devices and push preferences (issue 16). Registration storage only: push delivery is
-- a later issue. A device's id is the provider's push token, a secret-ish personal value:
-- sealed under its user's key in `token`, and found through its user (a user holds a few
-- devices), never by the token itself. Erasure deletes the rows (and shreds the key).
CREATE TABLE devices (
    row_id TEXT PRIMARY KEY,           -- UUIDv7, the AAD's row id
    user_id TEXT NOT NULL,
    token TEXT NOT NULL,               -- sealed: the push token (Stream's device `id`)
    push_provider TEXT NOT NULL,       -- firebase | apn | huawei | xiaomi
    push_provider_name TEXT NOT NULL,  -- the app's name for its provider config, or ''
    created_at BIGINT NOT NULL
);
CREATE INDEX devices_user ON devices (user_id, created_at);

-- Push preferences: per user (channel_cid '') and per channel. `preferences` is a JSON
-- object of levels from a fixed vocabulary ("all", "mentions", "none", ...) and an optional
-- snooze time: no free text.
CREATE TABLE push_preferences (
    user_id TEXT NOT NULL,
    channel_cid TEXT NOT NULL,
    preferences TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, channel_cid)
);

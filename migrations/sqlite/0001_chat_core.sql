-- Chat core: app settings, users, channels with members and read state, messages with
-- reactions.

-- Generated app credentials and other one-time values.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL DEFAULT 'user',
    data TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_active BIGINT,
    deactivated_at BIGINT,
    deleted_at BIGINT,
    banned BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE channels (
    cid TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    created_by_id TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_message_at BIGINT,
    deleted_at BIGINT,
    truncated_at BIGINT,
    frozen BOOLEAN NOT NULL DEFAULT FALSE,
    message_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX channels_type ON channels (type, created_at);

CREATE TABLE channel_members (
    cid TEXT NOT NULL,
    user_id TEXT NOT NULL,
    channel_role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (cid, user_id)
);
CREATE INDEX channel_members_user ON channel_members (user_id);

-- Read state per member: a row is created when the member joins.
CREATE TABLE channel_reads (
    cid TEXT NOT NULL,
    user_id TEXT NOT NULL,
    last_read BIGINT NOT NULL,
    last_read_message_id TEXT,
    unread_messages BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (cid, user_id)
);
CREATE INDEX channel_reads_user ON channel_reads (user_id);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    cid TEXT NOT NULL,
    user_id TEXT NOT NULL,
    type TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '{}',
    parent_id TEXT,
    show_in_channel BOOLEAN NOT NULL DEFAULT FALSE,
    silent BOOLEAN NOT NULL DEFAULT FALSE,
    pinned BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX messages_channel_time ON messages (cid, created_at, id);
CREATE INDEX messages_parent_time ON messages (parent_id, created_at, id);

CREATE TABLE reactions (
    message_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    type TEXT NOT NULL,
    score BIGINT NOT NULL DEFAULT 1,
    data TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id, type)
);

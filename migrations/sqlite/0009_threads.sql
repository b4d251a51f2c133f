-- phase: expand
-- Threads, thread read state and delivery receipts (issue 16, items 2 and 3).
--
-- A thread is a parent message with replies; who takes part (the parent's author and every
-- replier) and how many replies it has are derived from `messages`. These tables hold only
-- what is not: a thread's title and custom data, and each participant's read position.

-- Title and custom data of a thread, set through `PATCH /threads/{id}`. `data` is sealed
-- under the channel's key, like the channel's own data.
CREATE TABLE threads (
    parent_id TEXT PRIMARY KEY,
    cid TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX threads_channel ON threads (cid);

-- Read state per user of a thread: replies by others after `last_read` are unread.
CREATE TABLE thread_reads (
    parent_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    cid TEXT NOT NULL,
    last_read BIGINT NOT NULL,
    last_read_message_id TEXT,
    PRIMARY KEY (parent_id, user_id)
);
CREATE INDEX thread_reads_user ON thread_reads (user_id);

-- The threads a user takes part in are found by author.
CREATE INDEX messages_author_parent ON messages (user_id, parent_id);

-- Delivery receipts (`POST /channels/delivered`): the newest message delivered to a member.
ALTER TABLE channel_reads ADD COLUMN last_delivered_at BIGINT;
ALTER TABLE channel_reads ADD COLUMN last_delivered_message_id TEXT;

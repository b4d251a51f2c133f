-- phase: expand
-- Polls (issue 16, item 8). A poll is created on its own, then attached to at most one
-- message (`message_id`, `cid`), whose channel decides who may read it and vote.
-- `data` (name, description, custom fields), option `data` (text, custom fields) and a
-- vote's `answer_text` are sealed: poll texts under the creator's key, answers under the
-- voter's. Erasing either shreds them.
CREATE TABLE polls (
    id TEXT PRIMARY KEY,
    created_by_id TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    voting_visibility TEXT NOT NULL DEFAULT 'public',  -- public | anonymous
    enforce_unique_vote BOOLEAN NOT NULL DEFAULT FALSE,
    max_votes_allowed BIGINT,
    allow_answers BOOLEAN NOT NULL DEFAULT FALSE,
    allow_user_suggested_options BOOLEAN NOT NULL DEFAULT FALSE,
    is_closed BOOLEAN NOT NULL DEFAULT FALSE,
    message_id TEXT UNIQUE,
    cid TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX polls_creator ON polls (created_by_id, created_at);

CREATE TABLE poll_options (
    poll_id TEXT NOT NULL,
    id TEXT NOT NULL,
    position BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (poll_id, id)
);

CREATE TABLE poll_votes (
    id TEXT PRIMARY KEY,
    poll_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    option_id TEXT,                    -- NULL for an answer
    is_answer BOOLEAN NOT NULL DEFAULT FALSE,
    answer_text TEXT,                  -- sealed under the voter's key
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX poll_votes_poll ON poll_votes (poll_id, created_at);
CREATE INDEX poll_votes_user ON poll_votes (user_id);
-- One vote per user and option; one answer per user.
CREATE UNIQUE INDEX poll_votes_option_once ON poll_votes (poll_id, user_id, option_id)
    WHERE option_id IS NOT NULL;
CREATE UNIQUE INDEX poll_votes_answer_once ON poll_votes (poll_id, user_id) WHERE is_answer;

-- Drafts: one per user, channel and thread (`parent_key` is the thread's parent id, or ''
-- for the channel). `message` (the draft message object) is sealed under the user's key.
CREATE TABLE drafts (
    user_id TEXT NOT NULL,
    cid TEXT NOT NULL,
    parent_key TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, cid, parent_key)
);

-- Reminders: one per user and message. `remind_at` NULL is "save for later"; a due
-- reminder is claimed once (`notified_at`) by whichever node's sweep gets it first.
CREATE TABLE reminders (
    user_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    cid TEXT NOT NULL,
    remind_at BIGINT,
    notified_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, message_id)
);
CREATE INDEX reminders_due ON reminders (remind_at) WHERE notified_at IS NULL;

-- User groups (for group mentions), managed by admins. Names and descriptions are
-- organisational labels set by admins, not about a data subject.
CREATE TABLE user_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    team_id TEXT NOT NULL DEFAULT '',
    created_by_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE user_group_members (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX user_group_members_user ON user_group_members (user_id);

-- phase: expand
-- Members: per-member channel state (pin, archive, hide, notifications muted) and invites,
-- and slow mode (the time each user last sent a message in a channel with a cooldown).

-- Pinned/archived times are per member: the channel list sorts and filters on them.
ALTER TABLE channel_members ADD COLUMN pinned_at BIGINT;
ALTER TABLE channel_members ADD COLUMN archived_at BIGINT;
-- Hidden from the member's channel list until the next message (hide/show).
ALTER TABLE channel_members ADD COLUMN hidden BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE channel_members ADD COLUMN notifications_muted BOOLEAN NOT NULL DEFAULT FALSE;
-- An invited member is not a member (may not read) until the invite is accepted.
ALTER TABLE channel_members ADD COLUMN invited BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE channel_members ADD COLUMN invite_accepted_at BIGINT;
ALTER TABLE channel_members ADD COLUMN invite_rejected_at BIGINT;

-- Slow mode: the last message time of each user per channel, in the database so that the
-- cooldown holds whichever node the next message reaches.
CREATE TABLE channel_cooldowns (
    cid TEXT NOT NULL,
    user_id TEXT NOT NULL,
    last_sent_at BIGINT NOT NULL,
    PRIMARY KEY (cid, user_id)
);
CREATE INDEX channel_cooldowns_user ON channel_cooldowns (user_id);

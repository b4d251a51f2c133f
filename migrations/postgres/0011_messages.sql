-- phase: expand
-- Messages deleted for one user only (`delete_for_me`): the message stays for everyone
-- else and reads as deleted for that user. No content here: who hid which message, when.
CREATE TABLE message_hides (
    message_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    hidden_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX message_hides_user ON message_hides (user_id);

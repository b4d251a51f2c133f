-- phase: expand
-- When a message's text was last edited (Stream's `message_text_updated_at`; stream-chat-react
-- labels a message "Edited" from it). NULL until the text changes.
ALTER TABLE messages ADD COLUMN text_updated_at BIGINT;

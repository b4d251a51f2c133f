-- Field encryption: KEKs wrapped by the root key, one DEK per data subject wrapped by a KEK,
-- and the blind index that lets search find words in encrypted messages.

CREATE TABLE crypto_keks (
    id TEXT PRIMARY KEY,
    wrapped BYTEA NOT NULL,        -- the KEK wrapped by the root key provider
    provider TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    active BOOLEAN NOT NULL
);

CREATE TABLE crypto_deks (
    id TEXT PRIMARY KEY,          -- hex of the 16-byte key id carried in every frame
    subject TEXT NOT NULL,        -- user:<id>, channel:<cid>, system:<purpose>
    kek_id TEXT NOT NULL,
    wrapped BYTEA,                 -- NULL once destroyed (crypto-shredded)
    created_at BIGINT NOT NULL,
    destroyed_at BIGINT,
    active BOOLEAN NOT NULL
);
CREATE INDEX crypto_deks_subject ON crypto_deks (subject);

-- Keyed HMACs of the normalised words of each message, per channel (never the words).
CREATE TABLE message_search_tokens (
    token TEXT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (token, message_id)
);
CREATE INDEX message_search_tokens_message ON message_search_tokens (message_id);

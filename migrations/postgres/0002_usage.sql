-- Usage metering: monthly active users (a user who opened a WebSocket in the month, counted
-- once), daily active users, and per-node connection peaks per sampling bucket.

CREATE TABLE usage_active_users (
    month TEXT NOT NULL,       -- YYYY-MM (UTC)
    user_id TEXT NOT NULL,
    first_day TEXT NOT NULL,   -- YYYY-MM-DD of the first connection in the month
    PRIMARY KEY (month, user_id)
);

CREATE TABLE usage_daily_users (
    day TEXT NOT NULL,         -- YYYY-MM-DD (UTC)
    user_id TEXT NOT NULL,
    PRIMARY KEY (day, user_id)
);

-- The most WebSockets one node held open at once within a bucket (bucket start, micros).
CREATE TABLE usage_connection_peaks (
    node TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    peak BIGINT NOT NULL,
    PRIMARY KEY (node, bucket)
);
CREATE INDEX usage_connection_peaks_bucket ON usage_connection_peaks (bucket);

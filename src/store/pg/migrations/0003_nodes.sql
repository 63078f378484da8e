-- Schema version 2: what several nodes on one database share beyond the records.
-- The attempt counters every node counts in (the second-factor and per-user sign-in throttles): one fixed window
-- per throttle and key, counted by a conditional upsert, so N nodes together admit at most `limit` per window.
-- `key` is the SHA-256 of the caller's key (callers choose keys; a row costs 32 bytes whatever their length).
CREATE TABLE throttles (
    throttle     text COLLATE "C" NOT NULL,
    key          bytea NOT NULL,
    window_start bigint NOT NULL,
    ends_at      bigint NOT NULL,
    n            integer NOT NULL CHECK (n >= 0),
    PRIMARY KEY (throttle, key)
);
CREATE INDEX throttles_by_end ON throttles (throttle, ends_at);

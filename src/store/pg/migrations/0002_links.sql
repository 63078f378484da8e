-- Links, schema version 2: what the native link methods need beyond version 1.

-- Removing a provider cascades to its links; the sign-in index covers only sign-in links, so this one finds the
-- connected-only ones too without a scan.
CREATE INDEX links_by_provider ON links (provider);

-- The newest link creation time handed out (`Store::next_link_time`), one counter row for every node: a new link
-- time is past it and past the user's newest link, so creation order is strict across nodes too.
CREATE TABLE link_clock (
    id   smallint PRIMARY KEY CHECK (id = 1),
    last bigint NOT NULL
);
INSERT INTO link_clock (id, last) VALUES (1, -9223372036854775808);

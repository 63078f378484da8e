-- Latchkey's records on PostgreSQL, schema version 1. Every record is its versioned bincode blob (`rec`, the same
-- bytes the sled backend keeps, so one record-versioning rule serves both backends) beside the columns the use
-- cases look up, join or conditionally update by. A flag that a conditional UPDATE flips (a code's `redeemed`, a
-- token's `rotated`, a family's `revoked`) is a column, and the column wins over the blob's copy on every read.
-- Text keys use the "C" collation: byte order, as sled orders them. Only SQL that CockroachDB and YugabyteDB share.

CREATE TABLE apps (
    id         text COLLATE "C" PRIMARY KEY,
    client_id  text COLLATE "C" NOT NULL UNIQUE,
    created_at bigint NOT NULL,
    rec        bytea NOT NULL
);

CREATE TABLE users (
    id           text COLLATE "C" PRIMARY KEY,
    -- lowercase username: unique case-insensitively, as Rocket.Chat's login is
    username_key text COLLATE "C" NOT NULL UNIQUE,
    is_admin     boolean NOT NULL,
    rec          bytea NOT NULL
);

CREATE TABLE user_emails (
    address text COLLATE "C" PRIMARY KEY,
    user_id text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX user_emails_by_user ON user_emails (user_id);

-- The admin count as one counter row: a demotion decrements it only while it stays >= 1, so two concurrent
-- demotions of the last two admins serialize on the row and one fails (no write skew).
CREATE TABLE admin_count (
    id smallint PRIMARY KEY CHECK (id = 1),
    n  bigint NOT NULL CHECK (n >= 0)
);
INSERT INTO admin_count (id, n) VALUES (1, 0);

CREATE TABLE login_tokens (
    digest     bytea PRIMARY KEY,
    user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at bigint NOT NULL,
    rec        bytea NOT NULL
);
CREATE INDEX login_tokens_by_user ON login_tokens (user_id);

CREATE TABLE providers (
    key        text COLLATE "C" PRIMARY KEY,
    created_at bigint NOT NULL,
    rec        bytea NOT NULL
);

CREATE TABLE links (
    id            text COLLATE "C" PRIMARY KEY,
    user_id       text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider      text COLLATE "C" NOT NULL REFERENCES providers (key) ON DELETE CASCADE,
    account_id    text COLLATE "C" NOT NULL,
    allow_sign_in boolean NOT NULL,
    created_at    bigint NOT NULL,
    rec           bytea NOT NULL
);
CREATE INDEX links_by_user ON links (user_id, created_at, id);
-- An upstream account signs in to at most one user; a user has one sign-in link per provider.
CREATE UNIQUE INDEX links_sign_in_account ON links (provider, account_id) WHERE allow_sign_in;
CREATE UNIQUE INDEX links_sign_in_slot ON links (user_id, provider) WHERE allow_sign_in;

CREATE TABLE codes (
    digest     bytea PRIMARY KEY,
    client_id  text COLLATE "C" NOT NULL,
    expires_at bigint NOT NULL,
    -- the family the first redemption started; set once, by a conditional UPDATE
    redeemed   bytea,
    rec        bytea NOT NULL
);

CREATE TABLE families (
    id        bytea PRIMARY KEY,
    client_id text COLLATE "C" NOT NULL,
    user_id   text COLLATE "C",
    revoked   boolean NOT NULL,
    rec       bytea NOT NULL
);
CREATE INDEX families_by_client ON families (client_id);
CREATE INDEX families_by_user ON families (user_id);

CREATE TABLE tokens (
    digest     bytea PRIMARY KEY,
    -- NULL for a client_credentials token (live by its app's token epoch)
    family     bytea REFERENCES families (id) ON DELETE CASCADE,
    is_refresh boolean NOT NULL,
    client_id  text COLLATE "C" NOT NULL,
    expires_at bigint NOT NULL,
    rotated    boolean NOT NULL,
    -- a refresh token's sibling: the access token issued with it, which its rotation revokes
    sibling    bytea,
    rec        bytea NOT NULL
);
CREATE INDEX tokens_by_family ON tokens (family);
CREATE INDEX tokens_by_expiry ON tokens (expires_at);

CREATE TABLE revoked_jti (
    jti        text COLLATE "C" PRIMARY KEY,
    expires_at bigint NOT NULL,
    rec        bytea NOT NULL
);

CREATE TABLE signing_keys (
    kid        text COLLATE "C" PRIMARY KEY,
    signs_from bigint NOT NULL,
    rec        bytea NOT NULL
);

CREATE TABLE settings (
    id  text COLLATE "C" PRIMARY KEY,
    rec bytea NOT NULL
);

CREATE TABLE meta (
    key   text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

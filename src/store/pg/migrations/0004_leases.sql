-- Schema version 4: leases, a lock that works on every PostgreSQL-protocol engine (CockroachDB has no advisory
-- locks). A lease is held by `holder` until `expires_at` (the database's clock): taken by one conditional upsert
-- when free, expired or already this holder's, renewed by the same statement, released by deleting it. Expiry is
-- what frees the lease of a holder that died.
CREATE TABLE leases (
    name       text COLLATE "C" PRIMARY KEY,
    holder     text COLLATE "C" NOT NULL,
    expires_at timestamptz NOT NULL
);

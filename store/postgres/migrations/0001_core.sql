-- The core: accounts, phones, browser sessions, the audit log.
--
-- Each record is kept whole as JSON in doc (the same encoding as the bbolt
-- store, so new optional fields need no migration); the columns beside it
-- are what queries and constraints need. The constraints carry the store's
-- contracts under concurrency: a phone hash, a device id and a session
-- token hash each belong to one owner, whichever transaction commits first.

CREATE TABLE secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);

-- Ids sort bytewise (COLLATE "C"), as the bbolt store's keys do, whatever
-- the database's own collation.
CREATE TABLE users (
    id  text COLLATE "C" PRIMARY KEY,
    doc jsonb NOT NULL
);

-- Every phone hash ever linked to a user, kept when the device is removed
-- (the number still belongs to the account).
CREATE TABLE phone_hashes (
    phone_id_hash text PRIMARY KEY,
    user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE
);

CREATE TABLE devices (
    id         text COLLATE "C" PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    doc        jsonb NOT NULL
);
CREATE INDEX devices_by_user ON devices (user_id, created_at, id);

CREATE TABLE sessions (
    id         text COLLATE "C" PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    doc        jsonb NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE known_addresses (
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ip      text NOT NULL,
    PRIMARY KEY (user_id, ip)
);

-- Seq comes from a counter row, not a sequence: the row lock it takes is
-- held to commit, so events become visible in Seq order and a reader that
-- pages with "after Seq N" never skips one committed late.
CREATE TABLE counters (
    name text PRIMARY KEY,
    n    bigint NOT NULL
);
INSERT INTO counters VALUES ('audit', 0);

-- No foreign key: the log outlives what it tells of.
CREATE TABLE audit (
    seq     bigint PRIMARY KEY,
    user_id text,
    doc     jsonb NOT NULL
);
CREATE INDEX audit_by_user ON audit (user_id, seq) WHERE user_id IS NOT NULL;

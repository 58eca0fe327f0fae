-- The OpenID Connect provider (server/oidcflow). No foreign keys to users:
-- the oidc package names users by plain id strings and purges its own.
CREATE TABLE oidc_clients (
    id  text COLLATE "C" PRIMARY KEY,
    doc jsonb NOT NULL
);

CREATE TABLE oidc_requests (
    id         text PRIMARY KEY,
    code_hash  bytea UNIQUE,
    expires_at timestamptz NOT NULL,
    doc        jsonb NOT NULL
);
CREATE INDEX oidc_requests_by_expiry ON oidc_requests (expires_at);

CREATE TABLE oidc_tokens (
    id         text PRIMARY KEY,
    refresh_hash bytea UNIQUE,
    grant_id   text NOT NULL,
    client_id  text NOT NULL,
    expires_at timestamptz NOT NULL,
    doc        jsonb NOT NULL
);
CREATE INDEX oidc_tokens_by_grant ON oidc_tokens (grant_id);
CREATE INDEX oidc_tokens_by_client ON oidc_tokens (client_id);
CREATE INDEX oidc_tokens_by_expiry ON oidc_tokens (expires_at);

-- The signing keys are one document, replaced whole (PutOIDCKeys).
CREATE TABLE oidc_keys (
    name text PRIMARY KEY,
    doc  jsonb NOT NULL
);

CREATE TABLE oidc_consents (
    user_id   text NOT NULL,
    client_id text NOT NULL,
    doc       jsonb NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE oidc_sessions (
    session_id text PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    doc        jsonb NOT NULL
);

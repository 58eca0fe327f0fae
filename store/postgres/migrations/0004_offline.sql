-- Offline codes and transaction approval (server/offlineflow).
CREATE TABLE offline_credentials (
    device_id text COLLATE "C" NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    method    text COLLATE "C" NOT NULL,
    user_id   text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    doc       jsonb NOT NULL,
    PRIMARY KEY (device_id, method)
);
CREATE INDEX offline_credentials_by_user ON offline_credentials (user_id);

CREATE TABLE offline_sessions (
    id         text PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    doc        jsonb NOT NULL
);
CREATE INDEX offline_sessions_by_expiry ON offline_sessions (expires_at);

CREATE TABLE approvals (
    id         text PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    doc        jsonb NOT NULL
);
CREATE INDEX approvals_by_expiry ON approvals (expires_at);

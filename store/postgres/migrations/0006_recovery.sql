-- Account recovery (server/recoveryflow): recovery codes and helpdesk link
-- codes by the keyed hash of the code, and each account's failure state.
CREATE TABLE recovery_codes (
    hash       bytea PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text NOT NULL,
    expires_at timestamptz,
    doc        jsonb NOT NULL
);
CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id, kind);
CREATE INDEX recovery_codes_by_expiry ON recovery_codes (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE recovery_state (
    user_id text COLLATE "C" PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    doc     jsonb NOT NULL
);

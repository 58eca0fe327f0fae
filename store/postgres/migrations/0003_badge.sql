-- Badges and passwords (server/badgeflow).
CREATE TABLE passwords (
    user_id text COLLATE "C" PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    doc     jsonb NOT NULL
);

CREATE TABLE badges (
    id         text COLLATE "C" PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    doc        jsonb NOT NULL
);
CREATE INDEX badges_by_user ON badges (user_id, created_at, id);

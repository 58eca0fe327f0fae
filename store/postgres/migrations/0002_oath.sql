-- OATH second factor: one account per user (its active and pending tokens
-- in doc), and the counters already accepted.
CREATE TABLE oath_accounts (
    user_id text COLLATE "C" PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    doc     jsonb NOT NULL
);

-- Replay detection as a constraint: an accepted code inserts (user, token,
-- counter); the same code accepted on two instances at once inserts the
-- same row twice and only one insert wins. Rows below the account's
-- NextCounter are pruned as the counter moves on.
CREATE TABLE oath_used_counters (
    user_id  text NOT NULL REFERENCES oath_accounts (user_id) ON DELETE CASCADE,
    token_id text NOT NULL,
    counter  numeric(20) NOT NULL,
    PRIMARY KEY (user_id, token_id, counter)
);

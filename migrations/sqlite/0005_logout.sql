-- Which clients each sign-in session has signed into (Back-Channel Logout 1.0 §2.1).
CREATE TABLE session_clients (
    sid TEXT NOT NULL REFERENCES sessions (sid) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (sid, client_id)
);

-- Logout tokens waiting to be POSTed to clients' backchannel_logout_uri. Queued in the same
-- transaction that ends the session; the id is the logout token's jti.
CREATE TABLE backchannel_deliveries (
    id TEXT NOT NULL PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    sid TEXT NOT NULL,
    sub TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX backchannel_deliveries_due ON backchannel_deliveries (next_attempt_at);

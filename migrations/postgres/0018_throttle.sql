-- Sign-in throttling (docs/accounts.md, "Throttling"): failure counters per key, the shared
-- request limiter (GCRA) of every node, and the known devices of the device cookie.
-- Keys are SHA-256 hex of "<family>|<scope>|<value>", so no address is stored here.

-- Failed sign-ins in the current fixed window of one key (account, IP, or device+account).
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures BIGINT NOT NULL
);
CREATE INDEX login_failures_window ON login_failures (window_start);

-- GCRA state of one request limit: `tat_ms` is the theoretical arrival time (ms since the
-- epoch); `ok` whether the last request was let through. A row is dead once `tat_ms` is past.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat_ms BIGINT NOT NULL,
    ok BOOLEAN NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat_ms);

-- A browser that has signed in: the device cookie holds a random secret, stored only as its
-- SHA-256 (`secret_hash`). `id` is the public handle (for a device list on the account page).
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    user_agent TEXT,
    last_ip TEXT
);
CREATE INDEX devices_expires ON devices (expires_at);

-- The accounts that signed in on a device (one cookie, several accounts).
CREATE TABLE device_users (
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, user_id)
);
CREATE INDEX device_users_user ON device_users (user_id);

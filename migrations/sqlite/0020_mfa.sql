-- Second factors (issue 10): authenticator-app secrets (TOTP, RFC 6238), recovery codes, and the
-- sign-ins waiting for their second step.

-- One authenticator app per account. `secret` is the RFC 4226 key (base32): it must be read back
-- to compute codes, so it cannot be hashed; it is shown only while being set up. Unconfirmed
-- (`confirmed_at` NULL) until a code from the app was typed. `last_step` is the newest RFC 6238
-- time step accepted: a code of that step or an older one is refused (no code works twice).
CREATE TABLE mfa_totp (
    user_id TEXT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    confirmed_at INTEGER,
    last_step INTEGER
);

-- Single-use recovery codes, stored as SHA-256 of the user id and the code.
CREATE TABLE mfa_recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, code_hash)
);

-- A first factor was proven and the second is awaited: the browser holds the random id (a
-- cookie), only its SHA-256 is stored. `methods`: the sign-in methods proven so far.
CREATE TABLE mfa_pending (
    id_hash TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    methods TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX mfa_pending_expires ON mfa_pending (expires_at);

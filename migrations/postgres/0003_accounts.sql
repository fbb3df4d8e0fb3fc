-- Issue 4: self-service accounts. Single-use secrets (verification links and codes, reset links)
-- and the mail outbox.

-- One row per issued link token or one-time code; only the SHA-256 of the secret is kept.
-- `target` binds it to the e-mail address (or phone number) it was sent to: if the account's
-- address changes, the row no longer matches.
CREATE TABLE account_codes (
    id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    target TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX account_codes_secret ON account_codes (secret_hash);
CREATE INDEX account_codes_user ON account_codes (user_id, purpose, created_at);
CREATE INDEX account_codes_expires ON account_codes (expires_at);

-- Rendered e-mails waiting for (or done with) delivery by the background worker. Written in the
-- same transaction as the change that caused them.
CREATE TABLE mail_outbox (
    id TEXT NOT NULL PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at BIGINT,
    failed_at BIGINT,
    last_error TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (sent_at, failed_at, next_attempt_at);

-- A verified phone number signs in (phone + password, SMS code), so it belongs to one account.
CREATE UNIQUE INDEX users_phone_verified ON users (phone_number) WHERE phone_number_verified;

-- Refresh tokens (RFC 6749 §6, RFC 9700 §4.14): stored only as SHA-256, rotated on every use.
-- A family is every token descended from one grant (one authorization code); reuse of a rotated
-- token revokes the whole family, including the access token issued alongside each member
-- (`access_jti`/`access_exp`, copied to the deny-list on revocation).
CREATE TABLE refresh_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sid TEXT,
    scope TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    -- Idle expiry of this token: never later than family_expires_at.
    expires_at BIGINT NOT NULL,
    -- Absolute expiry of the family (fixed when the grant was made).
    family_expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT,
    access_jti TEXT,
    access_exp BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);
CREATE INDEX refresh_tokens_family_expires ON refresh_tokens (family_expires_at);

-- Refresh tokens die with the session they came from: whatever code ends a session (logout,
-- RP-initiated logout, logout everywhere) sets `ended_at`, and this trigger revokes the refresh
-- tokens bound to its `sid` in the same transaction.
CREATE FUNCTION revoke_refresh_tokens_of_ended_session() RETURNS trigger AS $$
BEGIN
    UPDATE refresh_tokens SET revoked_at = NEW.ended_at
    WHERE sid = NEW.sid AND revoked_at IS NULL;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER sessions_end_revokes_refresh_tokens
AFTER UPDATE OF ended_at ON sessions
FOR EACH ROW WHEN (NEW.ended_at IS NOT NULL AND OLD.ended_at IS NULL)
EXECUTE FUNCTION revoke_refresh_tokens_of_ended_session();

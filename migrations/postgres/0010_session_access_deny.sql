-- Access tokens die with the session they came from. Whatever code ends a session sets
-- `ended_at`; this trigger then, in the same transaction:
--  * deny-lists the session's `sid` until the last access token recorded for it expires (every
--    access token carrying a `sid` is recorded with its `exp`, on the authorization code it was
--    redeemed from or on the refresh token it was issued with). No row when none is still live;
--  * expires the session's codes not yet redeemed, so no new token is minted for it.
-- Introspection and userinfo refuse a token whose `jti` or `sid` is deny-listed.
CREATE TABLE revoked_session_tokens (
    sid TEXT NOT NULL PRIMARY KEY,
    -- The latest `exp` of an access token issued for the session: the row is useless after it.
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_session_tokens_expires ON revoked_session_tokens (expires_at);
CREATE INDEX authorization_codes_sid ON authorization_codes (sid);

CREATE FUNCTION deny_access_tokens_of_ended_session() RETURNS trigger AS $$
DECLARE
    last_exp BIGINT;
BEGIN
    SELECT MAX(e) INTO last_exp FROM (
        SELECT access_exp AS e FROM refresh_tokens WHERE sid = NEW.sid AND access_exp > NEW.ended_at
        UNION ALL
        SELECT access_exp AS e FROM authorization_codes WHERE sid = NEW.sid AND access_exp > NEW.ended_at
    ) AS live;
    IF last_exp IS NOT NULL THEN
        INSERT INTO revoked_session_tokens (sid, expires_at, revoked_at)
        VALUES (NEW.sid, last_exp, NEW.ended_at)
        ON CONFLICT (sid) DO UPDATE
        SET expires_at = GREATEST(revoked_session_tokens.expires_at, EXCLUDED.expires_at);
    END IF;
    UPDATE authorization_codes SET expires_at = NEW.ended_at
    WHERE sid = NEW.sid AND used_at IS NULL AND expires_at > NEW.ended_at;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER sessions_end_denies_access_tokens
AFTER UPDATE OF ended_at ON sessions
FOR EACH ROW WHEN (NEW.ended_at IS NOT NULL AND OLD.ended_at IS NULL)
EXECUTE FUNCTION deny_access_tokens_of_ended_session();

-- Refresh-token rotation in one statement (the server's hottest write): inserting into this view
-- marks the presented token used and stores its successor atomically, or changes nothing and
-- fails with 'refresh token not rotated' when the presented token is used, revoked or expired,
-- or its session has ended. One statement is one round trip to SQLite's connection thread and
-- its own transaction; the explicit BEGIN IMMEDIATE, three statements and COMMIT it replaces
-- were five, and they bounded the rate of rotation.
CREATE VIEW refresh_rotations AS
SELECT NULL AS old_hash, NULL AS now, token_hash, family_id, client_id, user_id, sid, scope,
       auth_time, created_at, expires_at, family_expires_at, used_at, revoked_at, access_jti,
       access_exp, amr
  FROM refresh_tokens WHERE 0;

CREATE TRIGGER refresh_rotations_insert INSTEAD OF INSERT ON refresh_rotations
BEGIN
    UPDATE refresh_tokens SET used_at = NEW.now
     WHERE token_hash = NEW.old_hash AND used_at IS NULL AND revoked_at IS NULL
       AND expires_at > NEW.now AND family_expires_at > NEW.now
       AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.sid = NEW.sid AND s.ended_at IS NOT NULL);
    SELECT RAISE(ABORT, 'refresh token not rotated') WHERE changes() <> 1;
    INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, sid, scope, auth_time,
                                created_at, expires_at, family_expires_at, used_at, revoked_at,
                                access_jti, access_exp, amr)
    VALUES (NEW.token_hash, NEW.family_id, NEW.client_id, NEW.user_id, NEW.sid, NEW.scope,
            NEW.auth_time, NEW.created_at, NEW.expires_at, NEW.family_expires_at, NEW.used_at,
            NEW.revoked_at, NEW.access_jti, NEW.access_exp, NEW.amr);
END;

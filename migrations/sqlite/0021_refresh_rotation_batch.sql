-- Refresh-token rotations are written in batches: one multi-row INSERT into `refresh_rotations`
-- rotates every token of the batch (src/store/sqlite_rotations.rs). A refused rotation must not
-- abort the others, so the trigger no longer raises: it marks the old token used only if it is
-- live and its session has not ended, and inserts the new token only if it did (`changes()` is
-- the count of the UPDATE just before, in this trigger). The writer then reads which of the new
-- tokens exist: those rotations happened, the others were refused and changed nothing.
DROP TRIGGER refresh_rotations_insert;

CREATE TRIGGER refresh_rotations_insert INSTEAD OF INSERT ON refresh_rotations
BEGIN
    UPDATE refresh_tokens SET used_at = NEW.now
     WHERE token_hash = NEW.old_hash AND used_at IS NULL AND revoked_at IS NULL
       AND expires_at > NEW.now AND family_expires_at > NEW.now
       AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.sid = NEW.sid AND s.ended_at IS NOT NULL);
    INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, sid, scope, auth_time,
                                created_at, expires_at, family_expires_at, used_at, revoked_at,
                                access_jti, access_exp, amr)
    SELECT NEW.token_hash, NEW.family_id, NEW.client_id, NEW.user_id, NEW.sid, NEW.scope,
           NEW.auth_time, NEW.created_at, NEW.expires_at, NEW.family_expires_at, NEW.used_at,
           NEW.revoked_at, NEW.access_jti, NEW.access_exp, NEW.amr
     WHERE changes() = 1;
END;

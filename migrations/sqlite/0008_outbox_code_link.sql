-- Which account and code purpose an outbox row announces (rows queued with one-time codes and
-- links; NULL for other mail). When a newer code of the same purpose is issued to the same user,
-- the older rows still waiting are given up with last_error = 'superseded' (their code no longer
-- works), in the transaction that issues the new code.
ALTER TABLE mail_outbox ADD COLUMN user_id TEXT;
ALTER TABLE mail_outbox ADD COLUMN purpose TEXT;
CREATE INDEX mail_outbox_pending_code ON mail_outbox (user_id, purpose)
    WHERE sent_at IS NULL AND failed_at IS NULL;

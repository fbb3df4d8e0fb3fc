-- The outbox carries text messages too (phone confirmation and sign-in codes), so a down SMS
-- gateway delays them instead of losing them. `channel` is 'email' or 'sms' (an SMS has its
-- number in `recipient`, its text in `body_text`, empty `subject` and `body_html`).
-- `expires_at`: after it the row is not sent any more (the code it carries has expired); an SMS
-- text is blanked as soon as it is delivered, abandoned or expired.
ALTER TABLE mail_outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';
ALTER TABLE mail_outbox ADD COLUMN expires_at BIGINT;

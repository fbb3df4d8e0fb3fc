-- How the person proved who they are (RFC 8176 `amr` values, space-separated, e.g. `pwd` or
-- `otp sms`), recorded on the browser session at sign-in and carried by the authorization codes
-- and refresh tokens issued for it, so ID tokens can state it.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE authorization_codes ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN amr TEXT NOT NULL DEFAULT '';

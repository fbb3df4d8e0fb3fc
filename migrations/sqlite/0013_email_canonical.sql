-- E-mail identity by canonical form (RFC 8265 / PRECIS style; see src/domain/email.rs): the local
-- part in NFKC with Unicode case folding, the domain in its IDNA ASCII form, lower case. `email`
-- keeps the address as the person typed it (mail goes there); uniqueness and every look-up go by
-- `email_canonical`. SQL cannot compute the form, so the server fills it for older rows at start
-- (`backfill_email_canonical`, idempotent, oldest account first); a row that would repeat the
-- canonical address of an older account stays NULL (not found by address) and is reported.
ALTER TABLE users ADD COLUMN email_canonical TEXT;
CREATE UNIQUE INDEX users_email_canonical ON users (email_canonical);

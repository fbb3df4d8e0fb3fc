-- Browser origins (`scheme://host[:port]`, a JSON array like the other lists) allowed to call
-- the token, userinfo, revocation and introspection endpoints (CORS). Empty: none for a
-- confidential client, the origins of its redirect URIs for a public one.
ALTER TABLE clients ADD COLUMN web_origins TEXT NOT NULL DEFAULT '[]';

-- Signing keys kept in the database, so every node signs with the same keys (always with
-- PostgreSQL; with SQLite when keys_encryption_key is set). `private_key` is a compact JWE
-- (`dir`, `A256GCM`) of the PKCS#8 PEM under the key-encryption key, with the `kid` in its
-- protected header (the AEAD's associated data): never the raw key.
CREATE TABLE signing_keys (
    kid TEXT NOT NULL PRIMARY KEY,
    alg TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- When it starts signing; it is published from created_at on (pre-publication).
    activates_at BIGINT NOT NULL,
    private_key TEXT NOT NULL
);

-- Other server-wide secrets (the CSRF key), sealed the same way, by name.
CREATE TABLE server_secrets (
    name TEXT NOT NULL PRIMARY KEY,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

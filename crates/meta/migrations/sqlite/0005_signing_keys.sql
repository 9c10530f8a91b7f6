-- The token service's Ed25519 signing keys (32-byte seeds), shared by every instance. Ids
-- sort by age; the newest signs, all verify.
CREATE TABLE signing_keys (
    id         TEXT PRIMARY KEY,
    seed       BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

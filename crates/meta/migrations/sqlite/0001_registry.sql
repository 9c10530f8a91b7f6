-- The OCI registry: repositories, blobs, manifests, tags (as versions), upload sessions.
-- Times are milliseconds since the Unix epoch.

CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL DEFAULT 'image' CHECK (kind IN ('image', 'application')),
    created_at  INTEGER NOT NULL
);

-- Blobs are global and stored once; storage_key is the BlobStore's opaque key.
CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    storage_key TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- Which repositories may serve which blobs (access and cross-repository mount).
CREATE TABLE repository_blobs (
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest        TEXT NOT NULL REFERENCES blobs (digest),
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);

-- Manifests keep their exact bytes.
CREATE TABLE manifests (
    id             INTEGER PRIMARY KEY,
    repository_id  INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    artifact_type  TEXT,
    subject_digest TEXT,
    annotations    TEXT,
    size           INTEGER NOT NULL,
    bytes          BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (repository_id, digest)
);
CREATE INDEX manifests_by_subject ON manifests (repository_id, subject_digest) WHERE subject_digest IS NOT NULL;

-- The garbage-collection graph: manifest -> blob and index -> child manifest.
CREATE TABLE manifest_blobs (
    manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    digest      TEXT NOT NULL,
    PRIMARY KEY (manifest_id, digest)
);
CREATE INDEX manifest_blobs_by_digest ON manifest_blobs (digest);

CREATE TABLE manifest_children (
    manifest_id  INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    child_digest TEXT NOT NULL,
    PRIMARY KEY (manifest_id, child_digest)
);
CREATE INDEX manifest_children_by_child ON manifest_children (child_digest);

-- A tag is a series of versions; the live one has lifetime_end NULL.
CREATE TABLE tags (
    id             INTEGER PRIMARY KEY,
    repository_id  INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    manifest_id    INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    lifetime_start INTEGER NOT NULL,
    lifetime_end   INTEGER,
    immutable      INTEGER NOT NULL DEFAULT 0,
    expires_at     INTEGER
);
CREATE UNIQUE INDEX tags_live ON tags (repository_id, name) WHERE lifetime_end IS NULL;
CREATE INDEX tags_by_manifest ON tags (manifest_id);

-- Upload sessions, resumable from any instance and across restarts.
CREATE TABLE uploads (
    id                TEXT PRIMARY KEY,
    repository_id     INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    storage_key       TEXT NOT NULL,
    length            INTEGER NOT NULL,
    hash_algorithm    TEXT NOT NULL,
    hash_state        BLOB NOT NULL,
    hash_state_format TEXT NOT NULL,
    backend_state     BLOB NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX uploads_by_update ON uploads (updated_at);

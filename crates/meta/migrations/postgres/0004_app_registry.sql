-- Quay's App Registry: packages are repositories of kind 'application'. A release has one
-- manifest per media type, each naming a blob; channels point at releases.

-- The protocol's digest (hex SHA-256 of the uncompressed tar) to the stored gzip bytes. The
-- first bytes stored for a digest are kept.
CREATE TABLE app_blobs (
    digest      TEXT COLLATE "C" PRIMARY KEY,
    blob_digest TEXT COLLATE "C" NOT NULL REFERENCES blobs (digest),
    created_at  BIGINT NOT NULL
);

CREATE TABLE app_releases (
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    release       TEXT COLLATE "C" NOT NULL,
    media_type    TEXT COLLATE "C" NOT NULL,
    digest        TEXT COLLATE "C" NOT NULL REFERENCES app_blobs (digest),
    metadata      TEXT COLLATE "C",
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, release, media_type)
);
CREATE INDEX app_releases_by_digest ON app_releases (digest);

CREATE TABLE app_channels (
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name          TEXT COLLATE "C" NOT NULL,
    current       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repository_id, name)
);

-- The releases a channel has held and still may fall back to.
CREATE TABLE app_channel_releases (
    repository_id BIGINT NOT NULL,
    channel       TEXT COLLATE "C" NOT NULL,
    release       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repository_id, channel, release),
    FOREIGN KEY (repository_id, channel) REFERENCES app_channels (repository_id, name) ON DELETE CASCADE
);

CREATE INDEX repositories_by_kind ON repositories (kind, namespace_id);

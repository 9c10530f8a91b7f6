//! The App Registry half of the SQL MetaStore (both backends). Reads are a fixed number of statements per call (a
//! package: its row, its releases, its channels, in one read transaction); the listing of a
//! namespace is one statement whatever it holds.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use berth_core::access::{Principal, RepositoryKind};
use berth_core::appregistry::store::{AppPush, AppRegistryStore, PackageRow};
use berth_core::appregistry::{AppChannel, AppPackage, AppRelease, ListedRelease, exists, version};
use berth_core::ports::BlobRecord;
use berth_core::tenancy::records::AuditEntry;
use berth_core::{Error, Result};
use berth_oci::RepositoryName;
use sqlx::AssertSqlSafe;

use super::lease::{Tx, Within};
use super::registry::SqlMetaStore;
use super::shared::{READABLE, ensure_repository, insert_audit, principal_ids, wrong_kind};
use super::tenancy::parse;
use crate::rows::BlobRow;

fn blob_record(digest: String, size: i64, storage_key: String) -> Result<BlobRecord> {
    BlobRow::new(digest, size, storage_key).into_record()
}

/// The id of an application repository; `None` when there is none, `WrongKind` for an image
/// repository.
async fn package_id(tx: &mut Tx<'_>, name: &RepositoryName) -> Result<Option<i64>> {
    let row: Option<(i64, String)> = sqlx::query_as("SELECT id, kind FROM repositories WHERE name = $1")
        .bind(name.as_str())
        .fetch_optional(&mut *tx.conn)
        .within(tx.limit)
        .await?;
    match row {
        None => Ok(None),
        Some((_, kind)) if kind != RepositoryKind::Application.as_str() => Err(wrong_kind(name, &kind)),
        Some((id, _)) => Ok(Some(id)),
    }
}

/// Whether the package has the release, in any media type.
async fn has_release(tx: &mut Tx<'_>, repository_id: i64, release: &str) -> Result<bool> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM app_releases WHERE repository_id = $1 AND release = $2 LIMIT 1")
            .bind(repository_id)
            .bind(release)
            .fetch_optional(&mut *tx.conn)
            .within(tx.limit)
            .await?;
    Ok(found.is_some())
}

/// A channel's releases, newest first.
async fn channel_releases(tx: &mut Tx<'_>, repository_id: i64, channel: &str) -> Result<Vec<String>> {
    let mut releases: Vec<String> =
        sqlx::query_scalar("SELECT release FROM app_channel_releases WHERE repository_id = $1 AND channel = $2")
            .bind(repository_id)
            .bind(channel)
            .fetch_all(&mut *tx.conn)
            .within(tx.limit)
            .await?;
    version::sort_descending(&mut releases);
    Ok(releases)
}

/// After `channel` lost releases: deletes it when none are left, otherwise makes its highest
/// remaining release current (with `lost`, only if its current was that release).
async fn settle_channel(tx: &mut Tx<'_>, repository_id: i64, channel: &str, lost: Option<&str>) -> Result<()> {
    let remaining = channel_releases(tx, repository_id, channel).await?;
    let statement = match remaining.first() {
        None => sqlx::query("DELETE FROM app_channels WHERE repository_id = $1 AND name = $2")
            .bind(repository_id)
            .bind(channel),
        Some(highest) => sqlx::query(
            "UPDATE app_channels SET current = $1 WHERE repository_id = $2 AND name = $3 \
             AND ($4 IS NULL OR current = $4)",
        )
        .bind(highest.clone())
        .bind(repository_id)
        .bind(channel)
        .bind(lost),
    };
    statement.execute(&mut *tx.conn).within(tx.limit).await?;
    Ok(())
}

type ReleaseRow = (String, String, String, Option<String>, i64, String, i64, String);

#[async_trait]
impl AppRegistryStore for SqlMetaStore {
    async fn app_package(&self, name: &RepositoryName) -> Result<Option<AppPackage>> {
        let mut lease = self.reader.lease().await?;
        let mut tx = lease.begin().await?;
        let row: Option<(i64, String, String, i64)> =
            sqlx::query_as("SELECT id, kind, visibility, created_at FROM repositories WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(&mut *tx.conn)
                .within(tx.limit)
                .await?;
        let Some((id, kind, visibility, created_at)) = row else { return Ok(None) };
        let kind: RepositoryKind = parse(&kind)?;
        let mut package = AppPackage {
            name: name.to_string(),
            kind,
            visibility: parse(&visibility)?,
            created_at,
            releases: Vec::new(),
            channels: Vec::new(),
        };
        if kind != RepositoryKind::Application {
            return Ok(Some(package));
        }
        let rows: Vec<ReleaseRow> = sqlx::query_as(
            "SELECT ar.release, ar.media_type, ar.digest, ar.metadata, ar.created_at, b.digest, b.size, b.storage_key \
             FROM app_releases ar JOIN app_blobs ab ON ab.digest = ar.digest JOIN blobs b ON b.digest = ab.blob_digest \
             WHERE ar.repository_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        let channels: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT c.name, c.current, cr.release FROM app_channels c LEFT JOIN app_channel_releases cr \
             ON cr.repository_id = c.repository_id AND cr.channel = c.name WHERE c.repository_id = $1 ORDER BY c.name",
        )
        .bind(id)
        .fetch_all(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        tx.commit().await?;
        // Assembling the package needs no connection: let it go for the next request.
        drop(lease);

        for (release, media_type, digest, metadata, created_at, blob_digest, size, storage_key) in rows {
            let blob = blob_record(blob_digest, size, storage_key)?;
            package.releases.push(AppRelease { release, media_type, digest, blob, metadata, created_at });
        }
        let mut order: Vec<String> = package.releases.iter().map(|r| r.release.clone()).collect();
        order.dedup();
        version::sort_descending(&mut order);
        let rank: BTreeMap<&str, usize> = order.iter().enumerate().map(|(i, r)| (r.as_str(), i)).collect();
        package.releases.sort_by(|a, b| {
            (rank.get(a.release.as_str()), &a.media_type).cmp(&(rank.get(b.release.as_str()), &b.media_type))
        });
        let mut by_channel: BTreeMap<String, AppChannel> = BTreeMap::new();
        for (channel, current, release) in channels {
            let entry = by_channel.entry(channel.clone()).or_insert_with(|| AppChannel {
                name: channel,
                current,
                releases: Vec::new(),
            });
            entry.releases.extend(release);
        }
        package.channels = by_channel
            .into_values()
            .map(|mut c| {
                version::sort_descending(&mut c.releases);
                c
            })
            .collect();
        Ok(Some(package))
    }

    async fn app_packages(&self, namespace: Option<&str>) -> Result<Vec<PackageRow>> {
        let rows: Vec<(String, String, i64, String, String, i64)> = sqlx::query_as(
            "SELECT r.name, r.visibility, r.created_at, ar.release, ar.media_type, ar.created_at \
             FROM repositories r JOIN app_releases ar ON ar.repository_id = r.id \
             WHERE r.kind = 'application' AND ($1 IS NULL OR r.namespace_id = (SELECT id FROM namespaces WHERE name = $1)) \
             ORDER BY r.name",
        )
        .bind(namespace)
        .fetch_all(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        let mut packages: Vec<PackageRow> = Vec::new();
        for (name, visibility, created_at, release, media_type, release_created_at) in rows {
            if packages.last().is_none_or(|p| p.name != name) {
                packages.push(PackageRow { name, visibility: parse(&visibility)?, created_at, releases: Vec::new() });
            }
            if let Some(package) = packages.last_mut() {
                package.releases.push(ListedRelease { release, media_type, created_at: release_created_at });
            }
        }
        Ok(packages)
    }

    async fn readable_private_packages(
        &self,
        principal: &Principal,
        namespace: Option<&str>,
    ) -> Result<HashSet<String>> {
        let (user, robot) = principal_ids(principal);
        let sql = format!(
            "SELECT r.name FROM repositories r WHERE r.kind = 'application' AND r.visibility = 'private' \
             AND ($4 IS NULL OR r.namespace_id = (SELECT id FROM namespaces WHERE name = $4)) AND {READABLE}"
        );
        let names: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(user)
            .bind(robot)
            .bind(principal.is_superuser())
            .bind(namespace)
            .fetch_all(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        Ok(names.into_iter().collect())
    }

    async fn repository_kind(&self, name: &RepositoryName) -> Result<Option<RepositoryKind>> {
        let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM repositories WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        kind.map(|k| parse(&k)).transpose()
    }

    async fn app_push(&self, push: &AppPush) -> Result<BlobRecord> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let (id, created) =
            ensure_repository(&mut tx, &push.name, RepositoryKind::Application, &push.creator, &push.creation_audit)
                .await?;
        if created {
            sqlx::query("UPDATE repositories SET visibility = $1 WHERE id = $2")
                .bind(push.visibility.as_str())
                .bind(id)
                .execute(&mut *tx.conn)
                .within(tx.limit)
                .await?;
        }
        let existing: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM app_releases WHERE repository_id = $1 AND release = $2 AND media_type = $3",
        )
        .bind(id)
        .bind(&push.release)
        .bind(&push.media_type)
        .fetch_optional(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        if existing.is_some() && !push.force {
            return Err(exists(&push.name, &push.release, &push.media_type));
        }
        // The first bytes stored for a protocol digest stay; later pushes of the same content
        // (a re-packed, byte-identical tar) reuse them.
        let stored: Option<(String, i64, String)> = sqlx::query_as(
            "SELECT b.digest, b.size, b.storage_key FROM app_blobs ab JOIN blobs b ON b.digest = ab.blob_digest \
             WHERE ab.digest = $1",
        )
        .bind(&push.digest)
        .fetch_optional(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        let stored = match stored {
            Some((digest, size, key)) => blob_record(digest, size, key)?,
            None => {
                sqlx::query(
                    "INSERT INTO blobs (digest, size, storage_key, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (digest) DO NOTHING",
                )
                .bind(push.blob.digest.as_str())
                .bind(crate::size_to_db(push.blob.size)?)
                .bind(&push.blob.storage_key)
                .bind(push.now)
                .execute(&mut *tx.conn)
                .within(tx.limit)
                .await?;
                let (digest, size, key): (String, i64, String) =
                    sqlx::query_as("SELECT digest, size, storage_key FROM blobs WHERE digest = $1")
                        .bind(push.blob.digest.as_str())
                        .fetch_one(&mut *tx.conn)
                        .within(tx.limit)
                        .await?;
                sqlx::query("INSERT INTO app_blobs (digest, blob_digest, created_at) VALUES ($1, $2, $3)")
                    .bind(&push.digest)
                    .bind(&digest)
                    .bind(push.now)
                    .execute(&mut *tx.conn)
                    .within(tx.limit)
                    .await?;
                blob_record(digest, size, key)?
            }
        };
        sqlx::query(
            "INSERT INTO app_releases (repository_id, release, media_type, digest, metadata, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (repository_id, release, media_type) \
             DO UPDATE SET digest = excluded.digest, metadata = excluded.metadata, created_at = excluded.created_at",
        )
        .bind(id)
        .bind(&push.release)
        .bind(&push.media_type)
        .bind(&push.digest)
        .bind(push.metadata.as_deref())
        .bind(push.now)
        .execute(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        insert_audit(&mut tx, &push.audit).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn app_delete_release(
        &self,
        name: &RepositoryName,
        release: &str,
        media_type: &str,
        audit: &AuditEntry,
    ) -> Result<bool> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let Some(id) = package_id(&mut tx, name).await? else { return Ok(false) };
        let deleted =
            sqlx::query("DELETE FROM app_releases WHERE repository_id = $1 AND release = $2 AND media_type = $3")
                .bind(id)
                .bind(release)
                .bind(media_type)
                .execute(&mut *tx.conn)
                .within(tx.limit)
                .await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        if !has_release(&mut tx, id, release).await? {
            // The release is gone: it leaves every channel that held it.
            let channels: Vec<String> = sqlx::query_scalar(
                "DELETE FROM app_channel_releases WHERE repository_id = $1 AND release = $2 RETURNING channel",
            )
            .bind(id)
            .bind(release)
            .fetch_all(&mut *tx.conn)
            .within(tx.limit)
            .await?;
            // Only channels whose current release it was move; the others keep theirs.
            for channel in channels {
                settle_channel(&mut tx, id, &channel, Some(release)).await?;
            }
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn app_channel_add(
        &self,
        name: &RepositoryName,
        channel: &str,
        release: &str,
        audit: &AuditEntry,
    ) -> Result<AppChannel> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let Some(id) = package_id(&mut tx, name).await? else {
            return Err(Error::PackageNotFound(format!("package {name} does not exist")));
        };
        if !has_release(&mut tx, id, release).await? {
            return Err(Error::ReleaseNotFound(format!("package {name} has no release {release}")));
        }
        sqlx::query(
            "INSERT INTO app_channels (repository_id, name, current) VALUES ($1, $2, $3) \
             ON CONFLICT (repository_id, name) DO UPDATE SET current = excluded.current",
        )
        .bind(id)
        .bind(channel)
        .bind(release)
        .execute(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        sqlx::query(
            "INSERT INTO app_channel_releases (repository_id, channel, release) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(channel)
        .bind(release)
        .execute(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        let releases = channel_releases(&mut tx, id, channel).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(AppChannel { name: channel.to_owned(), current: release.to_owned(), releases })
    }

    async fn app_channel_remove(
        &self,
        name: &RepositoryName,
        channel: &str,
        release: &str,
        audit: &AuditEntry,
    ) -> Result<Option<()>> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let Some(id) = package_id(&mut tx, name).await? else { return Ok(None) };
        let known: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM app_channels WHERE repository_id = $1 AND name = $2")
                .bind(id)
                .bind(channel)
                .fetch_optional(&mut *tx.conn)
                .within(tx.limit)
                .await?;
        if known.is_none() {
            return Ok(None);
        }
        sqlx::query("DELETE FROM app_channel_releases WHERE repository_id = $1 AND channel = $2 AND release = $3")
            .bind(id)
            .bind(channel)
            .bind(release)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        settle_channel(&mut tx, id, channel, None).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Some(()))
    }

    async fn app_channel_delete(&self, name: &RepositoryName, channel: &str, audit: &AuditEntry) -> Result<bool> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let Some(id) = package_id(&mut tx, name).await? else { return Ok(false) };
        let deleted = sqlx::query("DELETE FROM app_channels WHERE repository_id = $1 AND name = $2")
            .bind(id)
            .bind(channel)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}

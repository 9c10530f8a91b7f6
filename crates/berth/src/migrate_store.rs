//! `berth migrate-store`: moves a single-machine registry (SQLite and its blob store) onto
//! PostgreSQL and another blob store (S3 for many instances), keeping every digest, tag, tag
//! history, account, permission, App Registry release, signing key and audit row.

use std::collections::HashMap;
use std::sync::PoisonError;

use anyhow::Context;
use berth_core::stream::MeteredBody;
use berth_meta::DatabaseUrl;
use berth_meta::transfer::{PostgresTarget, SqliteSource};
use berth_oci::{Digest, Hasher};

use crate::app::{lock_data_dir, open_blobs};
use crate::config::Config;

/// What a move copied.
pub struct Moved {
    pub blobs: u64,
    pub bytes: u64,
    pub rows: Vec<(&'static str, u64)>,
}

/// Copies the registry `from` names into the empty database and blob store `to` names.
/// Every blob is hashed on its way and must match its digest. Run it with the old registry
/// stopped; the new one can start as soon as it returns.
pub async fn migrate_store(from: &Config, to: &Config) -> anyhow::Result<Moved> {
    let DatabaseUrl::Sqlite(source_path) = from.database_url()? else {
        anyhow::bail!("the registry to move must be a single-machine one, on SQLite");
    };
    let DatabaseUrl::Postgres(target_url) = to.database_url()? else {
        anyhow::bail!("the destination's [database] url must be a postgres:// URL");
    };
    let _lock = lock_data_dir(from)?;
    let source = SqliteSource::open(&source_path).await.context("opening the registry to move")?;
    let target = PostgresTarget::prepare(&target_url).await.context("preparing the destination database")?;
    let (old_blobs, new_blobs) = (open_blobs(from)?, open_blobs(to)?);
    new_blobs.ping().await.context("reaching the destination blob store")?;

    let mut new_keys = HashMap::new();
    let mut moved = Moved { blobs: 0, bytes: 0, rows: Vec::new() };
    for blob in source.blobs().await? {
        let digest = Digest::parse(&blob.digest).map_err(|e| anyhow::anyhow!("blob {}: {e}", blob.digest))?;
        let body = old_blobs.read(&blob.storage_key, None).await.with_context(|| format!("reading blob {digest}"))?;
        let (metered, meter) = MeteredBody::new(body, Hasher::new(digest.algorithm()), u64::MAX);
        let object = new_blobs.create().await?;
        let state = new_blobs.append(&object.key, 0, &object.backend_state, Box::pin(metered)).await?;
        let (copied, bytes) = {
            let mut meter = meter.lock().unwrap_or_else(PoisonError::into_inner);
            (std::mem::replace(&mut meter.hasher, Hasher::new(digest.algorithm())).finish(), meter.bytes)
        };
        if copied != digest || i64::try_from(bytes).ok() != Some(blob.size) {
            anyhow::bail!("blob {digest} reads back as {copied} ({bytes} bytes): the source store is damaged");
        }
        new_blobs.complete(&object.key, &state).await?;
        new_keys.insert(blob.storage_key, object.key);
        moved.blobs += 1;
        moved.bytes += bytes;
    }
    moved.rows = target.copy_from(&source, &new_keys).await.context("copying the metadata")?;
    source.close().await;
    Ok(moved)
}

//! The object-store backend, on `object_store`: S3 (AWS or any S3-compatible store), and
//! behind cargo features Google Cloud Storage (`gcs`, see `gcs.rs`) and Azure Blob Storage
//! (`azure`, see `azure.rs`). One engine, [`ObjectBlobStore`], serves all three; it is written
//! to S3's rules, which the other two meet: GCS's multipart (XML API) uploads have the same
//! 5 MiB minimum, and on Azure parts are uncommitted blocks, committed by `complete` (there
//! `abort` is a no-op and Azure drops uncommitted blocks after a week).
//!
//! S3 has no append, and every multipart part but the last must be at least 5 MiB, while
//! registry clients send chunks of any size. So an upload keeps its unfinished end in a
//! separate *tail* object: each append reads the tail, adds the body, uploads every full
//! [`PART_SIZE`] as the next part of one multipart upload and writes the rest as the new tail.
//! `complete` sends the tail as the last part (or the whole object in one PUT when the upload
//! never filled a part) and completes the multipart upload.
//!
//! Layout under the configured prefix:
//! - `blobs/<key>`: the object, visible once complete;
//! - `uploads/<key>/tail-<n>`: the bytes after the first `n` parts. Named by `n` so that an
//!   append which uploaded parts but whose new state was never recorded cannot overwrite the
//!   tail the recorded state still needs;
//! - `uploads/<key>/multipart-id`: the multipart upload's id, for `delete`, which gets no state.
//!
//! The backend state (JSON, stored by the caller) is the truth: the multipart id, the parts
//! recorded so far and the tail's length. Parts or tail bytes beyond it, left by an interrupted
//! append, are overwritten or ignored.

use std::fmt;
use std::io;

use async_trait::async_trait;
use berth_core::ports::{BlobStore, NewObject};
use berth_core::stream::ByteStream;
use berth_core::{Error, Result};
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Bytes per multipart part: above S3's 5 MiB minimum, and held in memory by each append in
/// flight. With S3's 10,000 parts, objects up to 80 GiB.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Where and how to reach the bucket (also the `[storage.s3]` configuration table).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// e.g. `http://minio:9000`; `None` is AWS S3 in `region`. Requests are path-style.
    pub endpoint: Option<String>,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub access_key_id: String,
    #[serde(default)]
    pub secret_access_key: String,
    /// Keys are written under this prefix (e.g. `berth/prod`); empty for the bucket's root.
    #[serde(default)]
    pub prefix: String,
    /// Allows a plain-HTTP endpoint.
    #[serde(default)]
    pub allow_http: bool,
}

fn default_region() -> String {
    "us-east-1".into()
}

// By hand so that the secret never reaches a log.
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("prefix", &self.prefix)
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

/// A blob store on an object store `S` (see the module documentation).
pub struct ObjectBlobStore<S> {
    inner: S,
    root: Path,
}

/// The S3 backend.
pub type S3BlobStore = ObjectBlobStore<AmazonS3>;

/// What `append` and `complete` need to continue an upload, serialized as JSON.
#[derive(Debug, Default, Serialize, Deserialize)]
struct UploadState {
    /// Started with the first full part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multipart_id: Option<String>,
    #[serde(default)]
    parts: Vec<Part>,
    /// Bytes of `tail-<parts.len()>` that belong to the upload.
    #[serde(default)]
    tail_len: u64,
    /// A tail superseded by parts the previous append uploaded, deleted by the next call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stale_tail: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Part {
    etag: String,
    size: u64,
}

impl UploadState {
    fn decode(bytes: &[u8]) -> Result<UploadState> {
        serde_json::from_slice(bytes).map_err(|e| Error::Backend(format!("malformed object-store upload state: {e}")))
    }

    fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(Error::backend)
    }

    fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum::<u64>() + self.tail_len
    }
}

fn store_error(context: &str, e: object_store::Error) -> Error {
    Error::Backend(format!("{context}: {e}"))
}

/// Deleting what is already gone succeeds.
fn ignore_missing(result: object_store::Result<()>) -> object_store::Result<()> {
    match result {
        Err(object_store::Error::NotFound { .. }) => Ok(()),
        other => other,
    }
}

impl S3BlobStore {
    /// A store on `config`'s bucket. Sends no request: [`BlobStore::ping`] checks the bucket.
    pub fn new(config: S3Config) -> object_store::Result<S3BlobStore> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(config.bucket)
            .with_region(config.region)
            .with_access_key_id(config.access_key_id)
            .with_secret_access_key(config.secret_access_key)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        ObjectBlobStore::with_prefix(builder.build()?, &config.prefix)
    }
}

impl<S> ObjectBlobStore<S> {
    /// `inner`, with keys under `prefix`; for the backends' constructors.
    pub(crate) fn with_prefix(inner: S, prefix: &str) -> object_store::Result<ObjectBlobStore<S>> {
        Ok(ObjectBlobStore { inner, root: Path::parse(prefix)? })
    }
}

impl<S> ObjectBlobStore<S>
where
    S: ObjectStore + MultipartStore + Signer + PaginatedListStore,
{
    fn blob_path(&self, key: &str) -> Result<Path> {
        // Keys come from `create`; anything else could reach other objects, e.g. a tail.
        let valid = key.len() == 32 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(Error::Backend(format!("malformed storage key {key:?}")));
        }
        Ok(self.root.clone().join("blobs").join(key))
    }

    /// Everything but the object itself; the key was checked by `blob_path`.
    fn scratch_dir(&self, key: &str) -> Path {
        self.root.clone().join("uploads").join(key)
    }

    fn tail_path(&self, key: &str, parts: usize) -> Path {
        self.scratch_dir(key).join(format!("tail-{parts}"))
    }

    fn marker_path(&self, key: &str) -> Path {
        self.scratch_dir(key).join("multipart-id")
    }

    async fn read_tail(&self, key: &str, state: &UploadState) -> Result<Bytes> {
        if state.tail_len == 0 {
            return Ok(Bytes::new());
        }
        let path = self.tail_path(key, state.parts.len());
        let tail = self
            .inner
            .get_range(&path, 0..state.tail_len)
            .await
            .map_err(|e| store_error("reading an upload's tail", e))?;
        if tail.len() as u64 != state.tail_len {
            return Err(Error::Backend(format!(
                "upload tail {path} has {} bytes, the upload recorded {}",
                tail.len(),
                state.tail_len
            )));
        }
        Ok(tail)
    }

    async fn multipart_marker(&self, key: &str) -> Result<Option<String>> {
        let got = match self.inner.get(&self.marker_path(key)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(store_error("reading a multipart id", e)),
        };
        let bytes = got.bytes().await.map_err(|e| store_error("reading a multipart id", e))?;
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| Error::Backend("malformed multipart id".into()))
    }

    async fn start_multipart(&self, key: &str, blob: &Path) -> Result<String> {
        // An append that started one but whose state was never recorded left its id: reuse it
        // rather than leak an upload S3 keeps (and bills) until aborted.
        if let Some(id) = self.multipart_marker(key).await? {
            return Ok(id);
        }
        let id = self.inner.create_multipart(blob).await.map_err(|e| store_error("starting a multipart upload", e))?;
        self.inner
            .put(&self.marker_path(key), id.clone().into_bytes().into())
            .await
            .map_err(|e| store_error("recording a multipart id", e))?;
        Ok(id)
    }

    async fn upload_part(&self, key: &str, blob: &Path, state: &mut UploadState, data: Bytes) -> Result<()> {
        let id = match &state.multipart_id {
            Some(id) => id.clone(),
            None => state.multipart_id.insert(self.start_multipart(key, blob).await?).clone(),
        };
        let size = data.len() as u64;
        let part = self
            .inner
            .put_part(blob, &id, state.parts.len(), data.into())
            .await
            .map_err(|e| store_error("uploading a part", e))?;
        state.parts.push(Part { etag: part.content_id, size });
        Ok(())
    }

    /// Writes the object from the recorded parts and tail.
    async fn seal(&self, key: &str, blob: &Path, state: &UploadState) -> Result<()> {
        let tail = self.read_tail(key, state).await?;
        if state.parts.is_empty() {
            self.inner.put(blob, tail.into()).await.map_err(|e| store_error("writing an object", e))?;
            return Ok(());
        }
        let id = state
            .multipart_id
            .as_ref()
            .ok_or_else(|| Error::Backend("upload state has parts but no multipart id".into()))?;
        let mut parts: Vec<PartId> = state.parts.iter().map(|p| PartId { content_id: p.etag.clone() }).collect();
        if !tail.is_empty() {
            let last = self
                .inner
                .put_part(blob, id, parts.len(), tail.into())
                .await
                .map_err(|e| store_error("uploading a part", e))?;
            parts.push(last);
        }
        self.inner
            .complete_multipart(blob, id, parts)
            .await
            .map_err(|e| store_error("completing a multipart upload", e))?;
        Ok(())
    }

    /// Deletes the upload's tails and multipart marker.
    async fn remove_scratch(&self, key: &str) -> Result<()> {
        let paths: Vec<Path> = self
            .inner
            .list(Some(&self.scratch_dir(key)))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| store_error("listing an upload's scratch objects", e))?;
        if paths.is_empty() {
            return Ok(());
        }
        self.inner
            .delete_stream(stream::iter(paths.into_iter().map(Ok)).boxed())
            .try_for_each(|_| async { Ok(()) })
            .await
            .or_else(|e| ignore_missing(Err(e)))
            .map_err(|e| store_error("deleting an upload's scratch objects", e))
    }
}

#[async_trait]
impl<S> BlobStore for ObjectBlobStore<S>
where
    S: ObjectStore + MultipartStore + Signer + PaginatedListStore,
{
    async fn ping(&self) -> Result<()> {
        // One listing request: fails on a wrong bucket or credentials, unlike a HEAD's 404.
        let opts = PaginatedListOptions { max_keys: Some(1), ..Default::default() };
        let prefix = format!("{}/", self.root.clone().join("blobs"));
        self.inner.list_paginated(Some(&prefix), opts).await.map_err(|e| store_error("listing the bucket", e))?;
        Ok(())
    }

    async fn direct_url(&self, key: &str, ttl: Duration) -> Result<Option<String>> {
        let url = self
            .inner
            .signed_url(http::Method::GET, &self.blob_path(key)?, ttl)
            .await
            .map_err(|e| store_error("signing a download URL", e))?;
        Ok(Some(url.to_string()))
    }

    async fn create(&self) -> Result<NewObject> {
        // Nothing to write yet: tail and multipart upload start with the first bytes.
        let key = uuid::Uuid::new_v4().simple().to_string();
        Ok(NewObject { key, backend_state: UploadState::default().encode()? })
    }

    async fn append(&self, key: &str, offset: u64, backend_state: &[u8], mut body: ByteStream) -> Result<Vec<u8>> {
        let blob = self.blob_path(key)?;
        let mut state = UploadState::decode(backend_state)?;
        if offset != state.len() {
            return Err(Error::Backend(format!(
                "object {key} has {} bytes, the upload recorded {offset}",
                state.len()
            )));
        }
        if let Some(parts) = state.stale_tail.take() {
            // The state that replaced it is recorded now. Leftovers go at `complete` anyway.
            if let Err(e) = ignore_missing(self.inner.delete(&self.tail_path(key, parts)).await) {
                tracing::warn!(key, error = %e, "could not delete a superseded upload tail");
            }
        }
        let first_part = state.parts.len();
        let had_tail = state.tail_len > 0;
        let mut buf = BytesMut::from(self.read_tail(key, &state).await?);
        let mut received = false;
        while let Some(item) = body.next().await {
            // Nothing is recorded on failure; parts uploaded so far are overwritten later.
            let chunk = item.map_err(|e| Error::BlobUploadInvalid(format!("upload body ended early: {e}")))?;
            received |= !chunk.is_empty();
            buf.extend_from_slice(&chunk);
            while buf.len() >= PART_SIZE {
                let part = buf.split_to(PART_SIZE).freeze();
                self.upload_part(key, &blob, &mut state, part).await?;
            }
        }
        state.tail_len = buf.len() as u64;
        if had_tail && state.parts.len() > first_part {
            state.stale_tail = Some(first_part);
        }
        if received && !buf.is_empty() {
            self.inner
                .put(&self.tail_path(key, state.parts.len()), buf.freeze().into())
                .await
                .map_err(|e| store_error("writing an upload's tail", e))?;
        }
        state.encode()
    }

    async fn complete(&self, key: &str, backend_state: &[u8]) -> Result<()> {
        let blob = self.blob_path(key)?;
        let state = UploadState::decode(backend_state)?;
        if let Err(e) = self.seal(key, &blob, &state).await {
            // A retry after sealing succeeded but was not recorded: the tail or the multipart
            // upload is gone, and the object is already whole.
            match self.inner.head(&blob).await {
                Ok(meta) if meta.size == state.len() => {}
                _ => return Err(e),
            }
        }
        // The object is whole; leftovers only cost storage.
        if let Err(e) = self.remove_scratch(key).await {
            tracing::warn!(key, error = %e, "could not delete a completed upload's scratch objects");
        }
        Ok(())
    }

    async fn read(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream> {
        let blob = self.blob_path(key)?;
        let got = match range {
            None => self.inner.get(&blob).await,
            Some((start, 0)) => {
                // S3 has no empty range; the object must exist and be long enough.
                let meta = self.inner.head(&blob).await.map_err(|e| store_error("opening an object", e))?;
                if start > meta.size {
                    return Err(Error::Backend(format!("range {start}+0 is beyond object {key}")));
                }
                return Ok(Box::pin(stream::empty()));
            }
            Some((start, len)) => {
                let end = start.checked_add(len).ok_or_else(|| Error::Backend("range overflows".into()))?;
                let opts = GetOptions { range: Some(GetRange::Bounded(start..end)), ..Default::default() };
                self.inner.get_opts(&blob, opts).await
            }
        }
        .map_err(|e| store_error("opening an object", e))?;
        if let Some((start, len)) = range
            && got.range != (start..start + len)
        {
            // S3 serves what exists of a range that runs past the end.
            return Err(Error::Backend(format!(
                "range {start}+{len} is beyond object {key} ({} bytes)",
                got.meta.size
            )));
        }
        Ok(Box::pin(got.into_stream().map_err(io::Error::other)))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let blob = self.blob_path(key)?;
        // The port passes no state: the multipart id, if any, comes from the marker.
        if let Some(id) = self.multipart_marker(key).await? {
            // NotFound: the marker outlived a completed (or aborted) upload. Other errors keep
            // the marker, so that a retry can still abort.
            ignore_missing(self.inner.abort_multipart(&blob, &id).await)
                .map_err(|e| store_error("aborting a multipart upload", e))?;
        }
        ignore_missing(self.inner.delete(&blob).await).map_err(|e| store_error("deleting an object", e))?;
        self.remove_scratch(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3_test_server::S3TestServer as Server;

    const MIB: usize = 1024 * 1024;

    async fn server() -> Server {
        Server::start().await
    }

    fn config(server: &Server) -> S3Config {
        server.config("registry/main")
    }

    fn store(server: &Server) -> S3BlobStore {
        S3BlobStore::new(config(server)).expect("store")
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ seed).collect()
    }

    /// `data` in 64 KiB chunks, as a client's body arrives.
    fn body(data: &[u8]) -> ByteStream {
        let chunks: Vec<io::Result<Bytes>> = data.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Box::pin(stream::iter(chunks))
    }

    fn failing_body(data: &[u8]) -> ByteStream {
        let items = vec![Ok(Bytes::copy_from_slice(data)), Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone"))];
        Box::pin(stream::iter(items))
    }

    async fn read_all(store: &S3BlobStore, key: &str, range: Option<(u64, u64)>) -> Vec<u8> {
        let chunks: Vec<Bytes> = store.read(key, range).await.expect("read opens").try_collect().await.expect("read");
        chunks.concat()
    }

    async fn scratch_objects(store: &S3BlobStore, key: &str) -> usize {
        store.inner.list(Some(&store.scratch_dir(key))).try_collect::<Vec<_>>().await.expect("list").len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance() {
        let server = server().await;
        crate::testsuite::run(&store(&server)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_chunks_grow_a_tail_and_full_parts_are_uploaded() {
        let server = server().await;
        let store = store(&server);
        let sizes = [3 * MIB, 3 * MIB, 1024, 7 * MIB, 9 * MIB];
        let data = pattern(sizes.iter().sum(), 5);
        let object = store.create().await.expect("create");
        let (mut state, mut offset) = (object.backend_state, 0);
        for size in sizes {
            state = store
                .append(&object.key, offset as u64, &state, body(&data[offset..offset + size]))
                .await
                .expect("append");
            offset += size;
            assert_eq!(UploadState::decode(&state).expect("state").len(), offset as u64);
        }
        let recorded = UploadState::decode(&state).expect("state");
        assert_eq!(recorded.parts.len(), 2, "22 MiB in 8 MiB parts");
        assert_eq!(recorded.tail_len, (data.len() - 2 * PART_SIZE) as u64);
        store.complete(&object.key, &state).await.expect("complete");
        assert_eq!(scratch_objects(&store, &object.key).await, 0, "tails and marker are gone");
        // A retried completion (its success was never recorded) finds the object whole.
        store.complete(&object.key, &state).await.expect("complete again");

        assert!(read_all(&store, &object.key, None).await == data);
        let total = data.len() as u64;
        let part = PART_SIZE as u64;
        for (start, len) in
            [(0, 1), (part - 1, 2), (2 * part - 10, 100), (5 * MIB as u64, 10 * MIB as u64), (total - 1, 1)]
        {
            let got = read_all(&store, &object.key, Some((start, len))).await;
            assert!(got == data[start as usize..(start + len) as usize], "range {start}+{len}");
        }
        assert!(read_all(&store, &object.key, Some((total, 0))).await.is_empty());
        assert!(store.read(&object.key, Some((total - 1, 2))).await.is_err(), "a range past the end is an error");
        store.delete(&object.key).await.expect("delete");
        assert!(store.read(&object.key, None).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_recorded_state_survives_lost_and_failed_appends_and_a_restart() {
        let server = server().await;
        let data = pattern(12 * MIB + 5, 9);
        let split = 6 * MIB;
        let (key, recorded) = {
            let first = store(&server);
            let object = first.create().await.expect("create");
            let recorded =
                first.append(&object.key, 0, &object.backend_state, body(&data[..split])).await.expect("append");
            // Succeeds (a part and the next tail are written) but its state is never recorded.
            first.append(&object.key, split as u64, &recorded, body(&pattern(5 * MIB, 1))).await.expect("lost append");
            // Fails after filling and uploading a part of garbage.
            let failed = first.append(&object.key, split as u64, &recorded, failing_body(&pattern(4 * MIB, 2))).await;
            assert!(matches!(failed, Err(Error::BlobUploadInvalid(_))), "{failed:?}");
            (object.key, recorded)
        };
        // A restart: a fresh store continues from what the database recorded.
        let second = store(&server);
        assert!(second.append(&key, split as u64 + 1, &recorded, body(b"x")).await.is_err(), "offset past the state");
        let state = second.append(&key, split as u64, &recorded, body(&data[split..])).await.expect("resume");
        second.complete(&key, &state).await.expect("complete");
        assert!(read_all(&second, &key, None).await == data);
        second.delete(&key).await.expect("delete");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delete_aborts_an_unfinished_multipart_upload() {
        let server = server().await;
        let store = store(&server);
        let object = store.create().await.expect("create");
        let state =
            store.append(&object.key, 0, &object.backend_state, body(&pattern(9 * MIB, 3))).await.expect("append");
        assert!(UploadState::decode(&state).expect("state").multipart_id.is_some());
        store.delete(&object.key).await.expect("delete");
        assert_eq!(scratch_objects(&store, &object.key).await, 0);
        // s3s-fs keeps an upload's parts as `.upload_id-<id>...` files in its root.
        let pending = std::fs::read_dir(server.dir.path())
            .expect("read the server's root")
            .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with(".upload_id-")))
            .count();
        assert_eq!(pending, 0, "the multipart upload is aborted");
        assert!(store.complete(&object.key, &state).await.is_err(), "nothing is left to complete");
        store.delete(&object.key).await.expect("deleting twice is fine");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ping_checks_bucket_and_credentials() {
        let server = server().await;
        store(&server).ping().await.expect("ping");
        let missing = S3BlobStore::new(S3Config { bucket: "missing".into(), ..config(&server) }).expect("store");
        assert!(missing.ping().await.is_err(), "a missing bucket");
        let wrong = S3BlobStore::new(S3Config { secret_access_key: "wrong".into(), ..config(&server) }).expect("store");
        assert!(wrong.ping().await.is_err(), "wrong credentials");
    }

    #[test]
    fn the_secret_stays_out_of_debug_output() {
        let config = S3Config {
            endpoint: None,
            bucket: "b".into(),
            region: "r".into(),
            access_key_id: "id".into(),
            secret_access_key: "hunter2".into(),
            prefix: String::new(),
            allow_http: false,
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn refuses_malformed_keys() {
        let config = S3Config {
            endpoint: Some("http://127.0.0.1:9".into()),
            bucket: "b".into(),
            region: "r".into(),
            access_key_id: "id".into(),
            secret_access_key: "secret".into(),
            prefix: String::new(),
            allow_http: true,
        };
        let store = S3BlobStore::new(config).expect("store");
        for key in ["../uploads/x", "", "ABCDEF0123456789abcdef0123456789", "0123456789abcdef0123456789abcdef/"] {
            assert!(store.blob_path(key).is_err(), "{key}");
        }
    }
}

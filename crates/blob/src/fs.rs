//! The local-filesystem backend: one file per object under `root/<2 hex>/<32 hex>`.
//!
//! Writes run on a blocking thread fed through a small bounded channel, so a slow disk slows
//! the client and no body is ever held in memory; each append ends with `fdatasync`, and an
//! object's directory entry is synced before it may become a blob. Reads are positional
//! reads of [`READ_CHUNK`] bytes into recycled buffers: the first chunk is read when the
//! object is opened (small blobs need nothing more), the rest by a thread that stays one
//! chunk ahead of the socket.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use berth_core::ports::{BlobStore, NewObject};
use berth_core::stream::ByteStream;
use berth_core::{Error, Result};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;

/// Bytes per read when serving an object: large enough for throughput, small enough that
/// many concurrent downloads stay within a few MiB.
const READ_CHUNK: usize = 128 * 1024;
/// Body chunks queued towards the writer thread.
const WRITE_QUEUE: usize = 8;

pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<FsBlobStore> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(FsBlobStore { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        let valid = key.len() == 32 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(Error::Backend(format!("malformed storage key {key:?}")));
        }
        Ok(self.root.join(&key[..2]).join(key))
    }
}

fn io_error(context: &str, e: io::Error) -> Error {
    Error::Backend(format!("{context}: {e}"))
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::Backend(format!("blocking task failed: {e}"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn ping(&self) -> Result<()> {
        let metadata =
            tokio::fs::metadata(&self.root).await.map_err(|e| Error::Backend(format!("blob directory: {e}")))?;
        if metadata.is_dir() { Ok(()) } else { Err(Error::Backend("the blob directory is not a directory".into())) }
    }

    async fn create(&self) -> Result<NewObject> {
        let key = uuid::Uuid::new_v4().simple().to_string();
        let path = self.path(&key)?;
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            let dir = path.parent().unwrap_or(&root);
            if !dir.exists() {
                std::fs::create_dir_all(dir)?;
                sync_dir(&root)?;
            }
            OpenOptions::new().write(true).create_new(true).open(&path)?;
            Ok(())
        })
        .await
        .map_err(join_error)?
        .map_err(|e| io_error("creating an upload object", e))?;
        Ok(NewObject { key, backend_state: Vec::new() })
    }

    async fn append(&self, key: &str, offset: u64, _backend_state: &[u8], mut body: ByteStream) -> Result<Vec<u8>> {
        let path = self.path(key)?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(WRITE_QUEUE);
        let writer = tokio::task::spawn_blocking(move || -> io::Result<()> {
            let mut file = OpenOptions::new().write(true).open(&path)?;
            let len = file.metadata()?.len();
            if len < offset {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("object has {len} bytes, the upload recorded {offset}"),
                ));
            }
            if len > offset {
                // Left over from a write whose progress was never recorded.
                file.set_len(offset)?;
            }
            file.seek(SeekFrom::Start(offset))?;
            while let Some(chunk) = rx.blocking_recv() {
                file.write_all(&chunk)?;
            }
            file.sync_data()
        });
        let mut body_error = None;
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) => {
                    if tx.send(chunk).await.is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
                Err(e) => {
                    body_error = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let written = writer.await.map_err(join_error)?;
        if let Some(e) = body_error {
            return Err(Error::BlobUploadInvalid(format!("upload body ended early: {e}")));
        }
        written.map_err(|e| io_error("writing an upload", e))?;
        Ok(Vec::new())
    }

    async fn complete(&self, key: &str, _backend_state: &[u8]) -> Result<()> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            File::open(&path)?.sync_all()?;
            sync_dir(path.parent().unwrap_or(&path))
        })
        .await
        .map_err(join_error)?
        .map_err(|e| io_error("completing an object", e))
    }

    async fn read(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream> {
        let path = self.path(key)?;
        let (file, start, len, first) = tokio::task::spawn_blocking(move || -> io::Result<_> {
            let file = File::open(&path)?;
            let size = file.metadata()?.len();
            let (start, len) = range.unwrap_or((0, size));
            if start.checked_add(len).is_none_or(|end| end > size) {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("range {start}+{len} is beyond the object's {size} bytes"),
                ));
            }
            let first = read_chunk(&file, start, len)?;
            Ok((file, start, len, first))
        })
        .await
        .map_err(join_error)?
        .map_err(|e| io_error("opening an object", e))?;
        let next = start + first.len() as u64;
        let remaining = len - first.len() as u64;
        let first = (!first.is_empty()).then_some(Ok(first));
        if remaining == 0 {
            return Ok(Box::pin(stream::iter(first)));
        }
        // The rest comes from a reader thread that stays one chunk ahead of the socket. It
        // waits for room in the channel before reading, so it never sits on a full buffer.
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(1);
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let (mut pos, mut remaining) = (next, remaining);
            while remaining > 0 {
                let Ok(slot) = runtime.block_on(tx.reserve()) else {
                    return; // the client went away
                };
                let chunk = read_chunk(&file, pos, remaining);
                let n = chunk.as_ref().map_or(remaining, |c| c.len() as u64);
                slot.send(chunk);
                pos += n;
                remaining -= n;
            }
        });
        let rest = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
        Ok(Box::pin(stream::iter(first).chain(rest)))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("deleting an object", e)),
        }
    }
}

/// Reads up to [`READ_CHUNK`] bytes at `pos`, never more than `remaining`, into a buffer
/// from [`BUFFERS`] that goes back there once the HTTP layer has sent it.
fn read_chunk(file: &File, pos: u64, remaining: u64) -> io::Result<Bytes> {
    let n = usize::try_from(remaining).map_or(READ_CHUNK, |r| r.min(READ_CHUNK));
    let mut chunk = PooledChunk { buf: BUFFERS.take(), len: n };
    file.read_exact_at(&mut chunk.buf[..n], pos)?;
    Ok(Bytes::from_owner(chunk))
}

/// Read buffers kept for reuse: a fresh buffer has to be zeroed before it can be read into
/// (safe Rust has no uninitialised reads), which cost more CPU than the read itself.
static BUFFERS: BufferPool = BufferPool { free: Mutex::new(Vec::new()) };

/// Buffers kept when idle (4 MiB); more may be in flight, and are freed when returned.
const POOLED_BUFFERS: usize = 32;

struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    fn take(&self) -> Vec<u8> {
        self.free.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_else(|| vec![0; READ_CHUNK])
    }

    fn give(&self, buf: Vec<u8>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < POOLED_BUFFERS && buf.len() == READ_CHUNK {
            free.push(buf);
        }
    }
}

/// The first `len` bytes of a pooled buffer, as the owner behind a `Bytes`.
struct PooledChunk {
    buf: Vec<u8>,
    len: usize,
}

impl AsRef<[u8]> for PooledChunk {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for PooledChunk {
    fn drop(&mut self) {
        BUFFERS.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path().join("blobs")).expect("open");
        crate::testsuite::run(&store).await;
    }

    #[tokio::test]
    async fn refuses_malformed_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).expect("open");
        for key in ["../../etc/passwd", "", "ABCDEF0123456789abcdef0123456789", "0123456789abcdef0123456789abcdef/"] {
            assert!(store.read(key, None).await.is_err(), "{key}");
            assert!(store.delete(key).await.is_err(), "{key}");
        }
    }
}

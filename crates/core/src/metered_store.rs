//! A BlobStore decorator that records each operation's latency and the bytes moved, for any
//! backend: `berth_blob_store_operation_duration_seconds{op}` and
//! `berth_blob_store_bytes_total{direction}`.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures_util::StreamExt;

use crate::Result;
use crate::ports::{BlobStore, NewObject};
use crate::stream::ByteStream;

pub struct MeteredBlobStore {
    inner: Arc<dyn BlobStore>,
}

impl MeteredBlobStore {
    pub fn new(inner: Arc<dyn BlobStore>) -> MeteredBlobStore {
        MeteredBlobStore { inner }
    }
}

/// Runs `operation`, recording how long it took.
async fn timed<T>(op: &'static str, operation: impl Future<Output = Result<T>>) -> Result<T> {
    let started = Instant::now();
    let result = operation.await;
    metrics::histogram!("berth_blob_store_operation_duration_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
    result
}

/// Counts the bytes of a stream as they pass.
fn counted(stream: ByteStream, direction: &'static str) -> ByteStream {
    let bytes = metrics::counter!("berth_blob_store_bytes_total", "direction" => direction);
    Box::pin(stream.inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            bytes.increment(chunk.len() as u64);
        }
    }))
}

#[async_trait]
impl BlobStore for MeteredBlobStore {
    async fn create(&self) -> Result<NewObject> {
        timed("create", self.inner.create()).await
    }

    async fn append(&self, key: &str, offset: u64, backend_state: &[u8], body: ByteStream) -> Result<Vec<u8>> {
        timed("append", self.inner.append(key, offset, backend_state, counted(body, "in"))).await
    }

    async fn complete(&self, key: &str, backend_state: &[u8]) -> Result<()> {
        timed("complete", self.inner.complete(key, backend_state)).await
    }

    /// Times the opening of the read; the bytes are counted as they stream out.
    async fn read(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream> {
        Ok(counted(timed("read", self.inner.read(key, range)).await?, "out"))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        timed("delete", self.inner.delete(key)).await
    }

    async fn ping(&self) -> Result<()> {
        timed("ping", self.inner.ping()).await
    }

    async fn direct_url(&self, key: &str, ttl: std::time::Duration) -> Result<Option<String>> {
        timed("direct_url", self.inner.direct_url(key, ttl)).await
    }
}

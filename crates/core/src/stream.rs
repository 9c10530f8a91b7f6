//! Byte streams flowing between the HTTP edge and the blob store, and the accounting
//! wrapper uploads pass through.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use berth_oci::Hasher;
use bytes::Bytes;
use futures_util::Stream;

pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// What a [`MeteredBody`] saw: bytes counted, the running hash, and why it stopped early.
pub struct Meter {
    pub hasher: Hasher,
    pub bytes: u64,
    pub overflow: bool,
}

/// Hashes and counts an upload body on its way to the store, and cuts it off with an
/// error once it passes `limit` bytes, so nothing over a limit is ever written in full.
pub struct MeteredBody {
    inner: ByteStream,
    meter: Arc<Mutex<Meter>>,
    limit: u64,
}

impl MeteredBody {
    pub fn new(inner: ByteStream, hasher: Hasher, limit: u64) -> (MeteredBody, Arc<Mutex<Meter>>) {
        let meter = Arc::new(Mutex::new(Meter { hasher, bytes: 0, overflow: false }));
        (MeteredBody { inner, meter: meter.clone(), limit }, meter)
    }
}

impl Stream for MeteredBody {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let poll = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &poll {
            let mut meter = self.meter.lock().unwrap_or_else(PoisonError::into_inner);
            meter.bytes += chunk.len() as u64;
            if meter.bytes > self.limit {
                meter.overflow = true;
                return Poll::Ready(Some(Err(io::Error::other("upload exceeds its size limit"))));
            }
            meter.hasher.update(chunk);
        }
        poll
    }
}

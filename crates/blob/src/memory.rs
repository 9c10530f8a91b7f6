//! An in-memory backend, for tests and throwaway registries.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use berth_core::ports::{BlobStore, NewObject};
use berth_core::stream::ByteStream;
use berth_core::{Error, Result};
use bytes::Bytes;
use futures_util::{StreamExt, stream};

#[derive(Default)]
pub struct MemoryBlobStore {
    objects: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryBlobStore {
    fn with_objects<T>(&self, f: impl FnOnce(&mut HashMap<String, Vec<u8>>) -> T) -> T {
        f(&mut self.objects.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn missing(key: &str) -> Error {
    Error::Backend(format!("no object {key}"))
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn create(&self) -> Result<NewObject> {
        let key = uuid::Uuid::new_v4().simple().to_string();
        self.with_objects(|o| o.insert(key.clone(), Vec::new()));
        Ok(NewObject { key, backend_state: Vec::new() })
    }

    async fn append(&self, key: &str, offset: u64, _backend_state: &[u8], mut body: ByteStream) -> Result<Vec<u8>> {
        let mut received = Vec::new();
        let mut body_error = None;
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) => received.extend_from_slice(&chunk),
                Err(e) => {
                    body_error = Some(e);
                    break;
                }
            }
        }
        self.with_objects(|o| {
            let object = o.get_mut(key).ok_or_else(|| missing(key))?;
            let offset = usize::try_from(offset).map_err(Error::backend)?;
            if object.len() < offset {
                return Err(Error::Backend(format!("object {key} is shorter than offset {offset}")));
            }
            object.truncate(offset);
            object.extend_from_slice(&received);
            Ok(())
        })?;
        match body_error {
            Some(e) => Err(Error::BlobUploadInvalid(format!("upload body ended early: {e}"))),
            None => Ok(Vec::new()),
        }
    }

    async fn complete(&self, key: &str, _backend_state: &[u8]) -> Result<()> {
        self.with_objects(|o| if o.contains_key(key) { Ok(()) } else { Err(missing(key)) })
    }

    async fn read(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream> {
        let bytes = self.with_objects(|o| {
            let object = o.get(key).ok_or_else(|| missing(key))?;
            let (start, len) = range.unwrap_or((0, object.len() as u64));
            let start = usize::try_from(start).map_err(Error::backend)?;
            let end = usize::try_from(len).ok().and_then(|len| start.checked_add(len));
            match end {
                Some(end) if end <= object.len() => Ok(Bytes::copy_from_slice(&object[start..end])),
                _ => Err(Error::Backend(format!("range beyond object {key}"))),
            }
        })?;
        let chunk = (!bytes.is_empty()).then_some(Ok(bytes));
        Ok(Box::pin(stream::iter(chunk)))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.with_objects(|o| o.remove(key));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        crate::testsuite::run(&super::MemoryBlobStore::default()).await;
    }
}

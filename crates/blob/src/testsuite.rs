//! The BlobStore conformance suite: what every backend must do, run against each of them.

use std::io;

use berth_core::Error;
use berth_core::ports::BlobStore;
use berth_core::stream::ByteStream;
use bytes::Bytes;
use futures_util::{StreamExt, stream};

/// Runs every check against `store`, panicking on the first failure.
pub async fn run(store: &dyn BlobStore) {
    appends_and_reads_back(store).await;
    resumes_after_an_interrupted_append(store).await;
    reads_ranges(store).await;
    empty_objects(store).await;
    deletes(store).await;
    objects_are_independent(store).await;
}

fn body(chunks: Vec<Vec<u8>>) -> ByteStream {
    Box::pin(stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))))
}

fn failing_body(first: Vec<u8>) -> ByteStream {
    let items = vec![Ok(Bytes::from(first)), Err(io::Error::new(io::ErrorKind::ConnectionReset, "client went away"))];
    Box::pin(stream::iter(items))
}

async fn read_all(store: &dyn BlobStore, key: &str, range: Option<(u64, u64)>) -> Vec<u8> {
    let mut s = store.read(key, range).await.expect("read opens");
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.expect("read chunk"));
    }
    out
}

/// Deterministic bytes that differ at every offset.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed).collect()
}

async fn appends_and_reads_back(store: &dyn BlobStore) {
    let object = store.create().await.expect("create");
    let data = pattern(700_000, 1);
    let mut state = object.backend_state;
    let mut offset = 0;
    for part in data.chunks(250_000) {
        let chunks = part.chunks(33_333).map(<[u8]>::to_vec).collect();
        state = store.append(&object.key, offset, &state, body(chunks)).await.expect("append");
        offset += part.len() as u64;
    }
    store.complete(&object.key, &state).await.expect("complete");
    assert_eq!(read_all(store, &object.key, None).await, data);
    store.delete(&object.key).await.expect("delete");
}

async fn resumes_after_an_interrupted_append(store: &dyn BlobStore) {
    let object = store.create().await.expect("create");
    let state =
        store.append(&object.key, 0, &object.backend_state, body(vec![b"hello ".to_vec()])).await.expect("append");
    // The body fails after some bytes: the append fails and its progress is not recorded.
    let err = store.append(&object.key, 6, &state, failing_body(b"garbage".to_vec())).await;
    assert!(matches!(err, Err(Error::BlobUploadInvalid(_))), "a failing body is reported as such: {err:?}");
    // Appending again at the recorded offset discards whatever the failed append left.
    let state = store.append(&object.key, 6, &state, body(vec![b"world".to_vec()])).await.expect("append again");
    store.complete(&object.key, &state).await.expect("complete");
    assert_eq!(read_all(store, &object.key, None).await, b"hello world");
    // An offset past the recorded end is refused.
    assert!(store.append(&object.key, 100, &state, body(vec![b"x".to_vec()])).await.is_err());
    store.delete(&object.key).await.expect("delete");
}

async fn reads_ranges(store: &dyn BlobStore) {
    let object = store.create().await.expect("create");
    let data = pattern(300_000, 7);
    let state = store.append(&object.key, 0, &object.backend_state, body(vec![data.clone()])).await.expect("append");
    store.complete(&object.key, &state).await.expect("complete");
    for (start, len) in [(0u64, 1u64), (10, 100), (131_071, 2), (299_999, 1), (0, 300_000), (150_000, 150_000)] {
        let got = read_all(store, &object.key, Some((start, len))).await;
        assert_eq!(got, data[start as usize..(start + len) as usize], "range {start}+{len}");
    }
    assert!(store.read(&object.key, Some((299_999, 2))).await.is_err(), "a range past the end is an error");
    store.delete(&object.key).await.expect("delete");
}

async fn empty_objects(store: &dyn BlobStore) {
    let object = store.create().await.expect("create");
    let state = store.append(&object.key, 0, &object.backend_state, body(vec![])).await.expect("append nothing");
    store.complete(&object.key, &state).await.expect("complete");
    assert!(read_all(store, &object.key, None).await.is_empty());
    store.delete(&object.key).await.expect("delete");
}

async fn deletes(store: &dyn BlobStore) {
    let object = store.create().await.expect("create");
    store.delete(&object.key).await.expect("delete");
    assert!(store.read(&object.key, None).await.is_err(), "a deleted object cannot be read");
    store.delete(&object.key).await.expect("deleting twice is fine");
}

async fn objects_are_independent(store: &dyn BlobStore) {
    let a = store.create().await.expect("create a");
    let b = store.create().await.expect("create b");
    assert_ne!(a.key, b.key);
    let (ra, rb) = futures_util::join!(
        store.append(&a.key, 0, &a.backend_state, body(vec![pattern(50_000, 2)])),
        store.append(&b.key, 0, &b.backend_state, body(vec![pattern(60_000, 3)]))
    );
    store.complete(&a.key, &ra.expect("append a")).await.expect("complete a");
    store.complete(&b.key, &rb.expect("append b")).await.expect("complete b");
    assert_eq!(read_all(store, &a.key, None).await, pattern(50_000, 2));
    assert_eq!(read_all(store, &b.key, None).await, pattern(60_000, 3));
    store.delete(&a.key).await.expect("delete a");
    store.delete(&b.key).await.expect("delete b");
}

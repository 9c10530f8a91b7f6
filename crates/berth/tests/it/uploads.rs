//! Blob uploads: monolithic, POST+PUT, chunked, streamed, status, cancel, mount, errors.

use reqwest::{Method, StatusCode};

use crate::support::content::bytes;
use crate::support::{TestRegistry, expect_error, header, sha256};

async fn open_session(reg: &TestRegistry, repo: &str) -> String {
    let r = reg.send(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-0");
    assert_eq!(header(&r, "content-length"), "0");
    let location = header(&r, "location").to_owned();
    assert!(location.starts_with(&format!("/v2/{repo}/blobs/uploads/")), "{location}");
    assert_eq!(location.rsplit('/').next(), Some(header(&r, "docker-upload-uuid")));
    location
}

async fn get_blob(reg: &TestRegistry, repo: &str, digest: &str) -> Vec<u8> {
    let r = reg.send(Method::GET, &format!("/v2/{repo}/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.bytes().await.expect("body").to_vec()
}

#[tokio::test]
async fn monolithic_post_with_digest() {
    let reg = TestRegistry::start().await;
    let data = bytes(100_000, 1);
    let digest = sha256(&data);
    let r = reg
        .req(Method::POST, &format!("/v2/team/app/blobs/uploads/?digest={digest}"))
        .body(data.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/team/app/blobs/{digest}"));
    assert_eq!(header(&r, "docker-content-digest"), digest);
    assert_eq!(get_blob(&reg, "team/app", &digest).await, data);
    reg.stop().await;
}

#[tokio::test]
async fn post_then_put() {
    let reg = TestRegistry::start().await;
    let data = bytes(5000, 2);
    let digest = sha256(&data);
    let location = open_session(&reg, "team/app").await;
    let r = reg.req(Method::PUT, &format!("{location}?digest={digest}")).body(data.clone()).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), digest);
    assert_eq!(get_blob(&reg, "team/app", &digest).await, data);
    // The session is over.
    expect_error(reg.send(Method::GET, &location).await, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    reg.stop().await;
}

#[tokio::test]
async fn chunked_upload_with_content_range() {
    let reg = TestRegistry::start().await;
    let data = bytes(300_000, 3);
    let digest = sha256(&data);
    let location = open_session(&reg, "team/chunks").await;
    let mut offset = 0;
    for chunk in data.chunks(70_000) {
        let end = offset + chunk.len() - 1;
        let r = reg
            .req(Method::PATCH, &location)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{offset}-{end}"))
            .body(chunk.to_vec())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&r, "range"), format!("0-{end}"));
        assert_eq!(header(&r, "location"), location);
        offset = end + 1;
        // GET reports the progress.
        let status = reg.send(Method::GET, &location).await;
        assert_eq!(status.status(), StatusCode::NO_CONTENT);
        assert_eq!(header(&status, "range"), format!("0-{end}"));
        assert_eq!(header(&status, "location"), location);
    }
    let r = reg.send(Method::PUT, &format!("{location}?digest={digest}")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&reg, "team/chunks", &digest).await, data);
    reg.stop().await;
}

#[tokio::test]
async fn out_of_order_and_overlapping_chunks_are_416() {
    let reg = TestRegistry::start().await;
    let location = open_session(&reg, "team/order").await;
    let patch = |range: &'static str, body: &'static [u8]| {
        reg.req(Method::PATCH, &location).header("content-range", range).body(body).send()
    };
    assert_eq!(patch("0-4", b"hello").await.expect("send").status(), StatusCode::ACCEPTED);
    for (range, body) in [("10-14", b"world".as_slice()), ("3-7", b"lo wo".as_slice()), ("0-4", b"hello".as_slice())] {
        let r = reg.req(Method::PATCH, &location).header("content-range", range).body(body).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "range {range}");
        assert_eq!(header(&r, "range"), "0-4", "the response says where the upload stands");
        assert_eq!(header(&r, "location"), location);
    }
    assert_eq!(patch("5-10", b" world").await.expect("send").status(), StatusCode::ACCEPTED);
    let digest = sha256(b"hello world");
    assert_eq!(reg.send(Method::PUT, &format!("{location}?digest={digest}")).await.status(), StatusCode::CREATED);
    reg.stop().await;
}

#[tokio::test]
async fn streamed_patch_without_range_docker_style() {
    let reg = TestRegistry::start().await;
    let data = bytes(1_000_000, 4);
    let digest = sha256(&data);
    let location = open_session(&reg, "team/stream").await;
    // A body without Content-Length (chunked transfer encoding), as docker sends it.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = data.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = reg.req(Method::PATCH, &location).body(body).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), format!("0-{}", data.len() - 1));
    // A second streamed PATCH continues where the first ended.
    let r = reg.req(Method::PATCH, &location).body(b"tail".to_vec()).send().await.expect("send");
    assert_eq!(header(&r, "range"), format!("0-{}", data.len() + 3));
    let mut whole = data.clone();
    whole.extend_from_slice(b"tail");
    let r = reg.send(Method::PUT, &format!("{location}?digest={}", sha256(&whole))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&reg, "team/stream", &sha256(&whole)).await, whole);
    assert_ne!(digest, sha256(&whole));
    reg.stop().await;
}

#[tokio::test]
async fn put_with_final_chunk_and_range() {
    let reg = TestRegistry::start().await;
    let location = open_session(&reg, "team/final").await;
    reg.req(Method::PATCH, &location).header("content-range", "0-2").body("abc").send().await.expect("send");
    let digest = sha256(b"abcdef");
    let r = reg
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .header("content-range", "3-5")
        .body("def")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&reg, "team/final", &digest).await, b"abcdef");
    reg.stop().await;
}

#[tokio::test]
async fn delete_cancels_an_upload() {
    let reg = TestRegistry::start().await;
    let location = open_session(&reg, "team/cancel").await;
    reg.req(Method::PATCH, &location).body("partial").send().await.expect("send");
    assert_eq!(reg.send(Method::DELETE, &location).await.status(), StatusCode::NO_CONTENT);
    expect_error(reg.send(Method::GET, &location).await, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    expect_error(reg.send(Method::DELETE, &location).await, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let r = reg.req(Method::PATCH, &location).body("more").send().await.expect("send");
    expect_error(r, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    // Nothing of it is left on disk.
    assert_eq!(count_files(&reg.data_dir().join("blobs")), 0);
    reg.stop().await;
}

#[tokio::test]
async fn upload_errors() {
    let reg = TestRegistry::start().await;
    let location = open_session(&reg, "team/errors").await;
    let id = location.rsplit('/').next().expect("id").to_owned();
    // Another repository's name, an unknown id, a malformed id.
    expect_error(
        reg.send(Method::GET, &format!("/v2/team/other/blobs/uploads/{id}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    expect_error(
        reg.send(Method::GET, "/v2/team/errors/blobs/uploads/00000000-0000-4000-8000-000000000000").await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    expect_error(
        reg.send(Method::GET, "/v2/team/errors/blobs/uploads/not-an-id").await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    // PUT without a digest, with a malformed one, with the wrong one.
    expect_error(reg.send(Method::PUT, &location).await, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    expect_error(
        reg.send(Method::PUT, &format!("{location}?digest=sha256:nope")).await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    let r = reg
        .req(Method::PUT, &format!("{location}?digest={}", sha256(b"other")))
        .body("content")
        .send()
        .await
        .expect("send");
    expect_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    // A failed digest check ends the session.
    expect_error(reg.send(Method::GET, &location).await, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;

    // Content-Length that disagrees with Content-Range; a malformed Content-Range.
    let location = open_session(&reg, "team/errors").await;
    let r = reg.req(Method::PATCH, &location).header("content-range", "0-9").body("short").send().await.expect("send");
    expect_error(r, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    let r = reg.req(Method::PATCH, &location).header("content-range", "five-six").body("x").send().await.expect("send");
    expect_error(r, StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID").await;
    // Nothing was recorded by the failed requests.
    assert_eq!(header(&reg.send(Method::GET, &location).await, "range"), "0-0");

    // Monolithic upload with the wrong digest leaves nothing behind.
    let r = reg
        .req(Method::POST, &format!("/v2/team/errors/blobs/uploads/?digest={}", sha256(b"x")))
        .body("y")
        .send()
        .await
        .expect("send");
    expect_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    // An unsupported digest algorithm.
    let r = reg.send(Method::POST, "/v2/team/errors/blobs/uploads/?digest-algorithm=md5").await;
    expect_error(r, StatusCode::BAD_REQUEST, "UNSUPPORTED").await;
    reg.stop().await;
}

#[tokio::test]
async fn sha512_digests() {
    let reg = TestRegistry::start().await;
    let data = bytes(20_000, 5);
    let d512 = format!("sha512:{}", hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&data)));
    // Announced up front with digest-algorithm ...
    let r = reg.send(Method::POST, "/v2/team/sha512/blobs/uploads/?digest-algorithm=sha512").await;
    let location = header(&r, "location").to_owned();
    reg.req(Method::PATCH, &location).body(data.clone()).send().await.expect("send");
    assert_eq!(reg.send(Method::PUT, &format!("{location}?digest={d512}")).await.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&reg, "team/sha512", &d512).await, data);
    // ... or only known at the end (the stored bytes are re-hashed) ...
    let other = bytes(20_000, 6);
    let other512 = format!("sha512:{}", hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&other)));
    let location = open_session(&reg, "team/sha512").await;
    reg.req(Method::PATCH, &location).body(other.clone()).send().await.expect("send");
    assert_eq!(reg.send(Method::PUT, &format!("{location}?digest={other512}")).await.status(), StatusCode::CREATED);
    assert_eq!(get_blob(&reg, "team/sha512", &other512).await, other);
    // ... or monolithic.
    let third = bytes(100, 7);
    let third512 = format!("sha512:{}", hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&third)));
    let r = reg
        .req(Method::POST, &format!("/v2/team/sha512/blobs/uploads/?digest={third512}"))
        .body(third)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    reg.stop().await;
}

#[tokio::test]
async fn blob_over_the_size_limit_is_413() {
    let reg = TestRegistry::start_with(|c| c.registry.max_blob_size = 1000).await;
    let data = bytes(1001, 8);
    let r = reg
        .req(Method::POST, &format!("/v2/team/big/blobs/uploads/?digest={}", sha256(&data)))
        .body(data.clone())
        .send()
        .await
        .expect("send");
    expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID").await;
    // Streamed without a length: cut off once over the limit.
    let location = open_session(&reg, "team/big").await;
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(vec![Ok::<_, std::io::Error>(data)]));
    let r = reg.req(Method::PATCH, &location).body(body).send().await.expect("send");
    expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID").await;
    assert_eq!(header(&reg.send(Method::GET, &location).await, "range"), "0-0");
    reg.stop().await;
}

pub fn count_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.map_while(Result::ok).map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
}

#[tokio::test]
async fn blobs_are_stored_once() {
    let reg = TestRegistry::start().await;
    let data = bytes(50_000, 9);
    for repo in ["a/one", "b/two", "c/three"] {
        reg.push_blob(repo, &data).await;
    }
    assert_eq!(count_files(&reg.data_dir().join("blobs")), 1, "one object however many repositories hold it");
    for repo in ["a/one", "b/two", "c/three"] {
        assert_eq!(get_blob(&reg, repo, &sha256(&data)).await, data);
    }
    reg.stop().await;
}

#[tokio::test]
async fn concurrent_pushes_of_the_same_blob_both_succeed() {
    let reg = TestRegistry::start().await;
    let data = bytes(2_000_000, 10);
    let digest = sha256(&data);
    let pushes = (0..6).map(|i| {
        let repo = format!("race/r{}", i % 2);
        let url = format!("{}/v2/{repo}/blobs/uploads/?digest={digest}", reg.base);
        let client = reg.client.clone();
        let data = data.clone();
        async move { client.post(url).body(data).send().await.expect("send").status() }
    });
    for status in futures_util::future::join_all(pushes).await {
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(count_files(&reg.data_dir().join("blobs")), 1);
    assert_eq!(get_blob(&reg, "race/r0", &digest).await, data);
    assert_eq!(get_blob(&reg, "race/r1", &digest).await, data);
    reg.stop().await;
}

#[tokio::test]
async fn cross_repository_mount() {
    let reg = TestRegistry::start().await;
    let data = bytes(3000, 11);
    let digest = reg.push_blob("src/repo", &data).await;
    // Mount from a repository that has it: 201 and the blob is served by the target.
    let r = reg.send(Method::POST, &format!("/v2/dst/repo/blobs/uploads/?mount={digest}&from=src/repo")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/dst/repo/blobs/{digest}"));
    assert_eq!(header(&r, "docker-content-digest"), digest);
    assert_eq!(get_blob(&reg, "dst/repo", &digest).await, data);
    // Without `from`: mounted because the registry holds it.
    let r = reg.send(Method::POST, &format!("/v2/other/repo/blobs/uploads/?mount={digest}")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // From a repository that does not have it: an ordinary upload session (202).
    let unknown = sha256(b"not pushed");
    let r = reg.send(Method::POST, &format!("/v2/dst/repo/blobs/uploads/?mount={unknown}&from=src/repo")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = header(&r, "location").to_owned();
    let r =
        reg.req(Method::PUT, &format!("{location}?digest={unknown}")).body("not pushed").send().await.expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    // A blob in a repository other than `from` is not mounted from it.
    let r = reg.send(Method::POST, &format!("/v2/x/y/blobs/uploads/?mount={digest}&from=nothing/here")).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // A malformed mount digest.
    expect_error(
        reg.send(Method::POST, "/v2/x/y/blobs/uploads/?mount=sha256:zz").await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    reg.stop().await;
}

//! Blob reads and deletes: headers, ranges, unknown blobs.

use reqwest::{Method, StatusCode};

use crate::support::content::bytes;
use crate::support::{TestRegistry, expect_error, header, sha256};

#[tokio::test]
async fn get_and_head_carry_the_headers() {
    let reg = TestRegistry::start().await;
    let data = bytes(400_000, 21);
    let digest = reg.push_blob("team/app", &data).await;
    for method in [Method::GET, Method::HEAD] {
        let r = reg.send(method.clone(), &format!("/v2/team/app/blobs/{digest}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-length"), data.len().to_string(), "{method}");
        assert_eq!(header(&r, "docker-content-digest"), digest);
        assert_eq!(header(&r, "accept-ranges"), "bytes");
        assert_eq!(header(&r, "content-type"), "application/octet-stream");
        let body = r.bytes().await.expect("body");
        if method == Method::GET {
            assert_eq!(body.as_ref(), data.as_slice());
        } else {
            assert!(body.is_empty());
        }
    }
    reg.stop().await;
}

#[tokio::test]
async fn ranges() {
    let reg = TestRegistry::start().await;
    let data = bytes(300_000, 22);
    let digest = reg.push_blob("team/app", &data).await;
    let path = format!("/v2/team/app/blobs/{digest}");
    for (range, start, end) in [
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=200000-", 200_000, 299_999),
        ("bytes=-10", 299_990, 299_999),
        ("bytes=299999-999999", 299_999, 299_999),
    ] {
        let r = reg.req(Method::GET, &path).header("range", range).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(header(&r, "content-range"), format!("bytes {start}-{end}/300000"));
        assert_eq!(header(&r, "content-length"), (end - start + 1).to_string());
        assert_eq!(r.bytes().await.expect("body").as_ref(), &data[start..=end], "{range}");
    }
    for range in ["bytes=300000-", "bytes=400000-500000", "bytes=-0"] {
        let r = reg.req(Method::GET, &path).header("range", range).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(header(&r, "content-range"), "bytes */300000");
    }
    // Ranges the server does not understand are ignored: the whole blob.
    for range in ["bytes=5-1", "lines=1-2", "bytes=0-1,5-6"] {
        let r = reg.req(Method::GET, &path).header("range", range).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::OK, "{range}");
        assert_eq!(r.bytes().await.expect("body").len(), data.len());
    }
    reg.stop().await;
}

#[tokio::test]
async fn unknown_and_malformed_blobs() {
    let reg = TestRegistry::start().await;
    let digest = reg.push_blob("team/app", b"present").await;
    let unknown = sha256(b"absent");
    for method in [Method::GET, Method::HEAD] {
        let r = reg.send(method, &format!("/v2/team/app/blobs/{unknown}")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    expect_error(
        reg.send(Method::GET, &format!("/v2/team/app/blobs/{unknown}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
    // Held by another repository only: unknown here.
    expect_error(
        reg.send(Method::GET, &format!("/v2/team/other/blobs/{digest}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
    for bad in ["sha256:abc", "sha256", "nothing", "sha256:ZZZZ"] {
        expect_error(
            reg.send(Method::GET, &format!("/v2/team/app/blobs/{bad}")).await,
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
        )
        .await;
    }
    expect_error(reg.send(Method::GET, "/v2/team/app/blobs/sha384:abcd").await, StatusCode::BAD_REQUEST, "UNSUPPORTED")
        .await;
    reg.stop().await;
}

#[tokio::test]
async fn delete_blob_unlinks_it_from_the_repository() {
    let reg = TestRegistry::start().await;
    let digest = reg.push_blob("team/a", b"shared bytes").await;
    reg.push_blob("team/b", b"shared bytes").await;
    assert_eq!(reg.send(Method::DELETE, &format!("/v2/team/a/blobs/{digest}")).await.status(), StatusCode::ACCEPTED);
    expect_error(
        reg.send(Method::GET, &format!("/v2/team/a/blobs/{digest}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
    expect_error(
        reg.send(Method::DELETE, &format!("/v2/team/a/blobs/{digest}")).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
    let r = reg.send(Method::GET, &format!("/v2/team/b/blobs/{digest}")).await;
    assert_eq!(r.status(), StatusCode::OK, "the other repository still serves it");
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"shared bytes");
    reg.stop().await;
}

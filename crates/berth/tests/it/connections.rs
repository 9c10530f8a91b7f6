//! Slow and hostile clients: a client that trickles its headers (slow loris) or idles is cut
//! off after `header_read_timeout_ms`, and it cannot hold a connection slot for longer, while
//! everybody else is served.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestRegistry, content, sha256};

/// Sends `start`, then one more header byte every 100 ms, never ending the headers; resolves
/// when the server closes the connection. Gives up (panics) after 20 s.
pub async fn trickle_until_closed(addr: String, start: &'static [u8]) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(start).await.expect("request line");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 1024];
    loop {
        assert!(tokio::time::Instant::now() < deadline, "the slow client was never cut off");
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                // Closed (perhaps after a 408), or reset: either way, cut off.
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if stream.write_all(b"a").await.is_err() {
                    return;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_is_cut_off_while_a_pull_completes() {
    let registry = TestRegistry::start_with(|c| c.header_read_timeout_ms = 1000).await;
    let image = registry.push_image("acme/app", "v1", &[&content::bytes(2 * 1024 * 1024, 4)]).await;
    let layer = image.blobs().max_by_key(|blob| blob.len()).expect("a layer").to_vec();

    let slow = tokio::spawn(trickle_until_closed(registry.host().to_owned(), b"GET /v2/ HTTP/1.1\r\nX-Slow: "));
    let pulled = registry.send(Method::GET, &format!("/v2/acme/app/blobs/{}", sha256(&layer))).await;
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(sha256(&pulled.bytes().await.expect("body")), sha256(&layer), "the pull is whole");
    slow.await.expect("the slow client is cut off");
    // The registry still serves afterwards.
    assert_eq!(registry.send(Method::GET, "/v2/").await.status(), StatusCode::OK);
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_hold_every_slot() {
    // One connection at a time, taken by a client that connects and sends nothing.
    let registry = TestRegistry::start_with(|c| {
        c.max_connections = 1;
        c.header_read_timeout_ms = 1000;
    })
    .await;
    let mut idle = TcpStream::connect(registry.host()).await.expect("connect");
    // A real request waits for the slot and is served once the idle client is cut off.
    let served = tokio::time::timeout(Duration::from_secs(20), registry.send(Method::GET, "/v2/")).await;
    assert_eq!(served.expect("served in the end").status(), StatusCode::OK);
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(20), idle.read(&mut buf)).await.expect("closed");
    assert!(matches!(closed, Ok(0) | Err(_)), "the idle connection was closed");
    registry.stop().await;
}

#[tokio::test]
async fn too_many_header_lines_are_refused() {
    let registry = TestRegistry::start_with(|c| c.max_headers = 20).await;
    let mut request = registry.req(Method::GET, "/v2/");
    for i in 0..40 {
        request = request.header(format!("x-extra-{i}"), "1");
    }
    let refused = request.send().await.expect("an answer");
    assert_eq!(refused.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(registry.send(Method::GET, "/v2/").await.status(), StatusCode::OK);
    registry.stop().await;
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let registry = TestRegistry::start_with(|c| c.max_header_bytes = 16 * 1024).await;
    let refused = registry.req(Method::GET, "/v2/").header("x-big", "a".repeat(20 * 1024)).send().await;
    // hyper answers 431, or closes the connection on a head that does not fit its buffer.
    match refused {
        Ok(r) => assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    let fits = registry.req(Method::GET, "/v2/").header("x-big", "a".repeat(8 * 1024)).send().await;
    assert_eq!(fits.expect("an answer").status(), StatusCode::OK);
    registry.stop().await;
}

/// An upload whose client stops sending mid-body is ended after `body_read_timeout_ms`; the
/// session survives without the broken chunk, and the client sends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_body_is_cut_off_and_the_session_resumes() {
    let registry = TestRegistry::start_with(|c| c.body_read_timeout_ms = 500).await;
    let blob = content::bytes(200_000, 31);
    let started = registry.send(Method::POST, "/v2/acme/stall/blobs/uploads/").await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let location = crate::support::header(&started, "location").to_owned();

    // The client promises the whole blob, sends 50 000 bytes, and stalls.
    let mut stream = TcpStream::connect(registry.host()).await.expect("connect");
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        registry.host(),
        crate::support::base64_basic(crate::support::ADMIN.0, crate::support::ADMIN.1),
        blob.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&blob[..50_000]).await.expect("first bytes");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the stalled upload was never cut off");

    // The session lives on without the broken chunk; the client sends it again.
    let status = registry.send(Method::GET, &location).await;
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(crate::support::header(&status, "range"), "0-0", "the broken chunk is not recorded");
    let finished = registry
        .req(Method::PUT, &format!("{location}?digest={}", sha256(&blob)))
        .body(blob.clone())
        .send()
        .await
        .expect("finish");
    assert_eq!(finished.status(), StatusCode::CREATED, "{}", finished.text().await.unwrap_or_default());
    let pulled = registry.send(Method::GET, &format!("/v2/acme/stall/blobs/{}", sha256(&blob))).await;
    assert_eq!(sha256(&pulled.bytes().await.expect("body")), sha256(&blob), "the blob is whole");
    registry.stop().await;
}

/// HTTP/2 (here with prior knowledge on the plain port): hyper would keep an idle connection
/// open forever; Berth closes it after `header_read_timeout_ms`, so it cannot hold the slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_cannot_hold_every_slot() {
    let registry = TestRegistry::start_with(|c| {
        c.max_connections = 1;
        c.header_read_timeout_ms = 1000;
    })
    .await;
    let mut idle = TcpStream::connect(registry.host()).await.expect("connect");
    // The client preface and an empty SETTINGS frame, then silence (no SETTINGS ack either).
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.expect("preface");
    let served = tokio::time::timeout(Duration::from_secs(20), registry.send(Method::GET, "/v2/")).await;
    assert_eq!(served.expect("served in the end").status(), StatusCode::OK);
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), idle.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the idle HTTP/2 connection was closed");
    registry.stop().await;
}

/// A download that outlasts the idle limit, to a client that sends nothing while it reads, is
/// not idle: it finishes whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_download_is_not_mistaken_for_an_idle_connection() {
    use futures_util::StreamExt as _;
    let registry = TestRegistry::start_with(|c| c.header_read_timeout_ms = 500).await;
    let layer = content::bytes(24 * 1024 * 1024, 32);
    let digest = registry.push_blob("acme/long", &layer).await;
    let response = registry.send(Method::GET, &format!("/v2/acme/long/blobs/{digest}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let started = tokio::time::Instant::now();
    let mut body = response.bytes_stream();
    let mut received = Vec::with_capacity(layer.len());
    while let Some(chunk) = body.next().await {
        received.extend_from_slice(&chunk.expect("the download is not cut off"));
        // Reading slowly for the first 3 s: several idle limits.
        if started.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(sha256(&received), digest, "whole");
    registry.stop().await;
}

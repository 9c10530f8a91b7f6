//! The API root, the request grammar's errors, and traffic-class shedding.

use reqwest::{Method, StatusCode};

use crate::support::{TestRegistry, expect_error, header};

#[tokio::test]
async fn api_version_check() {
    let reg = TestRegistry::start().await;
    for path in ["/v2/", "/v2"] {
        for method in [Method::GET, Method::HEAD] {
            let r = reg.send(method, path).await;
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(header(&r, "docker-distribution-api-version"), "registry/2.0");
        }
    }
    reg.stop().await;
}

#[tokio::test]
async fn grammar_errors_are_4xx_in_the_oci_envelope() {
    let reg = TestRegistry::start().await;
    for path in [
        "/v2/UPPER/manifests/x",
        "/v2/a//b/manifests/x",
        "/v2/-a/tags/list",
        "/v2/a../blobs/uploads/",
        &format!("/v2/{}/tags/list", "a".repeat(256)),
    ] {
        let method = if path.ends_with("uploads/") { Method::POST } else { Method::GET };
        expect_error(reg.send(method, path).await, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    }
    expect_error(reg.send(Method::GET, "/v2/a/unknown/thing").await, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
    let r = reg.send(Method::POST, "/v2/a/b/manifests/latest").await;
    assert_eq!(header(&r, "allow"), "GET, HEAD, PUT, DELETE");
    expect_error(r, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
    expect_error(reg.send(Method::PATCH, "/v2/_catalog").await, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
    // Nothing reachable from the path answers 500.
    for path in ["/v2/a/b/blobs/%00", "/v2/a/b/manifests/%ZZ", "/v2/%2e%2e/manifests/x", "/v2/a/b/referrers/sha256:%3A"]
    {
        let r = reg.send(Method::GET, path).await;
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
    }
    reg.stop().await;
}

#[tokio::test]
async fn a_full_traffic_class_sheds_with_429_while_others_pass() {
    let reg = TestRegistry::start_with(|c| {
        c.limits.push.concurrency = Some(1);
        c.limits.push.queue = Some(0);
    })
    .await;
    let r = reg.send(Method::POST, "/v2/team/app/blobs/uploads/").await;
    let location = header(&r, "location").to_owned();
    // A PATCH whose body stalls holds the only push slot. Probing for the 429 competes for
    // that slot too, so a PATCH that lost the race to a probe is simply started again.
    let mut shed = None;
    let mut held = None;
    for _ in 0..100 {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
        let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }));
        let stalled = tokio::spawn(reg.req(Method::PATCH, &location).body(body).send());
        tx.send(Ok(b"first".to_vec())).await.expect("send chunk");
        // Give the PATCH a head start (it needs a new connection; probes reuse a pooled one).
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        for _ in 0..20 {
            let r = reg.send(Method::POST, "/v2/team/app/blobs/uploads/").await;
            if r.status() == StatusCode::TOO_MANY_REQUESTS && !stalled.is_finished() {
                shed = Some(r);
                break;
            }
            if stalled.is_finished() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if shed.is_some() {
            held = Some((tx, stalled));
            break;
        }
    }
    let (tx, stalled) = held.expect("the stalled PATCH holds the slot");
    let shed = shed.expect("a second push is shed while the first holds the slot");
    assert_eq!(header(&shed, "retry-after"), "1");
    expect_error(shed, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
    // Pulls are another class and still get through.
    assert_eq!(reg.send(Method::GET, "/v2/").await.status(), StatusCode::OK);
    // Once the stalled upload finishes, pushes are admitted again.
    tx.send(Ok(b" second".to_vec())).await.expect("send chunk");
    drop(tx);
    let r = stalled.await.expect("join").expect("send");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-11");
    assert_eq!(reg.send(Method::POST, "/v2/team/app/blobs/uploads/").await.status(), StatusCode::ACCEPTED);
    reg.stop().await;
}

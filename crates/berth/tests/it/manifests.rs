//! Manifests: push by tag and digest, pull with negotiation, multi-tag, subject, deletes,
//! every validation error.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::content::{
    self, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LIST, DOCKER_MANIFEST, Image, OCI_INDEX, OCI_MANIFEST, bytes, descriptor,
};
use crate::support::{TestRegistry, error_codes, expect_error, header, sha256};

#[tokio::test]
async fn push_and_pull_by_tag_and_digest() {
    let reg = TestRegistry::start().await;
    let image = Image::new(&[&bytes(1000, 1), &bytes(2000, 2)]);
    for blob in image.blobs() {
        reg.push_blob("team/app", blob).await;
    }
    let r = reg.put_manifest("team/app", "v1", OCI_MANIFEST, &image.manifest).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/team/app/manifests/{}", image.digest));
    assert_eq!(header(&r, "docker-content-digest"), image.digest);
    for reference in ["v1", image.digest.as_str()] {
        for method in [Method::GET, Method::HEAD] {
            let r = reg
                .req(method.clone(), &format!("/v2/team/app/manifests/{reference}"))
                .header("accept", OCI_MANIFEST)
                .send()
                .await
                .expect("send");
            assert_eq!(r.status(), StatusCode::OK, "{method} {reference}");
            assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
            assert_eq!(header(&r, "docker-content-digest"), image.digest);
            assert_eq!(header(&r, "content-length"), image.manifest.len().to_string(), "{method} {reference}");
            let body = r.bytes().await.expect("body");
            if method == Method::GET {
                assert_eq!(body.as_ref(), image.manifest.as_slice(), "the exact bytes pushed");
            }
        }
    }
    // Push by digest too.
    let r = reg.put_manifest("team/app", &image.digest, OCI_MANIFEST, &image.manifest).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    reg.stop().await;
}

#[tokio::test]
async fn docker_schema2_and_manifest_list() {
    let reg = TestRegistry::start().await;
    let config = bytes(300, 3);
    let layer = bytes(4000, 4);
    reg.push_blob("team/docker", &config).await;
    reg.push_blob("team/docker", &layer).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, &config), "layers": [descriptor(DOCKER_LAYER, &layer)]
    }))
    .expect("json");
    let r = reg.put_manifest("team/docker", &sha256(&manifest), DOCKER_MANIFEST, &manifest).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut entry = descriptor(DOCKER_MANIFEST, &manifest);
    entry["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let list = serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [entry] }))
        .expect("json");
    let r = reg.put_manifest("team/docker", "latest", DOCKER_LIST, &list).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = reg
        .req(Method::GET, "/v2/team/docker/manifests/latest")
        .header("accept", format!("{DOCKER_MANIFEST}, {DOCKER_LIST}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), DOCKER_LIST);
    assert_eq!(r.bytes().await.expect("body").as_ref(), list.as_slice());
    reg.stop().await;
}

#[tokio::test]
async fn accept_negotiation() {
    let reg = TestRegistry::start().await;
    let child = reg.push_image("team/multi", "amd64", &[&bytes(100, 5)]).await;
    let index = content::index(&[(&child.manifest, "amd64")]);
    assert_eq!(reg.put_manifest("team/multi", "latest", OCI_INDEX, &index).await.status(), StatusCode::CREATED);
    let get = |accept: Option<&'static str>| {
        let mut req = reg.req(Method::GET, "/v2/team/multi/manifests/latest");
        if let Some(accept) = accept {
            req = req.header("accept", accept);
        }
        req.send()
    };
    // No Accept, a wildcard, or the right type: served as stored.
    for accept in
        [None, Some("*/*"), Some(OCI_INDEX), Some("application/vnd.oci.image.index.v1+json;q=0.9, application/json")]
    {
        let r = get(accept).await.expect("send");
        assert_eq!(r.status(), StatusCode::OK, "{accept:?}");
        assert_eq!(header(&r, "content-type"), OCI_INDEX);
    }
    // A client that only takes single Docker manifests cannot use an OCI index.
    let r = get(Some(DOCKER_MANIFEST)).await.expect("send");
    expect_error(r, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    reg.stop().await;
}

#[tokio::test]
async fn several_tags_at_once() {
    let reg = TestRegistry::start().await;
    let image = reg.push_image("team/tags", "first", &[&bytes(10, 6)]).await;
    let r = reg
        .put_manifest("team/tags", &format!("{}?tag=a&tag=b&tag=c", image.digest), OCI_MANIFEST, &image.manifest)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let tags: Vec<&str> = r.headers().get_all("oci-tag").iter().filter_map(|v| v.to_str().ok()).collect();
    assert_eq!(tags, ["a", "b", "c"]);
    for tag in ["a", "b", "c", "first"] {
        let r = reg.send(Method::HEAD, &format!("/v2/team/tags/manifests/{tag}")).await;
        assert_eq!(header(&r, "docker-content-digest"), image.digest, "{tag}");
    }
    let r = reg.put_manifest("team/tags", &format!("{}?tag=-bad", image.digest), OCI_MANIFEST, &image.manifest).await;
    expect_error(r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    reg.stop().await;
}

#[tokio::test]
async fn missing_references_are_named() {
    let reg = TestRegistry::start().await;
    let image = Image::new(&[&bytes(100, 7), &bytes(200, 8)]);
    reg.push_blob("team/missing", &image.config).await;
    let r = reg.put_manifest("team/missing", "v1", OCI_MANIFEST, &image.manifest).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("json");
    let mut named: Vec<String> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            assert_eq!(e["code"], "MANIFEST_BLOB_UNKNOWN");
            e["detail"].as_str().expect("detail names the digest").to_owned()
        })
        .collect();
    named.sort();
    let mut want: Vec<String> = image.layers.iter().map(|l| sha256(l)).collect();
    want.sort();
    assert_eq!(named, want);
    // Nothing was stored.
    expect_error(
        reg.send(Method::GET, "/v2/team/missing/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    // An index whose child is absent.
    let index = content::index(&[(&image.manifest, "amd64")]);
    let r = reg.put_manifest("team/missing", "idx", OCI_INDEX, &index).await;
    let codes = error_codes(r).await;
    assert_eq!(codes, ["MANIFEST_BLOB_UNKNOWN"]);
    // Blobs in another repository do not count.
    for blob in image.blobs() {
        reg.push_blob("team/elsewhere", blob).await;
    }
    let r = reg.put_manifest("team/missing", "v1", OCI_MANIFEST, &image.manifest).await;
    expect_error(r, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    reg.stop().await;
}

#[tokio::test]
async fn invalid_manifests() {
    let reg = TestRegistry::start().await;
    let config = bytes(50, 9);
    reg.push_blob("team/bad", &config).await;
    let good = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor("application/vnd.oci.image.config.v1+json", &config), "layers": []});
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), OCI_MANIFEST),
        (b"[1,2]".to_vec(), OCI_MANIFEST),
        (br#"{"schemaVersion":2}"#.to_vec(), OCI_MANIFEST),
        (serde_json::to_vec(&json!({"schemaVersion": 3, "config": good["config"], "layers": []})).expect("json"), OCI_MANIFEST),
        (serde_json::to_vec(&good).expect("json"), OCI_INDEX),
        (serde_json::to_vec(&good).expect("json"), "application/vnd.example.unknown"),
        (serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"mediaType": "x", "digest": "sha256:nothex", "size": 1}, "layers": []})).expect("json"), OCI_MANIFEST),
    ];
    for (body, media_type) in cases {
        let r = reg.put_manifest("team/bad", "t", media_type, &body).await;
        expect_error(r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    }
    // A descriptor whose size does not match the blob.
    let mut wrong_size = good.clone();
    wrong_size["config"]["size"] = json!(51);
    let r = reg.put_manifest("team/bad", "t", OCI_MANIFEST, &serde_json::to_vec(&wrong_size).expect("json")).await;
    expect_error(r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    // Docker schema 1 is refused with a message that says so.
    let schema1 =
        br#"{"schemaVersion":1,"name":"team/bad","tag":"t","architecture":"amd64","fsLayers":[],"history":[]}"#;
    let r =
        reg.put_manifest("team/bad", "t", "application/vnd.docker.distribution.manifest.v1+prettyjws", schema1).await;
    let body = expect_error(r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    assert!(body["errors"][0]["message"].as_str().expect("message").contains("schema 1"), "{body}");
    // A digest reference that does not match the bytes.
    let good_bytes = serde_json::to_vec(&good).expect("json");
    let r = reg.put_manifest("team/bad", &sha256(b"something else"), OCI_MANIFEST, &good_bytes).await;
    expect_error(r, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    // An invalid tag in the path.
    let r = reg.put_manifest("team/bad", ".hidden", OCI_MANIFEST, &good_bytes).await;
    expect_error(r, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    // Over 4 MiB: 413.
    let mut huge = good.clone();
    huge["annotations"] = json!({ "padding": "x".repeat(4 * 1024 * 1024) });
    let r = reg.put_manifest("team/bad", "t", OCI_MANIFEST, &serde_json::to_vec(&huge).expect("json")).await;
    expect_error(r, StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID").await;
    // And the valid one goes through, also with a generic or missing content type.
    assert_eq!(reg.put_manifest("team/bad", "t", "application/json", &good_bytes).await.status(), StatusCode::CREATED);
    let r = reg.req(Method::PUT, "/v2/team/bad/manifests/t2").body(good_bytes.clone()).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = reg.send(Method::GET, "/v2/team/bad/manifests/t2").await;
    assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
    reg.stop().await;
}

#[tokio::test]
async fn unknown_manifests() {
    let reg = TestRegistry::start().await;
    reg.push_image("team/app", "v1", &[b"x"]).await;
    for path in [
        "/v2/team/app/manifests/nope",
        "/v2/team/nothing/manifests/v1",
        &format!("/v2/team/app/manifests/{}", sha256(b"nope")),
    ] {
        expect_error(reg.send(Method::GET, path).await, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
        assert_eq!(reg.send(Method::HEAD, path).await.status(), StatusCode::NOT_FOUND);
    }
    expect_error(
        reg.send(Method::GET, "/v2/team/app/manifests/sha256:short").await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    expect_error(
        reg.send(Method::GET, &format!("/v2/team/app/manifests/{}", "t".repeat(200))).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    reg.stop().await;
}

#[tokio::test]
async fn deletes() {
    let reg = TestRegistry::start().await;
    let image = reg.push_image("team/del", "v1", &[b"layer"]).await;
    let r = reg.put_manifest("team/del", &format!("{}?tag=v2", image.digest), OCI_MANIFEST, &image.manifest).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Deleting a tag removes that tag only.
    assert_eq!(reg.send(Method::DELETE, "/v2/team/del/manifests/v1").await.status(), StatusCode::ACCEPTED);
    expect_error(reg.send(Method::GET, "/v2/team/del/manifests/v1").await, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
        .await;
    assert_eq!(reg.send(Method::GET, "/v2/team/del/manifests/v2").await.status(), StatusCode::OK);
    assert_eq!(
        reg.send(Method::GET, &format!("/v2/team/del/manifests/{}", image.digest)).await.status(),
        StatusCode::OK
    );
    expect_error(
        reg.send(Method::DELETE, "/v2/team/del/manifests/v1").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    // Deleting by digest removes the manifest and every tag on it.
    assert_eq!(
        reg.send(Method::DELETE, &format!("/v2/team/del/manifests/{}", image.digest)).await.status(),
        StatusCode::ACCEPTED
    );
    for reference in ["v2", image.digest.as_str()] {
        expect_error(
            reg.send(Method::GET, &format!("/v2/team/del/manifests/{reference}")).await,
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
        )
        .await;
    }
    let tags: Value = reg.send(Method::GET, "/v2/team/del/tags/list").await.json().await.expect("json");
    assert_eq!(tags["tags"], json!([]));
    expect_error(
        reg.send(Method::DELETE, &format!("/v2/team/del/manifests/{}", image.digest)).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    // The blobs stay; the manifest can be pushed again.
    assert_eq!(reg.put_manifest("team/del", "v3", OCI_MANIFEST, &image.manifest).await.status(), StatusCode::CREATED);
    reg.stop().await;
}

#[tokio::test]
async fn moving_a_tag_is_seen_at_once() {
    let reg = TestRegistry::start().await;
    let one = reg.push_image("team/move", "latest", &[b"one"]).await;
    // Warm the caches.
    for _ in 0..3 {
        assert_eq!(
            header(&reg.send(Method::HEAD, "/v2/team/move/manifests/latest").await, "docker-content-digest"),
            one.digest
        );
    }
    let two = reg.push_image("team/move", "latest", &[b"two"]).await;
    assert_eq!(
        header(&reg.send(Method::HEAD, "/v2/team/move/manifests/latest").await, "docker-content-digest"),
        two.digest
    );
    assert_eq!(reg.send(Method::DELETE, "/v2/team/move/manifests/latest").await.status(), StatusCode::ACCEPTED);
    assert_eq!(reg.send(Method::HEAD, "/v2/team/move/manifests/latest").await.status(), StatusCode::NOT_FOUND);
    reg.stop().await;
}

#[tokio::test]
async fn concurrent_pushes_of_the_same_tag_leave_one_winner() {
    let reg = TestRegistry::start().await;
    let images: Vec<Image> = (0..8).map(|i| Image::new(&[&bytes(64, 100 + i)])).collect();
    for image in &images {
        for blob in image.blobs() {
            reg.push_blob("team/race", blob).await;
        }
    }
    let puts = images.iter().map(|image| reg.put_manifest("team/race", "latest", OCI_MANIFEST, &image.manifest));
    for r in futures_util::future::join_all(puts).await {
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = reg.send(Method::GET, "/v2/team/race/manifests/latest").await;
    let digest = header(&r, "docker-content-digest").to_owned();
    assert!(images.iter().any(|i| i.digest == digest), "the tag points at one of the pushed manifests");
    assert_eq!(sha256(&r.bytes().await.expect("body")), digest, "and its bytes are intact");
    let tags: Value = reg.send(Method::GET, "/v2/team/race/tags/list").await.json().await.expect("json");
    assert_eq!(tags["tags"], json!(["latest"]));
    reg.stop().await;
}

#[tokio::test]
async fn subject_is_answered_with_oci_subject() {
    let reg = TestRegistry::start().await;
    let subject = reg.push_image("team/sub", "v1", &[b"base"]).await;
    let empty = b"{}";
    reg.push_blob("team/sub", empty).await;
    let sig = bytes(30, 11);
    reg.push_blob("team/sub", &sig).await;
    let artifact = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.signature",
        "config": descriptor("application/vnd.oci.empty.v1+json", empty),
        "layers": [descriptor("application/vnd.example.sig", &sig)],
        "subject": descriptor(OCI_MANIFEST, &subject.manifest),
    }))
    .expect("json");
    let r = reg.put_manifest("team/sub", &sha256(&artifact), OCI_MANIFEST, &artifact).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "oci-subject"), subject.digest);
    // A subject that is not (yet) in the repository is allowed.
    let dangling = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.signature",
        "config": descriptor("application/vnd.oci.empty.v1+json", empty), "layers": [],
        "subject": { "mediaType": OCI_MANIFEST, "digest": sha256(b"future"), "size": 6 },
    }))
    .expect("json");
    let r = reg.put_manifest("team/sub", &sha256(&dangling), OCI_MANIFEST, &dangling).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "oci-subject"), sha256(b"future"));
    reg.stop().await;
}

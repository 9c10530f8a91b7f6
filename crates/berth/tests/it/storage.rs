//! The registry on S3-compatible object storage (an in-process s3s-fs server).

use berth::config::StorageBackend;
use berth_blob::s3_test_server::S3TestServer;
use reqwest::{Method, StatusCode};

use crate::support::{TestRegistry, content, header, sha256};

async fn on_s3(server: &S3TestServer) -> TestRegistry {
    on_s3_with(server, 0).await
}

async fn on_s3_with(server: &S3TestServer, redirect_secs: u64) -> TestRegistry {
    TestRegistry::start_with(|c| {
        c.storage.backend = StorageBackend::S3;
        c.storage.s3 = Some(server.config("registry"));
        c.storage.redirect_secs = redirect_secs;
    })
    .await
}

#[tokio::test]
async fn images_push_and_pull_through_object_storage_with_chunked_uploads() {
    let server = S3TestServer::start().await;
    let reg = on_s3(&server).await;
    // A 12 MiB layer in chunks of 5 MiB, 5 MiB and 2 MiB: parts and a tail on S3.
    let layer = content::bytes(12 * 1024 * 1024, 7);
    let started = reg.send(Method::POST, "/v2/acme/app/blobs/uploads/").await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let mut location = header(&started, "location").to_owned();
    let mut offset = 0;
    for len in [5 * 1024 * 1024, 5 * 1024 * 1024, 2 * 1024 * 1024] {
        let chunk = layer[offset..offset + len].to_vec();
        let r = reg
            .req(Method::PATCH, &location)
            .header("content-range", format!("{offset}-{}", offset + len - 1))
            .body(chunk)
            .send()
            .await
            .expect("patch");
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        location = header(&r, "location").to_owned();
        offset += len;
    }
    let digest = sha256(&layer);
    let separator = if location.contains('?') { '&' } else { '?' };
    let done = reg.send(Method::PUT, &format!("{location}{separator}digest={digest}")).await;
    assert_eq!(done.status(), StatusCode::CREATED);

    let config = b"{\"architecture\":\"amd64\",\"os\":\"linux\"}".to_vec();
    reg.push_blob("acme/app", &config).await;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": content::OCI_MANIFEST,
        "config": content::descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [content::descriptor("application/vnd.oci.image.layer.v1.tar", &layer)],
    });
    let body = serde_json::to_vec(&manifest).expect("json");
    assert_eq!(reg.put_manifest("acme/app", "v1", content::OCI_MANIFEST, &body).await.status(), StatusCode::CREATED);

    // Pulled back whole and by range, byte for byte.
    let pulled = reg.send(Method::GET, &format!("/v2/acme/app/blobs/{digest}")).await;
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(pulled.bytes().await.expect("body").as_ref(), layer.as_slice());
    let start = 5 * 1024 * 1024 - 10;
    let ranged = reg
        .req(Method::GET, &format!("/v2/acme/app/blobs/{digest}"))
        .header("range", format!("bytes={start}-{}", start + 19));
    let ranged = ranged.send().await.expect("ranged get");
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.bytes().await.expect("body").as_ref(), &layer[start..start + 20]);
    let got = reg.send(Method::GET, "/v2/acme/app/manifests/v1").await;
    assert_eq!(got.bytes().await.expect("body").as_ref(), body.as_slice());

    // The bytes are in the bucket, not in the data directory.
    assert!(!reg.data_dir().join("blobs").exists());
    assert!(server.dir.path().join("berth").join("registry").join("blobs").is_dir());
    reg.stop().await;
}

#[tokio::test]
async fn an_unreachable_object_store_stops_the_server_at_start() {
    let server = S3TestServer::start().await;
    let mut s3 = server.config("registry");
    s3.secret_access_key = "wrong".into();
    let mut config = berth::config::Config { listen: "127.0.0.1:0".parse().expect("address"), ..Default::default() };
    let dir = tempfile::tempdir().expect("tempdir");
    config.data_dir = dir.path().to_path_buf();
    config.storage.backend = StorageBackend::S3;
    config.storage.s3 = Some(s3);
    let refused = berth::app::start(&config).await.err().expect("refused");
    assert!(format!("{refused:#}").contains("blob stores"), "{refused:#}");
}

#[tokio::test]
async fn whole_blob_downloads_can_be_redirected_to_presigned_urls() {
    let server = S3TestServer::start().await;
    let reg = on_s3_with(&server, 300).await;
    let layer = content::bytes(300 * 1024, 3);
    let image = reg.push_image("acme/app", "v1", &[b"small"]).await;
    let digest = reg.push_blob("acme/app", &layer).await;
    let path = format!("{}/v2/acme/app/blobs/{digest}", reg.base);

    // Berth answers with a 307 to the bucket, and its URL alone (no credentials) serves the bytes.
    let manual = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let admin = crate::support::base64_basic(crate::support::ADMIN.0, crate::support::ADMIN.1);
    let r = manual.get(&path).header("authorization", &admin).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(&r, "docker-content-digest"), digest);
    let location = header(&r, "location").to_owned();
    assert!(location.starts_with(&server.endpoint) && location.contains("X-Amz-Signature"), "{location}");
    let direct = manual.get(&location).send().await.expect("presigned get");
    assert_eq!(direct.status(), StatusCode::OK);
    assert!(direct.bytes().await.expect("body").as_ref() == layer.as_slice(), "the presigned URL serves the blob");
    // HEAD, ranges and manifests are still answered by Berth.
    let head = manual.head(&path).header("authorization", &admin).send().await.expect("head");
    assert_eq!(head.status(), StatusCode::OK);
    let ranged = manual.get(&path).header("authorization", &admin).header("range", "bytes=0-9").send().await;
    let ranged = ranged.expect("ranged");
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.bytes().await.expect("body").as_ref(), &layer[..10]);
    let manifest = reg.send(Method::GET, "/v2/acme/app/manifests/v1").await;
    assert_eq!(manifest.bytes().await.expect("body").as_ref(), image.manifest.as_slice());
    reg.stop().await;
}

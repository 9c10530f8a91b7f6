//! The referrers API: an image index of manifests whose subject is the given digest.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::content::{OCI_INDEX, OCI_MANIFEST, descriptor};
use crate::support::{TestRegistry, header, sha256};

const EMPTY: &[u8] = b"{}";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";

async fn push_artifact(
    reg: &TestRegistry,
    repo: &str,
    subject: &[u8],
    artifact_type: &str,
    payload: &[u8],
    annotations: Value,
) -> String {
    reg.push_blob(repo, EMPTY).await;
    reg.push_blob(repo, payload).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": descriptor(EMPTY_TYPE, EMPTY),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": descriptor(OCI_MANIFEST, subject),
        "annotations": annotations,
    }))
    .expect("json");
    let digest = sha256(&manifest);
    assert_eq!(reg.put_manifest(repo, &digest, OCI_MANIFEST, &manifest).await.status(), StatusCode::CREATED);
    digest
}

async fn referrers(reg: &TestRegistry, path: &str) -> (Value, Option<String>) {
    let r = reg.send(Method::GET, path).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    let filters = r.headers().get("oci-filters-applied").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (r.json().await.expect("json"), filters)
}

#[tokio::test]
async fn lists_filters_and_describes_referrers() {
    let reg = TestRegistry::start().await;
    let subject = reg.push_image("team/app", "v1", &[b"base layer"]).await;
    let sig = push_artifact(
        &reg,
        "team/app",
        &subject.manifest,
        "application/vnd.example.sig",
        b"signature",
        json!({"created": "today"}),
    )
    .await;
    let sbom =
        push_artifact(&reg, "team/app", &subject.manifest, "application/vnd.example.sbom", b"sbom", json!({})).await;

    let (index, filters) = referrers(&reg, &format!("/v2/team/app/referrers/{}", subject.digest)).await;
    assert!(filters.is_none());
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 2);
    let sig_entry = manifests.iter().find(|m| m["digest"] == sig).expect("the signature is listed");
    assert_eq!(sig_entry["artifactType"], "application/vnd.example.sig");
    assert_eq!(sig_entry["mediaType"], OCI_MANIFEST);
    assert_eq!(sig_entry["annotations"], json!({"created": "today"}));
    assert!(sig_entry["size"].as_u64().is_some_and(|s| s > 0));
    assert!(manifests.iter().any(|m| m["digest"] == sbom));

    let (index, filters) = referrers(
        &reg,
        &format!("/v2/team/app/referrers/{}?artifactType=application/vnd.example.sbom", subject.digest),
    )
    .await;
    assert_eq!(filters.as_deref(), Some("artifactType"));
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(1));
    assert_eq!(index["manifests"][0]["digest"], sbom);
    reg.stop().await;
}

#[tokio::test]
async fn empty_index_never_404() {
    let reg = TestRegistry::start().await;
    let nothing = sha256(b"no referrers");
    for repo in ["team/app", "never/pushed"] {
        let (index, _) = referrers(&reg, &format!("/v2/{repo}/referrers/{nothing}")).await;
        assert_eq!(index["manifests"], json!([]));
    }
    let r = reg.send(Method::GET, "/v2/team/app/referrers/sha256:bad").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a malformed digest is a client error");
    reg.stop().await;
}

#[tokio::test]
async fn config_media_type_stands_in_for_a_missing_artifact_type() {
    let reg = TestRegistry::start().await;
    let subject = reg.push_image("team/app", "v1", &[b"base"]).await;
    let config = br#"{"kind":"attestation"}"#;
    reg.push_blob("team/app", config).await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.example.attestation.config", config),
        "layers": [], "subject": descriptor(OCI_MANIFEST, &subject.manifest),
    }))
    .expect("json");
    assert_eq!(reg.put_manifest("team/app", "att", OCI_MANIFEST, &manifest).await.status(), StatusCode::CREATED);
    let (index, _) = referrers(&reg, &format!("/v2/team/app/referrers/{}", subject.digest)).await;
    assert_eq!(index["manifests"][0]["artifactType"], "application/vnd.example.attestation.config");
    reg.stop().await;
}

#[tokio::test]
async fn referrers_recorded_with_the_fallback_tag_are_found() {
    let reg = TestRegistry::start().await;
    let subject = reg.push_image("team/old", "v1", &[b"base"]).await;
    // An older client: pushes the artifact without `subject`, then maintains the
    // `sha256-<hex>` tag as an index of the subject's referrers.
    reg.push_blob("team/old", EMPTY).await;
    let artifact = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
        "config": descriptor(EMPTY_TYPE, EMPTY), "layers": [],
    }))
    .expect("json");
    let artifact_digest = sha256(&artifact);
    assert_eq!(
        reg.put_manifest("team/old", &artifact_digest, OCI_MANIFEST, &artifact).await.status(),
        StatusCode::CREATED
    );
    let mut entry = descriptor(OCI_MANIFEST, &artifact);
    entry["artifactType"] = json!("application/vnd.example.sig");
    entry["annotations"] = json!({"from": "fallback"});
    let fallback =
        serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry] })).expect("json");
    let tag = subject.digest.replace(':', "-");
    assert_eq!(reg.put_manifest("team/old", &tag, OCI_INDEX, &fallback).await.status(), StatusCode::CREATED);
    // A newer client pushes another referrer with `subject`.
    let sbom =
        push_artifact(&reg, "team/old", &subject.manifest, "application/vnd.example.sbom", b"sbom", json!({})).await;

    let (index, _) = referrers(&reg, &format!("/v2/team/old/referrers/{}", subject.digest)).await;
    let digests: Vec<&str> =
        index["manifests"].as_array().expect("manifests").iter().filter_map(|m| m["digest"].as_str()).collect();
    assert_eq!(digests.len(), 2, "{index}");
    assert!(digests.contains(&artifact_digest.as_str()) && digests.contains(&sbom.as_str()));
    let old = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["digest"] == artifact_digest)
        .expect("listed");
    assert_eq!(old["annotations"], json!({"from": "fallback"}));
    let (filtered, _) =
        referrers(&reg, &format!("/v2/team/old/referrers/{}?artifactType=application/vnd.example.sig", subject.digest))
            .await;
    assert_eq!(filtered["manifests"].as_array().map(Vec::len), Some(1));
    assert_eq!(filtered["manifests"][0]["digest"], artifact_digest);
    reg.stop().await;
}

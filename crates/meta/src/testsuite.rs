//! The MetaStore conformance suite: the behaviour every backend must show, run against each.

use berth_core::Error;
use berth_core::access::Principal;
use berth_core::ports::{BlobRecord, MetaStore, NewManifest, UploadRecord};
use berth_core::tenancy::records::AuditEntry;
use berth_oci::{Algorithm, Digest, Reference, RepositoryName, Tag};
use bytes::Bytes;

/// Runs every check against a fresh, empty `store`, panicking on the first failure.
pub async fn run(store: &dyn MetaStore) {
    connection_pools(store);
    repositories(store).await;
    uploads_and_blobs(store).await;
    manifests_and_tags(store).await;
    listings(store).await;
    referrers(store).await;
    signing_keys(store).await;
    crate::testsuite_tenancy::run(store).await;
    crate::testsuite_appregistry::run(store).await;
}

/// An audit row for `action` by the system.
pub fn entry(action: &str) -> AuditEntry {
    AuditEntry {
        time: 1,
        actor_kind: "system".into(),
        actor: "berth".into(),
        action: action.into(),
        namespace: None,
        repository: None,
        client_ip: None,
        details: None,
    }
}

fn name(s: &str) -> RepositoryName {
    RepositoryName::parse(s).expect("valid name")
}

fn tag(s: &str) -> Tag {
    Tag::parse(s).expect("valid tag")
}

fn digest_of(s: &str) -> Digest {
    Digest::of(Algorithm::Sha256, s.as_bytes())
}

fn upload(id: &str, repository: &RepositoryName, key: &str, now: i64) -> UploadRecord {
    UploadRecord {
        id: id.to_owned(),
        repository: repository.clone(),
        storage_key: key.to_owned(),
        length: 0,
        hash_algorithm: Algorithm::Sha256,
        hash_state: vec![1, 2, 3],
        hash_state_format: "test".into(),
        backend_state: vec![],
        created_at: now,
        updated_at: now,
    }
}

/// Stores blob `content` in `repository` through an upload, as the registry does.
async fn store_blob(store: &dyn MetaStore, repository: &RepositoryName, content: &str) -> Digest {
    let digest = digest_of(content);
    let id = format!("up-{}", &digest.hex()[..12]);
    store.ensure_repository(repository, &Principal::System, &entry("create_repository")).await.expect("ensure");
    store
        .create_upload(&upload(&id, repository, &format!("key-{id}-{}", repository.as_str().replace('/', "-")), 1))
        .await
        .expect("create upload");
    let blob = BlobRecord {
        digest: digest.clone(),
        size: content.len() as u64,
        storage_key: format!("key-{id}-{}", repository.as_str().replace('/', "-")),
    };
    store.commit_blob(&id, repository, &blob, 2).await.expect("commit blob");
    digest
}

fn manifest(
    repository: &RepositoryName,
    body: &str,
    blobs: Vec<(Digest, u64)>,
    children: Vec<Digest>,
    tags: &[&str],
) -> NewManifest {
    NewManifest {
        repository: repository.clone(),
        digest: digest_of(body),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        artifact_type: None,
        subject: None,
        annotations: None,
        bytes: Bytes::from(body.to_owned()),
        blobs,
        children,
        tags: tags.iter().map(|t| tag(t)).collect(),
        now: 10,
        creator: Principal::System,
        audit: entry("push"),
    }
}

fn connection_pools(store: &dyn MetaStore) {
    let pools = store.connection_pools();
    assert!(!pools.is_empty());
    for pool in pools {
        assert!(pool.max >= 1 && pool.in_use <= pool.max && pool.idle <= pool.max - pool.in_use, "{pool:?}");
    }
}

async fn repositories(store: &dyn MetaStore) {
    let r = name("suite/repos");
    assert!(!store.repository_exists(&r).await.expect("exists"));
    store.ensure_repository(&r, &Principal::System, &entry("create_repository")).await.expect("ensure");
    store.ensure_repository(&r, &Principal::System, &entry("create_repository")).await.expect("ensure is idempotent");
    assert!(store.repository_exists(&r).await.expect("exists"));
}

async fn uploads_and_blobs(store: &dyn MetaStore) {
    let a = name("suite/blobs-a");
    let b = name("suite/blobs-b");
    store.ensure_repository(&a, &Principal::System, &entry("create_repository")).await.expect("ensure");
    let sessions = store.count_uploads().await.expect("count");
    store.create_upload(&upload("u1", &a, "k1", 100)).await.expect("create");
    assert!(
        store.create_upload(&upload("u-unknown-repo", &name("suite/none"), "k0", 1)).await.is_err(),
        "upload needs a repository"
    );
    assert_eq!(store.count_uploads().await.expect("count"), sessions + 1);

    let got = store.upload("u1").await.expect("get").expect("present");
    assert_eq!((got.length, got.repository.clone(), got.hash_state.clone()), (0, a.clone(), vec![1, 2, 3]));
    assert!(store.save_upload_progress("u1", 0, 5, &[9], b"s", 200).await.expect("save"));
    assert!(
        !store.save_upload_progress("u1", 0, 7, &[9], b"s", 200).await.expect("stale save"),
        "progress is compare-and-set"
    );
    let got = store.upload("u1").await.expect("get").expect("present");
    assert_eq!((got.length, got.hash_state, got.backend_state, got.updated_at), (5, vec![9], b"s".to_vec(), 200));
    assert_eq!(store.stale_uploads(150, 10).await.expect("stale").len(), 0);
    assert_eq!(store.stale_uploads(201, 10).await.expect("stale")[0].id, "u1");

    let d = digest_of("blob one");
    let blob = BlobRecord { digest: d.clone(), size: 5, storage_key: "k1".into() };
    assert_eq!(store.commit_blob("u1", &a, &blob, 300).await.expect("commit"), blob);
    assert!(store.upload("u1").await.expect("get").is_none(), "committing ends the upload");
    assert_eq!(store.count_uploads().await.expect("count"), sessions);
    assert!(matches!(store.commit_blob("u1", &a, &blob, 300).await, Err(Error::BlobUploadUnknown)));

    // The same digest uploaded again (to another repository) keeps the first copy.
    store.ensure_repository(&b, &Principal::System, &entry("create_repository")).await.expect("ensure");
    store.create_upload(&upload("u2", &b, "k2", 100)).await.expect("create");
    let again = BlobRecord { storage_key: "k2".into(), ..blob.clone() };
    assert_eq!(store.commit_blob("u2", &b, &again, 300).await.expect("commit").storage_key, "k1");

    assert_eq!(store.repository_blob(&a, &d).await.expect("get"), Some(blob.clone()));
    assert_eq!(store.blob(&d).await.expect("get"), Some(blob.clone()));
    let c = name("suite/blobs-c");
    assert_eq!(store.repository_blob(&c, &d).await.expect("get"), None);
    store.link_blob(&c, &d, &Principal::System, &entry("create_repository"), 400).await.expect("mount");
    assert_eq!(store.repository_blob(&c, &d).await.expect("get"), Some(blob.clone()));
    store
        .link_blob(&c, &d, &Principal::System, &entry("create_repository"), 400)
        .await
        .expect("mounting twice is fine");
    assert!(matches!(
        store.link_blob(&c, &digest_of("nothing"), &Principal::System, &entry("create_repository"), 400).await,
        Err(Error::BlobUnknown(_))
    ));
    assert!(store.unlink_blob(&c, &d, &entry("delete_blob")).await.expect("unlink"));
    assert!(!store.unlink_blob(&c, &d, &entry("delete_blob")).await.expect("unlink again"));
    assert_eq!(store.repository_blob(&c, &d).await.expect("get"), None);
    assert_eq!(store.repository_blob(&a, &d).await.expect("get"), Some(blob), "other repositories keep it");

    store.create_upload(&upload("u3", &a, "k3", 100)).await.expect("create");
    assert_eq!(store.count_uploads().await.expect("count"), sessions + 1);
    assert!(store.delete_upload("u3").await.expect("delete"));
    assert!(!store.delete_upload("u3").await.expect("delete again"));
    assert_eq!(store.count_uploads().await.expect("count"), sessions, "cancelling ends the upload");
}

async fn manifests_and_tags(store: &dyn MetaStore) {
    let r = name("suite/manifests");
    let config = store_blob(store, &r, "config").await;
    let layer = store_blob(store, &r, "layer!").await;
    let elsewhere = store_blob(store, &name("suite/other"), "other layer").await;

    // Missing references are all reported, and nothing is written.
    let bad = manifest(
        &r,
        "m0",
        vec![(config.clone(), 6), (elsewhere.clone(), 11), (digest_of("gone"), 1)],
        vec![digest_of("child")],
        &["t"],
    );
    match store.commit_manifest(&bad).await {
        Err(Error::ManifestBlobUnknown(missing)) => {
            let mut want = vec![elsewhere.clone(), digest_of("gone"), digest_of("child")];
            want.sort();
            assert_eq!(missing, want);
        }
        other => panic!("expected ManifestBlobUnknown, got {other:?}"),
    }
    assert!(store.manifest(&r, &Reference::Tag(tag("t"))).await.expect("get").is_none());
    let wrong_size = manifest(&r, "m0", vec![(config.clone(), 99)], vec![], &["t"]);
    assert!(matches!(store.commit_manifest(&wrong_size).await, Err(Error::ManifestInvalid(_))));

    let m1 = manifest(
        &r,
        "m1",
        vec![(config.clone(), 6), (layer.clone(), 6), (layer.clone(), 6)],
        vec![],
        &["v1", "latest"],
    );
    store.commit_manifest(&m1).await.expect("commit m1");
    store.commit_manifest(&m1).await.expect("committing the same manifest again is fine");
    let by_tag = store.manifest(&r, &Reference::Tag(tag("latest"))).await.expect("get").expect("tagged");
    assert_eq!((by_tag.digest.clone(), by_tag.bytes.as_ref()), (m1.digest.clone(), b"m1".as_ref()));
    let by_digest = store.manifest(&r, &Reference::Digest(m1.digest.clone())).await.expect("get").expect("present");
    assert_eq!(by_digest, by_tag);
    assert!(store.manifest(&name("suite/other"), &Reference::Digest(m1.digest.clone())).await.expect("get").is_none());

    // An index over m1; then "latest" moves to it.
    let mut index = manifest(&r, "i1", vec![], vec![m1.digest.clone()], &["latest"]);
    index.media_type = "application/vnd.oci.image.index.v1+json".into();
    store.commit_manifest(&index).await.expect("commit index");
    let latest = store.manifest(&r, &Reference::Tag(tag("latest"))).await.expect("get").expect("tagged");
    assert_eq!((latest.digest, latest.media_type), (index.digest.clone(), index.media_type.clone()));
    assert_eq!(store.manifest(&r, &Reference::Tag(tag("v1"))).await.expect("get").expect("v1").digest, m1.digest);

    assert!(store.delete_tag(&r, &tag("v1"), 20, &entry("delete_tag")).await.expect("delete tag"));
    assert!(!store.delete_tag(&r, &tag("v1"), 21, &entry("delete_tag")).await.expect("delete tag again"));
    assert!(store.manifest(&r, &Reference::Tag(tag("v1"))).await.expect("get").is_none());
    assert!(
        store.manifest(&r, &Reference::Digest(m1.digest.clone())).await.expect("get").is_some(),
        "deleting a tag keeps the manifest"
    );

    assert!(store.delete_manifest(&r, &index.digest, &entry("delete_manifest")).await.expect("delete manifest"));
    assert!(!store.delete_manifest(&r, &index.digest, &entry("delete_manifest")).await.expect("delete again"));
    assert!(
        store.manifest(&r, &Reference::Tag(tag("latest"))).await.expect("get").is_none(),
        "tags go with their manifest"
    );
    assert_eq!(store.list_tags(&r, None, 10).await.expect("list"), Some(vec![]));
}

async fn listings(store: &dyn MetaStore) {
    let r = name("suite/listing");
    let config = store_blob(store, &r, "cfg").await;
    let tags = ["b", "a", "C", "a1", "z", "_u", "0"];
    store.commit_manifest(&manifest(&r, "lm", vec![(config, 3)], vec![], &tags)).await.expect("commit");
    let mut sorted: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
    sorted.sort();
    assert_eq!(store.list_tags(&r, None, 100).await.expect("list"), Some(sorted.clone()));
    assert_eq!(store.list_tags(&r, None, 3).await.expect("list"), Some(sorted[..3].to_vec()));
    assert_eq!(store.list_tags(&r, Some(&sorted[2]), 3).await.expect("list"), Some(sorted[3..6].to_vec()));
    assert_eq!(store.list_tags(&r, Some("zz"), 3).await.expect("list"), Some(vec![]));
    assert_eq!(store.list_tags(&name("suite/unknown"), None, 3).await.expect("list"), None);

    let all = store.readable_repositories(&Principal::System, None, 1000).await.expect("catalog");
    assert!(all.windows(2).all(|w| w[0] < w[1]), "catalog is sorted: {all:?}");
    assert!(all.contains(&"suite/listing".to_owned()));
    let after = store.readable_repositories(&Principal::System, Some("suite/listing"), 1).await.expect("catalog");
    assert!(after.len() == 1 && after[0].as_str() > "suite/listing");
}

async fn referrers(store: &dyn MetaStore) {
    let r = name("suite/referrers");
    let config = store_blob(store, &r, "rcfg").await;
    let subject = digest_of("the subject");
    for (body, artifact_type) in
        [("sig", "application/vnd.sig"), ("sbom", "application/vnd.sbom"), ("sig2", "application/vnd.sig")]
    {
        let mut m = manifest(&r, body, vec![(config.clone(), 4)], vec![], &[]);
        m.subject = Some(subject.clone());
        m.artifact_type = Some(artifact_type.into());
        m.annotations = Some(r#"{"org.example":"yes"}"#.into());
        store.commit_manifest(&m).await.expect("commit referrer");
    }
    let all = store.referrers(&r, &subject, None, 100).await.expect("referrers");
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].digest < w[1].digest));
    assert_eq!(all[0].annotations.as_ref().expect("annotations")["org.example"], "yes");
    let sigs = store.referrers(&r, &subject, Some("application/vnd.sig"), 100).await.expect("referrers");
    assert_eq!(sigs.len(), 2);
    assert!(sigs.iter().all(|s| s.artifact_type.as_deref() == Some("application/vnd.sig")));
    assert!(store.referrers(&r, &digest_of("other"), None, 100).await.expect("referrers").is_empty());
    assert_eq!(store.referrers(&r, &subject, None, 1).await.expect("referrers").len(), 1);
}

async fn signing_keys(store: &dyn MetaStore) {
    assert!(store.signing_keys().await.expect("keys").is_empty());
    store.add_signing_key("0002-b", &[2; 32], 2, &[]).await.expect("add");
    store.add_signing_key("0001-a", &[1; 32], 1, &[]).await.expect("add");
    let keys = store.signing_keys().await.expect("keys");
    assert_eq!(keys, vec![("0001-a".to_owned(), vec![1; 32]), ("0002-b".to_owned(), vec![2; 32])], "ids ascending");
    assert!(store.add_signing_key("0001-a", &[9; 32], 3, &[]).await.is_err(), "ids are unique");
    store
        .add_signing_key("0003-c", &[3; 32], 3, &["0001-a".to_owned(), "0009-unknown".to_owned()])
        .await
        .expect("rotate");
    let ids: Vec<String> = store.signing_keys().await.expect("keys").into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["0002-b", "0003-c"]);
}

//! The App Registry half of the MetaStore conformance suite.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use berth_core::Error;
use berth_core::access::{GranteeKind, Principal, RepositoryKind, Role, Visibility};
use berth_core::appregistry::store::AppPush;
use berth_core::appregistry::{AppChannel, AppPackage, version};
use berth_core::ports::{BlobRecord, MetaStore, UploadRecord};
use berth_core::tenancy::records::{AuditEntry, AuditFilter, Grantee};
use berth_oci::{Algorithm, Digest, RepositoryName};

use crate::testsuite::entry;

pub async fn run(store: &dyn MetaStore) {
    pushes_and_kinds(store).await;
    blobs_are_stored_once(store).await;
    packages_read_newest_first(store).await;
    listings_and_private_packages(store).await;
    channels(store).await;
    deleting_releases(store).await;
    channels_never_point_at_nothing(store).await;
}

fn name(s: &str) -> RepositoryName {
    RepositoryName::parse(s).expect("valid name")
}

fn user(id: i64, name: &str, superuser: bool) -> Principal {
    Principal::User { id, name: name.to_owned(), superuser }
}

/// An audit row for `action` on `repo`.
fn audited(action: &str, repo: &RepositoryName) -> AuditEntry {
    AuditEntry {
        namespace: Some(repo.namespace().to_owned()),
        repository: Some(repo.as_str().to_owned()),
        ..entry(action)
    }
}

/// The protocol's digest of a package whose tar holds `content`.
fn tar_digest(content: &str) -> String {
    Digest::of(Algorithm::Sha256, format!("tar of {content}").as_bytes()).hex().to_owned()
}

/// The stored gzip bytes of `content`, compressed the `variant`th way.
fn gzip(content: &str, variant: u64) -> BlobRecord {
    let digest = Digest::of(Algorithm::Sha256, format!("gzip {variant} of {content}").as_bytes());
    BlobRecord { size: 100 + content.len() as u64 + variant, storage_key: format!("appr/{}", digest.hex()), digest }
}

/// A push of `content` as (release, media type) of `repo` by the system, creating it public.
fn push(repo: &RepositoryName, release: &str, media_type: &str, content: &str) -> AppPush {
    AppPush {
        name: repo.clone(),
        release: release.to_owned(),
        media_type: media_type.to_owned(),
        digest: tar_digest(content),
        blob: gzip(content, 0),
        metadata: Some(format!(r#"{{"content":"{content}"}}"#)),
        force: false,
        visibility: Visibility::Public,
        creator: Principal::System,
        now: 1_000,
        creation_audit: audited("create_repository", repo),
        audit: audited("push_package", repo),
    }
}

async fn pushed(store: &dyn MetaStore, repo: &RepositoryName, release: &str, media_type: &str) -> AppPush {
    let p = push(repo, release, media_type, &format!("{repo}:{release}:{media_type}"));
    assert_eq!(store.app_push(&p).await.expect("push"), p.blob);
    p
}

async fn package(store: &dyn MetaStore, repo: &RepositoryName) -> AppPackage {
    store.app_package(repo).await.expect("app_package").expect("package exists")
}

fn same_error(got: &Error, want: &Error) -> bool {
    std::mem::discriminant(got) == std::mem::discriminant(want)
}

/// The audit rows written about one repository, checked a step at a time.
struct Trail<'a> {
    store: &'a dyn MetaStore,
    repo: String,
    seen: usize,
}

impl<'a> Trail<'a> {
    async fn new(store: &'a dyn MetaStore, repo: &RepositoryName) -> Trail<'a> {
        let mut trail = Trail { store, repo: repo.as_str().to_owned(), seen: 0 };
        trail.seen = trail.actions().await.len();
        trail
    }

    /// Every action audited on the repository, oldest first.
    async fn actions(&self) -> Vec<String> {
        let filter = AuditFilter { repository: Some(self.repo.clone()), limit: 100_000, ..AuditFilter::default() };
        let rows = self.store.audit_log(&filter).await.expect("audit log");
        rows.into_iter().rev().map(|r| r.entry.action).collect()
    }

    /// Asserts the rows written since the last check are exactly `want`.
    async fn expect(&mut self, want: &[&str], what: &str) {
        let all = self.actions().await;
        assert_eq!(&all[self.seen..], want, "audit rows of {} after {what}", self.repo);
        self.seen = all.len();
    }
}

/// No channel is empty, points at a release the package lacks or lists one it lacks, and
/// channel releases are newest first.
fn assert_channels_consistent(package: &AppPackage, what: &str) {
    let releases: HashSet<&str> = package.release_names().into_iter().collect();
    for channel in &package.channels {
        assert!(!channel.releases.is_empty(), "{what}: channel {} is empty", channel.name);
        assert!(channel.releases.contains(&channel.current), "{what}: {channel:?} does not hold its current");
        assert!(
            channel.releases.iter().all(|r| releases.contains(r.as_str())),
            "{what}: {channel:?} holds a release {} lacks ({releases:?})",
            package.name
        );
        let mut sorted = channel.releases.clone();
        version::sort_descending(&mut sorted);
        assert_eq!(channel.releases, sorted, "{what}: channel releases newest first");
    }
    let names: Vec<&str> = package.channels.iter().map(|c| c.name.as_str()).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{what}: channels by name: {names:?}");
}

/// Release names in the order the package lists them, checking each release's media types
/// are listed together.
fn listed_release_order(package: &AppPackage) -> Vec<String> {
    let mut order: Vec<String> = package.releases.iter().map(|r| r.release.clone()).collect();
    order.dedup();
    assert_eq!(order.len(), package.release_names().len(), "a release's media types are adjacent");
    order
}

fn channel(name: &str, current: &str, releases: &[&str]) -> AppChannel {
    AppChannel {
        name: name.to_owned(),
        current: current.to_owned(),
        releases: releases.iter().map(|r| (*r).to_owned()).collect(),
    }
}

async fn pushes_and_kinds(store: &dyn MetaStore) {
    let repo = name("cnr/pushed");
    let mut trail = Trail::new(store, &repo).await;
    assert_eq!(store.repository_kind(&repo).await.expect("kind"), None);
    assert!(store.app_package(&repo).await.expect("app_package").is_none());

    // The first push creates a private application repository.
    let mut first = push(&repo, "1.0.0", "helm", "one");
    first.visibility = Visibility::Private;
    first.now = 1_100;
    assert_eq!(store.app_push(&first).await.expect("push"), first.blob);
    trail.expect(&["create_repository", "push_package"], "a creating push").await;
    assert_eq!(store.repository_kind(&repo).await.expect("kind"), Some(RepositoryKind::Application));
    let record = store.repository(&repo).await.expect("repository").expect("created");
    assert_eq!((record.kind.as_str(), record.visibility), ("application", Visibility::Private));
    let created = package(store, &repo).await;
    assert_eq!(
        (created.name.as_str(), created.kind, created.visibility),
        (repo.as_str(), RepositoryKind::Application, Visibility::Private)
    );
    assert_eq!(created.releases.len(), 1);
    let release = &created.releases[0];
    assert_eq!(
        (release.release.as_str(), release.media_type.as_str(), &release.digest, &release.blob),
        ("1.0.0", "helm", &first.digest, &first.blob)
    );
    assert_eq!((release.metadata.as_deref(), release.created_at), (first.metadata.as_deref(), 1_100));
    assert!(created.channels.is_empty());

    // Visibility is the creating push's: a later push asking otherwise changes nothing.
    let mut second = push(&repo, "1.0.0", "kpm", "one for kpm");
    second.metadata = None;
    store.app_push(&second).await.expect("second media type");
    trail.expect(&["push_package"], "a push to an existing package").await;
    let before = package(store, &repo).await;
    assert_eq!(before.visibility, Visibility::Private);
    assert_eq!(before.manifest("1.0.0", "kpm").map(|r| r.metadata.clone()), Some(None));

    // The same (release, media type) again without force: refused, whatever it carries.
    for (what, content, metadata) in
        [("other content", "changed", None), ("the same content", "one", first.metadata.clone())]
    {
        let mut again = push(&repo, "1.0.0", "helm", content);
        again.metadata = metadata;
        assert!(
            matches!(store.app_push(&again).await, Err(Error::Conflict(_))),
            "pushing {what} over 1.0.0/helm without force"
        );
        trail.expect(&[], "a refused push").await;
        assert_eq!(package(store, &repo).await, before, "a refused push ({what}) changes nothing");
    }
    assert_eq!(store.blob(&gzip("changed", 0).digest).await.expect("blob"), None, "a refused push stores no blob");

    // With force it replaces the digest, blob and metadata of that media type only.
    let mut forced = push(&repo, "1.0.0", "helm", "changed");
    forced.force = true;
    forced.metadata = Some(r#"{"replaced":true}"#.into());
    forced.now = 1_200;
    assert_eq!(store.app_push(&forced).await.expect("forced push"), forced.blob);
    trail.expect(&["push_package"], "a forced push").await;
    let after = package(store, &repo).await;
    let helm = after.manifest("1.0.0", "helm").expect("still there");
    assert_eq!(
        (&helm.digest, &helm.blob, helm.metadata.as_deref()),
        (&forced.digest, &forced.blob, Some(r#"{"replaced":true}"#))
    );
    assert_eq!(helm.created_at, 1_200);
    assert_eq!(after.manifest("1.0.0", "kpm"), before.manifest("1.0.0", "kpm"));
    assert_eq!(after.releases.len(), 2);
    // Force on a new (release, media type) is a plain push.
    let mut new_forced = push(&repo, "1.1.0", "helm", "one one");
    new_forced.force = true;
    store.app_push(&new_forced).await.expect("forced new release");
    trail.expect(&["push_package"], "a forced push of a new release").await;
    assert_eq!(package(store, &repo).await.releases.len(), 3);

    // Image and application repositories refuse each other's protocol.
    let image = name("cnr/image");
    store.ensure_repository(&image, &Principal::System, &audited("create_repository", &image)).await.expect("image");
    let mut image_trail = Trail::new(store, &image).await;
    for force in [false, true] {
        let mut onto_image = push(&image, "1.0.0", "helm", "onto an image");
        onto_image.force = force;
        assert!(
            matches!(store.app_push(&onto_image).await, Err(Error::WrongKind(_))),
            "an App Registry push onto an image repository (force {force})"
        );
    }
    image_trail.expect(&[], "refused pushes").await;
    assert_eq!(store.blob(&gzip("onto an image", 0).digest).await.expect("blob"), None);
    assert_eq!(store.repository_kind(&image).await.expect("kind"), Some(RepositoryKind::Image));
    let as_package = package(store, &image).await;
    assert_eq!(
        (as_package.kind, as_package.releases.len(), as_package.channels.len()),
        (RepositoryKind::Image, 0, 0),
        "an image repository read as a package"
    );
    assert!(matches!(
        store.ensure_repository(&repo, &Principal::System, &audited("create_repository", &repo)).await,
        Err(Error::WrongKind(_))
    ));
    trail.expect(&[], "a refused OCI push").await;
    assert_eq!(store.repository_kind(&repo).await.expect("kind"), Some(RepositoryKind::Application));

    // Only a superuser's push creates a missing namespace.
    let dave = store.create_user("dave", "hash-d", false, None, &entry("create_user")).await.expect("dave");
    let nowhere = name("cnr-nowhere/pkg");
    let mut by_dave = push(&nowhere, "1.0.0", "helm", "dave's");
    by_dave.creator = user(dave.id, "dave", false);
    assert!(matches!(store.app_push(&by_dave).await, Err(Error::Denied(_))));
    assert_eq!(store.repository_kind(&nowhere).await.expect("kind"), None);
    assert!(store.namespace("cnr-nowhere").await.expect("namespace").is_none());
    Trail::new(store, &nowhere).await.expect(&[], "a denied push").await;
}

async fn blobs_are_stored_once(store: &dyn MetaStore) {
    let a = name("cnr/dedup-a");
    let b = name("cnr/dedup-b");
    let first = push(&a, "1.0.0", "helm", "shared");
    assert_eq!(store.app_push(&first).await.expect("first"), first.blob);
    assert_eq!(store.blob(&first.blob.digest).await.expect("blob"), Some(first.blob.clone()));
    let mut b_trail = Trail::new(store, &b).await;
    let mut a_trail = Trail::new(store, &a).await;

    // The same tar compressed other ways, pushed to another package, another release and
    // another media type (also with force): the first stored bytes come back each time.
    let mut cases = Vec::new();
    for (variant, repo, release, media_type, force) in
        [(1, &b, "2.0.0", "helm", false), (2, &a, "1.0.0", "kpm", false), (3, &a, "1.0.0", "helm", true)]
    {
        let mut again = push(repo, release, media_type, "shared");
        again.blob = gzip("shared", variant);
        again.force = force;
        assert_eq!(again.digest, first.digest);
        assert_ne!(again.blob.digest, first.blob.digest);
        cases.push(again);
    }
    for (i, again) in cases.iter().enumerate() {
        let stored = store.app_push(again).await.expect("push of known content");
        assert_eq!(stored, first.blob, "case {i}: the first bytes stored for a tar win");
        assert_ne!(stored.storage_key, again.blob.storage_key, "case {i}: the caller deletes its object");
        assert_eq!(
            store.blob(&again.blob.digest).await.expect("blob"),
            None,
            "case {i}: the redundant gzip is not recorded"
        );
        let manifest = package(store, &again.name).await;
        let manifest = manifest.manifest(&again.release, &again.media_type).expect("pushed").clone();
        assert_eq!((manifest.digest, manifest.blob), (first.digest.clone(), first.blob.clone()), "case {i}");
    }
    b_trail.expect(&["create_repository", "push_package"], "a deduplicated creating push").await;
    a_trail.expect(&["push_package", "push_package"], "deduplicated pushes").await;
    assert_eq!(store.blob(&first.blob.digest).await.expect("blob"), Some(first.blob.clone()));

    // gzip bytes already stored as any blob (here an image layer) are reused as they are.
    let image = name("cnr/image");
    let layer = gzip("a layer", 0);
    let upload = UploadRecord {
        id: "cnr-upload".into(),
        repository: image.clone(),
        storage_key: layer.storage_key.clone(),
        length: 0,
        hash_algorithm: Algorithm::Sha256,
        hash_state: vec![],
        hash_state_format: "test".into(),
        backend_state: vec![],
        created_at: 1,
        updated_at: 1,
    };
    store.create_upload(&upload).await.expect("upload");
    store.commit_blob("cnr-upload", &image, &layer, 2).await.expect("commit layer");
    let mut same_bytes = push(&a, "3.0.0", "helm", "packaged layer");
    same_bytes.blob = BlobRecord { storage_key: "appr/another-object".into(), ..layer.clone() };
    assert_eq!(store.app_push(&same_bytes).await.expect("push"), layer, "the stored blob wins");
    assert_eq!(package(store, &a).await.manifest("3.0.0", "helm").map(|m| m.blob.clone()), Some(layer.clone()));
    assert_eq!(store.blob(&layer.digest).await.expect("blob"), Some(layer));
    a_trail.expect(&["push_package"], "a push of stored bytes").await;
}

async fn packages_read_newest_first(store: &dyn MetaStore) {
    let repo = name("cnr/ordered");
    // Pushed out of order; SemVer precedence, not text, decides.
    let pushes = [
        ("1.0.0", "helm"),
        ("2.0.0-beta.1", "helm"),
        ("1.1.0", "kpm"),
        ("1.1.0", "helm"),
        ("1.0.0-rc.1", "helm"),
        ("10.0.0", "helm"),
        ("2.0.0-alpha", "kpm"),
        ("1.1.0", "docker-compose"),
    ];
    for (i, (release, media_type)) in pushes.iter().enumerate() {
        let mut p = push(&repo, release, media_type, &format!("ordered {release} {media_type}"));
        p.now = 2_000 + i as i64;
        store.app_push(&p).await.expect("push");
    }
    let p = package(store, &repo).await;
    assert_eq!(p.kind, RepositoryKind::Application);
    assert_eq!(listed_release_order(&p), ["10.0.0", "2.0.0-beta.1", "2.0.0-alpha", "1.1.0", "1.0.0", "1.0.0-rc.1"]);
    let got: BTreeSet<(&str, &str)> = p.releases.iter().map(|r| (r.release.as_str(), r.media_type.as_str())).collect();
    assert_eq!(got, pushes.iter().copied().collect(), "one entry per (release, media type)");
    assert_eq!(p.releases.len(), pushes.len());
    for (i, (release, media_type)) in pushes.iter().enumerate() {
        let m = p.manifest(release, media_type).expect("listed");
        assert_eq!(m.digest, tar_digest(&format!("ordered {release} {media_type}")));
        assert_eq!(m.created_at, 2_000 + i as i64);
    }

    // Channels come by name, each with its releases newest first.
    let mut trail = Trail::new(store, &repo).await;
    let mut added = Vec::new();
    for (channel, release) in [("zeta", "1.0.0"), ("zeta", "10.0.0"), ("alpha", "2.0.0-beta.1"), ("zeta", "1.1.0")] {
        added.push(store.app_channel_add(&repo, channel, release, &audited("set_channel", &repo)).await.expect("add"));
    }
    trail.expect(&["set_channel"; 4], "channel additions").await;
    let zeta = channel("zeta", "1.1.0", &["10.0.0", "1.1.0", "1.0.0"]);
    let alpha = channel("alpha", "2.0.0-beta.1", &["2.0.0-beta.1"]);
    assert_eq!(added[3], zeta);
    assert_eq!(added[2], alpha);
    let p = package(store, &repo).await;
    assert_eq!(p.channels, [alpha, zeta]);
    assert_channels_consistent(&p, "channels of cnr/ordered");

    // Unknown names.
    assert!(store.app_package(&name("cnr/unknown")).await.expect("app_package").is_none());
    assert!(store.app_package(&name("nobody-here/unknown")).await.expect("app_package").is_none());
}

async fn listings_and_private_packages(store: &dyn MetaStore) {
    let carol = store.create_user("carol", "hash-c", false, None, &entry("create_user")).await.expect("carol");
    let admin = store.create_user("cnradmin", "hash-x", true, None, &entry("create_user")).await.expect("admin");
    let dave = store.user("dave").await.expect("user").expect("dave exists");
    let (carol, admin, dave) =
        (user(carol.id, "carol", false), user(admin.id, "cnradmin", true), user(dave.id, "dave", false));

    // cnr-list: two private packages (one granted to carol), a public one, a public one
    // whose only release went, and a private image repository carol may read.
    type Pushed<'a> = (&'a str, &'a str, i64);
    type Spec<'a> = (&'a str, Visibility, Principal, &'a [(&'a str, &'a str)]);
    let mut rows: BTreeMap<&str, (Visibility, Vec<Pushed>)> = BTreeMap::new();
    let packages: [Spec; 6] = [
        ("cnr-list/zeta", Visibility::Public, Principal::System, &[("1.0.0", "helm"), ("0.1.0", "kpm")]),
        ("cnr-list/alpha", Visibility::Private, Principal::System, &[("1.0.0", "helm")]),
        ("cnr-list/granted", Visibility::Private, admin.clone(), &[("2.0.0", "helm"), ("2.0.0", "kpm")]),
        ("cnr-list/emptied", Visibility::Public, Principal::System, &[("1.0.0", "helm")]),
        ("carol/own", Visibility::Private, carol.clone(), &[("0.0.1", "helm")]),
        ("cnr-other/pkg", Visibility::Public, Principal::System, &[("3.0.0", "helm")]),
    ];
    let mut now = 3_000;
    for (package_name, visibility, creator, releases) in packages {
        let repo = name(package_name);
        for (release, media_type) in releases {
            now += 1;
            let mut p = push(&repo, release, media_type, &format!("{package_name} {release} {media_type}"));
            (p.visibility, p.creator, p.now) = (visibility, creator.clone(), now);
            store.app_push(&p).await.expect("push");
            rows.entry(package_name).or_insert((visibility, Vec::new())).1.push((release, media_type, now));
        }
    }
    let emptied = name("cnr-list/emptied");
    assert!(
        store
            .app_delete_release(&emptied, "1.0.0", "helm", &audited("delete_release", &emptied))
            .await
            .expect("delete")
    );
    rows.remove("cnr-list/emptied");
    let granted = name("cnr-list/granted");
    let carol_read = Grantee { kind: GranteeKind::User, name: "carol".into() };
    store.set_permission(&granted, &carol_read, Role::Read, &audited("set_permission", &granted)).await.expect("grant");
    let image = name("cnr-list/image");
    store.ensure_repository(&image, &Principal::System, &audited("create_repository", &image)).await.expect("image");
    store.set_permission(&image, &carol_read, Role::Read, &audited("set_permission", &image)).await.expect("grant");

    // app_packages: application repositories with releases, by name.
    let in_namespaces = |listed: &[berth_core::appregistry::store::PackageRow], namespaces: &[&str]| {
        listed
            .iter()
            .filter(|p| namespaces.iter().any(|ns| p.name.starts_with(&format!("{ns}/"))))
            .map(|p| {
                let mut releases: Vec<(String, String, i64)> =
                    p.releases.iter().map(|r| (r.release.clone(), r.media_type.clone(), r.created_at)).collect();
                releases.sort();
                (p.name.clone(), p.visibility, releases)
            })
            .collect::<Vec<_>>()
    };
    let expected = |namespaces: &[&str]| {
        rows.iter()
            .filter(|(n, _)| namespaces.iter().any(|ns| n.starts_with(&format!("{ns}/"))))
            .map(|(n, (visibility, releases))| {
                let mut releases: Vec<(String, String, i64)> =
                    releases.iter().map(|(r, m, t)| ((*r).to_owned(), (*m).to_owned(), *t)).collect();
                releases.sort();
                ((*n).to_owned(), *visibility, releases)
            })
            .collect::<Vec<_>>()
    };
    let listed = store.app_packages(Some("cnr-list")).await.expect("app_packages");
    assert_eq!(
        listed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["cnr-list/alpha", "cnr-list/granted", "cnr-list/zeta"]
    );
    assert_eq!(in_namespaces(&listed, &["cnr-list"]), expected(&["cnr-list"]));
    for row in &listed {
        let record = store.repository(&name(&row.name)).await.expect("repository").expect("exists");
        assert_eq!(row.created_at, record.created_at, "{}", row.name);
    }
    assert_eq!(
        store.app_packages(Some("carol")).await.expect("app_packages").iter().map(|p| &p.name).collect::<Vec<_>>(),
        ["carol/own"]
    );
    assert!(store.app_packages(Some("cnr-none")).await.expect("app_packages").is_empty());
    let all = store.app_packages(None).await.expect("app_packages");
    let namespaces = ["carol", "cnr-list", "cnr-other"];
    assert_eq!(in_namespaces(&all, &namespaces), expected(&namespaces), "every namespace");
    assert!(all.windows(2).all(|w| w[0].name < w[1].name), "by name");
    assert!(all.iter().any(|p| p.name == "cnr/ordered"));
    for row in &all {
        assert!(!row.releases.is_empty(), "{} has releases", row.name);
        let kind = store.repository_kind(&name(&row.name)).await.expect("kind");
        assert_eq!(kind, Some(RepositoryKind::Application), "{} is an application", row.name);
    }

    // readable_private_packages: private packages only, as the principal may read them.
    let set = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<HashSet<String>>();
    let listed_private = ["cnr-list/alpha", "cnr-list/granted"];
    for (who, principal, namespace, want) in [
        ("the system", Principal::System, Some("cnr-list"), set(&listed_private)),
        ("a superuser", admin.clone(), Some("cnr-list"), set(&listed_private)),
        ("a superuser", admin.clone(), Some("carol"), set(&["carol/own"])),
        ("a user granted read", carol.clone(), Some("cnr-list"), set(&["cnr-list/granted"])),
        ("a user granted read", carol.clone(), None, set(&["cnr-list/granted", "carol/own"])),
        ("another user", dave.clone(), None, set(&[])),
        ("anonymous", Principal::Anonymous, None, set(&[])),
        ("anonymous", Principal::Anonymous, Some("cnr-list"), set(&[])),
        ("the system", Principal::System, Some("cnr-none"), set(&[])),
    ] {
        let got = store.readable_private_packages(&principal, namespace).await.expect("readable");
        assert_eq!(got, want, "private packages {who} may read in {namespace:?}");
    }
    for principal in [Principal::System, admin] {
        let everywhere = store.readable_private_packages(&principal, None).await.expect("readable");
        assert!(everywhere.is_superset(&set(&["cnr-list/alpha", "cnr-list/granted", "carol/own", "cnr/pushed"])));
        for not_private in ["cnr-list/zeta", "cnr-list/image", "cnr-other/pkg", "cnr/ordered", "cnr/image"] {
            assert!(!everywhere.contains(not_private), "{not_private} is no private package");
        }
    }
}

async fn channels(store: &dyn MetaStore) {
    let repo = name("cnr/channels");
    for release in ["1.0.0", "1.1.0", "1.2.0"] {
        pushed(store, &repo, release, "helm").await;
    }
    let mut trail = Trail::new(store, &repo).await;
    let entry = |action: &str| audited(action, &repo);

    // Adding needs the package and the release.
    let unknown = name("cnr/no-such-package");
    for (package_name, release, want) in [
        (&unknown, "1.0.0", Error::PackageNotFound(String::new())),
        (&repo, "9.9.9", Error::ReleaseNotFound(String::new())),
        (&repo, "1.0", Error::ReleaseNotFound(String::new())),
    ] {
        match store.app_channel_add(package_name, "stable", release, &entry("set_channel")).await {
            Err(e) if same_error(&e, &want) => {}
            other => panic!("adding {package_name}:{release} to a channel: expected {want:?}, got {other:?}"),
        }
    }
    trail.expect(&[], "refused channel additions").await;
    assert!(package(store, &repo).await.channels.is_empty());
    assert!(store.app_package(&unknown).await.expect("app_package").is_none(), "no package appeared");
    assert!(store.app_channel_add(&name("cnr/image"), "stable", "1.0.0", &entry("set_channel")).await.is_err());

    // Each addition makes the release current, even an older one.
    for (release, want) in [
        ("1.2.0", channel("stable", "1.2.0", &["1.2.0"])),
        ("1.0.0", channel("stable", "1.0.0", &["1.2.0", "1.0.0"])),
        ("1.1.0", channel("stable", "1.1.0", &["1.2.0", "1.1.0", "1.0.0"])),
    ] {
        let got = store.app_channel_add(&repo, "stable", release, &entry("set_channel")).await.expect("add");
        assert_eq!(got, want);
        trail.expect(&["set_channel"], "a channel addition").await;
        assert_eq!(package(store, &repo).await.channel("stable"), Some(&want));
    }
    store.app_channel_add(&repo, "beta", "1.0.0", &entry("set_channel")).await.expect("beta");
    trail.expect(&["set_channel"], "a new channel").await;

    // Removing the current release moves the channel to its highest remaining one; removing
    // the last deletes it.
    for (release, want) in [
        ("1.1.0", Some(channel("stable", "1.2.0", &["1.2.0", "1.0.0"]))),
        ("1.2.0", Some(channel("stable", "1.0.0", &["1.0.0"]))),
        ("1.0.0", None),
    ] {
        let removed = store.app_channel_remove(&repo, "stable", release, &entry("remove_from_channel")).await;
        assert_eq!(removed.expect("remove"), Some(()));
        trail.expect(&["remove_from_channel"], "a channel removal").await;
        let p = package(store, &repo).await;
        assert_eq!(p.channel("stable"), want.as_ref(), "after removing {release}");
        assert_eq!(p.release_names(), ["1.2.0", "1.1.0", "1.0.0"], "releases stay");
        assert_channels_consistent(&p, "channel removal");
    }
    for (package_name, channel_name) in [(&repo, "stable"), (&repo, "never"), (&unknown, "stable")] {
        let removed =
            store.app_channel_remove(package_name, channel_name, "1.0.0", &entry("remove_from_channel")).await;
        assert_eq!(removed.expect("remove"), None, "{package_name}:{channel_name} has no such channel");
    }
    trail.expect(&[], "removals from unknown channels").await;

    // Deleting a channel keeps its releases.
    store.app_channel_add(&repo, "beta", "1.2.0", &entry("set_channel")).await.expect("beta");
    trail.expect(&["set_channel"], "an addition").await;
    assert!(store.app_channel_delete(&repo, "beta", &entry("delete_channel")).await.expect("delete"));
    trail.expect(&["delete_channel"], "a channel deletion").await;
    let p = package(store, &repo).await;
    assert!(p.channels.is_empty());
    assert_eq!(p.release_names(), ["1.2.0", "1.1.0", "1.0.0"]);
    for (package_name, channel_name) in [(&repo, "beta"), (&repo, "stable"), (&unknown, "beta")] {
        let deleted = store.app_channel_delete(package_name, channel_name, &entry("delete_channel")).await;
        assert!(!deleted.expect("delete"), "{package_name}:{channel_name} did not exist");
    }
    trail.expect(&[], "deletions of absent channels").await;
}

async fn deleting_releases(store: &dyn MetaStore) {
    let repo = name("cnr/deletions");
    for (release, media_type) in [("1.0.0", "helm"), ("1.0.0", "kpm"), ("1.1.0", "helm"), ("2.0.0", "helm")] {
        pushed(store, &repo, release, media_type).await;
    }
    for (channel_name, release) in [
        ("stable", "1.1.0"),
        ("stable", "2.0.0"),
        ("stable", "1.0.0"),
        ("beta", "1.0.0"),
        ("edge", "1.1.0"),
        ("edge", "2.0.0"),
    ] {
        store.app_channel_add(&repo, channel_name, release, &audited("set_channel", &repo)).await.expect("add");
    }
    let mut trail = Trail::new(store, &repo).await;
    assert_eq!(
        package(store, &repo).await.channels,
        [
            channel("beta", "1.0.0", &["1.0.0"]),
            channel("edge", "2.0.0", &["2.0.0", "1.1.0"]),
            channel("stable", "1.0.0", &["2.0.0", "1.1.0", "1.0.0"]),
        ]
    );

    // Nothing to delete.
    for (package_name, release, media_type) in
        [(&repo, "9.9.9", "helm"), (&repo, "1.0.0", "docker-compose"), (&name("cnr/no-such-package"), "1.0.0", "helm")]
    {
        let deleted =
            store.app_delete_release(package_name, release, media_type, &audited("delete_release", &repo)).await;
        assert!(!deleted.expect("delete"), "{package_name} has no {release}/{media_type}");
    }
    trail.expect(&[], "deleting nothing").await;

    // Each step: (release, media type) deleted, then the releases and channels left.
    type Step<'a> = (&'a str, &'a str, &'a [&'a str], Vec<AppChannel>);
    let steps: Vec<Step> = vec![
        // Another media type of 1.0.0 remains: channels keep it.
        (
            "1.0.0",
            "kpm",
            &["2.0.0", "1.1.0", "1.0.0"],
            vec![
                channel("beta", "1.0.0", &["1.0.0"]),
                channel("edge", "2.0.0", &["2.0.0", "1.1.0"]),
                channel("stable", "1.0.0", &["2.0.0", "1.1.0", "1.0.0"]),
            ],
        ),
        // 2.0.0 leaves every channel; edge (current 2.0.0) moves to 1.1.0, stable keeps 1.0.0.
        (
            "2.0.0",
            "helm",
            &["1.1.0", "1.0.0"],
            vec![
                channel("beta", "1.0.0", &["1.0.0"]),
                channel("edge", "1.1.0", &["1.1.0"]),
                channel("stable", "1.0.0", &["1.1.0", "1.0.0"]),
            ],
        ),
        // 1.0.0 goes: beta is left empty and goes; stable moves to 1.1.0.
        (
            "1.0.0",
            "helm",
            &["1.1.0"],
            vec![channel("edge", "1.1.0", &["1.1.0"]), channel("stable", "1.1.0", &["1.1.0"])],
        ),
        // The last release goes, and every channel with it; the package stays.
        ("1.1.0", "helm", &[], vec![]),
    ];
    for (release, media_type, releases, channels) in steps {
        let what = format!("deleting {release}/{media_type}");
        let deleted = store.app_delete_release(&repo, release, media_type, &audited("delete_release", &repo)).await;
        assert!(deleted.expect("delete"), "{what}");
        trail.expect(&["delete_release"], &what).await;
        let p = package(store, &repo).await;
        assert!(p.manifest(release, media_type).is_none(), "{what}");
        assert_eq!(p.release_names(), releases, "{what}");
        assert_eq!(p.channels, channels, "{what}");
        assert_channels_consistent(&p, &what);
        let deleted = store.app_delete_release(&repo, release, media_type, &audited("delete_release", &repo)).await;
        assert!(!deleted.expect("delete again"), "{what} twice");
        trail.expect(&[], "deleting twice").await;
    }
    let p = package(store, &repo).await;
    assert_eq!((p.kind, p.releases.len()), (RepositoryKind::Application, 0));
    assert!(
        store.app_packages(Some("cnr")).await.expect("app_packages").iter().all(|p| p.name != repo.as_str()),
        "a package without releases is not listed"
    );
}

/// What a package should hold: (release, media type) → protocol digest, and channels.
#[derive(Default)]
struct Model {
    created: bool,
    manifests: BTreeMap<(String, String), String>,
    /// name → (current, releases).
    channels: BTreeMap<String, (String, BTreeSet<String>)>,
}

impl Model {
    fn has_release(&self, release: &str) -> bool {
        self.manifests.keys().any(|(r, _)| r == release)
    }

    fn highest(releases: &BTreeSet<String>) -> Option<String> {
        let mut sorted: Vec<String> = releases.iter().cloned().collect();
        version::sort_descending(&mut sorted);
        sorted.into_iter().next()
    }

    fn channels(&self) -> Vec<AppChannel> {
        self.channels
            .iter()
            .map(|(name, (current, releases))| {
                let mut releases: Vec<String> = releases.iter().cloned().collect();
                version::sort_descending(&mut releases);
                AppChannel { name: name.clone(), current: current.clone(), releases }
            })
            .collect()
    }
}

/// A fixed pseudo-random sequence of pushes, deletions and channel changes, checked against a
/// model after every step.
async fn channels_never_point_at_nothing(store: &dyn MetaStore) {
    let repo = name("cnr/sequence");
    let releases = ["0.9.0", "1.0.0", "1.0.1-rc.1", "1.0.1", "2.0.0-alpha.1", "2.0.0"];
    let media_types = ["helm", "kpm"];
    let channel_names = ["alpha", "beta", "stable"];
    let mut trail = Trail::new(store, &repo).await;
    let mut model = Model::default();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % n as u64) as usize
    };
    let (mut pushes, mut deletions, mut removals) = (0, 0, 0);
    for step in 0..300 {
        let release = releases[next(releases.len())].to_owned();
        let media_type = media_types[next(media_types.len())].to_owned();
        let channel_name = channel_names[next(channel_names.len())].to_owned();
        let entry = |action: &str| AuditEntry { time: step, ..audited(action, &repo) };
        let op = next(10);
        let what = format!("step {step}: op {op} on {release}/{media_type}, channel {channel_name}");
        let expected: Vec<&str> = match op {
            // Push, sometimes with force.
            0..=2 => {
                let mut p = push(&repo, &release, &media_type, &format!("sequence step {step}"));
                (p.force, p.now, p.creation_audit.time, p.audit.time) = (next(3) == 0, step, step, step);
                let key = (release.clone(), media_type.clone());
                let result = store.app_push(&p).await;
                if model.manifests.contains_key(&key) && !p.force {
                    assert!(matches!(result, Err(Error::Conflict(_))), "{what}: {result:?}");
                    vec![]
                } else {
                    assert_eq!(result.expect("push"), p.blob, "{what}");
                    pushes += 1;
                    model.manifests.insert(key, p.digest);
                    if std::mem::replace(&mut model.created, true) {
                        vec!["push_package"]
                    } else {
                        vec!["create_repository", "push_package"]
                    }
                }
            }
            // Delete a (release, media type).
            3..=4 => {
                let deleted = store.app_delete_release(&repo, &release, &media_type, &entry("delete_release")).await;
                let existed = model.manifests.remove(&(release.clone(), media_type.clone())).is_some();
                assert_eq!(deleted.expect("delete"), existed, "{what}");
                if existed && !model.has_release(&release) {
                    deletions += 1;
                    model.channels.retain(|_, (current, held)| {
                        held.remove(&release);
                        if let Some(highest) = Model::highest(held).filter(|_| *current == release) {
                            *current = highest;
                        }
                        !held.is_empty()
                    });
                }
                if existed { vec!["delete_release"] } else { vec![] }
            }
            // Add a release to a channel.
            5..=7 => {
                let added = store.app_channel_add(&repo, &channel_name, &release, &entry("set_channel")).await;
                if !model.created {
                    assert!(matches!(added, Err(Error::PackageNotFound(_))), "{what}: {added:?}");
                    vec![]
                } else if !model.has_release(&release) {
                    assert!(matches!(added, Err(Error::ReleaseNotFound(_))), "{what}: {added:?}");
                    vec![]
                } else {
                    let slot = model.channels.entry(channel_name.clone()).or_default();
                    slot.0 = release.clone();
                    slot.1.insert(release.clone());
                    let want = model.channels().into_iter().find(|c| c.name == channel_name);
                    assert_eq!(Some(added.expect("add")), want, "{what}");
                    vec!["set_channel"]
                }
            }
            // Take a channel's current release out of it (or try an absent channel).
            8 => {
                let current = model.channels.get(&channel_name).map(|(current, _)| current.clone());
                let target = current.clone().unwrap_or(release.clone());
                let removed =
                    store.app_channel_remove(&repo, &channel_name, &target, &entry("remove_from_channel")).await;
                assert_eq!(removed.expect("remove"), current.as_ref().map(|_| ()), "{what}");
                if let Some((current, held)) = model.channels.get_mut(&channel_name) {
                    removals += 1;
                    held.remove(&target);
                    match Model::highest(held) {
                        Some(highest) => *current = highest,
                        None => {
                            model.channels.remove(&channel_name);
                        }
                    }
                    vec!["remove_from_channel"]
                } else {
                    vec![]
                }
            }
            // Delete a channel.
            _ => {
                let deleted = store.app_channel_delete(&repo, &channel_name, &entry("delete_channel")).await;
                let existed = model.channels.remove(&channel_name).is_some();
                assert_eq!(deleted.expect("delete channel"), existed, "{what}");
                if existed { vec!["delete_channel"] } else { vec![] }
            }
        };
        trail.expect(&expected, &what).await;

        let Some(p) = store.app_package(&repo).await.expect("app_package") else {
            assert!(!model.created, "{what}: the package went");
            continue;
        };
        assert_channels_consistent(&p, &what);
        let got: BTreeMap<(String, String), String> =
            p.releases.iter().map(|r| ((r.release.clone(), r.media_type.clone()), r.digest.clone())).collect();
        assert_eq!(got, model.manifests, "{what}");
        assert_eq!(p.releases.len(), model.manifests.len(), "{what}");
        let mut order: Vec<String> = model.manifests.keys().map(|(r, _)| r.clone()).collect();
        order.dedup();
        version::sort_descending(&mut order);
        assert_eq!(listed_release_order(&p), order, "{what}");
        assert_eq!(p.channels, model.channels(), "{what}");
    }
    assert!(pushes > 20 && deletions > 5 && removals > 5, "the sequence exercised every path");
}

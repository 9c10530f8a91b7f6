//! The tenancy half of the MetaStore conformance suite.

use berth_core::Error;
use berth_core::access::{GranteeKind, NamespaceKind, Principal, Role, TeamRole, Visibility};
use berth_core::ports::{MetaStore, NewManifest, UploadRecord};
use berth_core::tenancy::records::{AuditEntry, AuditFilter, Grantee, Member};
use berth_oci::{Algorithm, Digest, RepositoryName, Tag};
use bytes::Bytes;

use crate::testsuite::entry;

fn name(s: &str) -> RepositoryName {
    RepositoryName::parse(s).expect("valid name")
}

fn user(id: i64, name: &str) -> Principal {
    Principal::User { id, name: name.to_owned(), superuser: false }
}

fn grantee(kind: GranteeKind, name: &str) -> Grantee {
    Grantee { kind, name: name.to_owned() }
}

fn scoped(action: &str, namespace: &str) -> AuditEntry {
    AuditEntry { namespace: Some(namespace.to_owned()), ..entry(action) }
}

pub async fn run(store: &dyn MetaStore) {
    let alice = store
        .create_user("alice", "hash-a", false, Some("a@example.com"), &scoped("create_user", "alice"))
        .await
        .expect("alice");
    let bob = store.create_user("bob", "hash-b", false, None, &entry("create_user")).await.expect("bob");
    let root = store.create_user("root", "hash-r", true, None, &entry("create_user")).await.expect("root");
    assert!(root.superuser && !alice.superuser);
    assert!(matches!(
        store.create_user("alice", "x", false, None, &entry("create_user")).await,
        Err(Error::Conflict(_))
    ));
    let (alice_p, bob_p) = (user(alice.id, "alice"), user(bob.id, "bob"));

    users_and_tokens(store).await;
    organizations_teams_and_robots(store).await;
    access_and_permissions(store, &alice_p, &bob_p).await;
    history_and_audit(store).await;
    deletions(store).await;
}

async fn users_and_tokens(store: &dyn MetaStore) {
    let found = store.user("alice").await.expect("user").expect("alice exists");
    assert_eq!((found.password_hash.as_str(), found.email.as_deref()), ("hash-a", Some("a@example.com")));
    assert_eq!(store.user_by_id(found.id).await.expect("user").map(|u| u.name), Some("alice".to_owned()));
    assert!(store.user("nobody").await.expect("user").is_none());
    assert_eq!(store.count_users().await.expect("count"), 3);
    let names: Vec<String> = store.list_users(None, 2).await.expect("list").into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["alice", "bob"]);
    let names: Vec<String> =
        store.list_users(Some("bob"), 10).await.expect("list").into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["root"]);
    store.set_password("bob", "hash-b2", &entry("change_password")).await.expect("set password");
    assert_eq!(store.user("bob").await.expect("user").map(|u| u.password_hash), Some("hash-b2".to_owned()));
    assert!(matches!(store.set_password("nobody", "x", &entry("change_password")).await, Err(Error::NotFound(_))));
    store.set_superuser("bob", true, &entry("set_superuser")).await.expect("promote");
    assert!(store.user("bob").await.expect("user").is_some_and(|u| u.superuser));
    store.set_superuser("bob", false, &entry("set_superuser")).await.expect("demote");

    let token =
        store.create_api_token("alice", "laptop", b"token-hash-1", &entry("create_api_token")).await.expect("token");
    assert_eq!(token.name, "laptop");
    assert!(matches!(
        store.create_api_token("alice", "laptop", b"token-hash-2", &entry("create_api_token")).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.api_tokens("alice").await.expect("tokens").len(), 1);
    assert_eq!(
        store.user_by_api_token(b"token-hash-1").await.expect("lookup").map(|u| u.name),
        Some("alice".to_owned())
    );
    store.delete_api_token("alice", "laptop", &entry("delete_api_token")).await.expect("delete token");
    assert!(store.user_by_api_token(b"token-hash-1").await.expect("lookup").is_none());
    assert!(matches!(
        store.delete_api_token("alice", "laptop", &entry("delete_api_token")).await,
        Err(Error::NotFound(_))
    ));
}

async fn organizations_teams_and_robots(store: &dyn MetaStore) {
    let acme = store.create_organization("acme", "alice", &scoped("create_organization", "acme")).await.expect("acme");
    assert_eq!(acme.kind, NamespaceKind::Organization);
    assert!(matches!(
        store.create_organization("alice", "bob", &entry("create_organization")).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.create_user("acme", "x", false, None, &entry("create_user")).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.namespace("alice").await.expect("ns").map(|n| n.kind), Some(NamespaceKind::User));
    let orgs = store.list_organizations(None, 100).await.expect("orgs");
    assert!(orgs.iter().any(|o| o.name == "acme") && orgs.iter().all(|o| o.kind == NamespaceKind::Organization));

    let teams = store.teams("acme").await.expect("teams");
    assert_eq!(teams.len(), 1);
    assert_eq!((teams[0].name.as_str(), teams[0].role, teams[0].members), ("owners", TeamRole::Admin, 1));
    store.put_team("acme", "devs", TeamRole::Member, "developers", &entry("put_team")).await.expect("devs");
    let ci = store.put_team("acme", "builders", TeamRole::Creator, "", &entry("put_team")).await.expect("builders");
    assert_eq!(ci.role, TeamRole::Creator);
    let changed =
        store.put_team("acme", "devs", TeamRole::Member, "the developers", &entry("put_team")).await.expect("update");
    assert_eq!(changed.description, "the developers");
    assert!(matches!(
        store.put_team("nope", "x", TeamRole::Member, "", &entry("put_team")).await,
        Err(Error::NotFound(_))
    ));
    // The only admin team can neither lose its role nor go.
    assert!(matches!(
        store.put_team("acme", "owners", TeamRole::Member, "", &entry("put_team")).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(store.delete_team("acme", "owners", &entry("delete_team")).await, Err(Error::InvalidInput(_))));

    let robot =
        store.create_robot("acme", "deployer", "deploys", b"robot-hash", &entry("create_robot")).await.expect("robot");
    assert_eq!(robot.full_name(), "acme+deployer");
    assert!(matches!(
        store.create_robot("acme", "deployer", "", b"x", &entry("create_robot")).await,
        Err(Error::Conflict(_))
    ));
    store.create_robot("bob", "helper", "", b"bob-robot", &entry("create_robot")).await.expect("user robot");
    assert_eq!(store.robot("acme+deployer").await.expect("robot").map(|r| r.token_hash), Some(b"robot-hash".to_vec()));
    store
        .set_robot_token("acme+deployer", b"robot-hash-2", &entry("regenerate_robot_token"))
        .await
        .expect("regenerate");
    assert_eq!(
        store.robot("acme+deployer").await.expect("robot").map(|r| r.token_hash),
        Some(b"robot-hash-2".to_vec())
    );
    assert_eq!(store.robots("acme").await.expect("robots").len(), 1);
    assert!(store.robot("acme+nobody").await.expect("robot").is_none());

    store
        .add_team_member("acme", "devs", &Member::User("bob".into()), &entry("add_team_member"))
        .await
        .expect("bob joins");
    store
        .add_team_member("acme", "devs", &Member::User("bob".into()), &entry("add_team_member"))
        .await
        .expect("twice is fine");
    store
        .add_team_member("acme", "builders", &Member::Robot("acme+deployer".into()), &entry("add_team_member"))
        .await
        .expect("robot joins");
    assert!(matches!(
        store.add_team_member("acme", "devs", &Member::Robot("bob+helper".into()), &entry("add_team_member")).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        store.add_team_member("acme", "devs", &Member::User("nobody".into()), &entry("add_team_member")).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.team_members("acme", "devs").await.expect("members"), [Member::User("bob".into())]);
    // The last admin cannot leave.
    assert!(matches!(
        store.remove_team_member("acme", "owners", &Member::User("alice".into()), &entry("remove_team_member")).await,
        Err(Error::InvalidInput(_))
    ));
}

async fn access_and_permissions(store: &dyn MetaStore, alice: &Principal, bob: &Principal) {
    let robot = store.robot("acme+deployer").await.expect("robot").expect("exists");
    let robot = Principal::Robot { id: robot.id, name: robot.full_name() };

    // Creating a repository: the creator (an org admin, not the namespace owner) gets admin.
    let app = name("acme/app");
    assert!(store.ensure_repository(&app, alice, &entry("create_repository")).await.expect("create"));
    assert!(!store.ensure_repository(&app, alice, &entry("create_repository")).await.expect("exists"));
    let facts = store.access_facts(alice, &app).await.expect("facts");
    let ns = facts.namespace.expect("namespace");
    assert_eq!((ns.kind, ns.owned, ns.team_role), (NamespaceKind::Organization, false, Some(TeamRole::Admin)));
    let repo = facts.repository.expect("repository");
    assert_eq!((repo.visibility, repo.role), (Visibility::Private, Some(Role::Admin)));

    let facts = store.access_facts(bob, &app).await.expect("facts");
    assert_eq!(facts.namespace.and_then(|n| n.team_role), Some(TeamRole::Member));
    assert_eq!(facts.repository.and_then(|r| r.role), None);
    store
        .set_permission(&app, &grantee(GranteeKind::Team, "devs"), Role::Write, &entry("set_permission"))
        .await
        .expect("grant team");
    assert_eq!(store.access_facts(bob, &app).await.expect("facts").repository.and_then(|r| r.role), Some(Role::Write));
    store
        .set_permission(&app, &grantee(GranteeKind::User, "bob"), Role::Read, &entry("set_permission"))
        .await
        .expect("grant user");
    assert_eq!(
        store.access_facts(bob, &app).await.expect("facts").repository.and_then(|r| r.role),
        Some(Role::Write),
        "the strongest role wins"
    );
    store
        .set_permission(&app, &grantee(GranteeKind::Robot, "acme+deployer"), Role::Read, &entry("set_permission"))
        .await
        .expect("grant robot");
    let robot_facts = store.access_facts(&robot, &app).await.expect("facts");
    assert_eq!(robot_facts.repository.and_then(|r| r.role), Some(Role::Read));
    assert_eq!(robot_facts.namespace.and_then(|n| n.team_role), Some(TeamRole::Creator));
    let grants = store.permissions(&app).await.expect("permissions");
    assert_eq!(grants.len(), 4, "{grants:?}");
    assert!(grants.iter().any(|g| g.grantee == grantee(GranteeKind::Team, "devs") && g.role == Role::Write));
    store
        .set_permission(&app, &grantee(GranteeKind::User, "bob"), Role::Admin, &entry("set_permission"))
        .await
        .expect("change");
    assert_eq!(store.access_facts(bob, &app).await.expect("facts").repository.and_then(|r| r.role), Some(Role::Admin));
    store
        .remove_permission(&app, &grantee(GranteeKind::User, "bob"), &entry("remove_permission"))
        .await
        .expect("revoke");
    assert!(matches!(
        store.remove_permission(&app, &grantee(GranteeKind::User, "bob"), &entry("remove_permission")).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.set_permission(&app, &grantee(GranteeKind::Team, "ghosts"), Role::Read, &entry("set_permission")).await,
        Err(Error::NotFound(_))
    ));

    // Default permissions apply to new repositories of the organization.
    let default = store
        .add_default_permission(
            "acme",
            &grantee(GranteeKind::Team, "devs"),
            Role::Read,
            &entry("add_default_permission"),
        )
        .await
        .expect("default");
    assert_eq!(store.default_permissions("acme").await.expect("defaults"), std::slice::from_ref(&default));
    assert!(matches!(
        store
            .add_default_permission(
                "acme",
                &grantee(GranteeKind::Team, "devs"),
                Role::Write,
                &entry("add_default_permission")
            )
            .await,
        Err(Error::Conflict(_))
    ));
    let tools = name("acme/tools");
    store.ensure_repository(&tools, alice, &entry("create_repository")).await.expect("create");
    assert_eq!(store.access_facts(bob, &tools).await.expect("facts").repository.and_then(|r| r.role), Some(Role::Read));
    store
        .remove_default_permission("acme", default.id, &entry("remove_default_permission"))
        .await
        .expect("remove default");
    assert!(matches!(
        store.remove_default_permission("acme", default.id, &entry("remove_default_permission")).await,
        Err(Error::NotFound(_))
    ));

    // A user's own namespace is theirs without permission rows.
    let own = name("alice/private");
    store.ensure_repository(&own, alice, &entry("create_repository")).await.expect("create own");
    let facts = store.access_facts(alice, &own).await.expect("facts");
    assert!(facts.namespace.is_some_and(|n| n.owned && n.kind == NamespaceKind::User));
    assert!(store.permissions(&own).await.expect("permissions").is_empty());
    assert!(!store.access_facts(bob, &own).await.expect("facts").namespace.expect("ns").owned);

    // Only superusers (and the system) may create a missing namespace by pushing.
    assert!(matches!(
        store.ensure_repository(&name("ghost/repo"), bob, &entry("create_repository")).await,
        Err(Error::Denied(_))
    ));
    assert!(
        store
            .ensure_repository(&name("legacy/repo"), &Principal::System, &entry("create_repository"))
            .await
            .expect("system")
    );
    assert_eq!(store.namespace("legacy").await.expect("ns").map(|n| n.kind), Some(NamespaceKind::Organization));

    // What each principal may read.
    let readable = |p: Principal| async move { store.readable_repositories(&p, None, 100).await.expect("readable") };
    assert_eq!(readable(bob.clone()).await, ["acme/app", "acme/tools"]);
    assert_eq!(readable(alice.clone()).await, ["acme/app", "acme/tools", "alice/private"]);
    assert!(readable(Principal::Anonymous).await.is_empty());
    store.set_visibility(&own, Visibility::Public, &entry("set_visibility")).await.expect("publish");
    assert_eq!(readable(Principal::Anonymous).await, ["alice/private"]);
    assert_eq!(
        store.access_facts(&Principal::Anonymous, &own).await.expect("facts").repository.map(|r| r.visibility),
        Some(Visibility::Public)
    );
    assert!(readable(Principal::System).await.len() >= 4);
    let in_acme = store.list_repositories_for(bob, Some("acme"), None, 100).await.expect("list");
    assert_eq!(in_acme.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["acme/app", "acme/tools"]);
    assert_eq!(in_acme[0].namespace, "acme");
    let record = store.repository(&own).await.expect("repository").expect("exists");
    assert_eq!((record.visibility, record.kind.as_str()), (Visibility::Public, "image"));

    assert!(matches!(
        store.create_repository(&app, Visibility::Private, alice, &entry("create_repository")).await,
        Err(Error::Conflict(_))
    ));
    let created = store
        .create_repository(&name("acme/public"), Visibility::Public, alice, &entry("create_repository"))
        .await
        .expect("create");
    assert_eq!(created.visibility, Visibility::Public);
}

async fn history_and_audit(store: &dyn MetaStore) {
    let r = name("acme/app");
    let config = Digest::of(Algorithm::Sha256, b"cfg");
    // A manifest without blobs is enough to exercise tag versions.
    for (body, tag) in [("m1", "v1"), ("m2", "v1"), ("m3", "latest")] {
        let manifest = NewManifest {
            repository: r.clone(),
            digest: Digest::of(Algorithm::Sha256, body.as_bytes()),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            artifact_type: None,
            subject: None,
            annotations: None,
            bytes: Bytes::from(body.to_owned()),
            blobs: vec![],
            children: vec![],
            tags: vec![Tag::parse(tag).expect("tag")],
            now: 100,
            creator: Principal::System,
            audit: AuditEntry { repository: Some("acme/app".into()), ..entry("push") },
        };
        store.commit_manifest(&manifest).await.expect("commit");
    }
    let _ = config;
    let live = store.tag_versions(&r, false, None, 10).await.expect("live tags");
    assert_eq!(live.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["latest", "v1"]);
    let history = store.tag_versions(&r, true, None, 10).await.expect("history");
    assert_eq!(history.len(), 3);
    let v1: Vec<_> = history.iter().filter(|t| t.name == "v1").collect();
    assert_eq!(v1.len(), 2);
    assert!(v1.iter().any(|t| t.end.is_some()) && v1.iter().any(|t| t.end.is_none()));
    let next = store.tag_versions(&r, true, Some(history[0].id), 10).await.expect("next page");
    assert_eq!(next.len(), 2);

    store.append_audit(&[scoped("login", "bob"), scoped("login", "bob")]).await.expect("append");
    let logins = store
        .audit_log(&AuditFilter { action: Some("login".into()), limit: 10, ..AuditFilter::default() })
        .await
        .expect("log");
    assert_eq!(logins.len(), 2);
    assert!(logins[0].id > logins[1].id, "newest first");
    let pushes = store
        .audit_log(&AuditFilter { repository: Some("acme/app".into()), limit: 10, ..AuditFilter::default() })
        .await
        .expect("log");
    assert_eq!(pushes.len(), 3, "every push wrote its row in its transaction");
    let page = store.audit_log(&AuditFilter { limit: 2, ..AuditFilter::default() }).await.expect("log");
    let rest = store
        .audit_log(&AuditFilter { before: Some(page[1].id), limit: 1000, ..AuditFilter::default() })
        .await
        .expect("log");
    assert!(rest.iter().all(|r| r.id < page[1].id) && !rest.is_empty());
    let since =
        store.audit_log(&AuditFilter { since: Some(2), limit: 1000, ..AuditFilter::default() }).await.expect("log");
    assert!(since.iter().all(|r| r.entry.time >= 2));
    let acme = store
        .audit_log(&AuditFilter { namespace: Some("acme".into()), limit: 10, ..AuditFilter::default() })
        .await
        .expect("log");
    assert_eq!(acme.len(), 1, "create_organization was scoped to acme");
}

async fn deletions(store: &dyn MetaStore) {
    let tools = name("acme/tools");
    let upload = UploadRecord {
        id: "tenancy-upload".into(),
        repository: tools.clone(),
        storage_key: "tenancy-key".into(),
        length: 0,
        hash_algorithm: Algorithm::Sha256,
        hash_state: vec![],
        hash_state_format: "x".into(),
        backend_state: vec![],
        created_at: 1,
        updated_at: 1,
    };
    store.create_upload(&upload).await.expect("upload");
    assert_eq!(store.delete_repository(&tools, &entry("delete_repository")).await.expect("delete"), ["tenancy-key"]);
    assert!(store.repository(&tools).await.expect("repository").is_none());
    assert!(store.upload("tenancy-upload").await.expect("upload").is_none());
    assert!(matches!(store.delete_repository(&tools, &entry("delete_repository")).await, Err(Error::NotFound(_))));

    store.delete_robot("acme+deployer", &entry("delete_robot")).await.expect("delete robot");
    assert!(store.robot("acme+deployer").await.expect("robot").is_none());
    store.delete_team("acme", "devs", &entry("delete_team")).await.expect("delete team");
    assert_eq!(store.teams("acme").await.expect("teams").len(), 2);
    store.delete_user("bob", &entry("delete_user")).await.expect("delete bob");
    assert!(store.user("bob").await.expect("user").is_none());
    assert!(store.robot("bob+helper").await.expect("robot").is_none(), "a user's robots go with them");
    store.delete_organization("acme", &entry("delete_organization")).await.expect("delete acme");
    assert!(
        store.repository(&name("acme/app")).await.expect("repository").is_none(),
        "an organization's repositories go with it"
    );
    assert!(matches!(store.delete_organization("acme", &entry("delete_organization")).await, Err(Error::NotFound(_))));
}

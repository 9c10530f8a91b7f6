//! The authorization matrix: every OCI, management-API and App Registry endpoint, for every
//! kind of caller, on a public and a private repository (or package), gives the expected
//! status. The table must name every endpoint that exists (`Endpoint::KINDS`,
//! `berth_server::api::routes()` and `berth_server::cnr::endpoint::KINDS`): adding one
//! without a row fails here.

use std::collections::BTreeSet;
use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::content::{Image, OCI_MANIFEST, bytes};
use crate::support::{ADMIN, TestRegistry, anonymous_client, base64_basic, sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    Reader,
    Writer,
    RepoAdmin,
    TeamMember,
    RobotWithRights,
    RobotWithout,
    OtherOrgUser,
    Superuser,
}

const EVERYONE: [Who; 9] = [
    Who::Anonymous,
    Who::Reader,
    Who::Writer,
    Who::RepoAdmin,
    Who::TeamMember,
    Who::RobotWithRights,
    Who::RobotWithout,
    Who::OtherOrgUser,
    Who::Superuser,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vis {
    Public,
    Private,
}

impl Vis {
    fn repo(self) -> &'static str {
        match self {
            Vis::Public => "acme/public",
            Vis::Private => "acme/private",
        }
    }

    /// The App Registry package of this visibility.
    fn package(self) -> &'static str {
        match self {
            Vis::Public => "acme/public-pkg",
            Vis::Private => "acme/private-pkg",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Vis::Public => "public",
            Vis::Private => "private",
        }
    }
}

fn is_robot(who: Who) -> bool {
    matches!(who, Who::RobotWithRights | Who::RobotWithout)
}

fn can_read(who: Who, vis: Vis) -> bool {
    vis == Vis::Public || !matches!(who, Who::Anonymous | Who::RobotWithout | Who::OtherOrgUser)
}

fn can_write(who: Who) -> bool {
    matches!(who, Who::Writer | Who::RepoAdmin | Who::TeamMember | Who::RobotWithRights | Who::Superuser)
}

fn is_repo_admin(who: Who) -> bool {
    matches!(who, Who::RepoAdmin | Who::Superuser)
}

/// OCI reads: allowed, or 401 for anonymous, or 404 as if the repository did not exist.
fn oci_pull(who: Who, vis: Vis, ok: u16) -> u16 {
    if can_read(who, vis) {
        ok
    } else if who == Who::Anonymous {
        401
    } else {
        404
    }
}

/// OCI writes: allowed, or 401 for anonymous, or 403.
fn oci_push(who: Who, ok: u16) -> u16 {
    if can_write(who) {
        ok
    } else if who == Who::Anonymous {
        401
    } else {
        403
    }
}

/// API operations on a repository: readers (or admins, for `admin`) succeed; a repository
/// the caller cannot read is 404 like a missing one; else 401 for anonymous, 403 for others.
fn api_repo(who: Who, vis: Vis, admin: bool, ok: u16) -> u16 {
    let allowed = if admin { is_repo_admin(who) } else { can_read(who, vis) };
    if allowed {
        ok
    } else if !can_read(who, vis) {
        404
    } else if who == Who::Anonymous {
        401
    } else {
        403
    }
}

/// App Registry: allowed, or 401 for anonymous, or 403 (whether or not the package exists).
fn cnr_allowed(who: Who, allowed: bool) -> u16 {
    match who {
        _ if allowed => 200,
        Who::Anonymous => 401,
        _ => 403,
    }
}

fn cnr_read(who: Who, vis: Vis) -> u16 {
    cnr_allowed(who, can_read(who, vis))
}

fn cnr_write(who: Who) -> u16 {
    cnr_allowed(who, can_write(who))
}

fn superuser_only(who: Who, ok: u16) -> u16 {
    match who {
        Who::Superuser => ok,
        Who::Anonymous => 401,
        _ => 403,
    }
}

/// Anything a signed-in user may do for themselves; robots manage nothing.
fn any_user(who: Who, ok: u16) -> u16 {
    match who {
        Who::Anonymous => 401,
        _ if is_robot(who) => 403,
        _ => ok,
    }
}

/// Reading an organization's teams: its members (and superusers).
fn org_member(who: Who, ok: u16) -> u16 {
    match who {
        Who::Superuser | Who::TeamMember => ok,
        Who::Anonymous => 401,
        _ => 403,
    }
}

/// What a case sends.
struct Request {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    content_type: Option<&'static str>,
    /// For App Registry listings: whether the private package must be listed (the public
    /// one always is).
    lists_private: Option<bool>,
}

fn request(method: Method, path: impl Into<String>) -> Request {
    Request { method, path: path.into(), body: None, content_type: None, lists_private: None }
}

fn with_json(mut r: Request, body: Value) -> Request {
    r.body = Some(serde_json::to_vec(&body).expect("json"));
    r.content_type = Some("application/json");
    r
}

/// An App Registry push of `release` (content made from its name) to a package.
fn app_push(release: &str, vis: Vis) -> Value {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(format!("chart {release}").as_bytes()).expect("compress");
    let blob = STANDARD.encode(gzip.finish().expect("finish"));
    json!({ "blob": blob, "release": release, "media_type": "helm", "visibility": vis.as_str() })
}

struct Fixture {
    reg: TestRegistry,
    image: Image,
    robot_with: String,
    robot_without: String,
}

fn password(who: &str) -> String {
    format!("password-of-{who}")
}

impl Fixture {
    async fn new() -> Fixture {
        let reg = TestRegistry::start().await;
        let admin = &reg.client;
        let api = |method: Method, path: &str, body: Value| {
            let url = format!("{}{path}", reg.base);
            let req = admin.request(method, url).json(&body);
            let path = path.to_owned();
            async move {
                let r = req.send().await.expect("request");
                let status = r.status();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                assert!(status.is_success(), "fixture call {path} failed: {status} {body}");
                body
            }
        };
        for user in ["reader", "writer", "repoadmin", "member", "eve", "target"] {
            api(Method::POST, "/api/v1/users", json!({ "name": user, "password": password(user) })).await;
        }
        api(Method::POST, "/api/v1/organizations", json!({ "name": "acme" })).await;
        api(Method::PUT, "/api/v1/organizations/acme/teams/devs", json!({ "role": "member" })).await;
        api(Method::PUT, "/api/v1/organizations/acme/teams/devs/members/member", json!({})).await;
        let with = api(Method::PUT, "/api/v1/namespaces/acme/robots/ci", json!({})).await;
        let without = api(Method::PUT, "/api/v1/namespaces/acme/robots/idle", json!({})).await;
        // Another organization, administered by eve.
        let eve = crate::support::client_as("eve", &password("eve"));
        let r = eve
            .post(format!("{}/api/v1/organizations", reg.base))
            .json(&json!({ "name": "other" }))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::CREATED);
        let image = Image::new(&[&bytes(300, 1)]);
        for vis in [Vis::Public, Vis::Private] {
            let visibility = vis.as_str();
            api(Method::POST, "/api/v1/repositories", json!({ "name": vis.repo(), "visibility": visibility })).await;
            grant_fixture_permissions(&reg, vis.repo()).await;
            for blob in image.blobs() {
                reg.push_blob(vis.repo(), blob).await;
            }
            assert_eq!(
                reg.put_manifest(vis.repo(), "v1", OCI_MANIFEST, &image.manifest).await.status(),
                StatusCode::CREATED
            );
            let package = format!("/cnr/api/v1/packages/{}", vis.package());
            api(Method::POST, &package, app_push("1.0.0", vis)).await;
            api(Method::POST, &format!("{package}/channels/stable/1.0.0"), Value::Null).await;
            grant_fixture_permissions(&reg, vis.package()).await;
        }
        let token = |v: &Value| v["token"].as_str().expect("robot token").to_owned();
        Fixture { robot_with: token(&with), robot_without: token(&without), reg, image }
    }

    /// Basic credentials of a caller (none for anonymous).
    fn credentials(&self, who: Who) -> Option<(String, String)> {
        let user = |name: &str| Some((name.to_owned(), password(name)));
        match who {
            Who::Anonymous => None,
            Who::Reader => user("reader"),
            Who::Writer => user("writer"),
            Who::RepoAdmin => user("repoadmin"),
            Who::TeamMember => user("member"),
            Who::OtherOrgUser => user("eve"),
            Who::RobotWithRights => Some(("acme+ci".into(), self.robot_with.clone())),
            Who::RobotWithout => Some(("acme+idle".into(), self.robot_without.clone())),
            Who::Superuser => Some((ADMIN.0.into(), ADMIN.1.into())),
        }
    }

    async fn admin_call(&self, method: Method, path: &str, body: Value) -> Value {
        let r =
            self.reg.client.request(method, format!("{}{path}", self.reg.base)).json(&body).send().await.expect("send");
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "setup call {path} failed: {status} {body}");
        body
    }

    /// Removes acme's default permissions, so a case can add one without a conflict.
    async fn clear_default_permissions(&self) {
        let grants = self.admin_call(Method::GET, "/api/v1/organizations/acme/defaultpermissions", Value::Null).await;
        for grant in grants.as_array().cloned().unwrap_or_default() {
            let id = grant["id"].as_i64().expect("id");
            let r = self.reg.send(Method::DELETE, &format!("/api/v1/organizations/acme/defaultpermissions/{id}")).await;
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
    }

    /// A new upload session in `repo`, opened by the superuser; its path.
    async fn upload_session(&self, repo: &str) -> String {
        let r = self.reg.send(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).await;
        r.headers()["location"].to_str().expect("location").to_owned()
    }
}

/// The fixture's grants on a repository: reader read, writer write, repoadmin admin, the
/// team devs write, the robot acme+ci write.
async fn grant_fixture_permissions(reg: &TestRegistry, repo: &str) {
    let (ns, name) = repo.split_once('/').expect("namespaced");
    for (kind, who, role) in [
        ("user", "reader", "read"),
        ("user", "writer", "write"),
        ("user", "repoadmin", "admin"),
        ("team", "devs", "write"),
        ("robot", "acme+ci", "write"),
    ] {
        let url = format!("{}/api/v1/repositories/{ns}/{name}/permissions/{kind}/{who}", reg.base);
        let r = reg.client.put(url).json(&json!({ "role": role })).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "granting {role} to {who}");
    }
}

/// Which endpoint a row covers: an OCI endpoint kind, an API route (method, template), or
/// an App Registry endpoint kind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Oci(&'static str),
    Api(&'static str, &'static str),
    Cnr(&'static str),
}

/// Every row: the endpoint, and how to prepare the call for a caller, case number `n` and
/// visibility; plus the status expected.
async fn prepare(key: &Key, f: &Fixture, who: Who, vis: Vis, n: usize) -> (Request, u16) {
    let repo = vis.repo();
    let (ns, short) = repo.split_once('/').expect("namespaced");
    let api_repo_path = format!("/api/v1/repositories/{ns}/{short}");
    let config = sha256(&f.image.config);
    let pkg = format!("/cnr/api/v1/packages/{}", vis.package());
    let listing = |path: &str| {
        let mut r = request(Method::GET, path);
        r.lists_private = Some(can_read(who, Vis::Private));
        (r, 200)
    };
    match key {
        Key::Oci("ApiVersion") => (request(Method::GET, "/v2/"), if who == Who::Anonymous { 401 } else { 200 }),
        Key::Oci("Catalog") => (request(Method::GET, "/v2/_catalog"), 200),
        Key::Oci("ListTags") => (request(Method::GET, format!("/v2/{repo}/tags/list")), oci_pull(who, vis, 200)),
        Key::Oci("GetManifest") => (request(Method::GET, format!("/v2/{repo}/manifests/v1")), oci_pull(who, vis, 200)),
        Key::Oci("GetBlob") => (request(Method::GET, format!("/v2/{repo}/blobs/{config}")), oci_pull(who, vis, 200)),
        Key::Oci("Referrers") => {
            // A caller who cannot read gets the empty index a missing repository gives.
            let status = if who == Who::Anonymous && !can_read(who, vis) { 401 } else { 200 };
            (request(Method::GET, format!("/v2/{repo}/referrers/{}", f.image.digest)), status)
        }
        Key::Oci("PutManifest") => {
            let mut r = request(Method::PUT, format!("/v2/{repo}/manifests/m-{n}"));
            r.body = Some(f.image.manifest.clone());
            r.content_type = Some(OCI_MANIFEST);
            (r, oci_push(who, 201))
        }
        Key::Oci("DeleteManifest") => {
            let tag = format!("d-{n}");
            assert_eq!(
                f.reg.put_manifest(repo, &tag, OCI_MANIFEST, &f.image.manifest).await.status(),
                StatusCode::CREATED
            );
            (request(Method::DELETE, format!("/v2/{repo}/manifests/{tag}")), oci_push(who, 202))
        }
        Key::Oci("DeleteBlob") => {
            let digest = f.reg.push_blob(repo, format!("blob for case {n}").as_bytes()).await;
            (request(Method::DELETE, format!("/v2/{repo}/blobs/{digest}")), oci_push(who, 202))
        }
        Key::Oci("StartUpload") => (request(Method::POST, format!("/v2/{repo}/blobs/uploads/")), oci_push(who, 202)),
        Key::Oci("GetUpload") => (request(Method::GET, f.upload_session(repo).await), oci_push(who, 204)),
        Key::Oci("PatchUpload") => {
            let mut r = request(Method::PATCH, f.upload_session(repo).await);
            r.body = Some(b"chunk".to_vec());
            (r, oci_push(who, 202))
        }
        Key::Oci("PutUpload") => {
            let session = f.upload_session(repo).await;
            (request(Method::PUT, format!("{session}?digest={}", sha256(b""))), oci_push(who, 201))
        }
        Key::Oci("DeleteUpload") => (request(Method::DELETE, f.upload_session(repo).await), oci_push(who, 204)),
        Key::Oci(other) => panic!("no row prepared for OCI endpoint {other}"),

        Key::Api("GET", "/api/v1/openapi.json") => (request(Method::GET, "/api/v1/openapi.json"), 200),
        Key::Api("GET", "/api/v1/user") => (request(Method::GET, "/api/v1/user"), any_user(who, 200)),
        Key::Api("PUT", "/api/v1/user/password") => {
            // The same password again: allowed for users, and nothing changes.
            let pw = f.credentials(who).map(|(_, p)| p).unwrap_or_default();
            (with_json(request(Method::PUT, "/api/v1/user/password"), json!({ "password": pw })), any_user(who, 204))
        }
        Key::Api("GET", "/api/v1/user/tokens") => (request(Method::GET, "/api/v1/user/tokens"), any_user(who, 200)),
        Key::Api("POST", "/api/v1/user/tokens") => (
            with_json(request(Method::POST, "/api/v1/user/tokens"), json!({ "name": format!("t{n}") })),
            any_user(who, 201),
        ),
        Key::Api("DELETE", "/api/v1/user/tokens/{token}") => {
            if let (Some((user, pw)), false) = (f.credentials(who), is_robot(who)) {
                let own = crate::support::client_as(&user, &pw);
                let r = own
                    .post(format!("{}/api/v1/user/tokens", f.reg.base))
                    .json(&json!({ "name": format!("d{n}") }))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(r.status(), StatusCode::CREATED);
            }
            (request(Method::DELETE, format!("/api/v1/user/tokens/d{n}")), any_user(who, 204))
        }
        Key::Api("GET", "/api/v1/users") => (request(Method::GET, "/api/v1/users"), superuser_only(who, 200)),
        Key::Api("POST", "/api/v1/users") => {
            let body = json!({ "name": format!("new{n}"), "password": "a long enough password" });
            (with_json(request(Method::POST, "/api/v1/users"), body), superuser_only(who, 201))
        }
        Key::Api("GET", "/api/v1/users/{user}") => {
            (request(Method::GET, "/api/v1/users/target"), superuser_only(who, 200))
        }
        Key::Api("DELETE", "/api/v1/users/{user}") => {
            f.admin_call(
                Method::POST,
                "/api/v1/users",
                json!({ "name": format!("gone{n}"), "password": "a long enough password" }),
            )
            .await;
            (request(Method::DELETE, format!("/api/v1/users/gone{n}")), superuser_only(who, 204))
        }
        Key::Api("PUT", "/api/v1/users/{user}/password") => {
            let body = json!({ "password": password("target") });
            (with_json(request(Method::PUT, "/api/v1/users/target/password"), body), superuser_only(who, 204))
        }
        Key::Api("PUT", "/api/v1/users/{user}/superuser") => (
            with_json(request(Method::PUT, "/api/v1/users/target/superuser"), json!({ "superuser": false })),
            superuser_only(who, 204),
        ),
        Key::Api("GET", "/api/v1/organizations") => {
            (request(Method::GET, "/api/v1/organizations"), superuser_only(who, 200))
        }
        Key::Api("POST", "/api/v1/organizations") => (
            with_json(request(Method::POST, "/api/v1/organizations"), json!({ "name": format!("org{n}") })),
            any_user(who, 201),
        ),
        Key::Api("GET", "/api/v1/organizations/{org}") => {
            (request(Method::GET, "/api/v1/organizations/acme"), any_user(who, 200))
        }
        Key::Api("DELETE", "/api/v1/organizations/{org}") => {
            f.admin_call(Method::POST, "/api/v1/organizations", json!({ "name": format!("dorg{n}") })).await;
            (request(Method::DELETE, format!("/api/v1/organizations/dorg{n}")), superuser_only(who, 204))
        }
        Key::Api("GET", "/api/v1/organizations/{org}/teams") => {
            (request(Method::GET, "/api/v1/organizations/acme/teams"), org_member(who, 200))
        }
        Key::Api("PUT", "/api/v1/organizations/{org}/teams/{team}") => {
            let r = with_json(
                request(Method::PUT, format!("/api/v1/organizations/acme/teams/t{n}")),
                json!({ "role": "member" }),
            );
            (r, superuser_only(who, 200))
        }
        Key::Api("DELETE", "/api/v1/organizations/{org}/teams/{team}") => {
            f.admin_call(Method::PUT, &format!("/api/v1/organizations/acme/teams/x{n}"), json!({ "role": "member" }))
                .await;
            (request(Method::DELETE, format!("/api/v1/organizations/acme/teams/x{n}")), superuser_only(who, 204))
        }
        Key::Api("GET", "/api/v1/organizations/{org}/teams/{team}/members") => {
            (request(Method::GET, "/api/v1/organizations/acme/teams/devs/members"), org_member(who, 200))
        }
        Key::Api("PUT", "/api/v1/organizations/{org}/teams/{team}/members/{member}") => {
            (request(Method::PUT, "/api/v1/organizations/acme/teams/devs/members/target"), superuser_only(who, 204))
        }
        Key::Api("DELETE", "/api/v1/organizations/{org}/teams/{team}/members/{member}") => {
            f.admin_call(Method::PUT, "/api/v1/organizations/acme/teams/devs/members/target", json!({})).await;
            (request(Method::DELETE, "/api/v1/organizations/acme/teams/devs/members/target"), superuser_only(who, 204))
        }
        Key::Api("GET", "/api/v1/organizations/{org}/defaultpermissions") => {
            (request(Method::GET, "/api/v1/organizations/acme/defaultpermissions"), superuser_only(who, 200))
        }
        Key::Api("POST", "/api/v1/organizations/{org}/defaultpermissions") => {
            f.clear_default_permissions().await;
            let body = json!({ "kind": "user", "name": "target", "role": "read" });
            (
                with_json(request(Method::POST, "/api/v1/organizations/acme/defaultpermissions"), body),
                superuser_only(who, 201),
            )
        }
        Key::Api("DELETE", "/api/v1/organizations/{org}/defaultpermissions/{id}") => {
            f.clear_default_permissions().await;
            let created = f
                .admin_call(
                    Method::POST,
                    "/api/v1/organizations/acme/defaultpermissions",
                    json!({ "kind": "user", "name": "target", "role": "read" }),
                )
                .await;
            let id = created["id"].as_i64().expect("id");
            (
                request(Method::DELETE, format!("/api/v1/organizations/acme/defaultpermissions/{id}")),
                superuser_only(who, 204),
            )
        }
        Key::Api("GET", "/api/v1/namespaces/{namespace}/robots") => {
            (request(Method::GET, "/api/v1/namespaces/acme/robots"), superuser_only(who, 200))
        }
        Key::Api("PUT", "/api/v1/namespaces/{namespace}/robots/{robot}") => {
            (request(Method::PUT, format!("/api/v1/namespaces/acme/robots/r{n}")), superuser_only(who, 201))
        }
        Key::Api("POST", "/api/v1/namespaces/{namespace}/robots/{robot}/regenerate") => {
            f.admin_call(Method::PUT, &format!("/api/v1/namespaces/acme/robots/g{n}"), json!({})).await;
            (request(Method::POST, format!("/api/v1/namespaces/acme/robots/g{n}/regenerate")), superuser_only(who, 200))
        }
        Key::Api("DELETE", "/api/v1/namespaces/{namespace}/robots/{robot}") => {
            f.admin_call(Method::PUT, &format!("/api/v1/namespaces/acme/robots/z{n}"), json!({})).await;
            (request(Method::DELETE, format!("/api/v1/namespaces/acme/robots/z{n}")), superuser_only(who, 204))
        }
        Key::Api("GET", "/api/v1/repositories") => (request(Method::GET, "/api/v1/repositories"), 200),
        Key::Api("POST", "/api/v1/repositories") => {
            let body = json!({ "name": format!("acme/new{n}") });
            (with_json(request(Method::POST, "/api/v1/repositories"), body), superuser_only(who, 201))
        }
        Key::Api("GET", "/api/v1/repositories/{namespace}/{repository}") => {
            (request(Method::GET, api_repo_path.clone()), api_repo(who, vis, false, 200))
        }
        Key::Api("DELETE", "/api/v1/repositories/{namespace}/{repository}") => {
            // A repository like the fixture's, made for this case.
            let doomed = format!("acme/doomed{n}");
            let visibility = vis.as_str();
            f.admin_call(Method::POST, "/api/v1/repositories", json!({ "name": doomed, "visibility": visibility }))
                .await;
            grant_fixture_permissions(&f.reg, &doomed).await;
            (request(Method::DELETE, format!("/api/v1/repositories/acme/doomed{n}")), api_repo(who, vis, true, 204))
        }
        Key::Api("PUT", "/api/v1/repositories/{namespace}/{repository}/visibility") => {
            let same = vis.as_str();
            let r =
                with_json(request(Method::PUT, format!("{api_repo_path}/visibility")), json!({ "visibility": same }));
            (r, api_repo(who, vis, true, 204))
        }
        Key::Api("GET", "/api/v1/repositories/{namespace}/{repository}/permissions") => {
            (request(Method::GET, format!("{api_repo_path}/permissions")), api_repo(who, vis, true, 200))
        }
        Key::Api("PUT", "/api/v1/repositories/{namespace}/{repository}/permissions/{kind}/{name}") => {
            let r = with_json(
                request(Method::PUT, format!("{api_repo_path}/permissions/user/target")),
                json!({ "role": "read" }),
            );
            (r, api_repo(who, vis, true, 204))
        }
        Key::Api("DELETE", "/api/v1/repositories/{namespace}/{repository}/permissions/{kind}/{name}") => {
            f.admin_call(Method::PUT, &format!("{api_repo_path}/permissions/user/target"), json!({ "role": "read" }))
                .await;
            (request(Method::DELETE, format!("{api_repo_path}/permissions/user/target")), api_repo(who, vis, true, 204))
        }
        Key::Api("GET", "/api/v1/repositories/{namespace}/{repository}/tags") => {
            (request(Method::GET, format!("{api_repo_path}/tags?history=true")), api_repo(who, vis, false, 200))
        }
        Key::Api("GET", "/api/v1/logs") => {
            (request(Method::GET, format!("/api/v1/logs?repository={repo}")), api_repo(who, vis, true, 200))
        }
        Key::Api("POST", "/api/v1/signing-keys/rotate") => {
            (request(Method::POST, "/api/v1/signing-keys/rotate"), superuser_only(who, 200))
        }
        Key::Api(method, path) => panic!("no row prepared for API route {method} {path}"),

        Key::Cnr("Version") => (request(Method::GET, "/cnr/version"), 200),
        Key::Cnr("Login") => {
            let (user, pw) = f.credentials(who).unzip();
            let body = json!({ "user": { "username": user, "password": pw } });
            (
                with_json(request(Method::POST, "/cnr/api/v1/users/login"), body),
                if who == Who::Anonymous { 400 } else { 200 },
            )
        }
        Key::Cnr("ListPackages") => listing("/cnr/api/v1/packages?namespace=acme"),
        Key::Cnr("Search") => listing("/cnr/api/v1/packages/search?q=pkg"),
        Key::Cnr("Push") => (with_json(request(Method::POST, pkg), app_push(&format!("2.0.{n}"), vis)), cnr_write(who)),
        Key::Cnr("Releases") => (request(Method::GET, pkg), cnr_read(who, vis)),
        Key::Cnr("ReleaseManifests") => (request(Method::GET, format!("{pkg}/1.0.0")), cnr_read(who, vis)),
        Key::Cnr("Show") => (request(Method::GET, format!("{pkg}/1.0.0/helm")), cnr_read(who, vis)),
        Key::Cnr("DeleteRelease") => {
            let release = format!("3.0.{n}");
            f.admin_call(Method::POST, &pkg, app_push(&release, vis)).await;
            (request(Method::DELETE, format!("{pkg}/{release}/helm")), cnr_write(who))
        }
        Key::Cnr("Pull") => (request(Method::GET, format!("{pkg}/1.0.0/helm/pull")), cnr_read(who, vis)),
        Key::Cnr("Blob") => {
            let digest = sha256(b"chart 1.0.0").replace("sha256:", "");
            (request(Method::GET, format!("{pkg}/blobs/sha256/{digest}")), cnr_read(who, vis))
        }
        Key::Cnr("Channels") => (request(Method::GET, format!("{pkg}/channels")), cnr_read(who, vis)),
        Key::Cnr("Channel") => (request(Method::GET, format!("{pkg}/channels/stable")), cnr_read(who, vis)),
        Key::Cnr("AddToChannel") => (request(Method::POST, format!("{pkg}/channels/a{n}/1.0.0")), cnr_write(who)),
        Key::Cnr("RemoveFromChannel") => {
            f.admin_call(Method::POST, &format!("{pkg}/channels/r{n}/1.0.0"), Value::Null).await;
            (request(Method::DELETE, format!("{pkg}/channels/r{n}/1.0.0")), cnr_write(who))
        }
        Key::Cnr("DeleteChannel") => {
            f.admin_call(Method::POST, &format!("{pkg}/channels/d{n}/1.0.0"), Value::Null).await;
            (request(Method::DELETE, format!("{pkg}/channels/d{n}")), cnr_write(who))
        }
        Key::Cnr(other) => panic!("no row prepared for App Registry endpoint {other}"),
    }
}

/// Every endpoint that exists: the table above must prepare a row for each.
fn every_endpoint() -> Vec<Key> {
    let mut keys: Vec<Key> = berth_oci::path::Endpoint::KINDS.iter().map(|k| Key::Oci(k)).collect();
    for (method, path, _) in berth_server::api::routes() {
        let method: &'static str = match method.as_str() {
            "GET" => "GET",
            "POST" => "POST",
            "PUT" => "PUT",
            "DELETE" => "DELETE",
            "PATCH" => "PATCH",
            other => panic!("unexpected method {other}"),
        };
        keys.push(Key::Api(method, path));
    }
    keys.extend(berth_server::cnr::endpoint::KINDS.iter().map(|k| Key::Cnr(k)));
    keys
}

/// A registry token for the caller with the scope an OCI request needs.
async fn token_for(f: &Fixture, who: Who, scope: &str) -> String {
    // Scopes hold only name characters, ':' ',' and '*', none of which need escaping.
    let mut req = anonymous_client().get(format!("{}/v2/auth?service=berth&scope={scope}", f.reg.base));
    if let Some((user, pw)) = f.credentials(who) {
        req = req.header("authorization", base64_basic(&user, &pw));
    }
    let r = req.send().await.expect("token request");
    assert_eq!(r.status(), StatusCode::OK, "token for {who:?}");
    let body: Value = r.json().await.expect("json");
    body["token"].as_str().expect("token").to_owned()
}

fn scope_of(key: &Key, repo: &str) -> String {
    match key {
        Key::Oci("Catalog") => "registry:catalog:*".into(),
        Key::Oci("DeleteManifest" | "DeleteBlob") => format!("repository:{repo}:delete"),
        Key::Oci("ListTags" | "GetManifest" | "GetBlob" | "Referrers" | "ApiVersion") => {
            format!("repository:{repo}:pull")
        }
        _ => format!("repository:{repo}:pull,push"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_for_every_caller() {
    let f = Fixture::new().await;
    let keys = every_endpoint();
    let listed: BTreeSet<Key> = keys.iter().cloned().collect();
    assert_eq!(listed.len(), keys.len(), "routes are listed once");
    let mut failures = Vec::new();
    let mut n = 0;
    for key in &keys {
        for who in EVERYONE {
            for vis in [Vis::Public, Vis::Private] {
                // OCI endpoints are checked with Basic credentials and with a registry token.
                let modes: &[bool] = if matches!(key, Key::Oci(_)) { &[false, true] } else { &[false] };
                for &with_token in modes {
                    n += 1;
                    let (req, mut expected) = prepare(key, &f, who, vis, n).await;
                    let mut builder =
                        anonymous_client().request(req.method.clone(), format!("{}{}", f.reg.base, req.path));
                    if with_token {
                        // An anonymous caller holding an (anonymous) token is authenticated.
                        if *key == Key::Oci("ApiVersion") {
                            expected = 200;
                        }
                        let token = token_for(&f, who, &scope_of(key, vis.repo())).await;
                        builder = builder.header("authorization", format!("Bearer {token}"));
                    } else if let Some((user, pw)) = f.credentials(who) {
                        builder = builder.header("authorization", base64_basic(&user, &pw));
                    }
                    if let Some(body) = req.body {
                        builder = builder.body(body);
                    }
                    if let Some(ct) = req.content_type {
                        builder = builder.header("content-type", ct);
                    }
                    let r = builder.send().await.expect("request");
                    let status = r.status().as_u16();
                    let body = r.text().await.unwrap_or_default();
                    let listed = |name: &str| body.contains(&format!("\"{name}\""));
                    let problem = if status != expected {
                        Some(format!("expected {expected}, got {status}"))
                    } else {
                        req.lists_private
                            .filter(|&private| {
                                !listed(Vis::Public.package()) || listed(Vis::Private.package()) != private
                            })
                            .map(|private| {
                                format!(
                                    "expected the public package listed, the private one {}",
                                    if private { "too" } else { "not" }
                                )
                            })
                    };
                    if let Some(problem) = problem {
                        failures.push(format!(
                            "{key:?} {who:?} {vis:?}{}: {problem}: {}",
                            if with_token { " (token)" } else { "" },
                            body.chars().take(160).collect::<String>()
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of the matrix's checks failed:\n{}", failures.len(), failures.join("\n"));
    eprintln!(
        "authorization matrix: {} endpoints x {} callers x 2 visibilities, {n} requests",
        keys.len(),
        EVERYONE.len()
    );
    f.reg.stop().await;
}

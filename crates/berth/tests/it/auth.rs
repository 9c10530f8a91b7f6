//! Authentication end to end: the Docker token flow, refused tokens, key rotation, throttled
//! logins, robots and users with real clients, repository creation on first push, and the
//! audit log.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_server::auth::jwt::{self, Access, Claims, Subject};
use berth_server::auth::keys::KeyRing;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::content::{self, Image, OCI_MANIFEST, bytes};
use crate::support::{
    ADMIN, Call, TestRegistry, anonymous_client, base64_basic, client_as, expect_error, header, tool_available,
};

/// Creates a user through the API; returns a client logged in as them.
async fn user(reg: &TestRegistry, name: &str) -> reqwest::Client {
    let r = reg
        .req(Method::POST, "/api/v1/users")
        .json(&json!({ "name": name, "password": format!("{name}-password") }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    client_as(name, &format!("{name}-password"))
}

async fn token(reg: &TestRegistry, creds: Option<(&str, &str)>, scopes: &[&str]) -> reqwest::Response {
    let query: String = scopes.iter().map(|s| format!("&scope={s}")).collect();
    let mut req = anonymous_client().get(format!("{}/v2/auth?service=berth{query}", reg.base));
    if let Some((user, pw)) = creds {
        req = req.header("authorization", base64_basic(user, pw));
    }
    req.send().await.expect("token request")
}

async fn token_string(r: reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["token"], body["access_token"]);
    assert!(body["expires_in"].as_i64().is_some_and(|e| e > 0));
    assert!(body["issued_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    body["token"].as_str().expect("token").to_owned()
}

/// The claims of a token, read without verifying it.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

fn bearer(reg: &TestRegistry, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    anonymous_client().request(method, format!("{}{path}", reg.base)).header("authorization", format!("Bearer {token}"))
}

#[tokio::test]
async fn the_docker_token_flow() {
    let reg = TestRegistry::start().await;
    reg.push_image("acme/app", "v1", &[b"layer"]).await;
    let alice = user(&reg, "alice").await;
    let r = reg
        .req(Method::PUT, "/api/v1/repositories/acme/app/permissions/user/alice")
        .json(&json!({ "role": "read" }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // An anonymous request is challenged, naming the realm, the service and the scope.
    let r = anonymous_client().get(format!("{}/v2/", reg.base)).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&r, "www-authenticate"), format!("Bearer realm=\"{}/v2/auth\",service=\"berth\"", reg.base));
    let r = anonymous_client().get(format!("{}/v2/acme/app/manifests/v1", reg.base)).send().await.expect("send");
    assert_eq!(
        header(&r, "www-authenticate"),
        format!("Bearer realm=\"{}/v2/auth\",service=\"berth\",scope=\"repository:acme/app:pull\"", reg.base)
    );
    expect_error(r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    // Several scopes: each gets the intersection of what was asked and what is allowed.
    let t = token_string(
        token(
            &reg,
            Some(("alice", "alice-password")),
            &["repository:acme/app:pull,push", "repository:acme/other:pull", "registry:catalog:*"],
        )
        .await,
    )
    .await;
    let c = claims(&t);
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["aud"], "berth");
    assert_eq!(c["access"][0], json!({ "type": "repository", "name": "acme/app", "actions": ["pull"] }));
    assert_eq!(c["access"][1], json!({ "type": "repository", "name": "acme/other", "actions": [] }));
    assert_eq!(c["access"][2]["name"], "catalog");
    // It pulls; pushing with it is refused (alice may not write: 403, no new token helps).
    let r = bearer(&reg, Method::GET, "/v2/acme/app/manifests/v1", &t).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let r = bearer(&reg, Method::POST, "/v2/acme/app/blobs/uploads/", &t).send().await.expect("send");
    expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    // The superuser's pull-only token meets a push with a challenge for the wider scope.
    let admin_pull = token_string(token(&reg, Some(ADMIN), &["repository:acme/app:pull"]).await).await;
    let r = bearer(&reg, Method::POST, "/v2/acme/app/blobs/uploads/", &admin_pull).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&r, "www-authenticate").contains("scope=\"repository:acme/app:pull,push\""));
    let admin_push = token_string(token(&reg, Some(ADMIN), &["repository:acme/app:pull,push"]).await).await;
    let r = bearer(&reg, Method::POST, "/v2/acme/app/blobs/uploads/", &admin_push).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // Basic credentials work on /v2 directly too, and bad ones are challenged.
    assert_eq!(alice.get(format!("{}/v2/acme/app/tags/list", reg.base)).status_code().await, StatusCode::OK);
    let wrong = client_as("alice", "not-her-password");
    let r = wrong.get(format!("{}/v2/", reg.base)).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&r, "www-authenticate").starts_with("Bearer realm="));
    // The token endpoint refuses wrong credentials with 401, and answers POST (OAuth2) too.
    let r = token(&reg, Some(("alice", "nope")), &["repository:acme/app:pull"]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = anonymous_client()
        .post(format!("{}/v2/auth", reg.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&username=alice&password=alice-password&service=berth&scope=repository:acme/app:pull")
        .send()
        .await
        .expect("send");
    let t = token_string(r).await;
    assert_eq!(claims(&t)["access"][0]["actions"], json!(["pull"]));
    reg.stop().await;
}

#[tokio::test]
async fn anonymous_pulls_of_public_repositories() {
    let reg = TestRegistry::start().await;
    let image = reg.push_image("acme/open", "v1", &[b"public layer"]).await;
    reg.push_image("acme/closed", "v1", &[b"private layer"]).await;
    let r = reg
        .req(Method::PUT, "/api/v1/repositories/acme/open/visibility")
        .json(&json!({ "visibility": "public" }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // With an anonymous token, and without any token.
    let t = token_string(token(&reg, None, &["repository:acme/open:pull", "repository:acme/closed:pull"]).await).await;
    assert_eq!(claims(&t)["access"][0]["actions"], json!(["pull"]));
    assert_eq!(claims(&t)["access"][1]["actions"], json!([]));
    let r =
        bearer(&reg, Method::GET, &format!("/v2/acme/open/manifests/{}", image.digest), &t).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let r = anonymous_client().get(format!("{}/v2/acme/open/manifests/v1", reg.base)).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let r = bearer(&reg, Method::GET, "/v2/acme/closed/manifests/v1", &t).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The catalog shows anonymous callers the public repository only.
    let catalog: Value = anonymous_client().get(format!("{}/v2/_catalog", reg.base)).json_value().await;
    assert_eq!(catalog["repositories"], json!(["acme/open"]));
    reg.stop().await;
}

#[tokio::test]
async fn private_repositories_look_like_missing_ones() {
    let reg = TestRegistry::start().await;
    reg.push_image("acme/secret", "v1", &[b"secret"]).await;
    let bob = user(&reg, "bob").await;
    let get = |path: &str| bob.get(format!("{}{path}", reg.base)).send();
    for (existing, missing) in [
        ("/v2/acme/secret/manifests/v1", "/v2/acme/nothing/manifests/v1"),
        ("/v2/acme/secret/tags/list", "/v2/acme/nothing/tags/list"),
        ("/api/v1/repositories/acme/secret", "/api/v1/repositories/acme/nothing"),
    ] {
        let (a, b) = (get(existing).await.expect("send"), get(missing).await.expect("send"));
        assert_eq!(a.status(), b.status(), "{existing} vs {missing}");
        assert_eq!(a.status(), StatusCode::NOT_FOUND);
        let (a, b): (Value, Value) = (a.json().await.expect("json"), b.json().await.expect("json"));
        let same = |v: &Value| v.to_string().replace("secret", "X").replace("nothing", "X");
        assert_eq!(same(&a), same(&b), "the bodies differ only in the name");
    }
    let catalog: Value = get("/v2/_catalog").await.expect("send").json().await.expect("json");
    assert_eq!(catalog["repositories"], json!([]));
    let r = bob.post(format!("{}/v2/acme/secret/blobs/uploads/", reg.base)).send().await.expect("send");
    expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    reg.stop().await;
}

#[tokio::test]
async fn forged_and_stale_tokens_are_refused() {
    let reg = TestRegistry::start().await;
    reg.push_image("acme/app", "v1", &[b"x"]).await;
    // Berth's own keys (the test reads them from its database) and a stranger's.
    let keys = KeyRing::open(reg.open_meta().await, None).await.expect("keys");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let stranger_store = berth_meta::SqliteMetaStore::open(&elsewhere.path().join("meta.db"), &Default::default())
        .await
        .expect("a stranger's database");
    let strangers = KeyRing::open(std::sync::Arc::new(stranger_store), None).await.expect("keys");
    let now = berth_server::auth::now_secs();
    let claims_with = |aud: &str, nbf: i64, exp: i64| Claims {
        iss: "berth".into(),
        sub: ADMIN.0.into(),
        aud: aud.into(),
        exp,
        nbf,
        iat: nbf,
        jti: "test".into(),
        access: vec![Access { kind: "repository".into(), name: "acme/app".into(), actions: vec!["pull".into()] }],
        berth: Subject { kind: "user".into(), id: 1, superuser: true },
    };
    let good = jwt::sign(&keys, &claims_with("berth", now, now + 300)).expect("sign");
    let r = bearer(&reg, Method::GET, "/v2/acme/app/manifests/v1", &good).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK, "a well-formed token is accepted");

    let parts: Vec<&str> = good.split('.').collect();
    let mut widened = claims_with("berth", now, now + 300);
    widened.access[0].name = "acme/other".into();
    let tampered =
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(serde_json::to_vec(&widened).expect("json")), parts[2]);
    let kid = keys.active().expect("key").0;
    let none =
        format!("{}.{}.", URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#)), parts[1]);
    for (what, token) in [
        ("tampered", tampered),
        ("expired", jwt::sign(&keys, &claims_with("berth", now - 4000, now - 3600)).expect("sign")),
        ("not yet valid", jwt::sign(&keys, &claims_with("berth", now + 3600, now + 4000)).expect("sign")),
        ("wrongly signed", jwt::sign(&strangers, &claims_with("berth", now, now + 300)).expect("sign")),
        ("alg none", none),
        ("wrong audience", jwt::sign(&keys, &claims_with("someone-else", now, now + 300)).expect("sign")),
        ("garbage", "not.a.token".to_owned()),
    ] {
        let r = bearer(&reg, Method::GET, "/v2/acme/app/manifests/v1", &token).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert!(header(&r, "www-authenticate").contains("error=\"invalid_token\""), "{what}");
        let r = bearer(&reg, Method::GET, "/api/v1/user", &token).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what} on the API");
    }
    reg.stop().await;
}

#[tokio::test]
async fn rotating_the_signing_key_keeps_live_tokens() {
    let reg = TestRegistry::start().await;
    reg.push_image("acme/app", "v1", &[b"x"]).await;
    let old = token_string(token(&reg, Some(ADMIN), &["repository:acme/app:pull"]).await).await;
    let kid = |t: &str| -> String {
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(t.split('.').next().expect("header")).expect("b64"))
                .expect("json");
        assert_eq!(header["alg"], "EdDSA");
        header["kid"].as_str().expect("kid").to_owned()
    };
    let r = reg.send(Method::POST, "/api/v1/signing-keys/rotate").await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.expect("json");
    let new = token_string(token(&reg, Some(ADMIN), &["repository:acme/app:pull"]).await).await;
    assert_ne!(kid(&old), kid(&new));
    assert_eq!(rotated["key_id"], kid(&new));
    for t in [&old, &new] {
        let r = bearer(&reg, Method::GET, "/v2/acme/app/manifests/v1", t).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::OK, "tokens from before and after the rotation both work");
    }
    reg.stop().await;
}

#[tokio::test]
async fn failed_logins_are_throttled() {
    let reg = TestRegistry::start_with(|c| {
        c.auth.failures_per_account = 3;
        c.auth.failures_per_address = 100;
    })
    .await;
    user(&reg, "carol").await;
    for _ in 0..3 {
        assert_eq!(token(&reg, Some(("carol", "wrong")), &[]).await.status(), StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits: the account is throttled, with Retry-After.
    let r = token(&reg, Some(("carol", "carol-password")), &[]).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&r, "retry-after").parse::<u64>().is_ok_and(|s| (1..=60).contains(&s)));
    let r = client_as("carol", "carol-password").get(format!("{}/v2/", reg.base)).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "on /v2 as well");
    // Other accounts are unaffected.
    assert_eq!(token(&reg, Some(ADMIN), &[]).await.status(), StatusCode::OK);
    reg.stop().await;

    let reg = TestRegistry::start_with(|c| c.auth.failures_per_address = 2).await;
    for name in ["x1", "x2"] {
        assert_eq!(token(&reg, Some((name, "wrong")), &[]).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(token(&reg, Some((ADMIN.0, ADMIN.1)), &[]).await.status(), StatusCode::TOO_MANY_REQUESTS, "per address");
    reg.stop().await;
}

#[tokio::test]
async fn pushing_creates_repositories_where_allowed() {
    let reg = TestRegistry::start().await;
    let dave = user(&reg, "dave").await;
    let image = Image::new(&[&bytes(100, 1)]);
    let push = |client: reqwest::Client, repo: &'static str| {
        let base = reg.base.clone();
        let image = &image;
        async move {
            for blob in image.blobs() {
                let r = client
                    .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={}", crate::support::sha256(blob)))
                    .body(blob.to_vec())
                    .send()
                    .await
                    .expect("send");
                if r.status() != StatusCode::CREATED {
                    return r.status();
                }
            }
            client
                .put(format!("{base}/v2/{repo}/manifests/v1"))
                .header("content-type", OCI_MANIFEST)
                .body(image.manifest.clone())
                .status_code()
                .await
        }
    };
    // Into one's own namespace: created, private, with its owner as the only reader.
    assert_eq!(push(dave.clone(), "dave/app").await, StatusCode::CREATED);
    let repo: Value = dave.get(format!("{}/api/v1/repositories/dave/app", reg.base)).json_value().await;
    assert_eq!(repo["visibility"], "private");
    assert_eq!(
        user(&reg, "erin").await.get(format!("{}/v2/dave/app/tags/list", reg.base)).status_code().await,
        StatusCode::NOT_FOUND
    );
    // Into someone else's namespace, or a missing one: refused.
    assert_eq!(push(dave.clone(), "admin/app").await, StatusCode::FORBIDDEN);
    assert_eq!(push(dave.clone(), "nowhere/app").await, StatusCode::FORBIDDEN);
    // Into an organization: creators may, plain members may not.
    let r = reg.req(Method::POST, "/api/v1/organizations").json(&json!({ "name": "acme" })).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    for (team, role) in [("builders", "creator"), ("viewers", "member")] {
        let r = reg
            .req(Method::PUT, &format!("/api/v1/organizations/acme/teams/{team}"))
            .json(&json!({ "role": role }))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = reg.req(Method::PUT, "/api/v1/organizations/acme/teams/viewers/members/dave").send().await.expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(push(dave.clone(), "acme/app").await, StatusCode::FORBIDDEN);
    let r = reg.req(Method::PUT, "/api/v1/organizations/acme/teams/builders/members/dave").send().await.expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(push(dave.clone(), "acme/app").await, StatusCode::CREATED);
    // The creator administers what they created; the organization's default permissions apply.
    let perms: Value = dave.get(format!("{}/api/v1/repositories/acme/app/permissions", reg.base)).json_value().await;
    assert_eq!(perms, json!([{ "kind": "user", "name": "dave", "role": "admin" }]));
    reg.stop().await;
}

/// Audit rows of one action, polled briefly (logins are written in batches).
async fn audit_rows(reg: &TestRegistry, query: &str) -> Vec<Value> {
    for _ in 0..50 {
        let page: Value = reg.send(Method::GET, &format!("/api/v1/logs?{query}")).await.json().await.expect("json");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if !items.is_empty() {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Vec::new()
}

#[tokio::test]
async fn the_audit_log_records_what_happened() {
    let reg = TestRegistry::start().await;
    let frank = user(&reg, "frank").await;
    assert_eq!(frank.get(format!("{}/v2/", reg.base)).status_code().await, StatusCode::OK);
    let image = reg.push_image("acme/app", "v1", &[b"audited"]).await;
    assert_eq!(reg.send(Method::DELETE, "/v2/acme/app/manifests/v1").await.status(), StatusCode::ACCEPTED);
    let r = reg
        .req(Method::PUT, "/api/v1/repositories/acme/app/permissions/user/frank")
        .json(&json!({ "role": "read" }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = reg
        .req(Method::PUT, "/api/v1/repositories/acme/app/visibility")
        .json(&json!({ "visibility": "public" }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    reg.req(Method::POST, "/api/v1/organizations").json(&json!({ "name": "club" })).send().await.expect("send");
    let r = reg.req(Method::PUT, "/api/v1/organizations/club/teams/owners/members/frank").send().await.expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let login = audit_rows(&reg, "action=login&actor=frank").await;
    assert!(!login.is_empty(), "a login row");
    assert_eq!(login[0]["client_ip"], "127.0.0.1");
    for (action, field, value) in [
        ("create_repository", "repository", json!("acme/app")),
        ("push", "repository", json!("acme/app")),
        ("delete_tag", "repository", json!("acme/app")),
        ("set_permission", "repository", json!("acme/app")),
        ("set_visibility", "repository", json!("acme/app")),
        ("add_team_member", "namespace", json!("club")),
    ] {
        let rows = audit_rows(&reg, &format!("action={action}")).await;
        assert!(rows.iter().any(|r| r[field] == value), "an audit row for {action}: {rows:?}");
    }
    let push = audit_rows(&reg, "action=push").await;
    assert_eq!(push[0]["details"]["digest"], json!(image.digest));
    // Filtered listings page newest first.
    let all: Value = reg.send(Method::GET, "/api/v1/logs?limit=2").await.json().await.expect("json");
    let next = all["next"].as_str().expect("a next cursor");
    let more: Value =
        reg.send(Method::GET, &format!("/api/v1/logs?limit=2&before={next}")).await.json().await.expect("json");
    assert!(more["items"][0]["id"].as_i64() < all["items"][1]["id"].as_i64());
    // Frank may read the log of nothing he administers.
    let r = frank.get(format!("{}/api/v1/logs", reg.base)).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    reg.stop().await;
}

#[tokio::test]
async fn changing_a_password_ends_the_old_one_at_once() {
    let reg = TestRegistry::start().await;
    let grace = user(&reg, "grace").await;
    assert_eq!(grace.get(format!("{}/v2/", reg.base)).status_code().await, StatusCode::OK);
    let r = grace
        .put(format!("{}/api/v1/user/password", reg.base))
        .json(&json!({ "password": "a brand new password" }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(grace.get(format!("{}/v2/", reg.base)).status_code().await, StatusCode::UNAUTHORIZED);
    let renewed = client_as("grace", "a brand new password");
    assert_eq!(renewed.get(format!("{}/v2/", reg.base)).status_code().await, StatusCode::OK);
    // A personal API token works as a password (docker login) and as a bearer on the API.
    let r = renewed
        .post(format!("{}/api/v1/user/tokens", reg.base))
        .json(&json!({ "name": "ci" }))
        .send()
        .await
        .expect("send");
    let token: Value = r.json().await.expect("json");
    let token = token["token"].as_str().expect("token");
    assert!(token.starts_with("berth_pat_"));
    assert_eq!(client_as("grace", token).get(format!("{}/v2/", reg.base)).status_code().await, StatusCode::OK);
    let r = anonymous_client()
        .get(format!("{}/api/v1/user", reg.base))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    reg.stop().await;
}

async fn run(program: &str, args: &[&str]) -> std::process::Output {
    let program = program.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || std::process::Command::new(program).args(args).output())
        .await
        .expect("join")
        .expect("runs")
}

#[tokio::test]
async fn skopeo_and_podman_with_users_and_robots() {
    if !tool_available("skopeo") || !tool_available("podman") {
        return;
    }
    let reg = TestRegistry::start().await;
    let work = tempfile::tempdir().expect("tempdir");
    let image = Image::new(&[&bytes(50_000, 7)]);
    let source = work.path().join("source");
    let blobs: Vec<&[u8]> = image.blobs().collect();
    content::write_layout(&source, &blobs, (&image.manifest, OCI_MANIFEST), "v1");
    let from = format!("oci:{}:v1", source.display());
    reg.req(Method::POST, "/api/v1/organizations").json(&json!({ "name": "acme" })).send().await.expect("send");
    reg.req(Method::POST, "/api/v1/repositories").json(&json!({ "name": "acme/app" })).send().await.expect("send");
    let robot = |name: &'static str| {
        let req = reg.req(Method::PUT, &format!("/api/v1/namespaces/acme/robots/{name}"));
        async move {
            let body: Value = req.json_value().await;
            format!("acme+{name}:{}", body["token"].as_str().expect("token"))
        }
    };
    let (deployer, idle) = (robot("deployer").await, robot("idle").await);
    let r = reg
        .req(Method::PUT, "/api/v1/repositories/acme/app/permissions/robot/acme+deployer")
        .json(&json!({ "role": "write" }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let dest = format!("docker://{}/acme/app:v1", reg.host());

    // A robot with write pushes; one without cannot.
    let ok = run(
        "skopeo",
        &["copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", &deployer, &from, &dest],
    )
    .await;
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let refused = run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &idle,
            &from,
            &format!("docker://{}/acme/app:v2", reg.host()),
        ],
    )
    .await;
    assert!(!refused.status.success(), "a robot without rights must not push");
    let back = work.path().join("back");
    let pulled = run(
        "skopeo",
        &["copy", "--src-tls-verify=false", "--src-creds", &deployer, &dest, &format!("dir:{}", back.display())],
    )
    .await;
    assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));
    assert_eq!(std::fs::read(back.join("manifest.json")).expect("manifest"), image.manifest);

    // podman login as a user with write, then push and pull with the stored credentials.
    user(&reg, "henry").await;
    let r = reg
        .req(Method::PUT, "/api/v1/repositories/acme/app/permissions/user/henry")
        .json(&json!({ "role": "write" }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let storage = work.path().join("podman");
    let authfile = work.path().join("auth.json").display().to_string();
    let root = storage.join("root").display().to_string();
    let runroot = storage.join("run").display().to_string();
    let podman = |rest: &[&str]| {
        let mut args = vec!["--root", root.as_str(), "--runroot", runroot.as_str(), "--storage-driver", "vfs"];
        args.extend_from_slice(rest);
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            run("podman", &refs).await
        }
    };
    let login = podman(&[
        "login",
        "--tls-verify=false",
        "--authfile",
        &authfile,
        "-u",
        "henry",
        "-p",
        "henry-password",
        reg.host(),
    ])
    .await;
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    let bad_login =
        podman(&["login", "--tls-verify=false", "--authfile", &authfile, "-u", "henry", "-p", "wrong", reg.host()])
            .await;
    assert!(!bad_login.status.success(), "a wrong password fails podman login");
    let remote = format!("{}/acme/app:v1", reg.host());
    for step in [
        vec!["pull", "--tls-verify=false", "--authfile", &authfile, &remote],
        vec!["push", "--tls-verify=false", "--authfile", &authfile, &remote, &format!("{}/acme/app:v3", reg.host())],
    ] {
        let out = podman(&step).await;
        assert!(out.status.success(), "podman {step:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(reg.send(Method::HEAD, "/v2/acme/app/manifests/v3").await.status(), StatusCode::OK);
    reg.stop().await;
}

//! The App Registry protocol under `/cnr`, endpoint by endpoint: shapes, version resolution,
//! channels, tenancy, error codes, conditional requests, and the number of database
//! statements the OperatorHub hot path costs.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::{TestRegistry, anonymous_client, client_as};

const PACKAGES: &str = "/cnr/api/v1/packages";

/// A gzip'd "tar" (the server hashes what is inside; it does not unpack it).
fn package(content: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(content.as_bytes()).expect("compress");
    encoder.finish().expect("finish")
}

fn digest_of(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

async fn push(registry: &TestRegistry, name: &str, release: &str, content: &str, extra: &str) -> Response {
    let body = json!({
        "blob": STANDARD.encode(package(content)),
        "release": release,
        "media_type": "helm",
        "visibility": "public",
        "metadata": { "source": "tests" },
    });
    registry.req(Method::POST, &format!("{PACKAGES}/{name}{extra}")).json(&body).send().await.expect("request")
}

async fn pushed(registry: &TestRegistry, name: &str, release: &str, content: &str) {
    let r = push(registry, name, release, content, "").await;
    assert_eq!(r.status(), StatusCode::OK, "push {name}@{release}: {}", r.text().await.unwrap_or_default());
}

async fn get_json(client: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let r = client.get(url).send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Asserts Quay's error shape with `code`.
async fn expect_cnr_error(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "status for expected {code}");
    let body: Value = r.json().await.expect("error JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["error"]["details"].is_object(), "{body}");
    body
}

#[tokio::test]
async fn push_list_show_and_pull_resolve_versions_like_the_reference_server() {
    let registry = TestRegistry::start().await;
    let url = |path: &str| format!("{}{PACKAGES}{path}", registry.base);
    for (release, content) in [("1.0.0", "one"), ("1.1.0", "one-one"), ("2.0.0-beta.1", "two-beta")] {
        pushed(&registry, "demo/hello", release, content).await;
    }
    let version: Value = registry.send(Method::GET, "/cnr/version").await.json().await.expect("json");
    assert!(version["appr-api"].is_string(), "{version}");

    let anonymous = anonymous_client();
    let (status, list) = get_json(&anonymous, url("?namespace=demo")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["name"], "demo/hello");
    assert_eq!(list[0]["releases"], json!(["2.0.0-beta.1", "1.1.0", "1.0.0"]));
    assert_eq!(list[0]["default"], "2.0.0-beta.1");
    assert_eq!(list[0]["manifests"], json!(["helm"]));
    assert_eq!(list[0]["visibility"], "public");
    assert_eq!(get_json(&anonymous, url("?namespace=demo&media_type=kpm")).await.1, json!([]));
    assert_eq!(get_json(&anonymous, url("?query=hel")).await.1[0]["name"], "demo/hello");
    assert_eq!(get_json(&anonymous, url("?query=nothing")).await.1, json!([]));
    assert_eq!(get_json(&anonymous, url("/search?q=mo/he")).await.1, json!(["demo/hello"]));

    // Show: `default` includes pre-releases; ranges exclude them unless they mention one.
    for (query, want) in [
        ("default", "2.0.0-beta.1"),
        ("1.0.0", "1.0.0"),
        ("%3E%3D1.0.0", "1.1.0"),
        ("%3E%3D1.0.0%2C%3C1.1.0", "1.0.0"),
        ("%3E%3D2.0.0-0", "2.0.0-beta.1"),
        ("~1.0", "1.0.0"),
        ("%5E1.0.0", "1.1.0"),
    ] {
        let (status, shown) = get_json(&anonymous, url(&format!("/demo/hello/{query}/helm"))).await;
        assert_eq!(status, StatusCode::OK, "{query}: {shown}");
        assert_eq!(shown["release"], want, "{query}");
    }
    let (_, shown) = get_json(&anonymous, url("/demo/hello/1.1.0/helm")).await;
    assert_eq!(shown["package"], "demo/hello");
    assert_eq!(shown["content"]["digest"], digest_of("one-one"));
    assert_eq!(shown["content"]["size"], package("one-one").len());
    assert_eq!(shown["content"]["urls"], json!([]));
    assert!(shown["mediaType"].as_str().is_some_and(|m| m.contains("package-manifest.helm")), "{shown}");
    assert_eq!(shown["metadata"], json!({ "source": "tests" }));
    assert_eq!(shown["channels"], json!([]));
    assert!(shown["created_at"].as_str().is_some_and(|t| t.len() >= 19 && !t.ends_with('Z')), "{shown}");

    // All manifests, one release's manifests.
    let (_, all) = get_json(&anonymous, url("/demo/hello")).await;
    assert_eq!(all.as_array().map(Vec::len), Some(3));
    let (_, one) = get_json(&anonymous, url("/demo/hello/1.0.0")).await;
    assert_eq!(one[0]["content"]["digest"], digest_of("one"));

    // Pull by version query, raw and JSON; blob by digest, raw and JSON.
    let raw = anonymous.get(url("/demo/hello/%3C1.1.0/helm/pull")).send().await.expect("pull");
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(raw.headers()["content-type"], "application/x-gzip");
    assert_eq!(raw.headers()["content-disposition"], "demo_hello_1.0.0.tar.gz");
    assert_eq!(raw.bytes().await.expect("body").to_vec(), package("one"));
    for path in ["/demo/hello/1.0.0/helm/pull?format=json", "/demo/hello/1.0.0/helm/pull/json"] {
        let (_, pulled) = get_json(&anonymous, url(path)).await;
        assert_eq!(pulled["filename"], "demo_hello_1.0.0.tar.gz");
        assert_eq!(STANDARD.decode(pulled["blob"].as_str().expect("blob")).expect("base64"), package("one"));
    }
    let blob_path = format!("/demo/hello/blobs/sha256/{}", digest_of("two-beta"));
    let blob = anonymous.get(url(&blob_path)).send().await.expect("blob");
    assert_eq!(blob.headers()["etag"].to_str().ok(), Some(format!("\"{}\"", digest_of("two-beta")).as_str()));
    assert_eq!(blob.bytes().await.expect("body").to_vec(), package("two-beta"));
    let (_, blob_json) = get_json(&anonymous, url(&format!("{blob_path}/json"))).await;
    assert_eq!(STANDARD.decode(blob_json["blob"].as_str().expect("blob")).expect("base64"), package("two-beta"));
    registry.stop().await;
}

#[tokio::test]
async fn errors_come_in_quays_shape_with_the_specified_codes() {
    let registry = TestRegistry::start_with(|c| c.app_registry.max_push_bytes = 64 * 1024).await;
    pushed(&registry, "demo/hello", "1.0.0", "one").await;
    registry.push_image("demo/image", "v1", &[b"layer"]).await;
    let post = |path: &str, body: Value| registry.req(Method::POST, &format!("{PACKAGES}{path}")).json(&body);
    let blob = STANDARD.encode(package("x"));

    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            post("/demo/hello", json!({"blob": blob, "release": "1.0.0", "media_type": "helm"})),
            StatusCode::CONFLICT,
            "package-exists",
        ),
        (
            post("/demo/hello", json!({"blob": blob, "release": "1.0", "media_type": "helm"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-release",
        ),
        (post("/demo/hello", json!({"blob": blob, "media_type": "helm"})), StatusCode::BAD_REQUEST, "invalid-usage"),
        (post("/demo/hello", json!({"blob": "%%%", "release": "3.0.0"})), StatusCode::BAD_REQUEST, "invalid-usage"),
        (
            post("/demo/hello", json!({"blob": STANDARD.encode(b"not gzip"), "release": "3.0.0"})),
            StatusCode::BAD_REQUEST,
            "invalid-usage",
        ),
        (
            post("/demo/hello", json!({"blob": blob, "release": "3.0.0", "media_type": "../x"})),
            StatusCode::BAD_REQUEST,
            "invalid-usage",
        ),
        (
            post("/demo/hello", json!({"blob": "A".repeat(100 * 1024), "release": "3.0.0"})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid-usage",
        ),
        (
            post("/demo/image", json!({"blob": blob, "release": "1.0.0", "media_type": "helm"})),
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid-usage",
        ),
        (
            registry.req(Method::GET, &format!("{PACKAGES}/demo/hello/latest/helm")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-release",
        ),
        (
            registry.req(Method::GET, &format!("{PACKAGES}/demo/hello/9.9.9/helm")),
            StatusCode::NOT_FOUND,
            "package-release-not-found",
        ),
        (
            registry.req(Method::GET, &format!("{PACKAGES}/demo/hello/1.0.0/kpm")),
            StatusCode::NOT_FOUND,
            "package-not-found",
        ),
        (
            registry.req(Method::GET, &format!("{PACKAGES}/demo/nothing/1.0.0/helm")),
            StatusCode::NOT_FOUND,
            "package-not-found",
        ),
        (
            registry.req(Method::GET, &format!("{PACKAGES}/demo/hello/blobs/sha256/{}", "0".repeat(64))),
            StatusCode::NOT_FOUND,
            "package-not-found",
        ),
        (
            registry.req(Method::GET, &format!("{PACKAGES}/demo/hello/channels/nope")),
            StatusCode::NOT_FOUND,
            "channel-not-found",
        ),
        (
            registry.req(Method::DELETE, &format!("{PACKAGES}/demo/hello/channels/nope")),
            StatusCode::NOT_FOUND,
            "channel-not-found",
        ),
        (
            registry.req(Method::POST, &format!("{PACKAGES}/demo/hello/channels/stable/9.9.9")),
            StatusCode::NOT_FOUND,
            "package-release-not-found",
        ),
        (
            registry.req(Method::POST, &format!("{PACKAGES}/demo/hello/channels/-bad-/1.0.0")),
            StatusCode::BAD_REQUEST,
            "invalid-usage",
        ),
        (
            registry.req(Method::DELETE, &format!("{PACKAGES}/demo/hello/9.9.9/helm")),
            StatusCode::NOT_FOUND,
            "package-not-found",
        ),
        (
            registry.req(Method::GET, &format!("{PACKAGES}/demo/image/1.0.0/helm")),
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid-usage",
        ),
        (registry.req(Method::GET, &format!("{PACKAGES}/Demo/hello")), StatusCode::BAD_REQUEST, "invalid-usage"),
        (
            registry.req(Method::PUT, &format!("{PACKAGES}/demo/hello")),
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
        ),
        (registry.req(Method::GET, "/cnr/api/v1/nothing"), StatusCode::NOT_FOUND, "not-found"),
        (
            registry.req(Method::POST, "/cnr/api/v1/users/login").json(&json!({"user": {"username": "admin"}})),
            StatusCode::BAD_REQUEST,
            "invalid-usage",
        ),
        (
            anonymous_client()
                .post(format!("{}/cnr/api/v1/users/login", registry.base))
                .json(&json!({"user": {"username": "admin", "password": "wrong-password"}})),
            StatusCode::UNAUTHORIZED,
            "unauthorized-access",
        ),
    ];
    for (request, status, code) in cases {
        let request = request.build().expect("request");
        let what = format!("{} {}", request.method(), request.url());
        let r = registry.client.execute(request).await.expect("send");
        assert_eq!(r.status(), status, "{what}");
        expect_cnr_error(r, status, code).await;
    }
    // The 409 names what exists; nothing of a refused push was stored.
    let conflict = expect_cnr_error(
        push(&registry, "demo/hello", "1.0.0", "changed", "").await,
        StatusCode::CONFLICT,
        "package-exists",
    )
    .await;
    assert_eq!(
        conflict["error"]["details"],
        json!({"package": "demo/hello", "release": "1.0.0", "media_type": "helm"})
    );
    let (_, shown) = get_json(&registry.client, format!("{}{PACKAGES}/demo/hello/1.0.0/helm", registry.base)).await;
    assert_eq!(shown["content"]["digest"], digest_of("one"));
    // `force=true` (exactly) replaces it.
    assert_eq!(push(&registry, "demo/hello", "1.0.0", "changed", "?force=1").await.status(), StatusCode::CONFLICT);
    assert_eq!(push(&registry, "demo/hello", "1.0.0", "changed", "?force=true").await.status(), StatusCode::OK);
    let (_, shown) = get_json(&registry.client, format!("{}{PACKAGES}/demo/hello/1.0.0/helm", registry.base)).await;
    assert_eq!(shown["content"]["digest"], digest_of("changed"));
    // The image API refuses the package, in its own format.
    let r = registry.send(Method::GET, "/v2/demo/hello/tags/list").await;
    crate::support::expect_error(r, StatusCode::FORBIDDEN, "DENIED").await;
    registry.stop().await;
}

#[tokio::test]
async fn channels_follow_their_releases_and_never_point_at_nothing() {
    let registry = TestRegistry::start().await;
    for release in ["1.0.0", "1.1.0", "1.2.0"] {
        pushed(&registry, "demo/chan", release, release).await;
    }
    let url = |path: &str| format!("{PACKAGES}/demo/chan{path}");
    let send = |method: Method, path: &str| registry.req(method, &url(path)).header("content-length", "0").send();
    let added: Value = send(Method::POST, "/channels/stable/1.2.0").await.expect("add").json().await.expect("json");
    assert_eq!(added, json!({"name": "stable", "current": "1.2.0", "releases": ["1.2.0"]}));
    // Adding an older release still makes it current.
    let added: Value = send(Method::POST, "/channels/stable/1.0.0").await.expect("add").json().await.expect("json");
    assert_eq!(added, json!({"name": "stable", "current": "1.0.0", "releases": ["1.2.0", "1.0.0"]}));
    send(Method::POST, "/channels/beta/1.1.0").await.expect("add");
    let (_, channels) = get_json(&registry.client, format!("{}{}", registry.base, url("/channels/"))).await;
    assert_eq!(channels.as_array().map(Vec::len), Some(2), "{channels}");
    let (_, shown) = get_json(&registry.client, format!("{}{}", registry.base, url("/1.0.0/helm"))).await;
    assert_eq!(shown["channels"], json!(["stable"]));

    // Removing the current release moves the channel to its highest remaining one.
    let removed: Value =
        send(Method::DELETE, "/channels/stable/1.0.0").await.expect("remove").json().await.expect("json");
    assert_eq!(removed, json!({"status": "deleted", "package": "demo/chan", "name": "stable", "release": "1.0.0"}));
    let (_, stable) = get_json(&registry.client, format!("{}{}", registry.base, url("/channels/stable"))).await;
    assert_eq!(stable, json!({"name": "stable", "current": "1.2.0", "releases": ["1.2.0"]}));

    // Deleting a release takes it out of every channel; an emptied channel goes.
    let deleted: Value = send(Method::DELETE, "/1.1.0/helm").await.expect("delete").json().await.expect("json");
    assert_eq!(deleted, json!({"status": "deleted", "package": "demo/chan", "release": "1.1.0"}));
    let (status, _) = get_json(&registry.client, format!("{}{}", registry.base, url("/channels/beta"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let dropped: Value = send(Method::DELETE, "/channels/stable").await.expect("delete").json().await.expect("json");
    assert_eq!(dropped, json!({"channel": "stable", "package": "demo/chan", "action": "delete"}));
    let (_, channels) = get_json(&registry.client, format!("{}{}", registry.base, url("/channels"))).await;
    assert_eq!(channels, json!([]));
    let (_, list) = get_json(&registry.client, format!("{}{PACKAGES}?namespace=demo", registry.base)).await;
    assert_eq!(list[0]["releases"], json!(["1.2.0", "1.0.0"]));
    registry.stop().await;
}

#[tokio::test]
async fn packages_live_in_the_tenancy_of_images() {
    let registry = TestRegistry::start().await;
    let admin = |method: Method, path: &str, body: Value| registry.req(method, path).json(&body).send();
    admin(Method::POST, "/api/v1/users", json!({"name": "bob", "password": "bob-password"})).await.expect("user");
    admin(Method::POST, "/api/v1/users", json!({"name": "eve", "password": "eve-password"})).await.expect("user");
    admin(Method::POST, "/api/v1/organizations", json!({"name": "ops"})).await.expect("org");
    let robot: Value = admin(Method::PUT, "/api/v1/namespaces/ops/robots/ci", json!({}))
        .await
        .expect("robot")
        .json()
        .await
        .expect("json");
    let robot_token = robot["token"].as_str().expect("token").to_owned();

    // A push without a visibility creates a private package.
    let body = json!({"blob": STANDARD.encode(package("secret")), "release": "1.0.0", "media_type": "helm"});
    let r = registry.req(Method::POST, &format!("{PACKAGES}/ops/private")).json(&body).send().await.expect("push");
    assert_eq!(r.status(), StatusCode::OK);
    let show = format!("{}{PACKAGES}/ops/private/1.0.0/helm", registry.base);
    expect_cnr_error(
        anonymous_client().get(&show).send().await.expect("get"),
        StatusCode::UNAUTHORIZED,
        "unauthorized-access",
    )
    .await;
    let bob = client_as("bob", "bob-password");
    let denied = expect_cnr_error(bob.get(&show).send().await.expect("get"), StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(denied["error"]["details"]["scopes"], json!(["pull"]));
    // Unknown packages answer the same to those who could not read them anyway.
    let missing = format!("{}{PACKAGES}/ops/missing/1.0.0/helm", registry.base);
    expect_cnr_error(bob.get(&missing).send().await.expect("get"), StatusCode::FORBIDDEN, "forbidden").await;
    let list = format!("{}{PACKAGES}?namespace=ops", registry.base);
    assert_eq!(get_json(&anonymous_client(), list.clone()).await.1, json!([]));
    assert_eq!(get_json(&bob, list.clone()).await.1, json!([]));
    assert_eq!(get_json(&registry.client, list.clone()).await.1[0]["visibility"], "private");

    // A read grant lets bob read and list it, not write it.
    admin(Method::PUT, "/api/v1/repositories/ops/private/permissions/user/bob", json!({"role": "read"}))
        .await
        .expect("grant");
    assert_eq!(bob.get(&show).send().await.expect("get").status(), StatusCode::OK);
    assert_eq!(get_json(&bob, list.clone()).await.1[0]["name"], "ops/private");
    let r = bob
        .post(format!("{}{PACKAGES}/ops/private", registry.base))
        .json(&json!({"blob": STANDARD.encode(package("b")), "release": "2.0.0"}))
        .send()
        .await
        .expect("push");
    expect_cnr_error(r, StatusCode::FORBIDDEN, "forbidden").await;

    // `appr login`: the token is `basic base64(user:password)`, sent back verbatim; robots too.
    let login = |user: &str, password: &str| {
        anonymous_client()
            .post(format!("{}/cnr/api/v1/users/login", registry.base))
            .json(&json!({"user": {"username": user, "password": password}}))
            .send()
    };
    let token: Value = login("ops+ci", &robot_token).await.expect("login").json().await.expect("json");
    let token = token["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("basic "), "{token}");
    let as_robot = |r: reqwest::RequestBuilder| r.header("authorization", token.clone());
    let r = as_robot(anonymous_client().post(format!("{}{PACKAGES}/ops/private", registry.base)))
        .json(&json!({"blob": STANDARD.encode(package("robot")), "release": "2.0.0"}))
        .send()
        .await
        .expect("push");
    expect_cnr_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    admin(Method::PUT, "/api/v1/repositories/ops/private/permissions/robot/ops+ci", json!({"role": "write"}))
        .await
        .expect("grant");
    let r = as_robot(anonymous_client().post(format!("{}{PACKAGES}/ops/private", registry.base)))
        .json(&json!({"blob": STANDARD.encode(package("robot")), "release": "2.0.0", "media_type": "helm"}))
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), StatusCode::OK);
    // eve has no rights in ops: she can neither create packages there nor see them.
    let eve = client_as("eve", "eve-password");
    let r = eve
        .post(format!("{}{PACKAGES}/ops/eves", registry.base))
        .json(&json!({"blob": STANDARD.encode(package("e")), "release": "1.0.0"}))
        .send()
        .await
        .expect("push");
    expect_cnr_error(r, StatusCode::FORBIDDEN, "forbidden").await;

    // Making it public shows it to everyone at once.
    admin(Method::PUT, "/api/v1/repositories/ops/private/visibility", json!({"visibility": "public"}))
        .await
        .expect("public");
    let listed = get_json(&anonymous_client(), list).await.1;
    assert_eq!(listed[0]["releases"], json!(["2.0.0", "1.0.0"]));
    // Every push is in the audit log.
    let logs: Value = registry
        .send(Method::GET, "/api/v1/logs?repository=ops/private&action=push_package")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(logs["items"].as_array().map(Vec::len), Some(2), "{logs}");
    registry.stop().await;
}

#[tokio::test]
async fn responses_carry_etags_and_answer_if_none_match() {
    let registry = TestRegistry::start().await;
    pushed(&registry, "demo/etag", "1.0.0", "one").await;
    let anonymous = anonymous_client();
    for path in [
        "?namespace=demo",
        "/demo/etag/default/helm",
        "/demo/etag/channels",
        &format!("/demo/etag/blobs/sha256/{}", digest_of("one")),
    ] {
        let url = format!("{}{PACKAGES}{path}", registry.base);
        let first = anonymous.get(&url).send().await.expect("get");
        assert_eq!(first.status(), StatusCode::OK, "{path}");
        let etag = first.headers()["etag"].clone();
        let again = anonymous.get(&url).header("if-none-match", etag.clone()).send().await.expect("get");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()["etag"], etag);
        assert!(again.bytes().await.expect("body").is_empty());
    }
    // A push changes the listing and its tag.
    let url = format!("{}{PACKAGES}?namespace=demo", registry.base);
    let before = anonymous.get(&url).send().await.expect("get").headers()["etag"].clone();
    pushed(&registry, "demo/etag", "1.1.0", "one-one").await;
    let after = anonymous.get(&url).header("if-none-match", before.clone()).send().await.expect("get");
    assert_eq!(after.status(), StatusCode::OK);
    assert_ne!(after.headers()["etag"], before);
    registry.stop().await;
}

/// Counts the SQL statements sqlx runs (it reports each as a `sqlx::query` event).
mod statements {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tracing_subscriber::layer::{Context, SubscriberExt};

    static COUNT: AtomicU64 = AtomicU64::new(0);

    struct Counter;

    /// The statement text of a `sqlx::query` event.
    #[derive(Default)]
    struct Statement(String);

    impl tracing::field::Visit for Statement {
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            if field.name() == "db.statement" || field.name() == "summary" {
                self.0.push_str(value);
            }
        }

        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "db.statement" || field.name() == "summary" {
                self.0.push_str(&format!("{value:?}"));
            }
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counter {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            if event.metadata().target() != "sqlx::query" {
                return;
            }
            let mut statement = Statement::default();
            event.record(&mut statement);
            // Background work (batched login audit rows, the upload sweep) runs whenever it
            // likes, and the pool opens connections (PRAGMAs) when it likes; only statements a
            // request runs count.
            let background = ["audit_log", "uploads", "PRAGMA"].iter().any(|s| statement.0.contains(s));
            if !background {
                COUNT.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    pub fn install() {
        static INSTALLED: OnceLock<()> = OnceLock::new();
        INSTALLED.get_or_init(|| {
            let subscriber = tracing_subscriber::registry()
                .with(tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::TRACE))
                .with(Counter);
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber in this test");
        });
    }

    pub fn now() -> u64 {
        COUNT.load(Ordering::SeqCst)
    }
}

/// Statements one request costs, as `(cold, warm)`: right after a write, and repeated.
async fn statements_for(client: &reqwest::Client, url: &str) -> (u64, u64) {
    let before = statements::now();
    assert_eq!(client.get(url).send().await.expect("get").status(), StatusCode::OK, "{url}");
    let cold = statements::now() - before;
    let before = statements::now();
    assert_eq!(client.get(url).send().await.expect("get").status(), StatusCode::OK, "{url}");
    (cold, statements::now() - before)
}

#[tokio::test]
async fn the_operatorhub_path_costs_the_same_few_statements_whatever_the_catalog_size() {
    statements::install();
    let mut costs = Vec::new();
    for packages in [3, 40] {
        let registry = TestRegistry::start().await;
        for i in 0..packages {
            for release in ["1.0.0", "1.1.0"] {
                pushed(&registry, &format!("hub/op{i}"), release, &format!("op{i}-{release}")).await;
            }
            let r = registry
                .req(Method::POST, &format!("{PACKAGES}/hub/op{i}/channels/stable/1.0.0"))
                .send()
                .await
                .expect("channel");
            assert_eq!(r.status(), StatusCode::OK);
        }
        // One more write so that every cache starts cold.
        pushed(&registry, "hub/op0", "1.2.0", "op0-1.2.0").await;
        let anonymous = anonymous_client();
        let base = format!("{}{PACKAGES}", registry.base);
        let list = statements_for(&anonymous, &format!("{base}?namespace=hub")).await;
        let show = statements_for(&anonymous, &format!("{base}/hub/op0/default/helm")).await;
        // Another package, so that its access decision is not cached from the show either.
        let blob = statements_for(&anonymous, &format!("{base}/hub/op1/blobs/sha256/{}", digest_of("op1-1.1.0"))).await;
        costs.push((list, show, blob));
        registry.stop().await;
    }
    eprintln!("statements (cold, warm) per list, show, blob: {costs:?}");
    let cold = |c: ((u64, u64), (u64, u64), (u64, u64))| (c.0.0, c.1.0, c.2.0);
    assert_eq!(cold(costs[0]), cold(costs[1]), "statements per cold (list, show, blob) must not grow with the catalog");
    for &(list, show, blob) in &costs {
        for (cold, warm) in [list, show, blob] {
            assert!(cold <= 6, "a cold request costs a handful of statements, not {cold}: {costs:?}");
            assert!(warm <= cold, "a repeated request costs no more than a cold one: {costs:?}");
        }
    }
}

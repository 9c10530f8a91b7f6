//! Test support: real Berth servers on 127.0.0.1:0 (in-process or as child processes),
//! content builders, and small protocol helpers.

pub mod content;
pub mod process;
pub mod schema;
pub mod tls;

use std::path::PathBuf;

use berth::app::Running;
use berth::config::Config;
use berth_meta::TestDatabase;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// A Berth running inside the test's runtime on a fresh data directory, with its metadata in
/// SQLite there, or in a fresh PostgreSQL database when the suite runs on PostgreSQL (see
/// [`on_postgres`]).
pub struct TestRegistry {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    running: Option<Running>,
    /// Dropped after the server stops.
    database: Option<TestDatabase>,
}

/// Whether registries run on PostgreSQL: the suite is built twice from one source, as `it`
/// (SQLite) and `it-postgres`, so `cargo nextest run` runs every test on both backends.
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME") == "it_postgres"
}

impl TestRegistry {
    pub async fn start() -> TestRegistry {
        Self::start_with(|_| {}).await
    }

    /// A registry with authentication on and one superuser, [`ADMIN`]; `client` logs in as it.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestRegistry {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        // Without a PostgreSQL server (outside CI, where it must be there) this says so and
        // the test runs on SQLite.
        let database = if on_postgres() { TestDatabase::create().await } else { None };
        config.database.url = database.as_ref().map(|db| db.url.clone());
        adjust(&mut config);
        berth::admin::create_user(&config, ADMIN.0, ADMIN.1.into(), true).await.expect("bootstrap the superuser");
        let running = berth::app::start(&config).await.expect("berth starts");
        let scheme = if config.tls.cert.is_some() { "https" } else { "http" };
        TestRegistry {
            base: format!("{scheme}://{}", running.addr),
            client: client(),
            dir,
            running: Some(running),
            database,
        }
    }

    pub fn host(&self) -> &str {
        self.base.split_once("://").map_or(&self.base, |(_, host)| host)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Whether this registry's metadata is on PostgreSQL.
    pub fn is_on_postgres(&self) -> bool {
        self.database.is_some()
    }

    /// The registry's metadata database, opened beside the server (as another instance would).
    pub async fn open_meta(&self) -> std::sync::Arc<dyn berth_core::ports::MetaStore> {
        let url = match &self.database {
            Some(db) => berth_meta::DatabaseUrl::Postgres(db.url.clone()),
            None => berth_meta::DatabaseUrl::Sqlite(self.data_dir().join("meta.db")),
        };
        berth_meta::open(&url, &berth_meta::DatabaseLimits::default()).await.expect("open the database")
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub async fn send(&self, method: Method, path: &str) -> Response {
        self.req(method, path).send().await.expect("request")
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("berth stops cleanly");
        }
        drop(self.database.take());
    }

    /// Pushes a blob in one request; returns its digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let r = self
            .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={digest}"))
            .body(bytes.to_vec())
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::CREATED, "pushing a blob: {}", r.text().await.unwrap_or_default());
        digest
    }

    pub async fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> Response {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("request")
    }

    /// Pushes a small image (config + `layers`) and tags it; returns the manifest.
    pub async fn push_image(&self, repo: &str, tag: &str, layers: &[&[u8]]) -> content::Image {
        let image = content::Image::new(layers);
        for blob in image.blobs() {
            self.push_blob(repo, blob).await;
        }
        let r = self.put_manifest(repo, tag, content::OCI_MANIFEST, &image.manifest).await;
        assert_eq!(r.status(), StatusCode::CREATED, "pushing a manifest: {}", r.text().await.unwrap_or_default());
        image
    }
}

/// The superuser every test registry starts with: name and password.
pub const ADMIN: (&str, &str) = ("admin", "admin-password-for-tests");

/// `user:password` for the superuser, as skopeo's `--creds` takes it.
pub fn admin_creds() -> String {
    format!("{}:{}", ADMIN.0, ADMIN.1)
}

/// A client that sends the superuser's Basic credentials with every request.
pub fn client() -> reqwest::Client {
    client_as(ADMIN.0, ADMIN.1)
}

/// A client that sends these Basic credentials with every request.
pub fn client_as(user: &str, password: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let basic = base64_basic(user, password);
    headers.insert(reqwest::header::AUTHORIZATION, reqwest::header::HeaderValue::from_str(&basic).expect("header"));
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("client")
}

pub fn anonymous_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

pub fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The OCI error codes of an error response, in order.
pub async fn error_codes(r: Response) -> Vec<String> {
    let body: Value = r.json().await.expect("an error envelope in JSON");
    body["errors"]
        .as_array()
        .expect("errors array")
        .iter()
        .map(|e| e["code"].as_str().expect("code").to_owned())
        .collect()
}

/// Asserts the status and that the envelope's first code is `code`; returns the envelope.
pub async fn expect_error(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "status for expected {code}");
    let body: Value = r.json().await.expect("an error envelope in JSON");
    assert_eq!(body["errors"][0]["code"], code, "envelope: {body}");
    assert!(body["errors"][0]["message"].as_str().is_some_and(|m| !m.is_empty()), "a message: {body}");
    body
}

pub fn header<'r>(r: &'r Response, name: &str) -> &'r str {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("response has no {name} header"))
}

/// Whether a test that needs an outside tool should run: `false` (with a message) when the
/// tool is missing outside CI; a failure when it is missing in CI (`CI=true`).
pub fn tool_available(tool: &str) -> bool {
    let found = std::process::Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{tool} is required in CI (.ci/run installs it)");
        eprintln!("SKIPPED: {tool} is not installed (it is installed and required in CI)");
    }
    found
}

/// Shorthands for sending a request in tests.
#[allow(async_fn_in_trait)]
pub trait Call {
    /// Sends and returns the status.
    async fn status_code(self) -> StatusCode;
    /// Sends and parses the body as JSON.
    async fn json_value(self) -> Value;
}

impl Call for RequestBuilder {
    async fn status_code(self) -> StatusCode {
        self.send().await.expect("request").status()
    }

    async fn json_value(self) -> Value {
        self.send().await.expect("request").json().await.expect("a JSON body")
    }
}

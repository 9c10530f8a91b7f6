//! Three `berth serve` processes on one PostgreSQL database and one S3 bucket, as behind a
//! load balancer: any instance continues any upload, accepts any instance's tokens, and
//! stops serving what another instance changed as soon as it commits (no cache expiry).

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_blob::s3_test_server::S3TestServer;
use berth_meta::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::process::{BerthProcess, berth_command};
use crate::support::{ADMIN, TestRegistry, anonymous_client, base64_basic, client, content, header, sha256};

struct Cluster {
    bases: Vec<String>,
    instances: Vec<BerthProcess>,
    _dir: tempfile::TempDir,
    _s3: S3TestServer,
    _database: TestDatabase,
}

impl Cluster {
    /// `None` (skipped, with a message) when no PostgreSQL answers outside CI.
    async fn start(instances: usize) -> Option<Cluster> {
        let database = TestDatabase::create().await?;
        let s3 = S3TestServer::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("berth.toml");
        std::fs::write(&config_path, config_file(&database.url, &s3)).expect("write config");
        let config = berth::config::Config::from_file(&config_path).expect("config parses");
        berth::admin::create_user(&config, ADMIN.0, ADMIN.1.into(), true).await.expect("bootstrap the superuser");
        let mut started = Vec::new();
        for i in 0..instances {
            let data_dir = dir.path().join(format!("instance-{i}"));
            let config_path = config_path.clone();
            // Starting blocks on the child's output; the S3 server needs this runtime meanwhile.
            started.push(
                tokio::task::spawn_blocking(move || spawn_instance(&config_path, &data_dir)).await.expect("spawn"),
            );
        }
        let bases = started.iter().map(|p| p.base.clone()).collect();
        Some(Cluster { bases, instances: started, _dir: dir, _s3: s3, _database: database })
    }
}

fn config_file(database_url: &str, s3: &S3TestServer) -> String {
    let s3 = s3.config("cluster");
    format!(
        "[database]\nurl = {database_url:?}\n\n[storage]\nbackend = \"s3\"\n\n[storage.s3]\nendpoint = {:?}\n\
         bucket = {:?}\nregion = {:?}\naccess_key_id = {:?}\nsecret_access_key = {:?}\nprefix = {:?}\nallow_http = true\n",
        s3.endpoint.unwrap_or_default(),
        s3.bucket,
        s3.region,
        s3.access_key_id,
        s3.secret_access_key,
        s3.prefix
    )
}

fn spawn_instance(config: &Path, data_dir: &Path) -> BerthProcess {
    let mut command = berth_command();
    // The database is the one the configuration names, whatever the suite runs on.
    command.env_remove("BERTH_DATABASE_URL");
    command.args(["serve", "--listen", "127.0.0.1:0", "--config"]).arg(config).arg("--data-dir").arg(data_dir);
    BerthProcess::start(command)
}

async fn push_blob(base: &str, repo: &str, bytes: &[u8]) {
    let digest = sha256(bytes);
    let r = client()
        .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={digest}"))
        .body(bytes.to_vec())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap_or_default());
}

/// Pushes a one-layer image tagged `tag` through `base`; returns its manifest digest.
async fn push_image(base: &str, repo: &str, tag: &str, layer: &[u8]) -> String {
    let image = content::Image::new(&[layer]);
    for blob in image.blobs() {
        push_blob(base, repo, blob).await;
    }
    let r = client()
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", content::OCI_MANIFEST)
        .body(image.manifest.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap_or_default());
    sha256(&image.manifest)
}

/// An App Registry package: gzip'd bytes (the server hashes what is inside).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("finish")
}

async fn tag_digest(base: &str, repo: &str, tag: &str) -> String {
    let r = client().head(format!("{base}/v2/{repo}/manifests/{tag}")).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    header(&r, "docker-content-digest").to_owned()
}

/// What `read` returns once it equals `expected`, asked again while the change is on its way
/// (a notification takes about a millisecond); gives up after 10 s. Returns how many reads it
/// took, so a broken invalidation (which never delivers) fails instead of passing slowly.
async fn reads_until<F, Fut>(what: &str, expected: &str, read: F) -> u32
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reads = 0;
    loop {
        reads += 1;
        let seen = read().await;
        if seen == expected {
            return reads;
        }
        assert!(Instant::now() < deadline, "{what}: still {seen}, not {expected}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_uploads_tokens_tags_and_packages() {
    let Some(cluster) = Cluster::start(3).await else { return };
    let [a, b, c] = [&cluster.bases[0], &cluster.bases[1], &cluster.bases[2]];
    let http = client();

    // One chunked upload whose requests go to three different instances.
    let layer = content::bytes(11 * 1024 * 1024, 21);
    let started = http.post(format!("{a}/v2/acme/app/blobs/uploads/")).send().await.expect("post");
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let mut location = header(&started, "location").to_owned();
    let mut offset = 0;
    for (base, len) in [(b, 6 * 1024 * 1024), (c, 5 * 1024 * 1024)] {
        let r = http
            .patch(format!("{base}{location}"))
            .header("content-range", format!("{offset}-{}", offset + len - 1))
            .body(layer[offset..offset + len].to_vec())
            .send()
            .await
            .expect("patch");
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{}", r.text().await.unwrap_or_default());
        location = header(&r, "location").to_owned();
        offset += len;
    }
    let digest = sha256(&layer);
    let separator = if location.contains('?') { '&' } else { '?' };
    let done = http.put(format!("{a}{location}{separator}digest={digest}")).send().await.expect("put");
    assert_eq!(done.status(), StatusCode::CREATED, "{}", done.text().await.unwrap_or_default());
    for base in [b, c] {
        let pulled = http.get(format!("{base}/v2/acme/app/blobs/{digest}")).send().await.expect("get");
        assert_eq!(pulled.status(), StatusCode::OK);
        assert_eq!(sha256(&pulled.bytes().await.expect("body")), digest, "{base} serves the bytes");
    }

    // A token one instance issued is honoured by the others (the signing keys are shared).
    let issued = anonymous_client()
        .get(format!("{a}/v2/auth?service=berth&scope=repository:acme/app:pull"))
        .header("authorization", base64_basic(ADMIN.0, ADMIN.1))
        .send()
        .await
        .expect("token");
    let token: Value = issued.json().await.expect("json");
    let token = token["token"].as_str().expect("a token").to_owned();
    for base in [b, c] {
        let r = anonymous_client()
            .head(format!("{base}/v2/acme/app/blobs/{digest}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("head");
        assert_eq!(r.status(), StatusCode::OK, "{base} accepts a token from {a}");
    }

    // A tag every instance has cached moves through one of them: the others serve the move.
    let first = push_image(b, "acme/app", "stable", b"first").await;
    for base in [a, b, c] {
        assert_eq!(tag_digest(base, "acme/app", "stable").await, first);
    }
    let second = push_image(a, "acme/app", "stable", b"second").await;
    for base in [b, c] {
        let reads = reads_until("the moved tag", &second, || tag_digest(base, "acme/app", "stable")).await;
        eprintln!("{base} served the moved tag after {reads} read(s)");
    }

    // App Registry: a package listed (and cached) everywhere gains a release through one
    // instance and a channel through another; all three show both.
    let push_release = |base: &str, release: &str| {
        let body = json!({
            "blob": STANDARD.encode(gzip(release.as_bytes())),
            "release": release,
            "media_type": "helm",
        });
        http.post(format!("{base}/cnr/api/v1/packages/acme/chart")).json(&body).send()
    };
    assert_eq!(push_release(a, "1.0.0").await.expect("push").status(), StatusCode::OK);
    let releases = |base: String| {
        let http = http.clone();
        async move {
            let listed: Value = http
                .get(format!("{base}/cnr/api/v1/packages?namespace=acme"))
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json");
            listed[0]["releases"].to_string()
        }
    };
    for base in [a, b, c] {
        assert_eq!(releases(base.clone()).await, r#"["1.0.0"]"#);
    }
    assert_eq!(push_release(c, "1.1.0").await.expect("push").status(), StatusCode::OK);
    let channel = http
        .post(format!("{b}/cnr/api/v1/packages/acme/chart/channels/stable/1.1.0"))
        .header("content-length", "0")
        .send()
        .await
        .expect("channel");
    assert_eq!(channel.status(), StatusCode::OK);
    for base in [a, b, c] {
        reads_until("the new release", r#"["1.1.0","1.0.0"]"#, || releases(base.clone())).await;
        let channels = || {
            let http = http.clone();
            let base = base.clone();
            async move {
                let r = http.get(format!("{base}/cnr/api/v1/packages/acme/chart/channels")).send().await.expect("get");
                r.json::<Value>().await.expect("json").to_string()
            }
        };
        let expected = json!([{"name": "stable", "current": "1.1.0", "releases": ["1.1.0"]}]).to_string();
        reads_until("the new channel", &expected, channels).await;
    }

    for instance in cluster.instances {
        assert!(instance.terminate().success(), "an instance exits cleanly on SIGTERM");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_machine_registry_moves_onto_postgres_and_s3_whole() {
    let Some(database) = TestDatabase::create().await else { return };
    let s3 = S3TestServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let old_dir = dir.path().join("old");

    // The registry as it runs on one machine: SQLite and files, a tag that moved once, an
    // account with a password, and an App Registry package.
    let old = TestRegistry::start_with(|c| {
        c.data_dir = old_dir.clone();
        c.database.url = None;
    })
    .await;
    let first = old.push_image("acme/app", "v1", &[b"layer-one"]).await;
    let second = old.push_image("acme/app", "v1", &[b"layer-two"]).await;
    let r = old.req(Method::POST, "/api/v1/users").json(&json!({"name": "bob", "password": "bob-password"})).send();
    assert_eq!(r.await.expect("create bob").status(), StatusCode::CREATED);
    let body = json!({ "blob": STANDARD.encode(gzip(b"chart")), "release": "1.0.0", "media_type": "helm" });
    let r = old.req(Method::POST, "/cnr/api/v1/packages/acme/chart").json(&body).send().await.expect("push");
    assert_eq!(r.status(), StatusCode::OK);
    let history = |base: String| async move {
        let r = client().get(format!("{base}/api/v1/repositories/acme/app/tags?history=true")).send().await;
        r.expect("history").json::<Value>().await.expect("json")
    };
    let old_history = history(old.base.clone()).await;
    old.stop().await;

    let new_config = dir.path().join("new.toml");
    std::fs::write(&new_config, config_file(&database.url, &s3)).expect("write config");
    let run = |config: std::path::PathBuf, old_dir: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            let mut command = berth_command();
            command.env_remove("BERTH_DATABASE_URL");
            command.arg("migrate-store").arg("--data-dir").arg(old_dir).arg("--to").arg(config).output()
        })
    };
    let moved = run(new_config.clone(), old_dir.clone()).await.expect("join").expect("berth runs");
    let report = String::from_utf8_lossy(&moved.stdout);
    assert!(moved.status.success(), "{report}{}", String::from_utf8_lossy(&moved.stderr));
    assert!(report.contains("every digest checked"), "{report}");

    // The new registry serves all of it from PostgreSQL and the bucket.
    let mut config = berth::config::Config::from_file(&new_config).expect("config");
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.data_dir = dir.path().join("new");
    let running = berth::app::start(&config).await.expect("the moved registry starts");
    let base = format!("http://{}", running.addr);
    assert_eq!(tag_digest(&base, "acme/app", "v1").await, sha256(&second.manifest));
    for blob in first.blobs().chain(second.blobs()) {
        let r = client().get(format!("{base}/v2/acme/app/blobs/{}", sha256(blob))).send().await.expect("get");
        assert_eq!(r.bytes().await.expect("body").as_ref(), blob, "every blob, old versions' too");
    }
    assert_eq!(history(base.clone()).await, old_history, "the tag's history moved too");
    let bob = crate::support::client_as("bob", "bob-password").get(format!("{base}/api/v1/user")).send().await;
    assert_eq!(bob.expect("bob").status(), StatusCode::OK, "passwords moved");
    let listed: Value = client()
        .get(format!("{base}/cnr/api/v1/packages?namespace=acme"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed[0]["releases"], json!(["1.0.0"]));
    running.stop().await.expect("stops");

    // A second move into the now populated database is refused, touching nothing.
    let again = run(new_config, old_dir).await.expect("join").expect("berth runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{}", String::from_utf8_lossy(&again.stderr));
}

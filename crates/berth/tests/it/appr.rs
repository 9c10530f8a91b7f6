//! The App Registry (`/cnr`) with the reference client, `appr` 0.7.4: login, push, list, show,
//! pull, channels, delete and the permission errors, each checked on the CLI and on the API.
//! `BERTH_APPR` names the executable (`.ci/install-appr.sh` installs it); outside CI a missing
//! CLI skips these tests with a message, in CI it is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::{ADMIN, TestRegistry, anonymous_client};

/// The appr executable from `BERTH_APPR`, or `None` (with a message) when it is not set up
/// outside CI; a failure when it is missing in CI (`CI=true`).
fn appr_cli() -> Option<String> {
    let exe = std::env::var("BERTH_APPR").ok().filter(|p| !p.is_empty());
    let works = exe.as_ref().is_some_and(|exe| {
        let help = Command::new(exe).arg("--help").env("PYTHONWARNINGS", "ignore").output();
        help.is_ok_and(|o| o.status.success())
    });
    if !works {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "BERTH_APPR must name appr in CI (.ci/run sets it)");
        eprintln!("SKIPPED: BERTH_APPR names no working appr CLI (.ci/install-appr.sh installs it; CI requires it)");
    }
    exe.filter(|_| works)
}

/// What one CLI run left behind.
struct Run {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// One CLI user: the executable and a HOME of its own (the CLI keeps tokens in `$HOME/.appr`).
struct Appr {
    exe: String,
    home: tempfile::TempDir,
}

impl Appr {
    fn new(exe: &str) -> Appr {
        Appr { exe: exe.to_owned(), home: tempfile::tempdir().expect("tempdir") }
    }

    /// Runs `appr ARGS` in `dir` on the blocking pool (the registry shares the test's runtime).
    async fn run_in(&self, dir: &Path, args: &[&str]) -> Run {
        let mut command = Command::new(&self.exe);
        command.args(args).current_dir(dir).env("HOME", self.home.path()).env("PYTHONWARNINGS", "ignore");
        // Push packs into $TMPDIR under a fixed name: keep concurrent tests apart.
        command.env("TMPDIR", self.home.path()).env_remove("APPR_CONF_DIR").env_remove("APPR_DEFAULT_MEDIA_TYPE");
        for proxy in ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            command.env_remove(proxy);
        }
        let output = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("appr starts");
        Run {
            ok: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_in(self.home.path(), args).await
    }

    /// Asserts success; returns what the command printed.
    async fn ok(&self, args: &[&str]) -> String {
        succeeded(self.run(args).await, args)
    }

    /// Runs with `--output json`, asserts success, returns the printed JSON.
    async fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(&[args, &["--output", "json"]].concat()).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("appr {args:?} printed no JSON ({e}): {out}"))
    }

    /// Runs with `--output json` and asserts the CLI's HTTP error report: exit status 2, the
    /// status line and the server's error `code` (Quay's `{"error": {...}}` shape).
    async fn fails(&self, args: &[&str], status: u16, code: &str) -> Value {
        let run = self.run(&[args, &["--output", "json"]].concat()).await;
        failed(run, args, status, code)
    }

    /// `appr push URL -t helm EXTRA...` from inside a chart directory.
    async fn push(&self, chart: &Path, package: &str, extra: &[&str]) -> Run {
        self.run_in(chart, &[&["push", package, "-t", "helm"], extra].concat()).await
    }

    async fn login(&self, url: &str, user: &str, password: &str) {
        let out = self.ok(&["login", url, "-u", user, "-p", password]).await;
        assert!(out.contains("Login succeeded"), "{out}");
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        assert!(self.auths().contains(&token), "the CLI stores the server's `basic` token: {}", self.auths());
    }

    fn auths(&self) -> String {
        std::fs::read_to_string(self.home.path().join(".appr/auths.yaml")).unwrap_or_default()
    }
}

fn succeeded(run: Run, args: &[&str]) -> String {
    assert!(run.ok, "appr {args:?} failed ({:?}):\n{}\n{}", run.code, run.stdout, run.stderr);
    run.stdout
}

fn failed(run: Run, args: &[&str], status: u16, code: &str) -> Value {
    assert_eq!(run.code, Some(2), "appr {args:?} must fail with status 2:\n{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("no JSON report: {}", run.stdout));
    let message = report["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(&format!("{status} ")), "appr {args:?}: expected HTTP {status}: {report}");
    assert_eq!(report["response"]["error"]["code"], code, "appr {args:?}: {report}");
    report
}

/// A chart directory `root/NAME-VERSION` with `Chart.yaml` and one template; returns it.
fn chart(root: &Path, name: &str, version: &str) -> PathBuf {
    let dir = root.join(format!("{name}-{version}"));
    std::fs::create_dir_all(dir.join("templates")).expect("chart dir");
    std::fs::write(dir.join("Chart.yaml"), format!("name: {name}\nversion: {version}\ndescription: test chart\n"))
        .expect("Chart.yaml");
    let cm = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  version: \"{version}\"\n");
    std::fs::write(dir.join("templates/cm.yaml"), cm).expect("cm.yaml");
    dir
}

/// The App Registry digest of a `.tar.gz` file: SHA-256 of the uncompressed tar, in hex.
fn tar_digest(path: &Path) -> String {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut tar).expect("gzip data");
    hex::encode(Sha256::digest(&tar))
}

/// `GET /cnr/api/v1/packages/PATH` with `client`: status and JSON body (`null` if none).
async fn cnr(reg: &TestRegistry, client: &reqwest::Client, path: &str) -> (StatusCode, Value) {
    let r = client.get(format!("{}/cnr/api/v1/packages/{path}", reg.base)).send().await.expect("send");
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

/// A management API call as the superuser that must succeed; returns the JSON answer, if any.
async fn manage(reg: &TestRegistry, method: Method, path: &str, body: Option<Value>) -> Value {
    let mut req = reg.req(method, path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.expect("send");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

/// Table rows of a CLI listing, split on whitespace.
fn rows(text: &str) -> Vec<Vec<&str>> {
    text.lines().map(|l| l.split_whitespace().collect()).collect()
}

fn strings(values: &Value) -> Vec<&str> {
    values.as_array().expect("an array").iter().map(|v| v.as_str().expect("a string")).collect()
}

#[tokio::test]
async fn appr_pushes_lists_shows_pulls_and_manages_channels() {
    let Some(exe) = appr_cli() else { return };
    let reg = TestRegistry::start().await;
    let url = reg.base.clone();
    let work = tempfile::tempdir().expect("tempdir");
    manage(&reg, Method::POST, "/api/v1/organizations", Some(json!({ "name": "acme" }))).await;
    let cli = Appr::new(&exe);

    let out = cli.ok(&["version", &url]).await;
    assert!(out.contains("Client-version: 0.7.4"), "{out}");
    let version = cli.json(&["version", &url]).await;
    assert!(version["api-version"].is_object(), "the server's /cnr/version, not a connection error: {version}");
    cli.login(&url, ADMIN.0, ADMIN.1).await;
    assert!(cli.auths().contains(&format!("{url}/cnr")), "{}", cli.auths());

    // Push without and with a channel; private by default; a re-push conflicts unless forced.
    let pkg = format!("{url}/acme/hello");
    let v1 = chart(work.path(), "hello", "1.0.0");
    let out = succeeded(cli.push(&v1, &pkg, &[]).await, &["push"]);
    assert!(out.contains("package: acme/hello (1.0.0 | helm) pushed"), "{out}");
    let (status, shown) = cnr(&reg, &reg.client, "acme/hello/1.0.0/helm").await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(cnr(&reg, &anonymous_client(), "acme/hello/1.0.0/helm").await.0, StatusCode::UNAUTHORIZED);
    let again = cli.push(&v1, &pkg, &[]).await;
    assert_eq!(again.code, Some(2), "a re-push fails: {}", again.stdout);
    assert!(again.stderr.contains("409 Client Error") && again.stderr.contains("package-exists"), "{}", again.stderr);
    let out = succeeded(cli.push(&v1, &pkg, &["-f"]).await, &["push", "-f"]);
    assert!(out.contains("(1.0.0 | helm) pushed"), "{out}");
    let v2 = chart(work.path(), "hello", "1.1.0");
    let out = succeeded(cli.push(&v2, &pkg, &["-c", "stable"]).await, &["push", "-c"]);
    assert!(out.contains("(1.1.0 | helm) pushed") && out.contains(">>> Release '1.1.0' added to 'stable'"), "{out}");
    assert_eq!(cnr(&reg, &reg.client, "acme/hello/channels/stable").await.1["current"], "1.1.0");
    let tool = chart(work.path(), "tool", "0.1.0");
    succeeded(cli.push(&tool, &format!("{url}/admin/tool"), &[]).await, &["push", "admin/tool"]);

    // list, everything and one namespace.
    let all = cli.json(&["list", &url]).await;
    let names: Vec<&str> = all.as_array().expect("array").iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(names.contains(&"acme/hello") && names.contains(&"admin/tool"), "{all}");
    let acme = cli.json(&["list", &url, "-o", "acme"]).await;
    assert_eq!(acme.as_array().map(Vec::len), Some(1), "{acme}");
    assert_eq!(acme[0]["name"], "acme/hello");
    assert_eq!(strings(&acme[0]["releases"]), ["1.1.0", "1.0.0"]);
    assert_eq!(acme[0]["default"], "1.1.0");
    assert_eq!(strings(&acme[0]["manifests"]), ["helm"]);
    let table = cli.ok(&["list", &url, "-o", "acme"]).await;
    assert!(rows(&table).contains(&vec![pkg.as_str(), "1.1.0", "-", "helm"]), "{table}");

    // show: the table and the manifests as JSON, with the digests the API reports.
    let manifests = cli.json(&["show", &pkg, "-t", "helm"]).await;
    let digest_of = |release: &str| {
        let m = manifests.as_array().expect("array").iter().find(|m| m["release"] == release).expect("release shown");
        m["content"]["digest"].as_str().expect("digest").to_owned()
    };
    let (d1, d2) = (digest_of("1.0.0"), digest_of("1.1.0"));
    assert!(d1.len() == 64 && d1.bytes().all(|b| b.is_ascii_hexdigit()), "a bare hex digest: {d1}");
    assert_eq!(cnr(&reg, &reg.client, "acme/hello/1.0.0/helm").await.1["content"]["digest"], d1.as_str());
    let table = cli.ok(&["show", &pkg, "-t", "helm"]).await;
    assert!(table.starts_with("Info: acme/hello"), "{table}");
    for (release, digest) in [("1.0.0", &d1), ("1.1.0", &d2)] {
        let row = rows(&table).into_iter().find(|r| r.first() == Some(&release)).expect("a row per release");
        assert!(row.len() == 3 && row[1].contains("helm") && row[2] == digest, "{table}");
    }
    let one = cli.json(&["show", &format!("{pkg}@1.0.0"), "-t", "helm"]).await;
    assert_eq!(one.as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(one[0]["release"], "1.0.0");

    // pull by release, channel and digest; tarballs hash to the digests, charts extract.
    let dest = work.path().join("pulled");
    std::fs::create_dir_all(&dest).expect("dest");
    let dest_s = dest.display().to_string();
    let pulled = cli.json(&["pull", &format!("{pkg}@1.0.0"), "-t", "helm", "--dest", &dest_s, "--tarball"]).await;
    assert_eq!(pulled["path"], format!("{dest_s}/acme_hello_1.0.0.tar.gz"));
    assert_eq!(tar_digest(&dest.join("acme_hello_1.0.0.tar.gz")), d1);
    let pulled = cli.json(&["pull", &format!("{pkg}:stable"), "-t", "helm", "--dest", &dest_s]).await;
    assert_eq!(pulled["path"], format!("{dest_s}/acme_hello_1.1.0"));
    let extracted = std::fs::read(dest.join("acme_hello_1.1.0/hello/Chart.yaml")).expect("extracted chart");
    assert_eq!(extracted, std::fs::read(v2.join("Chart.yaml")).expect("chart"));
    assert!(dest.join("acme_hello_1.1.0/hello/templates/cm.yaml").is_file());
    let by_digest = format!("{pkg}@sha256:{d2}");
    let pulled = cli.json(&["pull", &by_digest, "-t", "helm", "--dest", &dest_s, "--tarball"]).await;
    let file = format!("acme_hello_{}.tar.gz", &d2[..8]);
    assert_eq!(pulled["path"], format!("{dest_s}/{file}"));
    assert_eq!(tar_digest(&dest.join(file)), d2);

    // Channels: list, add a release, remove it, delete a channel.
    let channels = cli.json(&["channel", &pkg]).await;
    assert_eq!(channels.as_array().map(Vec::len), Some(1), "{channels}");
    assert_eq!((&channels[0]["name"], &channels[0]["current"]), (&json!("stable"), &json!("1.1.0")));
    let out = cli.ok(&["channel", &pkg, "-c", "beta", "--set-release", "--version", "1.0.0"]).await;
    assert!(out.contains(">>> Release '1.0.0' added on 'beta'"), "{out}");
    assert_eq!(cnr(&reg, &reg.client, "acme/hello/channels/beta").await.1["current"], "1.0.0");
    let table = cli.ok(&["channel", &pkg]).await;
    let listed = rows(&table);
    assert!(listed.contains(&vec!["beta", "1.0.0"]) && listed.contains(&vec!["stable", "1.1.0"]), "{table}");
    let out = cli.ok(&["channel", &pkg, "-c", "beta", "--remove-release", "--version", "1.0.0"]).await;
    assert!(out.contains(">>> Release '1.0.0' removed from 'beta'"), "{out}");
    let (status, gone) = cnr(&reg, &reg.client, "acme/hello/channels/beta").await;
    assert_eq!((status, &gone["error"]["code"]), (StatusCode::NOT_FOUND, &json!("channel-not-found")), "{gone}");
    let out = cli.ok(&["channel", &pkg, "-c", "stable", "--delete"]).await;
    assert!(out.contains(">>> Channel 'stable' on 'acme/hello' deleted"), "{out}");
    assert_eq!(cli.json(&["channel", &pkg]).await, json!([]));

    // delete-package removes one release; unknown packages are 404 for a caller who may create.
    let out = cli.ok(&["delete-package", &format!("{pkg}@1.0.0"), "-t", "helm"]).await;
    assert!(out.contains("Deleted package: acme/hello - 1.0.0"), "{out}");
    assert_eq!(cnr(&reg, &reg.client, "acme/hello/1.0.0/helm").await.0, StatusCode::NOT_FOUND);
    assert_eq!(strings(&cli.json(&["list", &url, "-o", "acme"]).await[0]["releases"]), ["1.1.0"]);
    cli.fails(&["show", &format!("{url}/acme/nothing"), "-t", "helm"], 404, "package-not-found").await;
    let missing = format!("{url}/acme/nothing@1.0.0");
    cli.fails(&["pull", &missing, "-t", "helm", "--dest", &dest_s], 404, "package-not-found").await;
    reg.stop().await;
}

#[tokio::test]
async fn appr_logins_users_and_robots_meet_permissions() {
    let Some(exe) = appr_cli() else { return };
    let reg = TestRegistry::start().await;
    let url = reg.base.clone();
    let work = tempfile::tempdir().expect("tempdir");
    let dest = work.path().display().to_string();
    manage(&reg, Method::POST, "/api/v1/organizations", Some(json!({ "name": "acme" }))).await;
    manage(&reg, Method::POST, "/api/v1/users", Some(json!({ "name": "bob", "password": "bob-password" }))).await;
    let admin = Appr::new(&exe);
    admin.login(&url, ADMIN.0, ADMIN.1).await;
    let pkg = format!("{url}/acme/secret");
    let v1 = chart(work.path(), "secret", "1.0.0");
    succeeded(admin.push(&v1, &pkg, &[]).await, &["push", "acme/secret"]);
    let v2 = chart(work.path(), "secret", "1.1.0");
    let release = format!("{pkg}@1.0.0");

    // Not logged in: the private package is 401 for every command.
    let anonymous = Appr::new(&exe);
    anonymous.fails(&["show", &release, "-t", "helm"], 401, "unauthorized-access").await;
    anonymous.fails(&["pull", &release, "-t", "helm", "--dest", &dest], 401, "unauthorized-access").await;
    failed(anonymous.push(&v2, &pkg, &["--output", "json"]).await, &["push"], 401, "unauthorized-access");

    // A wrong password is refused and stores nothing; a user without rights gets 403.
    let bob = Appr::new(&exe);
    bob.fails(&["login", &url, "-u", "bob", "-p", "wrong"], 401, "unauthorized-access").await;
    assert!(!bob.auths().contains("basic"), "no token after a refused login: {}", bob.auths());
    bob.login(&url, "bob", "bob-password").await;
    bob.fails(&["show", &release, "-t", "helm"], 403, "forbidden").await;
    bob.fails(&["pull", &release, "-t", "helm", "--dest", &dest], 403, "forbidden").await;
    failed(bob.push(&v2, &pkg, &["--output", "json"]).await, &["push"], 403, "forbidden");
    // In his own namespace he may create: unknown packages are 404 there, and he pushes.
    bob.fails(&["show", &format!("{url}/bob/nothing"), "-t", "helm"], 404, "package-not-found").await;
    succeeded(bob.push(&v1, &format!("{url}/bob/secret"), &[]).await, &["push", "bob/secret"]);

    // Robots log in as ns+name with their token: read only cannot push, write can.
    let mut robots = Vec::new();
    for (name, role) in [("reader", "read"), ("deployer", "write")] {
        let robot = manage(&reg, Method::PUT, &format!("/api/v1/namespaces/acme/robots/{name}"), None).await;
        let path = format!("/api/v1/repositories/acme/secret/permissions/robot/acme+{name}");
        manage(&reg, Method::PUT, &path, Some(json!({ "role": role }))).await;
        let cli = Appr::new(&exe);
        cli.login(&url, &format!("acme+{name}"), robot["token"].as_str().expect("robot token")).await;
        robots.push(cli);
    }
    let (reader, deployer) = (&robots[0], &robots[1]);
    let shown = reader.json(&["show", &release, "-t", "helm"]).await;
    assert_eq!(shown[0]["release"], "1.0.0");
    failed(reader.push(&v2, &pkg, &["--output", "json"]).await, &["push"], 403, "forbidden");
    assert_eq!(cnr(&reg, &reg.client, "acme/secret/1.1.0/helm").await.0, StatusCode::NOT_FOUND);
    let out = succeeded(deployer.push(&v2, &pkg, &["-c", "stable"]).await, &["push", "robot"]);
    assert!(out.contains("(1.1.0 | helm) pushed") && out.contains("added to 'stable'"), "{out}");
    assert_eq!(cnr(&reg, &reg.client, "acme/secret/channels/stable").await.1["current"], "1.1.0");
    let listed = deployer.json(&["list", &url, "-o", "acme"]).await;
    assert_eq!(strings(&listed[0]["releases"]), ["1.1.0", "1.0.0"], "{listed}");

    // Made public, it is readable without logging in.
    let visibility = Some(json!({ "visibility": "public" }));
    manage(&reg, Method::PUT, "/api/v1/repositories/acme/secret/visibility", visibility).await;
    let pulled = anonymous.json(&["pull", &format!("{pkg}:stable"), "-t", "helm", "--dest", &dest, "--tarball"]).await;
    let d2 = cnr(&reg, &reg.client, "acme/secret/1.1.0/helm").await.1["content"]["digest"].clone();
    assert_eq!(tar_digest(Path::new(pulled["path"].as_str().expect("path"))), d2.as_str().expect("digest"));
    reg.stop().await;
}

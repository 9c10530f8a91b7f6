//! `berth admin`: the management operations from the command line, offline on a data directory
//! and online against a running server, with the server's problem detail on failure.

use std::path::Path;
use std::process::{Output, Stdio};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::process::{BerthProcess, berth_command, ensure_admin};
use crate::support::{ADMIN, TestRegistry, base64_basic};

/// Runs `berth admin ARGS` (with `stdin` fed in) off the test's runtime thread.
async fn admin(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = berth_command();
    command.arg("admin").args(args).env_remove("BERTH_SERVER").env_remove("BERTH_TOKEN").env_remove("BERTH_USER");
    command.env_remove("BERTH_PASSWORD").env_remove("RUST_BACKTRACE");
    for (key, value) in env {
        command.env(key, value);
    }
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child =
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("berth runs");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        child.wait_with_output().expect("berth admin finishes")
    })
    .await
    .expect("join")
}

fn succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "berth admin failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The JSON a successful command printed.
fn printed(output: &Output) -> Value {
    succeeded(output);
    serde_json::from_slice(&output.stdout).expect("berth admin prints JSON")
}

/// The problem detail a failed command printed on standard error.
fn problem(output: &Output) -> Value {
    assert!(!output.status.success(), "expected a failure, got {}", String::from_utf8_lossy(&output.stdout));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let json = stderr.find('{').map(|at| &stderr[at..]).unwrap_or_else(|| panic!("no problem JSON in {stderr}"));
    serde_json::from_str(json).expect("problem JSON")
}

fn dir_args(dir: &Path) -> [String; 2] {
    ["--data-dir".into(), dir.display().to_string()]
}

#[tokio::test]
async fn offline_commands_manage_the_data_directory_that_a_server_then_serves() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    ensure_admin(&dir);
    let d = dir_args(&dir);
    let offline = |args: &[&str]| {
        let mut all: Vec<&str> = d.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        admin(&args, &[], "").await
    };

    assert_eq!(printed(&run(offline(&["orgs", "create", "acme"])).await)["name"], "acme");
    let team = printed(&run(offline(&["teams", "set", "acme", "devs", "--role", "creator"])).await);
    assert_eq!(team["role"], "creator");
    let output = admin(&[&d[0], &d[1], "users", "create", "dev1", "--password-stdin"], &[], "dev1-password\n").await;
    assert_eq!(printed(&output)["name"], "dev1");
    succeeded(&run(offline(&["members", "add", "acme", "devs", "dev1"])).await);
    let robot = printed(&run(offline(&["robots", "create", "acme", "ci", "--description", "builds"])).await);
    let robot_token = robot["token"].as_str().expect("robot token shown once").to_owned();
    assert_eq!(robot["name"], "acme+ci");
    printed(&run(offline(&["repos", "create", "acme/tools/cli"])).await);
    succeeded(&run(offline(&["perms", "set", "acme/tools/cli", "robot", "acme+ci", "write"])).await);
    let perms = printed(&run(offline(&["perms", "list", "acme/tools/cli"])).await);
    assert!(perms.as_array().expect("list").iter().any(|p| p["name"] == "acme+ci" && p["role"] == "write"), "{perms}");
    succeeded(&run(offline(&["repos", "set-visibility", "acme/tools/cli", "public"])).await);
    let shown = printed(&run(offline(&["repos", "show", "acme/tools/cli"])).await);
    assert_eq!(shown["visibility"], "public");

    // Every change is in the audit log, as the system's doing.
    let logs = printed(&run(offline(&["logs", "--namespace", "acme", "--limit", "50"])).await);
    let actions: Vec<&str> =
        logs["items"].as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in ["create_organization", "create_robot", "create_repository", "set_permission", "set_visibility"] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    assert!(logs["items"].as_array().expect("items").iter().all(|e| e["actor_kind"] == "system"), "{logs}");

    // A server on the same directory honours what was set up offline.
    let server = BerthProcess::spawn(&dir);
    let client = reqwest::Client::new();
    let as_robot = client
        .get(format!("{}/v2/auth?service=berth&scope=repository:acme/tools/cli:push,pull", server.base))
        .header("authorization", base64_basic("acme+ci", &robot_token))
        .send()
        .await
        .expect("token request");
    assert_eq!(as_robot.status(), StatusCode::OK);
    let as_dev = client
        .get(format!("{}/api/v1/user", server.base))
        .header("authorization", base64_basic("dev1", "dev1-password"))
        .send()
        .await
        .expect("request");
    assert_eq!(as_dev.status(), StatusCode::OK);

    // Offline changes land while the server runs, and it sees them.
    printed(&run(offline(&["orgs", "create", "beta"])).await);
    let beta = client
        .get(format!("{}/api/v1/organizations/beta", server.base))
        .header("authorization", base64_basic(ADMIN.0, ADMIN.1))
        .send()
        .await
        .expect("request");
    assert_eq!(beta.status(), StatusCode::OK);

    // Deleting goes through as well, and a missing thing is a 404 problem.
    succeeded(&run(offline(&["robots", "delete", "acme", "ci"])).await);
    let missing = problem(&run(offline(&["robots", "regenerate", "acme", "ci"])).await);
    assert_eq!(missing["status"], 404);
}

#[tokio::test]
async fn online_commands_act_as_the_token_or_account_on_a_running_server() {
    let registry = TestRegistry::start().await;
    let created = registry
        .req(Method::POST, "/api/v1/user/tokens")
        .json(&json!({ "name": "cli" }))
        .send()
        .await
        .expect("request");
    assert_eq!(created.status(), StatusCode::CREATED);
    let token = created.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned();
    let server = registry.base.clone();
    let with_token = [("BERTH_SERVER", server.as_str()), ("BERTH_TOKEN", token.as_str())];

    assert_eq!(printed(&admin(&["whoami"], &with_token, "").await)["name"], ADMIN.0);
    let tokens = printed(&admin(&["tokens", "list"], &with_token, "").await);
    assert!(tokens.as_array().expect("list").iter().any(|t| t["name"] == "cli"), "{tokens}");
    printed(&admin(&["users", "create", "carol", "--password-stdin"], &with_token, "carol-password\n").await);
    printed(&admin(&["orgs", "create", "shop"], &with_token, "").await);
    printed(&admin(&["teams", "set", "shop", "ops", "--role", "admin"], &with_token, "").await);
    succeeded(&admin(&["members", "add", "shop", "ops", "carol"], &with_token, "").await);
    let members = printed(&admin(&["members", "list", "shop", "ops"], &with_token, "").await);
    assert!(members.as_array().expect("list").iter().any(|m| m["name"] == "carol"), "{members}");
    let default = printed(&admin(&["default-perms", "add", "shop", "team", "ops", "write"], &with_token, "").await);
    assert_eq!(default["role"], "write");

    // A repository created afterwards gets the default permission.
    printed(&admin(&["repos", "create", "shop/web"], &with_token, "").await);
    let perms = printed(&admin(&["perms", "list", "shop/web"], &with_token, "").await);
    assert!(perms.as_array().expect("list").iter().any(|p| p["kind"] == "team" && p["name"] == "ops"), "{perms}");
    let tags = printed(&admin(&["tags", "shop/web"], &with_token, "").await);
    assert_eq!(tags["items"], json!([]));

    // Logging in with a password acts as that account, with its rights only.
    let as_carol = [("BERTH_SERVER", server.as_str()), ("BERTH_USER", "carol"), ("BERTH_PASSWORD", "carol-password")];
    assert_eq!(printed(&admin(&["whoami"], &as_carol, "").await)["name"], "carol");
    let denied = problem(&admin(&["users", "list"], &as_carol, "").await);
    assert_eq!(denied["status"], 403);

    // Anonymous and wrong credentials get the server's 401 problem; unknown things a 404.
    let anonymous = problem(&admin(&["users", "list"], &[("BERTH_SERVER", server.as_str())], "").await);
    assert_eq!(anonymous["status"], 401);
    let forged = [("BERTH_SERVER", server.as_str()), ("BERTH_TOKEN", "berth_pat_not-a-real-token")];
    assert_eq!(problem(&admin(&["whoami"], &forged, "").await)["status"], 401);
    let unknown = problem(&admin(&["orgs", "show", "nowhere"], &with_token, "").await);
    assert_eq!(unknown["status"], 404);
    assert_eq!(unknown["code"], "not_found");

    // Bad arguments are refused before anything is sent.
    let bad = admin(&["repos", "show", "no-namespace"], &with_token, "").await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("namespace/name"));

    registry.stop().await;
}

/// Runs `berth migrate --data-dir DIR` off the test's runtime thread.
async fn migrate(data_dir: &Path) -> Output {
    let mut command = berth_command();
    command.arg("migrate").arg("--data-dir").arg(data_dir).env_remove("RUST_BACKTRACE");
    tokio::task::spawn_blocking(move || command.output().expect("berth migrate runs")).await.expect("join")
}

#[tokio::test]
async fn berth_migrate_creates_or_upgrades_the_schema_and_refuses_while_a_server_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = migrate(dir.path()).await;
    assert!(first.status.success(), "{first:?}");
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(out.lines().count() >= 4 && out.lines().all(|l| l.starts_with("applied ")), "{out}");
    let again = migrate(dir.path()).await;
    assert!(again.status.success(), "{again:?}");
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "the database schema is up to date");

    // The migrated directory serves; migrating under a running server is refused.
    let server = BerthProcess::spawn(dir.path());
    let busy = migrate(dir.path()).await;
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("another berth process"), "{busy:?}");
    assert!(server.terminate().success());
}

//! Configuration through the real binary: TOML file, environment, flags, and refusals.

use std::process::Stdio;

use crate::support::anonymous_client;
use crate::support::process::{BerthProcess, berth_command, ensure_admin};

/// The registry answers (authentication is on, so without an account that is a 401).
async fn serves(berth: &BerthProcess) {
    let r = anonymous_client().get(format!("{}/v2/", berth.base)).send().await.expect("request");
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["docker-distribution-api-version"], "registry/2.0");
}

#[tokio::test]
async fn config_file_environment_and_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from_file = dir.path().join("from-file");
    let config = dir.path().join("berth.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[limits.push]\nconcurrency = 8\n", from_file.display()),
    )
    .expect("write config");

    // The file alone.
    let mut command = berth_command();
    command.args(["serve", "--config"]).arg(&config);
    let berth = BerthProcess::start(command);
    serves(&berth).await;
    assert!(from_file.join("berth.lock").exists(), "the data directory comes from the file");
    assert!(berth.terminate().success(), "SIGTERM is a clean shutdown");

    // Environment variables override the file.
    let from_env = dir.path().join("from-env");
    let mut command = berth_command();
    command
        .args(["serve"])
        .env("BERTH_CONFIG", &config)
        .env("BERTH_DATA_DIR", &from_env)
        .env("BERTH_LISTEN", "127.0.0.1:0");
    let berth = BerthProcess::start(command);
    serves(&berth).await;
    assert!(from_env.join("berth.lock").exists(), "BERTH_DATA_DIR overrides the file");
    berth.terminate();

    // Flags override the environment.
    let from_flag = dir.path().join("from-flag");
    let mut command = berth_command();
    command
        .args(["serve", "--data-dir"])
        .arg(&from_flag)
        .env("BERTH_DATA_DIR", &from_env)
        .env("BERTH_LISTEN", "127.0.0.1:0");
    let berth = BerthProcess::start(command);
    serves(&berth).await;
    assert!(from_flag.join("berth.lock").exists(), "--data-dir overrides BERTH_DATA_DIR");
    berth.terminate();
}

fn fails_with(args: &[&str], expected: &str) {
    let output = berth_command().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).output().expect("runs");
    assert!(!output.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in:\n{stderr}");
}

#[tokio::test]
async fn refuses_bad_configuration_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "lisen = \"127.0.0.1:0\"\n").expect("write");
    fails_with(&["serve", "--config", &typo.display().to_string()], "unknown field `lisen`");
    fails_with(&["serve", "--config", "/nonexistent/berth.toml"], "reading config file");
    fails_with(&["serve", "--listen", "not-an-address"], "invalid value 'not-an-address'");

    // A second process on the same data directory is refused.
    let data = dir.path().join("data");
    let berth = BerthProcess::spawn(&data);
    fails_with(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", &data.display().to_string()],
        "another berth process is using",
    );
    serves(&berth).await;
    berth.terminate();
}

#[tokio::test]
async fn config_check_prints_the_effective_configuration_without_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("berth.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:5123\"\n[database]\nurl = \"postgres://berth:db-secret@db.internal/berth\"\n\
         [storage]\nbackend = \"s3\"\n[storage.s3]\nendpoint = \"http://127.0.0.1:9\"\nbucket = \"b\"\n\
         access_key_id = \"AKIA\"\nsecret_access_key = \"s3-secret\"\nallow_http = true\n",
    )
    .expect("write");
    let check = |file: &std::path::Path| {
        let mut command = berth_command();
        command.env_remove("BERTH_DATABASE_URL").args(["config", "check", "--config"]).arg(file);
        command.output().expect("runs")
    };
    let output = check(&file);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}{}", String::from_utf8_lossy(&output.stderr));
    assert!(printed.contains("listen = \"127.0.0.1:5123\""), "{printed}");
    assert!(printed.contains("max_connections = 10000"), "defaults are shown too: {printed}");
    assert!(printed.contains("postgres://berth:***@db.internal/berth"), "{printed}");
    assert!(printed.contains("secret_access_key = \"<redacted>\""), "{printed}");
    assert!(!printed.contains("db-secret") && !printed.contains("s3-secret"), "{printed}");

    // A problem is named and makes the exit status non-zero.
    std::fs::write(&file, "[database]\nurl = \"mysql://db/berth\"\n[storage]\nbackend = \"s3\"\n").expect("write");
    let output = check(&file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("problem: [database] url"), "{stderr}");
    assert!(stderr.contains("needs a [storage.s3] section"), "{stderr}");
}

#[tokio::test]
async fn the_public_url_flag_names_the_token_realm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    ensure_admin(&data);
    let mut command = berth_command();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--public-url", "https://registry.example.com", "--data-dir"])
        .arg(&data);
    let berth = BerthProcess::start(command);
    let challenge = reqwest::get(format!("{}/v2/", berth.base)).await.expect("get");
    assert_eq!(challenge.status(), reqwest::StatusCode::UNAUTHORIZED);
    let header = challenge.headers()["www-authenticate"].to_str().expect("ascii").to_owned();
    assert!(header.starts_with("Bearer realm=\"https://registry.example.com/v2/auth\""), "{header}");
    assert!(berth.terminate().success());
}

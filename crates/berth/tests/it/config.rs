//! Configuration through the real binary: TOML file, environment, flags, and refusals.

use std::process::Stdio;

use crate::support::anonymous_client;
use crate::support::process::{BerthProcess, berth_command};

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

//! Berth serving TLS itself: real clients verifying its certificate against a CA made in the
//! test, HTTP/2 by ALPN, certificates renewed while clients pull, and clear refusals of
//! certificates that cannot serve.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::support::content::{self, Image, OCI_MANIFEST, bytes};
use crate::support::process::{BerthProcess, berth_command, ensure_admin};
use crate::support::tls::{TestCa, leaf_der, this_year, write_pair};
use crate::support::{TestRegistry, admin_creds, header, sha256, tool_available};

/// A registry serving TLS with a certificate `ca` issued, from `dir`.
async fn tls_registry(ca: &TestCa, dir: &Path, reload_check_secs: u64) -> TestRegistry {
    let (cert, key) = write_pair(dir, &ca.issue());
    TestRegistry::start_with(|c| {
        (c.tls.cert, c.tls.key) = (Some(cert), Some(key));
        c.tls.reload_check_secs = reload_check_secs;
    })
    .await
}

/// Runs a command on the blocking pool; returns (success, stdout, stderr).
async fn run(program: &str, args: Vec<String>) -> (bool, String, String) {
    let program = program.to_owned();
    let output = tokio::task::spawn_blocking(move || Command::new(program).args(args).output())
        .await
        .expect("join")
        .expect("command starts");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

async fn run_ok(program: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(program, args.iter().map(|s| (*s).to_owned()).collect()).await;
    assert!(ok, "{program} {} failed:\n{stderr}", args.join(" "));
    stdout
}

#[tokio::test]
async fn skopeo_and_podman_push_and_pull_with_verification_on() {
    if !tool_available("skopeo") || !tool_available("podman") {
        return;
    }
    let ca = TestCa::new();
    let work = tempfile::tempdir().expect("tempdir");
    let registry = tls_registry(&ca, work.path(), 10).await;
    assert!(registry.base.starts_with("https://"));
    let certs = ca.cert_dir(work.path());
    let certs = certs.to_str().expect("utf-8 path");
    let creds = admin_creds();
    let image = Image::new(&[&bytes(300_000, 21)]);
    let source = work.path().join("source");
    let blobs: Vec<&[u8]> = image.blobs().collect();
    content::write_layout(&source, &blobs, (&image.manifest, OCI_MANIFEST), "v1");
    let from = format!("oci:{}:v1", source.display());
    let dest = format!("docker://{}/secure/app:v1", registry.host());

    // Without the CA, verification fails: nothing falls back to plain HTTP.
    let (ok, _, stderr) =
        run("skopeo", ["copy", "--dest-creds", &creds, &from, &dest].map(str::to_owned).to_vec()).await;
    assert!(!ok, "a push that cannot verify the certificate must fail");
    assert!(stderr.contains("certificate"), "the failure names the certificate: {stderr}");

    run_ok("skopeo", &["copy", "--preserve-digests", "--dest-cert-dir", certs, "--dest-creds", &creds, &from, &dest])
        .await;
    let pulled = work.path().join("pulled");
    let into = format!("dir:{}", pulled.display());
    run_ok("skopeo", &["copy", "--src-cert-dir", certs, "--src-creds", &creds, &dest, &into]).await;
    assert_eq!(std::fs::read(pulled.join("manifest.json")).expect("manifest"), image.manifest);
    for blob in image.blobs() {
        let file = pulled.join(sha256(blob).trim_start_matches("sha256:"));
        assert_eq!(std::fs::read(file).expect("blob"), blob, "every blob arrives whole");
    }

    // podman pulls, pushes under another name, and the registry has it.
    let storage = work.path().join("podman");
    let (root, runroot) = (storage.join("root"), storage.join("run"));
    let podman = |rest: &[&str]| {
        let mut all = vec!["--root", root.to_str().expect("path"), "--runroot", runroot.to_str().expect("path")];
        all.extend(["--storage-driver", "vfs"]);
        all.extend(rest);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let remote = dest.trim_start_matches("docker://").to_owned();
    let copy = format!("{}/secure/podman:v1", registry.host());
    for args in [
        podman(&["pull", "--cert-dir", certs, "--creds", &creds, &remote]),
        podman(&["push", "--cert-dir", certs, "--creds", &creds, &remote, &format!("docker://{copy}")]),
    ] {
        let (ok, _, stderr) = run("podman", args).await;
        assert!(ok, "podman over TLS failed:\n{stderr}");
    }
    let client = ca.client();
    let r = client.get(format!("{}/v2/secure/podman/manifests/v1", registry.base)).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    registry.stop().await;
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn_next_to_http1() {
    let ca = TestCa::new();
    let work = tempfile::tempdir().expect("tempdir");
    let registry = tls_registry(&ca, work.path(), 10).await;
    let client = ca.client();

    // reqwest offers h2 and http/1.1; Berth picks h2, and a push and pull work over it.
    let layer = bytes(1_500_000, 22);
    let digest = sha256(&layer);
    let pushed = client
        .post(format!("{}/v2/h2/app/blobs/uploads/?digest={digest}", registry.base))
        .body(layer.clone())
        .send()
        .await
        .expect("push");
    assert_eq!(pushed.version(), reqwest::Version::HTTP_2);
    assert_eq!(pushed.status(), StatusCode::CREATED);
    let pulled = client.get(format!("{}/v2/h2/app/blobs/{digest}", registry.base)).send().await.expect("pull");
    assert_eq!((pulled.version(), pulled.status()), (reqwest::Version::HTTP_2, StatusCode::OK));
    assert_eq!(sha256(&pulled.bytes().await.expect("body")), digest);

    // The token realm names the address the client used, over https (HTTP/2 has no Host
    // header: it comes from :authority).
    let anonymous = ca.anonymous().build().expect("client");
    let challenged = anonymous.get(format!("{}/v2/", registry.base)).send().await.expect("request");
    assert_eq!((challenged.version(), challenged.status()), (reqwest::Version::HTTP_2, StatusCode::UNAUTHORIZED));
    let realm = format!("realm=\"https://{}/v2/auth\"", registry.host());
    assert!(header(&challenged, "www-authenticate").contains(&realm), "{}", header(&challenged, "www-authenticate"));

    // An HTTP/1.1-only client is still served.
    let http1 = ca.anonymous().http1_only().build().expect("client");
    let r = http1.get(format!("{}/v2/", registry.base)).send().await.expect("request");
    assert_eq!((r.version(), r.status()), (reqwest::Version::HTTP_11, StatusCode::UNAUTHORIZED));

    if tool_available("curl") {
        let ca_file = work.path().join("ca.pem");
        std::fs::write(&ca_file, &ca.pem).expect("write CA");
        let url = format!("{}/v2/", registry.base);
        let ca_file = ca_file.to_str().expect("path");
        let version =
            run_ok("curl", &["-sS", "--http2", "--cacert", ca_file, "-o", "/dev/null", "-w", "%{http_version}", &url])
                .await;
        assert_eq!(version, "2", "curl --http2 negotiates HTTP/2");
        // TLS 1.1 and older are refused.
        let (ok, _, _) = run(
            "curl",
            ["-sS", "--tlsv1.1", "--tls-max", "1.1", "--cacert", ca_file, &url].map(str::to_owned).to_vec(),
        )
        .await;
        assert!(!ok, "TLS 1.1 must be refused");
    }
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_while_a_client_keeps_pulling() {
    let ca = TestCa::new();
    let work = tempfile::tempdir().expect("tempdir");
    let registry = tls_registry(&ca, work.path(), 1).await;
    let client = ca.client();
    let layer = bytes(400_000, 23);
    let digest = sha256(&layer);
    let r = client
        .post(format!("{}/v2/rotate/app/blobs/uploads/?digest={digest}", registry.base))
        .body(layer)
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), StatusCode::CREATED);
    let first = registry.host().to_owned();
    let old = ca.presented_certificate(&first).await;

    // A client pulls the layer over and over, on new and reused connections.
    let stop = Arc::new(AtomicBool::new(false));
    let (pulls, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let puller = {
        let (stop, pulls, failures) = (stop.clone(), pulls.clone(), failures.clone());
        let url = format!("{}/v2/rotate/app/blobs/{digest}", registry.base);
        let fresh_clients = ca.client_factory();
        tokio::spawn(async move {
            let mut round = 0u64;
            while !stop.load(Ordering::Acquire) {
                round += 1;
                // Every third pull on a new connection, so handshakes happen throughout.
                let client = if round.is_multiple_of(3) { fresh_clients() } else { client.clone() };
                let whole = match client.get(&url).send().await {
                    Ok(r) if r.status() == StatusCode::OK => r.bytes().await.is_ok_and(|b| sha256(&b) == digest),
                    _ => false,
                };
                if whole { &pulls } else { &failures }.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let renewed = ca.issue();
    write_pair(work.path(), &renewed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let presented = ca.presented_certificate(&first).await;
        if presented == leaf_der(&renewed.cert) {
            break;
        }
        assert_eq!(presented, old, "only the old or the renewed certificate is ever served");
        assert!(tokio::time::Instant::now() < deadline, "the renewed certificate was never served");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Some pulls on either side of the switch.
    let before = pulls.load(Ordering::Relaxed);
    while pulls.load(Ordering::Relaxed) < before + 5 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Release);
    puller.await.expect("puller");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no pull failed across the renewal");
    registry.stop().await;
}

/// `berth serve` refuses certificates that cannot serve, saying which file and why, and so
/// does `berth config check`; a running server swaps in renewed files on SIGHUP.
#[test]
fn broken_certificates_are_refused_at_start_and_sighup_reloads() {
    let ca = TestCa::new();
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    ensure_admin(&data);
    let good = ca.issue();
    let (cert, key) = write_pair(work.path(), &good);
    let serve = |cert: &Path, key: &Path| {
        let mut command = berth_command();
        command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&data);
        command.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        command
    };
    let refused = |mut command: Command| {
        let output = command.output().expect("berth runs");
        assert!(!output.status.success(), "berth must refuse to start");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let missing = refused(serve(&work.path().join("absent.crt"), &key));
    assert!(missing.contains("reading the TLS certificate") && missing.contains("absent.crt"), "{missing}");
    let other = work.path().join("other");
    std::fs::create_dir_all(&other).expect("dir");
    let (_, other_key) = write_pair(&other, &ca.issue());
    let mismatch = refused(serve(&cert, &other_key));
    assert!(mismatch.contains("does not belong to the certificate"), "{mismatch}");
    let old = work.path().join("old");
    std::fs::create_dir_all(&old).expect("dir");
    let (expired_cert, expired_key) = write_pair(&old, &ca.issue_until(this_year() - 1));
    let expired = refused(serve(&expired_cert, &expired_key));
    assert!(expired.contains("expired at"), "{expired}");
    let unreadable = refused(serve(&key, &key));
    assert!(unreadable.contains("holds no PEM certificate"), "{unreadable}");

    // config check names the same problem, and passes on the good pair.
    let config = work.path().join("berth.toml");
    let write_config = |cert: &Path, key: &Path| {
        let text = format!("[tls]\ncert = {:?}\nkey = {:?}\nreload_check_secs = 3600\n", cert, key);
        std::fs::write(&config, text).expect("write config");
    };
    write_config(&cert, &other_key);
    let mut check = berth_command();
    check.args(["config", "check", "--data-dir"]).arg(&data).arg("--config").arg(&config);
    let problem = refused(check);
    assert!(problem.contains("problem: the TLS private key"), "{problem}");
    write_config(&cert, &key);
    let mut check = berth_command();
    check.args(["config", "check", "--data-dir"]).arg(&data).arg("--config").arg(&config);
    assert!(check.output().expect("runs").status.success());

    // With the good pair it serves; files renewed, SIGHUP makes it look at once (its own
    // check is an hour away).
    let mut command = berth_command();
    command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&data).arg("--config").arg(&config);
    let server = BerthProcess::start(command);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    assert_eq!(runtime.block_on(ca.presented_certificate(&addr)), leaf_der(&good.cert));
    let renewed = ca.issue();
    write_pair(work.path(), &renewed);
    let status = Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while runtime.block_on(ca.presented_certificate(&addr)) != leaf_der(&renewed.cert) {
        assert!(std::time::Instant::now() < deadline, "SIGHUP never brought in the renewed certificate");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pinged =
        runtime.block_on(async { ca.client().get(format!("https://{addr}/v2/")).send().await.map(|r| r.status()) });
    assert_eq!(pinged.expect("served over TLS"), StatusCode::OK);
    // Closes the client's kept-alive connection, which the server would wait for.
    drop(runtime);
    assert!(server.terminate().success(), "a clean exit after SIGHUP");
}

#[tokio::test]
async fn plain_http_clients_get_no_answer_from_a_tls_port() {
    let ca = TestCa::new();
    let work = tempfile::tempdir().expect("tempdir");
    let registry = tls_registry(&ca, work.path(), 10).await;
    let plain = crate::support::client();
    let r = plain.request(Method::GET, format!("http://{}/v2/", registry.host())).send().await;
    assert!(r.is_err(), "plain HTTP on the TLS port is not served");
    // Still serving TLS afterwards.
    let r = ca.client().get(format!("{}/v2/", registry.base)).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_tls_handshake_is_cut_off_while_a_pull_completes() {
    let ca = TestCa::new();
    let work = tempfile::tempdir().expect("tempdir");
    let (cert, key) = write_pair(work.path(), &ca.issue());
    let registry = TestRegistry::start_with(|c| {
        (c.tls.cert, c.tls.key) = (Some(cert), Some(key));
        c.header_read_timeout_ms = 1000;
    })
    .await;
    let client = ca.client();
    let layer = bytes(2_000_000, 24);
    let digest = sha256(&layer);
    let r = client
        .post(format!("{}/v2/slow/tls/blobs/uploads/?digest={digest}", registry.base))
        .body(layer)
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), StatusCode::CREATED);

    // A TLS handshake record announcing 16 KiB, then a byte every 100 ms.
    let slow = tokio::spawn(crate::connections::trickle_until_closed(
        registry.host().to_owned(),
        &[0x16, 0x03, 0x01, 0x40, 0x00, 0x01],
    ));
    let pulled = client.get(format!("{}/v2/slow/tls/blobs/{digest}", registry.base)).send().await.expect("pull");
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(sha256(&pulled.bytes().await.expect("body")), digest, "the pull is whole");
    slow.await.expect("the slow handshake is cut off");
    registry.stop().await;
}

//! `SIGTERM`: `/readyz` turns 503 while the server still accepts, then the listener closes,
//! and requests already in flight finish before the process exits.

use futures_util::StreamExt;
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};

use crate::support::process::{BerthProcess, berth_command, ensure_admin};
use crate::support::{ADMIN, client_as, content};

#[tokio::test]
async fn sigterm_turns_readyz_503_then_drains_without_cutting_a_pull_or_a_chunk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = dir.path().join("berth.toml");
    // Long enough that the probe below cannot miss the window on a loaded machine.
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nshutdown_delay_ms = 5000\n", data.display()),
    )
    .expect("write config");
    ensure_admin(&data);
    let mut command = berth_command();
    command.args(["serve", "--config"]).arg(&config);
    let berth = BerthProcess::start(command);
    let admin = client_as(ADMIN.0, ADMIN.1);

    // A 32 MiB blob, whose download will still be running when the listener closes.
    let blob = content::bytes(32 * 1024 * 1024, 9);
    let digest = crate::support::sha256(&blob);
    let pushed = admin
        .post(format!("{}/v2/acme/big/blobs/uploads/?digest={digest}", berth.base))
        .body(blob.clone())
        .send()
        .await
        .expect("push");
    assert_eq!(pushed.status(), StatusCode::CREATED);
    let pull = admin.get(format!("{}/v2/acme/big/blobs/{digest}", berth.base)).send().await.expect("pull");
    assert_eq!(pull.status(), StatusCode::OK);
    let mut body = pull.bytes_stream();
    let mut hasher = Sha256::new();
    let mut received = 0usize;
    let first = body.next().await.expect("a first chunk").expect("chunk");
    hasher.update(&first);
    received += first.len();

    // A chunk of a chunked upload, half sent when the signal comes.
    let layer = content::bytes(4 * 1024 * 1024, 10);
    let started = admin.post(format!("{}/v2/acme/chunked/blobs/uploads/", berth.base)).send().await.expect("post");
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let location = started.headers()["location"].to_str().expect("location").to_owned();
    let (chunk_tx, chunk_rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let chunk_body = reqwest::Body::wrap_stream(futures_util::stream::unfold(chunk_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let patch = tokio::spawn(
        admin
            .patch(format!("{}{location}", berth.base))
            .header("content-range", format!("0-{}", layer.len() - 1))
            .body(chunk_body)
            .send(),
    );
    let half = layer.len() / 2;
    chunk_tx.send(Ok(bytes::Bytes::copy_from_slice(&layer[..half]))).await.expect("first half");

    berth.sigterm();
    // While the delay runs, new connections are still served, and the probe says draining.
    let probe = reqwest::Client::new();
    let mut draining = false;
    for _ in 0..200 {
        let ready = probe.get(format!("{}/readyz", berth.base)).send().await.expect("readyz during the delay");
        if ready.status() == StatusCode::SERVICE_UNAVAILABLE {
            draining = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(draining, "/readyz never turned 503");
    // Then the listener closes...
    let addr = berth.base.trim_start_matches("http://").to_owned();
    loop {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // ...the chunk under way is still received whole and acknowledged...
    chunk_tx.send(Ok(bytes::Bytes::copy_from_slice(&layer[half..]))).await.expect("second half");
    drop(chunk_tx);
    let patched = patch.await.expect("join").expect("the in-flight chunk is not cut");
    assert_eq!(patched.status(), StatusCode::ACCEPTED);
    // ...and the download that was under way still finishes, byte for byte.
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("the in-flight pull is not cut");
        hasher.update(&chunk);
        received += chunk.len();
    }
    assert_eq!(received, blob.len());
    assert_eq!(format!("sha256:{}", hex::encode(hasher.finalize())), digest);
    assert!(berth.wait().success(), "a drained shutdown exits cleanly");

    // The acknowledged chunk was recorded: the upload completes on the next server.
    let berth = BerthProcess::spawn(&data);
    let digest = crate::support::sha256(&layer);
    let done = admin.put(format!("{}{location}?digest={digest}", berth.base)).send().await.expect("put");
    assert_eq!(done.status(), StatusCode::CREATED, "{}", done.text().await.unwrap_or_default());
    berth.terminate();
}

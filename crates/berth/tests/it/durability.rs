//! Durability with a real process: `kill -9` at random moments during concurrent pushes,
//! uploads that continue after a restart, and flat memory while gigabytes stream through.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::support::content::{Image, OCI_MANIFEST, bytes};
use crate::support::process::BerthProcess;
use crate::support::{client, sha256};

/// A push that was acknowledged with 201.
struct Acked {
    repo: String,
    tag: String,
    digest: String,
    blobs: Vec<String>,
}

/// Pushes one image; `None` as soon as anything fails (the server is being killed).
async fn try_push(
    http: &reqwest::Client,
    base: &str,
    repo: &str,
    tag: &str,
    image: &Image,
    chunked: bool,
) -> Option<()> {
    for blob in image.blobs() {
        let digest = sha256(blob);
        if chunked {
            let r = http.post(format!("{base}/v2/{repo}/blobs/uploads/")).send().await.ok()?;
            let mut location = r.headers().get("location")?.to_str().ok()?.to_owned();
            let mut offset = 0;
            for chunk in blob.chunks(40_000) {
                let range = format!("{offset}-{}", offset + chunk.len() - 1);
                let r = http
                    .patch(format!("{base}{location}"))
                    .header("content-range", range)
                    .body(chunk.to_vec())
                    .send()
                    .await
                    .ok()?;
                if r.status() != StatusCode::ACCEPTED {
                    return None;
                }
                location = r.headers().get("location")?.to_str().ok()?.to_owned();
                offset += chunk.len();
            }
            let r = http.put(format!("{base}{location}?digest={digest}")).send().await.ok()?;
            (r.status() == StatusCode::CREATED).then_some(())?;
        } else {
            let r = http
                .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={digest}"))
                .body(blob.to_vec())
                .send()
                .await
                .ok()?;
            (r.status() == StatusCode::CREATED).then_some(())?;
        }
    }
    let r = http
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", OCI_MANIFEST)
        .body(image.manifest.clone())
        .send()
        .await
        .ok()?;
    (r.status() == StatusCode::CREATED).then_some(())
}

async fn pusher(base: String, round: u64, id: u64, acked: Arc<Mutex<Vec<Acked>>>) {
    let http = client();
    for n in 0u64.. {
        let seed = round * 1_000_000 + id * 10_000 + n;
        let sizes = [1 + (seed * 7919) % 300_000, 1 + (seed * 104_729) % 120_000];
        let contents: Vec<Vec<u8>> =
            sizes.iter().enumerate().map(|(i, &len)| bytes(len as usize, seed * 3 + i as u64)).collect();
        let refs: Vec<&[u8]> = contents.iter().map(Vec::as_slice).collect();
        let image = Image::new(&refs);
        let repo = format!("kill/p{}", id % 3);
        let tag = format!("r{round}-p{id}-n{n}");
        if try_push(&http, &base, &repo, &tag, &image, n % 2 == 1).await.is_none() {
            return;
        }
        let blobs = image.blobs().map(sha256).collect();
        acked.lock().expect("lock").push(Acked { repo, tag, digest: image.digest.clone(), blobs });
    }
}

async fn get_verified(http: &reqwest::Client, url: &str, digest: &str) {
    let r = http.get(url).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    let body = r.bytes().await.expect("body");
    assert_eq!(sha256(&body), digest, "{url} serves the right bytes");
}

/// Every tag in the registry points at a manifest whose blobs are all present and intact.
async fn check_every_tag(http: &reqwest::Client, base: &str) -> usize {
    let catalog: Value =
        http.get(format!("{base}/v2/_catalog")).send().await.expect("catalog").json().await.expect("json");
    let mut checked = 0;
    for repo in catalog["repositories"].as_array().expect("repositories").iter().filter_map(Value::as_str) {
        let tags: Value =
            http.get(format!("{base}/v2/{repo}/tags/list")).send().await.expect("tags").json().await.expect("json");
        for tag in tags["tags"].as_array().expect("tags").iter().filter_map(Value::as_str) {
            let r = http.get(format!("{base}/v2/{repo}/manifests/{tag}")).send().await.expect("manifest");
            assert_eq!(r.status(), StatusCode::OK, "{repo}:{tag} resolves");
            let manifest: Value = r.json().await.expect("manifest json");
            let refs = std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().expect("layers"));
            for descriptor in refs {
                let digest = descriptor["digest"].as_str().expect("digest");
                get_verified(http, &format!("{base}/v2/{repo}/blobs/{digest}"), digest).await;
            }
            checked += 1;
        }
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_pushes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    eprintln!("kill -9 test seed {seed}");
    for round in 0..4u64 {
        let berth = BerthProcess::spawn(dir.path());
        let pushers: Vec<_> =
            (0..6).map(|id| tokio::spawn(pusher(berth.base.clone(), round, id, acked.clone()))).collect();
        // Kill somewhere between 150 ms and 1.2 s into the pushes.
        let delay = 150 + (seed.rotate_left(round as u32 * 13) % 1050);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        berth.kill9();
        for p in pushers {
            p.await.expect("pusher");
        }
    }
    let berth = BerthProcess::spawn(dir.path());
    let http = client();
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    assert!(!acked.is_empty(), "some pushes completed before the kills");
    for a in &acked {
        let url = format!("{}/v2/{}/manifests/{}", berth.base, a.repo, a.tag);
        get_verified(&http, &url, &a.digest).await;
        for blob in &a.blobs {
            get_verified(&http, &format!("{}/v2/{}/blobs/{blob}", berth.base, a.repo), blob).await;
        }
    }
    let tags = check_every_tag(&http, &berth.base).await;
    assert!(tags >= acked.len());
    eprintln!("{} acknowledged pushes survived 4 kills; {tags} tags verified", acked.len());
    // The registry takes new pushes after all that.
    let image = Image::new(&[b"after the storm"]);
    assert!(try_push(&http, &berth.base, "kill/after", "v1", &image, true).await.is_some());
    berth.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_chunked_upload_continues_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = client();
    let data = bytes(3_000_000, 77);
    let digest = sha256(&data);

    let berth = BerthProcess::spawn(dir.path());
    let r = http.post(format!("{}/v2/resume/app/blobs/uploads/", berth.base)).send().await.expect("post");
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    let r = http
        .patch(format!("{}{location}", berth.base))
        .header("content-range", "0-999999")
        .body(data[..1_000_000].to_vec())
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // A second chunk is cut off mid-body by the kill: its bytes must not count.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|i| (i, rx))
    }));
    let patch = tokio::spawn(
        http.patch(format!("{}{location}", berth.base)).header("content-range", "1000000-1999999").body(body).send(),
    );
    tx.send(Ok(Bytes::copy_from_slice(&data[1_000_000..1_500_000]))).await.expect("chunk");
    tokio::time::sleep(Duration::from_millis(200)).await;
    berth.kill9();
    let _ = patch.await;

    let berth = BerthProcess::spawn(dir.path());
    let r = http.get(format!("{}{location}", berth.base)).send().await.expect("status");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["range"], "0-999999", "the upload resumes where its last acknowledged chunk ended");
    let r = http
        .patch(format!("{}{location}", berth.base))
        .header("content-range", "1000000-2999999")
        .body(data[1_000_000..].to_vec())
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = http.put(format!("{}{location}?digest={digest}", berth.base)).send().await.expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    get_verified(&http, &format!("{}/v2/resume/app/blobs/{digest}", berth.base), &digest).await;
    berth.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gib_blob_streams_through_flat_memory() {
    const BLOCK: usize = 1 << 20;
    const BLOCKS: usize = 2048;
    let dir = tempfile::tempdir().expect("tempdir");
    let berth = BerthProcess::spawn(dir.path());
    let http = client();
    let block = Bytes::from(bytes(BLOCK, 2024));
    let mut hasher = Sha256::new();
    for _ in 0..BLOCKS {
        hasher.update(&block);
    }
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    let before = berth.peak_rss_kib();

    let r = http.post(format!("{}/v2/big/blob/blobs/uploads/", berth.base)).send().await.expect("post");
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    let chunks = futures_util::stream::iter((0..BLOCKS).map(move |_| Ok::<_, std::io::Error>(block.clone())));
    let r = http
        .patch(format!("{}{location}", berth.base))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["range"], format!("0-{}", BLOCK * BLOCKS - 1).as_str());
    let r = http.put(format!("{}{location}?digest={digest}", berth.base)).send().await.expect("put");
    assert_eq!(r.status(), StatusCode::CREATED);
    let after_push = berth.peak_rss_kib();

    let r = http.get(format!("{}/v2/big/blob/blobs/{digest}", berth.base)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let mut body = r.bytes_stream();
    let mut hasher = Sha256::new();
    let mut total = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("chunk");
        total += chunk.len();
        hasher.update(&chunk);
    }
    assert_eq!(total, BLOCK * BLOCKS);
    assert_eq!(format!("sha256:{}", hex::encode(hasher.finalize())), digest);
    let after_pull = berth.peak_rss_kib();
    eprintln!(
        "server peak RSS: {before} KiB at start, {after_push} KiB after a 2 GiB push, {after_pull} KiB after pulling it back"
    );
    // Buffers are bounded: a few MiB of growth, nowhere near the 2 GiB that went through.
    assert!(after_pull < before + 64 * 1024, "peak RSS grew from {before} KiB to {after_pull} KiB");
    berth.terminate();
}

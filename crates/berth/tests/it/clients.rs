//! Real clients end to end: skopeo, podman and buildah push and pull through Berth.
//! Outside CI a missing tool skips its test with a message; in CI it is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::Value;

use crate::support::content::{self, Image, OCI_INDEX, OCI_MANIFEST, bytes};
use crate::support::{TestRegistry, admin_creds, header, sha256, tool_available};

/// Runs a command on the blocking pool (the registry under test shares the runtime) and
/// returns its stdout; fails the test with its stderr if it fails.
async fn run(program: &str, args: Vec<String>) -> String {
    let program = program.to_owned();
    let shown = format!("{program} {}", args.join(" "));
    let output = tokio::task::spawn_blocking(move || Command::new(program).args(args).output())
        .await
        .expect("join")
        .expect("command starts");
    assert!(output.status.success(), "{shown} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The manifest digest an OCI layout's index.json names.
fn layout_root_digest(dir: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json")).expect("json");
    index["manifests"][0]["digest"].as_str().expect("digest").to_owned()
}

/// Writes `image` as an OCI layout at `work/source`, naming it `v1`.
fn layout_of(image: &Image, work: &Path) -> PathBuf {
    let source = work.join("source");
    let blobs: Vec<&[u8]> = image.blobs().collect();
    content::write_layout(&source, &blobs, (&image.manifest, OCI_MANIFEST), "v1");
    source
}

/// skopeo copy of a layout's `v1` to `dest`, keeping every digest as it is.
async fn skopeo_push(source: &Path, dest: &str) {
    let creds = admin_creds();
    let from = format!("oci:{}:v1", source.display());
    run(
        "skopeo",
        args(&["copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", &creds, &from, dest]),
    )
    .await;
}

#[tokio::test]
async fn skopeo_push_and_pull_round_trip() {
    if !tool_available("skopeo") {
        return;
    }
    let reg = TestRegistry::start().await;
    let creds = admin_creds();
    let work = tempfile::tempdir().expect("tempdir");
    let image = Image::new(&[&bytes(300_000, 1), &bytes(2_000_000, 2), &bytes(10, 3)]);
    let source = layout_of(&image, work.path());
    let dest = format!("docker://{}/team/app:v1", reg.host());
    skopeo_push(&source, &dest).await;
    let r = reg.send(Method::HEAD, "/v2/team/app/manifests/v1").await;
    assert_eq!(header(&r, "docker-content-digest"), image.digest, "the registry holds the exact manifest");

    // Back to an OCI layout and to a plain directory: identical digests and bytes.
    let back = work.path().join("back");
    run(
        "skopeo",
        args(&[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &dest,
            &format!("oci:{}:v1", back.display()),
        ]),
    )
    .await;
    assert_eq!(layout_root_digest(&back), image.digest);
    let plain = work.path().join("plain");
    run(
        "skopeo",
        args(&[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &dest,
            &format!("dir:{}", plain.display()),
        ]),
    )
    .await;
    assert_eq!(std::fs::read(plain.join("manifest.json")).expect("manifest"), image.manifest);
    for blob in image.blobs() {
        let file = plain.join(sha256(blob).trim_start_matches("sha256:"));
        assert_eq!(std::fs::read(file).expect("blob file"), blob);
    }
    let raw = run("skopeo", args(&["inspect", "--raw", "--tls-verify=false", "--creds", &creds, &dest])).await;
    assert_eq!(raw.as_bytes(), image.manifest.as_slice());
    let tags = run(
        "skopeo",
        args(&["list-tags", "--tls-verify=false", "--creds", &creds, &format!("docker://{}/team/app", reg.host())]),
    )
    .await;
    assert!(tags.contains("\"v1\""), "{tags}");

    // Converted to Docker schema 2 on the way in, and pulled back.
    let docker = format!("docker://{}/team/docker:v1", reg.host());
    run(
        "skopeo",
        args(&[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            "--format",
            "v2s2",
            &format!("oci:{}:v1", source.display()),
            &docker,
        ]),
    )
    .await;
    let r = reg.send(Method::GET, "/v2/team/docker/manifests/v1").await;
    assert_eq!(header(&r, "content-type"), "application/vnd.docker.distribution.manifest.v2+json");
    run(
        "skopeo",
        args(&[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &docker,
            &format!("dir:{}", work.path().join("docker").display()),
        ]),
    )
    .await;
    reg.stop().await;
}

#[tokio::test]
async fn skopeo_multi_arch_round_trip() {
    if !tool_available("skopeo") {
        return;
    }
    let reg = TestRegistry::start().await;
    let creds = admin_creds();
    let work = tempfile::tempdir().expect("tempdir");
    let amd64 = Image::with(&[&bytes(100_000, 4)], "amd64", |_| {});
    let arm64 = Image::with(&[&bytes(120_000, 5)], "arm64", |_| {});
    let index = content::index(&[(&amd64.manifest, "amd64"), (&arm64.manifest, "arm64")]);
    let mut blobs: Vec<&[u8]> = amd64.blobs().chain(arm64.blobs()).collect();
    blobs.push(&amd64.manifest);
    blobs.push(&arm64.manifest);
    let source = work.path().join("source");
    content::write_layout(&source, &blobs, (&index, OCI_INDEX), "multi");

    let dest = format!("docker://{}/team/multi:v1", reg.host());
    run(
        "skopeo",
        args(&[
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci:{}:multi", source.display()),
            &dest,
        ]),
    )
    .await;
    let r = reg.send(Method::GET, "/v2/team/multi/manifests/v1").await;
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    assert_eq!(header(&r, "docker-content-digest"), sha256(&index));

    let back = work.path().join("back");
    run(
        "skopeo",
        args(&[
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &dest,
            &format!("oci:{}:v1", back.display()),
        ]),
    )
    .await;
    assert_eq!(layout_root_digest(&back), sha256(&index), "the index round-trips");
    for child in [&amd64, &arm64] {
        let path = back.join("blobs/sha256").join(child.digest.trim_start_matches("sha256:"));
        assert_eq!(std::fs::read(path).expect("child manifest"), child.manifest);
    }
    // A single-platform pull picks the right child.
    let arm = work.path().join("arm");
    run(
        "skopeo",
        args(&[
            "copy",
            "--override-arch",
            "arm64",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &dest,
            &format!("dir:{}", arm.display()),
        ]),
    )
    .await;
    assert_eq!(std::fs::read(arm.join("manifest.json")).expect("manifest"), arm64.manifest);
    reg.stop().await;
}

/// Global flags giving podman or buildah a storage of their own, so tests share no state.
fn own_storage(storage: &Path) -> Vec<String> {
    let root = storage.join("root").display().to_string();
    let run = storage.join("run").display().to_string();
    args(&["--root", &root, "--runroot", &run, "--storage-driver", "vfs"])
}

#[tokio::test]
async fn podman_and_buildah_push_and_pull() {
    if !tool_available("podman") || !tool_available("buildah") {
        return;
    }
    let reg = TestRegistry::start().await;
    let creds = admin_creds();
    let work = tempfile::tempdir().expect("tempdir");
    let image = Image::new(&[&bytes(200_000, 6)]);
    let source = layout_of(&image, work.path());
    // podman pulls what skopeo pushed, pushes it under another name, and pulls that back.
    let original = format!("docker://{}/team/original:v1", reg.host());
    skopeo_push(&source, &original).await;
    let podman = own_storage(&work.path().join("podman"));
    let with = |base: &[String], rest: &[&str]| {
        base.iter().cloned().chain(rest.iter().map(|s| (*s).to_owned())).collect::<Vec<_>>()
    };
    let original = original.trim_start_matches("docker://").to_owned();
    let remote = format!("{}/team/podman:v1", reg.host());
    run("podman", with(&podman, &["pull", "--tls-verify=false", "--creds", &creds, &original])).await;
    run(
        "podman",
        with(&podman, &["push", "--tls-verify=false", "--creds", &creds, &original, &format!("docker://{remote}")]),
    )
    .await;
    let r = reg.send(Method::GET, "/v2/team/podman/manifests/v1").await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    run("podman", with(&podman, &["rmi", "-a", "-f"])).await;
    run("podman", with(&podman, &["pull", "--tls-verify=false", "--creds", &creds, &remote])).await;
    // The image ID is the config digest, which survives layer recompression on push.
    let ids = run("podman", with(&podman, &["images", "--no-trunc", "--format", "{{.ID}}"])).await;
    let config = sha256(&image.config);
    assert!(
        ids.lines().any(|l| config.ends_with(l.trim().trim_start_matches("sha256:"))),
        "pulled {ids}, config {config}"
    );

    let buildah = own_storage(&work.path().join("buildah"));
    run("buildah", with(&buildah, &["pull", "--tls-verify=false", "--creds", &creds, &remote])).await;
    let copy = format!("docker://{}/team/buildah:v1", reg.host());
    run("buildah", with(&buildah, &["push", "--tls-verify=false", "--creds", &creds, &remote, &copy])).await;
    let r = reg.send(Method::GET, "/v2/team/buildah/manifests/v1").await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    reg.stop().await;
}

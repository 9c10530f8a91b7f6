//! The seed phase: images and App Registry packages for the workloads to read, with
//! deterministic content so that seeding again finds what is there (blobs are skipped,
//! manifests and packages answer the same), made public on Berth so that reads can be
//! anonymous.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use reqwest::header::AUTHORIZATION;
use reqwest::{Method, StatusCode};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::client::{Blob, Call, Image, Stop, Target};

/// Seed requests in flight at once.
const PARALLEL: usize = 8;
/// The release and media type every seeded package has.
pub const PACKAGE_RELEASE: &str = "1.0.0";
pub const PACKAGE_MEDIA_TYPE: &str = "helm";

/// SplitMix64: fast, seedable, and good enough for payloads and picks.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// An image with `layers` random layers of `layer_size` bytes drawn from `rng`.
pub fn random_image(rng: &mut Rng, layers: usize, layer_size: usize, label: &str) -> Image {
    Image::new((0..layers).map(|_| Blob::new(rng.bytes(layer_size))).collect(), label)
}

pub fn image_name(namespace: &str, i: usize) -> String {
    format!("{namespace}/bench-image-{i}")
}

pub fn package_name(namespace: &str, i: usize) -> String {
    format!("{namespace}/bench-pkg-{i}")
}

pub struct SeedPlan {
    pub namespace: String,
    pub images: usize,
    pub layers: usize,
    pub layer_size: usize,
    pub packages: usize,
}

/// Pushes the images and packages the plan asks for and makes them public where the
/// registry has Berth's management API.
pub async fn seed(target: &Arc<Target>, plan: &SeedPlan) -> anyhow::Result<()> {
    if plan.images == 0 && plan.packages == 0 {
        return Ok(());
    }
    let started = Instant::now();
    let what = [(plan.images, "images"), (plan.packages, "App Registry packages")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(" and ");
    eprintln!("seeding {what} in {}/", plan.namespace);
    let gate = Arc::new(Semaphore::new(PARALLEL));
    let mut tasks: JoinSet<anyhow::Result<String>> = JoinSet::new();
    for i in 0..plan.images {
        let (target, gate) = (Arc::clone(target), Arc::clone(&gate));
        let name = image_name(&plan.namespace, i);
        let (layers, layer_size) = (plan.layers, plan.layer_size);
        tasks.spawn(async move {
            let _slot = gate.acquire_owned().await?;
            let image = random_image(&mut Rng::new(0x5EED_0000 + i as u64), layers, layer_size, &name);
            let mut call = Call::new(None, Instant::now());
            target.push_image(&mut call, &name, "latest", &image, true).await.map_err(|e| seed_error(&name, e))?;
            Ok(name)
        });
    }
    for i in 0..plan.packages {
        let (target, gate) = (Arc::clone(target), Arc::clone(&gate));
        let name = package_name(&plan.namespace, i);
        tasks.spawn(async move {
            let _slot = gate.acquire_owned().await?;
            push_package(&target, &name).await?;
            Ok(name)
        });
    }
    let mut seeded = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        seeded.push(joined.context("a seed task panicked")??);
    }
    if target.has_credentials() && has_berth_api(target).await {
        for name in &seeded {
            make_public(target, name).await?;
        }
    }
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn seed_error(name: &str, stop: Stop) -> anyhow::Error {
    match stop {
        Stop::Failed { ref cause, .. } if cause == "HTTP 401" || cause == "HTTP 403" => {
            anyhow!("seeding {name}: {stop} (does --user / --password have the right to push?)")
        }
        stop => anyhow!("seeding {name}: {stop}"),
    }
}

/// `POST /cnr/api/v1/packages/NS/PKG` with the package as base64; an existing release is
/// left as it is (its content is the same).
async fn push_package(target: &Target, name: &str) -> anyhow::Result<()> {
    let short = name.rsplit('/').next().unwrap_or(name);
    let blob = package_tar_gz(short).context("compressing a package")?;
    let body = serde_json::json!({
        "blob": base64::engine::general_purpose::STANDARD.encode(blob),
        "release": PACKAGE_RELEASE,
        "media_type": PACKAGE_MEDIA_TYPE,
        "package": name,
        "visibility": "public",
    });
    let mut request = target.request(Method::POST, &format!("/cnr/api/v1/packages/{name}")).json(&body);
    if let Some(basic) = target.basic() {
        request = request.header(AUTHORIZATION, basic);
    }
    let answer = request.send().await.with_context(|| format!("seeding package {name}"))?;
    match answer.status() {
        status if status.is_success() => Ok(()),
        StatusCode::CONFLICT => Ok(()),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
            bail!("{} has no App Registry API (/cnr): appr-storm cannot run against it", target.base)
        }
        status => {
            let text = answer.text().await.unwrap_or_default();
            bail!("seeding package {name}: {status}: {}", text.chars().take(300).collect::<String>())
        }
    }
}

/// A gzip'd tar holding one small Helm chart file; the same bytes every time.
fn package_tar_gz(short_name: &str) -> std::io::Result<Vec<u8>> {
    let chart = format!("apiVersion: v1\nname: {short_name}\nversion: {PACKAGE_RELEASE}\n");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&tar_one_file(&format!("{short_name}/Chart.yaml"), chart.as_bytes()))?;
    gzip.finish()
}

/// A ustar archive with one regular file (`path` shorter than 100 bytes).
fn tar_one_file(path: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let path = &path.as_bytes()[..path.len().min(99)];
    header[..path.len()].copy_from_slice(path);
    let mut field = |at: usize, text: String| header[at..at + text.len()].copy_from_slice(text.as_bytes());
    field(100, "0000644\0".into());
    field(108, "0000000\0".into());
    field(116, "0000000\0".into());
    field(124, format!("{:011o}\0", content.len()));
    field(136, "00000000000\0".into());
    field(148, "        ".into());
    field(156, "0".into());
    field(257, "ustar\0".into());
    field(263, "00".into());
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    tar
}

/// Whether the registry serves Berth's management API (which can set visibility).
async fn has_berth_api(target: &Target) -> bool {
    let probe = target.request(Method::GET, "/api/v1/openapi.json").send().await;
    probe.is_ok_and(|r| r.status().is_success())
}

async fn make_public(target: &Target, name: &str) -> anyhow::Result<()> {
    let (namespace, repository) = name.split_once('/').unwrap_or(("", name));
    let encoded = percent_encoding::utf8_percent_encode(repository, percent_encoding::NON_ALPHANUMERIC);
    let mut request = target
        .request(Method::PUT, &format!("/api/v1/repositories/{namespace}/{encoded}/visibility"))
        .json(&serde_json::json!({ "visibility": "public" }));
    if let Some(basic) = target.basic() {
        request = request.header(AUTHORIZATION, basic);
    }
    let answer = request.send().await.with_context(|| format!("making {name} public"))?;
    if !answer.status().is_success() {
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        bail!("making {name} public: {status}: {}", text.chars().take(300).collect::<String>());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_bounded() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.bytes(33), b.bytes(33));
        assert_eq!(a.bytes(5).len(), 5);
        assert!((0..1000).all(|_| a.below(3) < 3));
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn packages_are_stable_tar_gz() {
        let one = package_tar_gz("pkg").expect("gzip");
        assert_eq!(one, package_tar_gz("pkg").expect("gzip"));
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&one[..]), &mut tar).expect("gunzip");
        assert_eq!(tar.len() % 512, 0);
        assert_eq!(&tar[..14], b"pkg/Chart.yaml");
        assert_eq!(&tar[257..262], b"ustar");
        // The checksum covers the header with its own field read as spaces.
        let mut header = tar[..512].to_vec();
        header[148..156].fill(b' ');
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
        assert_eq!(std::str::from_utf8(&tar[148..154]).expect("octal"), format!("{sum:06o}"));
        assert!(tar[512..].starts_with(b"apiVersion: v1\nname: pkg\n"));
    }
}

//! The HTTP side: one shared connection pool, the registry's authentication scheme (found at
//! start from `GET /v2/`), bearer tokens cached per scope, every request classified and
//! recorded, and the OCI push protocol shared by the seed and the `push` workload.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, StatusCode, Url};

use super::stats::{Outcome, Stats};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// What a pull accepts, like docker and podman.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// How the registry wants `/v2` requests authenticated.
#[derive(Clone)]
enum Scheme {
    Open,
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

fn http_client(timeout: Duration, pool: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(pool)
        .build()
        .context("building the HTTP client")
}

/// The registry under test.
pub struct Target {
    pub http: reqwest::Client,
    /// The URL without a trailing slash.
    pub base: String,
    credentials: Option<(String, String)>,
    scheme: Scheme,
    timeout: Duration,
    /// Bearer tokens by scope, with the instant they should no longer be used.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl Target {
    /// Builds the client and asks `GET /v2/` how to authenticate.
    pub async fn connect(
        url: &str,
        credentials: Option<(String, String)>,
        timeout: Duration,
        pool: usize,
    ) -> anyhow::Result<Target> {
        let parsed = Url::parse(url).with_context(|| format!("--url {url:?} is not a URL"))?;
        match parsed.scheme() {
            "http" => {}
            "https" => bail!("--url {url}: this build speaks plain HTTP only (put a plain-HTTP endpoint in front)"),
            other => bail!("--url {url}: unsupported scheme {other:?}"),
        }
        let http = http_client(timeout, pool)?;
        let base = url.trim_end_matches('/').to_owned();
        let answer = http.get(format!("{base}/v2/")).send().await.with_context(|| format!("reaching {base}/v2/"))?;
        let scheme = match answer.status() {
            status if status.is_success() => Scheme::Open,
            StatusCode::UNAUTHORIZED => {
                let header = answer.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or("");
                parse_challenge(header).with_context(|| format!("{base}/v2/ answered 401 with {header:?}"))?
            }
            status => bail!("{base}/v2/ answered {status}: is this a registry?"),
        };
        Ok(Target { http, base, credentials, scheme, timeout, tokens: Mutex::new(HashMap::new()) })
    }

    /// The same registry through a client of its own (its own connection pool), for a
    /// workload that runs on a runtime of its own.
    pub fn with_own_client(&self, pool: usize) -> anyhow::Result<Target> {
        Ok(Target {
            http: http_client(self.timeout, pool)?,
            base: self.base.clone(),
            credentials: self.credentials.clone(),
            scheme: self.scheme.clone(),
            timeout: self.timeout,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// `Basic ...` for the given credentials, for `/cnr`, `/api` and Basic registries.
    pub fn basic(&self) -> Option<String> {
        self.credentials.as_ref().map(|(user, password)| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
        })
    }

    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// The `Authorization` header for a `/v2` request needing `scope`: a cached bearer token,
    /// a new one from the realm (recorded as a `token` step), Basic credentials, or none.
    pub async fn authorization(&self, call: &mut Call<'_>, scope: &str) -> Result<Option<String>, Stop> {
        let (realm, service) = match &self.scheme {
            Scheme::Open => return Ok(None),
            Scheme::Basic => return Ok(self.basic()),
            Scheme::Bearer { realm, service } => (realm, service),
        };
        if let Some(token) = self.cached_token(scope) {
            return Ok(Some(format!("Bearer {token}")));
        }
        let mut url = realm.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", scope);
        }
        let mut request = self.http.get(url);
        if let Some(basic) = self.basic() {
            request = request.header(AUTHORIZATION, basic);
        }
        let reply = call.send("token", request, 0, true).await?;
        let answer: serde_json::Value =
            serde_json::from_slice(&reply.body).map_err(|_| call.broken("token", "not JSON"))?;
        let token = answer["token"]
            .as_str()
            .or_else(|| answer["access_token"].as_str())
            .ok_or_else(|| call.broken("token", "no token in the answer"))?;
        // Reuse a token for 80% of its life, so one never expires in flight.
        let lifetime = Duration::from_secs(answer["expires_in"].as_u64().unwrap_or(60) * 4 / 5);
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(scope.to_owned(), (token.to_owned(), Instant::now() + lifetime));
        Ok(Some(format!("Bearer {token}")))
    }

    fn cached_token(&self, scope: &str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.get(scope).filter(|(_, until)| Instant::now() < *until).map(|(token, _)| token.clone())
    }

    /// Pushes `blobs` (skipping those the repository has when `skip_existing`) and the
    /// manifest under `tag`, like a client: `POST` an upload, `PUT` its `Location` with the
    /// digest, then `PUT` the manifest.
    pub async fn push_image(
        &self,
        call: &mut Call<'_>,
        repo: &str,
        tag: &str,
        image: &Image,
        skip_existing: bool,
    ) -> Result<(), Stop> {
        let auth = self.authorization(call, &format!("repository:{repo}:pull,push")).await?;
        let with_auth = |request: RequestBuilder| match &auth {
            Some(value) => request.header(AUTHORIZATION, value),
            None => request,
        };
        for blob in image.blobs() {
            if skip_existing {
                let head = with_auth(self.request(Method::HEAD, &format!("/v2/{repo}/blobs/{}", blob.digest)));
                if head.send().await.is_ok_and(|r| r.status().is_success()) {
                    continue;
                }
            }
            let start =
                with_auth(self.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))).header(CONTENT_LENGTH, 0);
            let started = call.send("upload-start", start, 0, false).await?;
            let Some(location) = started.location else {
                return Err(call.broken("upload-start", "no Location header"));
            };
            // Location may be relative to the request.
            let Ok(mut url) = started.url.join(&location) else {
                return Err(call.broken("upload-start", "unusable Location header"));
            };
            url.query_pairs_mut().append_pair("digest", &blob.digest);
            let put =
                with_auth(self.http.put(url)).header(CONTENT_TYPE, "application/octet-stream").body(blob.bytes.clone());
            call.send("upload", put, blob.bytes.len() as u64, false).await?;
        }
        let put = with_auth(self.request(Method::PUT, &format!("/v2/{repo}/manifests/{tag}")))
            .header(CONTENT_TYPE, OCI_MANIFEST)
            .body(image.manifest.clone());
        call.send("manifest", put, image.manifest.len() as u64, false).await?;
        Ok(())
    }

    /// A pull: the manifest by `reference`, then its config and layers.
    pub async fn pull_image(&self, call: &mut Call<'_>, repo: &str, reference: &str, auth: bool) -> Result<(), Stop> {
        let auth = if auth { self.authorization(call, &format!("repository:{repo}:pull")).await? } else { None };
        let with_auth = |request: RequestBuilder| match &auth {
            Some(value) => request.header(AUTHORIZATION, value),
            None => request,
        };
        let get = with_auth(self.request(Method::GET, &format!("/v2/{repo}/manifests/{reference}")))
            .header(ACCEPT, MANIFEST_ACCEPT);
        let manifest = call.send("manifest", get, 0, true).await?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&manifest.body).map_err(|_| call.broken("manifest", "not JSON"))?;
        let layers = manifest["layers"].as_array().map(Vec::as_slice).unwrap_or_default();
        let digests: Vec<&str> =
            std::iter::once(&manifest["config"]).chain(layers).filter_map(|d| d["digest"].as_str()).collect();
        if digests.is_empty() {
            return Err(call.broken("manifest", "not an image manifest (no config or layers)"));
        }
        for digest in digests {
            call.send("blob", with_auth(self.request(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))), 0, false)
                .await?;
        }
        Ok(())
    }
}

/// `Bearer realm="...",service="..."` or `Basic realm="..."`.
fn parse_challenge(header: &str) -> anyhow::Result<Scheme> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let params = challenge_params(params);
    if scheme.eq_ignore_ascii_case("basic") {
        return Ok(Scheme::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        bail!("unknown authentication scheme {scheme:?}");
    }
    let realm = params.get("realm").context("the challenge names no realm")?;
    let realm = Url::parse(realm).with_context(|| format!("the token realm {realm:?} is not a URL"))?;
    Ok(Scheme::Bearer { realm, service: params.get("service").cloned() })
}

/// `key="value",key=value` (values may hold commas inside quotes).
fn challenge_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.insert(key, value.to_owned());
        rest = tail.trim_start().trim_start_matches(',');
    }
    params
}

/// A blob and its digest.
pub struct Blob {
    pub digest: String,
    pub bytes: Bytes,
}

impl Blob {
    pub fn new(bytes: Vec<u8>) -> Blob {
        use sha2::Digest as _;
        Blob { digest: format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))), bytes: Bytes::from(bytes) }
    }
}

/// An OCI image: config, layers, and the manifest naming them.
pub struct Image {
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub manifest: Bytes,
}

impl Image {
    /// An image whose config carries `label` (so that equal layers still give a new manifest).
    pub fn new(layers: Vec<Blob>, label: &str) -> Image {
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": { "Labels": { "berth.bench": label } },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        });
        let config = Blob::new(config.to_string().into_bytes());
        let descriptor = |media_type: &str, blob: &Blob| serde_json::json!({ "mediaType": media_type, "digest": blob.digest, "size": blob.bytes.len() });
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
            "layers": layers.iter().map(|l| descriptor("application/vnd.oci.image.layer.v1.tar+gzip", l)).collect::<Vec<_>>(),
        });
        Image { config, layers, manifest: Bytes::from(manifest.to_string().into_bytes()) }
    }

    fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(&self.layers)
    }
}

/// Why an operation stopped early.
#[derive(Debug)]
pub enum Stop {
    /// A request was refused with 429.
    Shed,
    /// A request failed, or its answer was unusable.
    Failed { step: &'static str, cause: String, detail: String },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Shed => write!(f, "refused with 429 (too many requests)"),
            Stop::Failed { step, cause, detail } if detail.is_empty() => write!(f, "{step}: {cause}"),
            Stop::Failed { step, cause, detail } => write!(f, "{step}: {cause}: {detail}"),
        }
    }
}

/// What a successful request answered.
pub struct Reply {
    /// The final URL (after redirects), to resolve a relative `Location` against.
    pub url: Url,
    pub location: Option<String>,
    /// The body when it was asked for; otherwise it was drained and counted.
    pub body: Bytes,
}

/// One operation's requests: each is classified and, when `stats` is set, recorded. The
/// first request's latency counts from the operation's scheduled start (an open-loop
/// worker running late is the server's delay too), the others' from when they were sent.
pub struct Call<'a> {
    stats: Option<&'a Stats>,
    first: Option<Instant>,
}

impl<'a> Call<'a> {
    pub fn new(stats: Option<&'a Stats>, scheduled: Instant) -> Call<'a> {
        Call { stats, first: Some(scheduled) }
    }

    /// Sends `request`; a 2xx answer is a success, 429 is shed, anything else an error.
    pub async fn send(
        &mut self,
        step: &'static str,
        request: RequestBuilder,
        bytes_out: u64,
        keep_body: bool,
    ) -> Result<Reply, Stop> {
        let since = self.first.take().unwrap_or_else(Instant::now);
        let answer = exchange(request, keep_body).await;
        let latency = since.elapsed();
        let record = |outcome: Outcome<'_>, bytes_in: u64| {
            if let Some(stats) = self.stats {
                stats.record(step, outcome, latency, bytes_in, bytes_out);
            }
        };
        match answer {
            Err(e) => {
                let cause = transport_cause(&e);
                record(Outcome::Error(cause), 0);
                Err(Stop::Failed { step, cause: cause.to_owned(), detail: error_chain(&e) })
            }
            Ok((status, reply, bytes_in)) if status.is_success() => {
                record(Outcome::Success, bytes_in);
                Ok(reply)
            }
            Ok((StatusCode::TOO_MANY_REQUESTS, _, bytes_in)) => {
                record(Outcome::Shed, bytes_in);
                Err(Stop::Shed)
            }
            Ok((status, reply, bytes_in)) => {
                let cause = format!("HTTP {}", status.as_u16());
                record(Outcome::Error(&cause), bytes_in);
                let detail = String::from_utf8_lossy(&reply.body).chars().take(300).collect();
                Err(Stop::Failed { step, cause, detail })
            }
        }
    }

    /// An answer that came back fine but cannot be used.
    pub fn broken(&self, step: &'static str, cause: &str) -> Stop {
        if let Some(stats) = self.stats {
            stats.broken(step, cause);
        }
        Stop::Failed { step, cause: cause.to_owned(), detail: String::new() }
    }
}

/// Sends the request and reads the whole answer: kept when asked for, or when it is an
/// error (for its detail); otherwise drained chunk by chunk and only counted.
async fn exchange(request: RequestBuilder, keep_body: bool) -> reqwest::Result<(StatusCode, Reply, u64)> {
    let mut response = request.send().await?;
    let status = response.status();
    let url = response.url().clone();
    let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (body, bytes_in) = if keep_body || !status.is_success() {
        let body = response.bytes().await?;
        let n = body.len() as u64;
        (body, n)
    } else {
        let mut n = 0;
        while let Some(chunk) = response.chunk().await? {
            n += chunk.len() as u64;
        }
        (Bytes::new(), n)
    };
    Ok((status, Reply { url, location, body }, bytes_in))
}

fn transport_cause(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "transport"
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let header = r#"Bearer realm="http://127.0.0.1:5000/v2/auth",service="berth",scope="repository:a/b:pull,push""#;
        let params = challenge_params(header.split_once(' ').expect("scheme").1);
        assert_eq!(params["realm"], "http://127.0.0.1:5000/v2/auth");
        assert_eq!(params["service"], "berth");
        assert_eq!(params["scope"], "repository:a/b:pull,push");
        assert!(matches!(parse_challenge(header), Ok(Scheme::Bearer { service: Some(s), .. }) if s == "berth"));
        assert!(matches!(parse_challenge(r#"Basic realm="registry""#), Ok(Scheme::Basic)));
        assert!(parse_challenge("Bearer service=x").is_err());
        assert!(parse_challenge("Negotiate").is_err());
        assert_eq!(challenge_params("a=1, b=\"x,y\"")["b"], "x,y");
    }

    #[test]
    fn images_name_their_blobs() {
        let image = Image::new(vec![Blob::new(b"layer".to_vec())], "x");
        let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).expect("JSON");
        assert_eq!(manifest["layers"][0]["digest"], image.layers[0].digest);
        assert_eq!(manifest["config"]["digest"], image.config.digest);
        assert_eq!(manifest["config"]["size"], image.config.bytes.len());
        assert_eq!(image.blobs().count(), 2);
    }
}

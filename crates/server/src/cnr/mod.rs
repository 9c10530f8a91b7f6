//! Quay's App Registry protocol under `/cnr`: one dispatcher over the typed endpoint
//! grammar. Handlers are thin: check the caller, call one App Registry use case, render.
//! Reads are answered from cached packages and listings, with `ETag`s and 304s.

pub mod endpoint;
mod error;
mod views;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_core::Error;
use berth_core::access::{Actor, Principal, RepositoryKind, Visibility};
use berth_core::appregistry::{AppPackage, ListedPackage, Listing, PushRequest, Rendered, normalize_media_type};
use berth_oci::RepositoryName;
use serde_json::{Value, json};

use crate::held_body::hold_until_sent;
use crate::limits::TrafficClass;
use crate::observe::RouteLabel;
use crate::oci::response;
use crate::{AppState, ClientAddr};
use endpoint::Endpoint;
use error::{CnrError, CnrResult};

/// Largest login body.
const MAX_LOGIN_BYTES: usize = 64 * 1024;

pub async fn dispatch(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let endpoint = match endpoint::parse(&parts.method, parts.uri.path(), parts.uri.query()) {
        Ok(endpoint) => endpoint,
        Err(e) => return CnrError::from(e).into_response(),
    };
    let class =
        if endpoint.writes() || endpoint == Endpoint::Login { TrafficClass::AppWrite } else { TrafficClass::AppRead };
    let label = RouteLabel { class: class.as_str(), route: endpoint.kind() };
    let mut response = respond(&state, endpoint, class, parts, body).await;
    response.extensions_mut().insert(label);
    response
}

async fn respond(
    state: &AppState,
    endpoint: Endpoint,
    class: TrafficClass,
    parts: axum::http::request::Parts,
    body: Body,
) -> Response<Body> {
    let client_ip = ClientAddr::ip_of(&parts.extensions);
    let admission = match state.limits.admit(class, client_ip).await {
        Ok(admission) => admission,
        Err(shed) => return CnrError::from(shed).into_response(),
    };
    let request = Call {
        state,
        class,
        headers: &parts.headers,
        client_ip,
        query: form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect(),
    };
    let response = admission.run(request.handle(endpoint, body)).await.unwrap_or_else(CnrError::into_response);
    // Blob bodies stream after the handler returns; the slot is held until they are sent.
    response.map(|body| hold_until_sent(body, admission))
}

/// One request's context.
struct Call<'a> {
    state: &'a AppState,
    class: TrafficClass,
    headers: &'a HeaderMap,
    client_ip: Option<IpAddr>,
    query: Vec<(String, String)>,
}

impl Call<'_> {
    fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    async fn principal(&self) -> CnrResult<Principal> {
        let principal = crate::auth::api_principal(self.state, self.headers, self.client_ip).await?;
        self.state.limits.check_principal(self.class, &principal)?;
        Ok(principal)
    }

    async fn handle(&self, endpoint: Endpoint, body: Body) -> CnrResult<Response<Body>> {
        match endpoint {
            Endpoint::Version => {
                Ok(response::json(StatusCode::OK, &json!({ "appr-api": "0.7.4", "berth": env!("CARGO_PKG_VERSION") })))
            }
            Endpoint::Login => self.login(body).await,
            Endpoint::ListPackages => self.list().await,
            Endpoint::Search => self.search().await,
            Endpoint::Push(package) => self.push(&package, body).await,
            Endpoint::Releases(package) => {
                let (_, found) = self.readable(&package).await?;
                let media_type = self.param("media_type").map(normalize_media_type).transpose()?;
                let manifests: Vec<Value> = found
                    .releases
                    .iter()
                    .filter(|r| media_type.as_ref().is_none_or(|m| *m == r.media_type))
                    .map(|r| views::manifest(&found, r, false))
                    .collect();
                Ok(self.conditional(Rendered::new(views::to_bytes(&manifests))))
            }
            Endpoint::ReleaseManifests { package, release } => {
                let (_, found) = self.readable(&package).await?;
                let manifests: Vec<Value> = found
                    .releases
                    .iter()
                    .filter(|r| r.release == release)
                    .map(|r| views::manifest(&found, r, false))
                    .collect();
                if manifests.is_empty() {
                    return Err(release_missing(&package, &release));
                }
                Ok(self.conditional(Rendered::new(views::to_bytes(&manifests))))
            }
            Endpoint::Show { package, query, media_type } => {
                let (_, found) = self.readable(&package).await?;
                let release = resolved(&found, &package, &query, &media_type)?;
                Ok(self.conditional(Rendered::new(views::to_bytes(&views::manifest(&found, release, true)))))
            }
            Endpoint::Pull { package, query, media_type, json } => {
                let (_, found) = self.readable(&package).await?;
                let release = resolved(&found, &package, &query, &media_type)?;
                let filename = format!("{}_{}.tar.gz", package.as_str().replace('/', "_"), release.release);
                self.blob_response(&package, release, &release.release, filename, json).await
            }
            Endpoint::Blob { package, digest, json } => {
                let (_, found) = self.readable(&package).await?;
                let not_found = || {
                    CnrError::from(Error::PackageNotFound(format!("package {package} has no blob {digest}")))
                        .with_details(json!({ "package": package.as_str(), "release": digest }))
                };
                let release = found.blob(&digest).ok_or_else(not_found)?;
                let short = digest.get(..8).unwrap_or(&digest);
                let filename = format!("{}_{short}.tar.gz", package.as_str().replace('/', "_"));
                // The JSON form names the digest as its release, as Quay's did.
                self.blob_response(&package, release, &digest, filename, json).await
            }
            Endpoint::Channels(package) => {
                let (_, found) = self.readable(&package).await?;
                let channels: Vec<Value> = found.channels.iter().map(views::channel).collect();
                Ok(self.conditional(Rendered::new(views::to_bytes(&channels))))
            }
            Endpoint::Channel { package, channel } => {
                let (_, found) = self.readable(&package).await?;
                let found = found.channel(&channel).ok_or_else(|| channel_missing(&package, &channel))?;
                Ok(self.conditional(Rendered::new(views::to_bytes(&views::channel(found)))))
            }
            Endpoint::DeleteRelease { package, release, media_type } => {
                let actor = self.writer(&package).await?;
                self.state.apps.delete_release(&actor, &package, &release, &media_type).await.map_err(|e| {
                    CnrError::from(e).with_details(
                        json!({ "package": package.as_str(), "release": release, "media_type": media_type }),
                    )
                })?;
                Ok(response::json(
                    StatusCode::OK,
                    &json!({ "status": "deleted", "package": package.as_str(), "release": release }),
                ))
            }
            Endpoint::AddToChannel { package, channel, release } => {
                let actor = self.writer(&package).await?;
                let updated =
                    self.state.apps.add_to_channel(&actor, &package, &channel, &release).await.map_err(|e| {
                        CnrError::from(e).with_details(json!({ "package": package.as_str(), "release": release }))
                    })?;
                Ok(response::json(StatusCode::OK, &views::channel(&updated)))
            }
            Endpoint::RemoveFromChannel { package, channel, release } => {
                let actor = self.writer(&package).await?;
                self.state.apps.remove_from_channel(&actor, &package, &channel, &release).await.map_err(|e| {
                    CnrError::from(e).with_details(json!({ "package": package.as_str(), "channel": channel }))
                })?;
                Ok(response::json(
                    StatusCode::OK,
                    &json!({ "status": "deleted", "package": package.as_str(), "name": channel, "release": release }),
                ))
            }
            Endpoint::DeleteChannel { package, channel } => {
                let actor = self.writer(&package).await?;
                self.state.apps.delete_channel(&actor, &package, &channel).await.map_err(|e| {
                    CnrError::from(e).with_details(json!({ "package": package.as_str(), "channel": channel }))
                })?;
                Ok(response::json(
                    StatusCode::OK,
                    &json!({ "channel": channel, "package": package.as_str(), "action": "delete" }),
                ))
            }
        }
    }

    /// Checks that the caller may read `package` and that it is an application package
    /// with releases or channels to show.
    async fn readable(&self, package: &RepositoryName) -> CnrResult<(Principal, Arc<AppPackage>)> {
        let principal = self.principal().await?;
        let found = self.state.apps.package(package).await?;
        // Anyone may read a public package: the hot path needs no access decision (nor its
        // query). Everything else is decided first, so a package the caller cannot read
        // answers the same whether or not it exists.
        if found.as_ref().is_none_or(|p| p.visibility != Visibility::Public) {
            self.allowed(&principal, package, false).await?;
        }
        let found = found.ok_or_else(|| {
            CnrError::from(Error::PackageNotFound(format!("package {package} does not exist")))
                .with_details(json!({ "package": package.as_str() }))
        })?;
        if found.kind != RepositoryKind::Application {
            return Err(
                Error::WrongKind(format!("{package} is an image repository, not an App Registry package")).into()
            );
        }
        Ok((principal, found))
    }

    /// The actor of a write to `package`, once the right to write (or create) is checked.
    async fn writer(&self, package: &RepositoryName) -> CnrResult<Actor> {
        let principal = self.principal().await?;
        self.allowed(&principal, package, true).await?;
        Ok(Actor { principal, client_ip: self.client_ip })
    }

    /// Quay's answers: 401 for an anonymous caller, 403 with the scopes for anyone else.
    /// A package the caller cannot read answers the same whether or not it exists.
    async fn allowed(&self, principal: &Principal, package: &RepositoryName, write: bool) -> CnrResult<()> {
        let access = self.state.tenancy.access(principal, package).await?;
        if (write && access.push) || (!write && access.pull) {
            return Ok(());
        }
        let scopes = if write { json!(["pull", "push"]) } else { json!(["pull"]) };
        let details = json!({ "package": package.as_str(), "scopes": scopes });
        let refusal = if matches!(principal, Principal::Anonymous) {
            CnrError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized-access",
                format!("log in (appr login) to access package {package}"),
            )
        } else {
            let verb = if write { "write to" } else { "read" };
            CnrError::new(StatusCode::FORBIDDEN, "forbidden", format!("you may not {verb} package {package}"))
        };
        Err(refusal.with_details(details))
    }

    /// `200` with the body and its `ETag`, or `304` when the client has it already.
    fn conditional(&self, rendered: Rendered) -> Response<Body> {
        let etag = response::value(&rendered.etag);
        if self.client_has(&rendered.etag) {
            let mut not_modified = response::empty(StatusCode::NOT_MODIFIED);
            not_modified.headers_mut().insert(header::ETAG, etag);
            return not_modified;
        }
        let mut ok = Response::new(Body::from(rendered.body));
        ok.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        ok.headers_mut().insert(header::ETAG, etag);
        ok
    }

    fn client_has(&self, etag: &str) -> bool {
        self.headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*")
    }

    async fn blob_response(
        &self,
        package: &RepositoryName,
        release: &berth_core::appregistry::AppRelease,
        release_label: &str,
        filename: String,
        json: bool,
    ) -> CnrResult<Response<Body>> {
        if json {
            let bytes = self.read_all(release).await?;
            let body = json!({
                "package": package.as_str(),
                "release": release_label,
                "media_type": release.media_type,
                "filename": filename,
                "blob": STANDARD.encode(&bytes),
            });
            return Ok(self.conditional(Rendered::new(views::to_bytes(&body))));
        }
        let etag = format!("\"{}\"", release.digest);
        if self.client_has(&etag) {
            let mut not_modified = response::empty(StatusCode::NOT_MODIFIED);
            not_modified.headers_mut().insert(header::ETAG, response::value(&etag));
            return Ok(not_modified);
        }
        let stream = self.state.apps.read_blob(&release.blob).await?;
        let mut ok = Response::new(Body::from_stream(stream));
        let headers = ok.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-gzip"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(release.blob.size));
        headers.insert(header::CONTENT_DISPOSITION, response::value(&filename));
        headers.insert(header::ETAG, response::value(&etag));
        Ok(ok)
    }

    async fn read_all(&self, release: &berth_core::appregistry::AppRelease) -> CnrResult<Bytes> {
        use futures_util::TryStreamExt;
        let stream = self.state.apps.read_blob(&release.blob).await?;
        let chunks: Vec<Bytes> = stream.try_collect().await.map_err(Error::backend)?;
        Ok(Bytes::from(chunks.concat()))
    }

    async fn login(&self, body: Body) -> CnrResult<Response<Body>> {
        let body = read_body(body, MAX_LOGIN_BYTES).await?;
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let field = |name: &str| parsed.get("user").and_then(|u| u.get(name)).and_then(Value::as_str);
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            return Err(CnrError::new(
                StatusCode::BAD_REQUEST,
                "invalid-usage",
                "expected {\"user\": {\"username\": ..., \"password\": ...}}",
            ));
        };
        match self.state.tenancy.authenticate(username, password, self.client_ip).await {
            Ok(_) => {
                let token = format!("basic {}", STANDARD.encode(format!("{username}:{password}")));
                Ok(response::json(StatusCode::OK, &json!({ "token": token })))
            }
            Err(Error::Unauthorized(_)) => {
                Err(CnrError::new(StatusCode::UNAUTHORIZED, "unauthorized-access", "invalid username or password")
                    .with_details(json!({ "username": username })))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self) -> CnrResult<Response<Body>> {
        let namespace = self.param("namespace");
        let media_type = self.param("media_type").map(normalize_media_type).transpose()?;
        let search = self.param("query");
        let listing = self.state.apps.listing(namespace, media_type.as_deref()).await?;
        let principal = self.principal().await?;
        let any_private = listing.packages.iter().any(|p| p.visibility == Visibility::Private);
        let sees_private = !matches!(principal, Principal::Anonymous) && any_private;
        if !sees_private && search.is_none() {
            // The common case (OperatorHub polling public namespaces): rendered once per change.
            let public = listing.public_view.get_or_init(|| {
                let packages = listing.packages.iter().filter(|p| p.visibility == Visibility::Public);
                Rendered::new(views::to_bytes(&packages.map(views::listed).collect::<Vec<_>>()))
            });
            return Ok(self.conditional(public.clone()));
        }
        let packages: Vec<Value> = visible(self.state, &principal, &listing, namespace)
            .await?
            .into_iter()
            .filter(|p| search.is_none_or(|s| p.name.contains(s)))
            .map(views::listed)
            .collect();
        Ok(self.conditional(Rendered::new(views::to_bytes(&packages))))
    }

    async fn search(&self) -> CnrResult<Response<Body>> {
        let text = self.param("q").unwrap_or("");
        let listing = self.state.apps.listing(None, None).await?;
        let principal = self.principal().await?;
        let names: Vec<&str> = visible(self.state, &principal, &listing, None)
            .await?
            .into_iter()
            .filter(|p| p.name.contains(text))
            .map(|p| p.name.as_str())
            .collect();
        Ok(self.conditional(Rendered::new(views::to_bytes(&names))))
    }

    async fn push(&self, package: &RepositoryName, body: Body) -> CnrResult<Response<Body>> {
        let actor = self.writer(package).await?;
        let limit = self.state.apps.config().max_push_bytes;
        let body = read_body(body, usize::try_from(limit).unwrap_or(usize::MAX)).await?;
        let fields: Value = serde_json::from_slice(&body)
            .map_err(|e| CnrError::new(StatusCode::BAD_REQUEST, "invalid-usage", format!("invalid JSON body: {e}")))?;
        let text = |name: &str| match fields.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let missing = |name: &str| {
            CnrError::new(StatusCode::BAD_REQUEST, "invalid-usage", format!("the push needs a `{name}` field"))
        };
        let release = text("release").ok_or_else(|| missing("release"))?;
        let blob = text("blob").ok_or_else(|| missing("blob"))?;
        let media_type = text("media_type").unwrap_or_else(|| "kpm".into());
        let blob = STANDARD
            .decode(blob.trim())
            .or_else(|_| STANDARD.decode(blob.split_whitespace().collect::<String>()))
            .map_err(|e| {
                CnrError::new(StatusCode::BAD_REQUEST, "invalid-usage", format!("`blob` is not base64: {e}"))
            })?;
        let visibility = match text("visibility").as_deref() {
            None | Some("private") => Visibility::Private,
            Some("public") => Visibility::Public,
            Some(other) => {
                return Err(CnrError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-usage",
                    format!("visibility {other:?} is neither public nor private"),
                ));
            }
        };
        let metadata = fields.get("metadata").filter(|m| !m.is_null()).cloned();
        let force = self.param("force") == Some("true");
        let details = json!({ "package": package.as_str(), "release": release, "media_type": media_type });
        let request = PushRequest { release, media_type, blob: Bytes::from(blob), metadata, force, visibility };
        self.state.apps.push(&actor, package, request).await.map_err(|e| CnrError::from(e).with_details(details))?;
        Ok(response::json(StatusCode::OK, &json!({ "status": "ok" })))
    }
}

/// The packages of a listing that `principal` may see: the public ones, and the private ones
/// it may read (found in one query, only when there are any to find).
async fn visible<'l>(
    state: &AppState,
    principal: &Principal,
    listing: &'l Listing,
    namespace: Option<&str>,
) -> CnrResult<Vec<&'l ListedPackage>> {
    let any_private = listing.packages.iter().any(|p| p.visibility == Visibility::Private);
    let readable: HashSet<String> = if !any_private || matches!(principal, Principal::Anonymous) {
        HashSet::new()
    } else if principal.is_superuser() {
        return Ok(listing.packages.iter().collect());
    } else {
        state.apps.readable_private(principal, namespace).await?
    };
    Ok(listing.packages.iter().filter(|p| p.visibility == Visibility::Public || readable.contains(&p.name)).collect())
}

/// The manifest a version query and media type pick.
fn resolved<'p>(
    package: &'p AppPackage,
    name: &RepositoryName,
    query: &str,
    media_type: &str,
) -> CnrResult<&'p berth_core::appregistry::AppRelease> {
    let media_type = normalize_media_type(media_type)?;
    let release = package
        .resolve(query)
        .map_err(|e| CnrError::from(e).with_details(json!({ "package": name.as_str(), "release_query": query })))?
        .ok_or_else(|| release_missing(name, query))?;
    package.manifest(release, &media_type).ok_or_else(|| {
        CnrError::from(Error::PackageNotFound(format!(
            "package {name} has no {media_type} manifest for release {release}"
        )))
        .with_details(json!({ "package": name.as_str(), "release": release, "media_type": media_type }))
    })
}

fn release_missing(name: &RepositoryName, query: &str) -> CnrError {
    CnrError::from(Error::ReleaseNotFound(format!("no release of package {name} matches {query:?}")))
        .with_details(json!({ "package": name.as_str(), "release_query": query }))
}

fn channel_missing(name: &RepositoryName, channel: &str) -> CnrError {
    CnrError::from(Error::ChannelNotFound(format!("package {name} has no channel {channel}")))
        .with_details(json!({ "package": name.as_str(), "channel": channel }))
}

/// A request body of at most `limit` bytes.
async fn read_body(body: Body, limit: usize) -> CnrResult<Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        CnrError::from(Error::TooLarge(format!("request bodies on this endpoint are limited to {limit} bytes")))
    })
}

//! The App Registry path grammar under `/cnr`, parsed once into a typed endpoint. Literal
//! segments (`channels`, `blobs`, `pull`, `json`) win over release and media-type segments;
//! a trailing slash is tolerated everywhere (the `appr` CLI lists channels with one).

use axum::http::Method;
use berth_oci::RepositoryName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Version,
    Login,
    /// Query: `namespace`, `query`, `media_type`.
    ListPackages,
    /// Query: `q`.
    Search,
    /// Query: `force`.
    Push(RepositoryName),
    /// Every (release, media type) manifest; query: `media_type`.
    Releases(RepositoryName),
    /// The manifests of one exact release.
    ReleaseManifests {
        package: RepositoryName,
        release: String,
    },
    /// The manifest a version query resolves to.
    Show {
        package: RepositoryName,
        query: String,
        media_type: String,
    },
    DeleteRelease {
        package: RepositoryName,
        release: String,
        media_type: String,
    },
    /// The blob a version query resolves to; JSON (base64) on `/json` or `?format=json`.
    Pull {
        package: RepositoryName,
        query: String,
        media_type: String,
        json: bool,
    },
    Blob {
        package: RepositoryName,
        digest: String,
        json: bool,
    },
    Channels(RepositoryName),
    Channel {
        package: RepositoryName,
        channel: String,
    },
    AddToChannel {
        package: RepositoryName,
        channel: String,
        release: String,
    },
    RemoveFromChannel {
        package: RepositoryName,
        channel: String,
        release: String,
    },
    DeleteChannel {
        package: RepositoryName,
        channel: String,
    },
}

/// The name of every kind of endpoint (for tables that must cover them all).
pub const KINDS: &[&str] = &[
    "Version",
    "Login",
    "ListPackages",
    "Search",
    "Push",
    "Releases",
    "ReleaseManifests",
    "Show",
    "DeleteRelease",
    "Pull",
    "Blob",
    "Channels",
    "Channel",
    "AddToChannel",
    "RemoveFromChannel",
    "DeleteChannel",
];

impl Endpoint {
    /// This endpoint's entry in [`KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            Endpoint::Version => "Version",
            Endpoint::Login => "Login",
            Endpoint::ListPackages => "ListPackages",
            Endpoint::Search => "Search",
            Endpoint::Push(_) => "Push",
            Endpoint::Releases(_) => "Releases",
            Endpoint::ReleaseManifests { .. } => "ReleaseManifests",
            Endpoint::Show { .. } => "Show",
            Endpoint::DeleteRelease { .. } => "DeleteRelease",
            Endpoint::Pull { .. } => "Pull",
            Endpoint::Blob { .. } => "Blob",
            Endpoint::Channels(_) => "Channels",
            Endpoint::Channel { .. } => "Channel",
            Endpoint::AddToChannel { .. } => "AddToChannel",
            Endpoint::RemoveFromChannel { .. } => "RemoveFromChannel",
            Endpoint::DeleteChannel { .. } => "DeleteChannel",
        }
    }

    /// Whether the endpoint changes state (its traffic class and the right it needs).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Endpoint::Push(_)
                | Endpoint::DeleteRelease { .. }
                | Endpoint::AddToChannel { .. }
                | Endpoint::RemoveFromChannel { .. }
                | Endpoint::DeleteChannel { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    NotFound,
    MethodNotAllowed(&'static str),
    /// The namespace and package name do not form a valid package name.
    Name(String),
}

/// Parses a path under `/cnr` (e.g. `/cnr/api/v1/packages/ns/pkg/1.0.0/helm`).
pub fn parse(method: &Method, path: &str, query: Option<&str>) -> Result<Endpoint, PathError> {
    let rest = path.strip_prefix("/cnr").ok_or(PathError::NotFound)?;
    let segments: Vec<String> = rest.split('/').filter(|s| !s.is_empty()).map(decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let json_format =
        query.is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "format" && v == "json"));
    let get = |endpoint: Endpoint| only(method, Method::GET, "GET", endpoint);
    match segments.as_slice() {
        ["version"] => get(Endpoint::Version),
        ["api", "v1", "users", "login"] => only(method, Method::POST, "POST", Endpoint::Login),
        ["api", "v1", "packages"] => get(Endpoint::ListPackages),
        ["api", "v1", "packages", "search"] => get(Endpoint::Search),
        ["api", "v1", "packages", namespace, name, rest @ ..] => {
            let package = RepositoryName::parse(&format!("{namespace}/{name}"))
                .map_err(|e| PathError::Name(format!("{namespace}/{name}: {e}")))?;
            package_endpoint(method, package, rest, json_format)
        }
        _ => Err(PathError::NotFound),
    }
}

fn package_endpoint(
    method: &Method,
    package: RepositoryName,
    rest: &[&str],
    json_format: bool,
) -> Result<Endpoint, PathError> {
    let get_or_post = |get: Endpoint, post: Endpoint| match *method {
        Method::GET | Method::HEAD => Ok(get),
        Method::POST => Ok(post),
        _ => Err(PathError::MethodNotAllowed("GET, POST")),
    };
    let get_or_delete = |get: Endpoint, delete: Endpoint| match *method {
        Method::GET | Method::HEAD => Ok(get),
        Method::DELETE => Ok(delete),
        _ => Err(PathError::MethodNotAllowed("GET, DELETE")),
    };
    let get = |endpoint: Endpoint| only(method, Method::GET, "GET", endpoint);
    let owned = |s: &str| s.to_owned();
    match rest {
        [] => get_or_post(Endpoint::Releases(package.clone()), Endpoint::Push(package)),
        ["channels"] => get(Endpoint::Channels(package)),
        ["channels", channel] => get_or_delete(
            Endpoint::Channel { package: package.clone(), channel: owned(channel) },
            Endpoint::DeleteChannel { package, channel: owned(channel) },
        ),
        ["channels", channel, release] => match *method {
            Method::POST => Ok(Endpoint::AddToChannel { package, channel: owned(channel), release: owned(release) }),
            Method::DELETE => {
                Ok(Endpoint::RemoveFromChannel { package, channel: owned(channel), release: owned(release) })
            }
            _ => Err(PathError::MethodNotAllowed("POST, DELETE")),
        },
        ["blobs", "sha256", digest] => get(Endpoint::Blob { package, digest: owned(digest), json: json_format }),
        ["blobs", "sha256", digest, "json"] => get(Endpoint::Blob { package, digest: owned(digest), json: true }),
        [release] => get(Endpoint::ReleaseManifests { package, release: owned(release) }),
        [release, media_type] => get_or_delete(
            Endpoint::Show { package: package.clone(), query: owned(release), media_type: owned(media_type) },
            Endpoint::DeleteRelease { package, release: owned(release), media_type: owned(media_type) },
        ),
        [release, media_type, "pull"] => {
            get(Endpoint::Pull { package, query: owned(release), media_type: owned(media_type), json: json_format })
        }
        [release, media_type, "pull", "json"] => {
            get(Endpoint::Pull { package, query: owned(release), media_type: owned(media_type), json: true })
        }
        _ => Err(PathError::NotFound),
    }
}

fn only(method: &Method, wanted: Method, allow: &'static str, endpoint: Endpoint) -> Result<Endpoint, PathError> {
    let head_for_get = wanted == Method::GET && *method == Method::HEAD;
    if *method == wanted || head_for_get { Ok(endpoint) } else { Err(PathError::MethodNotAllowed(allow)) }
}

/// Percent-decodes a path segment (version ranges arrive as `%3E%3D1.0.0`).
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> RepositoryName {
        RepositoryName::parse(s).expect("valid name")
    }

    #[test]
    fn routes() {
        let p = |m: Method, path: &str| parse(&m, path, None);
        assert_eq!(p(Method::GET, "/cnr/version"), Ok(Endpoint::Version));
        assert_eq!(p(Method::POST, "/cnr/api/v1/users/login/"), Ok(Endpoint::Login));
        assert_eq!(p(Method::GET, "/cnr/api/v1/packages/"), Ok(Endpoint::ListPackages));
        assert_eq!(p(Method::GET, "/cnr/api/v1/packages/search"), Ok(Endpoint::Search));
        assert_eq!(p(Method::POST, "/cnr/api/v1/packages/ns/pkg"), Ok(Endpoint::Push(name("ns/pkg"))));
        assert_eq!(p(Method::GET, "/cnr/api/v1/packages/ns/pkg/channels/"), Ok(Endpoint::Channels(name("ns/pkg"))));
        assert_eq!(
            p(Method::GET, "/cnr/api/v1/packages/ns/pkg/%3E%3D1.0.0%2C%3C2.0.0/helm"),
            Ok(Endpoint::Show { package: name("ns/pkg"), query: ">=1.0.0,<2.0.0".into(), media_type: "helm".into() })
        );
        assert_eq!(
            parse(&Method::GET, "/cnr/api/v1/packages/ns/pkg/default/helm/pull", Some("format=json")),
            Ok(Endpoint::Pull {
                package: name("ns/pkg"),
                query: "default".into(),
                media_type: "helm".into(),
                json: true
            })
        );
        assert_eq!(
            p(Method::GET, "/cnr/api/v1/packages/ns/pkg/blobs/sha256/abc"),
            Ok(Endpoint::Blob { package: name("ns/pkg"), digest: "abc".into(), json: false })
        );
        assert_eq!(
            p(Method::DELETE, "/cnr/api/v1/packages/ns/pkg/channels/stable/1.0.0"),
            Ok(Endpoint::RemoveFromChannel {
                package: name("ns/pkg"),
                channel: "stable".into(),
                release: "1.0.0".into()
            })
        );
        assert_eq!(p(Method::PUT, "/cnr/api/v1/packages/ns/pkg"), Err(PathError::MethodNotAllowed("GET, POST")));
        assert_eq!(p(Method::GET, "/cnr/nothing"), Err(PathError::NotFound));
        assert!(matches!(p(Method::GET, "/cnr/api/v1/packages/NS/pkg"), Err(PathError::Name(_))));
    }

    #[test]
    fn every_kind_is_listed_once() {
        let samples = [
            (Method::GET, "/cnr/version"),
            (Method::POST, "/cnr/api/v1/users/login"),
            (Method::GET, "/cnr/api/v1/packages"),
            (Method::GET, "/cnr/api/v1/packages/search"),
            (Method::POST, "/cnr/api/v1/packages/ns/pkg"),
            (Method::GET, "/cnr/api/v1/packages/ns/pkg"),
            (Method::GET, "/cnr/api/v1/packages/ns/pkg/1.0.0"),
            (Method::GET, "/cnr/api/v1/packages/ns/pkg/1.0.0/helm"),
            (Method::DELETE, "/cnr/api/v1/packages/ns/pkg/1.0.0/helm"),
            (Method::GET, "/cnr/api/v1/packages/ns/pkg/1.0.0/helm/pull"),
            (Method::GET, "/cnr/api/v1/packages/ns/pkg/blobs/sha256/abc"),
            (Method::GET, "/cnr/api/v1/packages/ns/pkg/channels"),
            (Method::GET, "/cnr/api/v1/packages/ns/pkg/channels/stable"),
            (Method::POST, "/cnr/api/v1/packages/ns/pkg/channels/stable/1.0.0"),
            (Method::DELETE, "/cnr/api/v1/packages/ns/pkg/channels/stable/1.0.0"),
            (Method::DELETE, "/cnr/api/v1/packages/ns/pkg/channels/stable"),
        ];
        let kinds: Vec<&str> = samples.iter().map(|(m, p)| parse(m, p, None).expect("parses").kind()).collect();
        assert_eq!(kinds, KINDS);
        assert_eq!(KINDS.iter().collect::<std::collections::BTreeSet<_>>().len(), KINDS.len(), "no duplicates");
    }

    #[test]
    fn never_panics() {
        for path in ["/cnr", "/cnr/", "/cnr/api/v1/packages/%ff/x", "/cnr/api/v1/packages/a/b/c/d/e/f/g", "/cnrx"] {
            for method in [Method::GET, Method::POST, Method::DELETE, Method::PATCH] {
                let _ = parse(&method, path, Some("format=json&%zz"));
            }
        }
    }
}

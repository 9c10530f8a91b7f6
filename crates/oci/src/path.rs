//! The `/v2` request grammar: method + path + query -> [`Endpoint`].
//!
//! Repository names may contain slashes, so the path is read from its right end: the last
//! one to three segments say which resource is meant and everything before them is the name.

use crate::digest::{Algorithm, Digest, DigestError};
use crate::name::{NameError, RepositoryName};
use crate::reference::{Reference, ReferenceError, Tag, TagError};

/// Every operation of the distribution API, with its parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    ApiVersion,
    Catalog(Page),
    ListTags { name: RepositoryName, page: Page },
    GetManifest { name: RepositoryName, reference: Reference, head: bool },
    PutManifest { name: RepositoryName, reference: Reference, tags: Vec<Tag> },
    DeleteManifest { name: RepositoryName, reference: Reference },
    GetBlob { name: RepositoryName, digest: Digest, head: bool },
    DeleteBlob { name: RepositoryName, digest: Digest },
    StartUpload { name: RepositoryName, start: UploadStart },
    GetUpload { name: RepositoryName, id: UploadId },
    PatchUpload { name: RepositoryName, id: UploadId },
    PutUpload { name: RepositoryName, id: UploadId, digest: Digest },
    DeleteUpload { name: RepositoryName, id: UploadId },
    Referrers { name: RepositoryName, digest: Digest, artifact_type: Option<String> },
}

impl Endpoint {
    /// The name of every kind of endpoint (for tables that must cover them all).
    pub const KINDS: &'static [&'static str] = &[
        "ApiVersion",
        "Catalog",
        "ListTags",
        "GetManifest",
        "PutManifest",
        "DeleteManifest",
        "GetBlob",
        "DeleteBlob",
        "StartUpload",
        "GetUpload",
        "PatchUpload",
        "PutUpload",
        "DeleteUpload",
        "Referrers",
    ];

    /// This endpoint's entry in [`Endpoint::KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            Endpoint::ApiVersion => "ApiVersion",
            Endpoint::Catalog(_) => "Catalog",
            Endpoint::ListTags { .. } => "ListTags",
            Endpoint::GetManifest { .. } => "GetManifest",
            Endpoint::PutManifest { .. } => "PutManifest",
            Endpoint::DeleteManifest { .. } => "DeleteManifest",
            Endpoint::GetBlob { .. } => "GetBlob",
            Endpoint::DeleteBlob { .. } => "DeleteBlob",
            Endpoint::StartUpload { .. } => "StartUpload",
            Endpoint::GetUpload { .. } => "GetUpload",
            Endpoint::PatchUpload { .. } => "PatchUpload",
            Endpoint::PutUpload { .. } => "PutUpload",
            Endpoint::DeleteUpload { .. } => "DeleteUpload",
            Endpoint::Referrers { .. } => "Referrers",
        }
    }
}

/// How a `POST .../blobs/uploads/` wants to begin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStart {
    /// Open a session for `PATCH`/`PUT`, hashing with `algorithm` (`?digest-algorithm=`).
    Session { algorithm: Algorithm },
    /// `?digest=`: the body is the whole blob.
    Monolithic { digest: Digest },
    /// `?mount=DIGEST[&from=REPO]`: link an existing blob; `from` is `None` when absent or
    /// not a valid name (the registry then looks for the blob anywhere).
    Mount { digest: Digest, from: Option<RepositoryName> },
}

/// `?n=&last=` of the listing endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub n: Option<u32>,
    pub last: Option<String>,
}

/// An upload session id as Berth issues them: a lowercase hyphenated UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    pub fn parse(s: &str) -> Option<UploadId> {
        let b = s.as_bytes();
        let ok = b.len() == 36
            && b.iter().enumerate().all(|(i, &c)| match i {
                8 | 13 | 18 | 23 => c == b'-',
                _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
            });
        ok.then(|| UploadId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("no such endpoint")]
    NotFound,
    #[error("method not allowed; this endpoint allows {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// An invalid tag in a manifest path or `?tag=`; `put` tells whether it was a push.
    #[error("{error}")]
    Tag { error: TagError, put: bool },
    #[error("upload session {0:?} is unknown")]
    UploadUnknown(String),
    #[error("invalid pagination number: {0}")]
    Pagination(String),
    #[error("the digest query parameter is required to complete an upload")]
    MissingDigest,
}

/// Parses a request line. `path` is the URI path (still percent-encoded), `query` the raw
/// query string.
pub fn parse(method: &str, path: &str, query: Option<&str>) -> Result<Endpoint, PathError> {
    let query = Query(query.unwrap_or(""));
    let rest = match path {
        "/v2" | "/v2/" => {
            allow(method, &["GET", "HEAD"], "GET, HEAD")?;
            return Ok(Endpoint::ApiVersion);
        }
        _ => path.strip_prefix("/v2/").ok_or(PathError::NotFound)?,
    };
    if rest == "_catalog" {
        allow(method, &["GET", "HEAD"], "GET, HEAD")?;
        return Ok(Endpoint::Catalog(query.page()?));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads/").or_else(|| rest.strip_suffix("/blobs/uploads")) {
        allow(method, &["POST"], "POST")?;
        let name = RepositoryName::parse(name)?;
        return Ok(Endpoint::StartUpload { name, start: query.upload_start()? });
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        allow(method, &["GET", "HEAD"], "GET, HEAD")?;
        return Ok(Endpoint::ListTags { name: RepositoryName::parse(name)?, page: query.page()? });
    }
    let (head, last) = rest.rsplit_once('/').ok_or(PathError::NotFound)?;
    let (name, kind) = head.rsplit_once('/').unwrap_or(("", head));
    let last = decode_colon(last);
    match kind {
        "manifests" => {
            let m = allow(method, &["GET", "HEAD", "PUT", "DELETE"], "GET, HEAD, PUT, DELETE")?;
            let name = RepositoryName::parse(name)?;
            let put = m == "PUT";
            let reference = Reference::parse(&last).map_err(|e| match e {
                ReferenceError::Tag(error) => PathError::Tag { error, put },
                ReferenceError::Digest(e) => PathError::Digest(e),
            })?;
            Ok(match m {
                "GET" | "HEAD" => Endpoint::GetManifest { name, reference, head: m == "HEAD" },
                "PUT" => Endpoint::PutManifest { name, reference, tags: query.tags()? },
                _ => Endpoint::DeleteManifest { name, reference },
            })
        }
        "blobs" => {
            let m = allow(method, &["GET", "HEAD", "DELETE"], "GET, HEAD, DELETE")?;
            let name = RepositoryName::parse(name)?;
            let digest = Digest::parse(&last)?;
            Ok(match m {
                "DELETE" => Endpoint::DeleteBlob { name, digest },
                _ => Endpoint::GetBlob { name, digest, head: m == "HEAD" },
            })
        }
        "uploads" => {
            let name = name.strip_suffix("/blobs").ok_or(PathError::NotFound)?;
            let m = allow(method, &["GET", "PATCH", "PUT", "DELETE"], "GET, PATCH, PUT, DELETE")?;
            let name = RepositoryName::parse(name)?;
            let id = UploadId::parse(&last).ok_or_else(|| PathError::UploadUnknown(last.chars().take(64).collect()))?;
            Ok(match m {
                "GET" => Endpoint::GetUpload { name, id },
                "PATCH" => Endpoint::PatchUpload { name, id },
                "PUT" => {
                    let digest = query.get("digest").ok_or(PathError::MissingDigest)?;
                    Endpoint::PutUpload { name, id, digest: Digest::parse(&digest)? }
                }
                _ => Endpoint::DeleteUpload { name, id },
            })
        }
        "referrers" => {
            allow(method, &["GET", "HEAD"], "GET, HEAD")?;
            let name = RepositoryName::parse(name)?;
            let digest = Digest::parse(&last)?;
            Ok(Endpoint::Referrers { name, digest, artifact_type: query.get("artifactType").filter(|t| !t.is_empty()) })
        }
        _ => Err(PathError::NotFound),
    }
}

fn allow<'m>(method: &'m str, allowed: &[&str], allow: &'static str) -> Result<&'m str, PathError> {
    if allowed.contains(&method) { Ok(method) } else { Err(PathError::MethodNotAllowed { allow }) }
}

/// Some clients percent-encode the colon of a digest; nothing else in the grammar needs
/// decoding (names and tags cannot contain escapes).
fn decode_colon(segment: &str) -> std::borrow::Cow<'_, str> {
    if segment.contains('%') { segment.replace("%3A", ":").replace("%3a", ":").into() } else { segment.into() }
}

struct Query<'a>(&'a str);

impl Query<'_> {
    fn pairs(&self) -> form_urlencoded::Parse<'_> {
        form_urlencoded::parse(self.0.as_bytes())
    }

    fn get(&self, key: &str) -> Option<String> {
        self.pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
    }

    fn page(&self) -> Result<Page, PathError> {
        let n = match self.get("n") {
            None => None,
            Some(n) if n.is_empty() => None,
            Some(n) => Some(
                n.parse::<u32>()
                    .map_err(|_| PathError::Pagination(format!("n={n:?} is not a number from 0 to 4294967295")))?,
            ),
        };
        Ok(Page { n, last: self.get("last").filter(|l| !l.is_empty()) })
    }

    fn tags(&self) -> Result<Vec<Tag>, PathError> {
        self.pairs()
            .filter(|(k, _)| k == "tag")
            .map(|(_, v)| Tag::parse(&v).map_err(|error| PathError::Tag { error, put: true }))
            .collect()
    }

    fn upload_start(&self) -> Result<UploadStart, PathError> {
        if let Some(mount) = self.get("mount") {
            let digest = Digest::parse(&mount)?;
            let from = self.get("from").and_then(|f| RepositoryName::parse(&f).ok());
            return Ok(UploadStart::Mount { digest, from });
        }
        if let Some(digest) = self.get("digest") {
            return Ok(UploadStart::Monolithic { digest: Digest::parse(&digest)? });
        }
        let algorithm = match self.get("digest-algorithm") {
            Some(a) => Algorithm::parse(&a)?,
            None => Algorithm::Sha256,
        };
        Ok(UploadStart::Session { algorithm })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ID: &str = "0d6b1f4e-8c1a-4c53-9b0e-3f1f5c1d2e3a";

    fn name(s: &str) -> RepositoryName {
        RepositoryName::parse(s).expect("valid name")
    }

    #[test]
    fn parses_every_endpoint() {
        assert_eq!(parse("GET", "/v2/", None), Ok(Endpoint::ApiVersion));
        assert_eq!(parse("GET", "/v2", None), Ok(Endpoint::ApiVersion));
        assert_eq!(
            parse("GET", "/v2/_catalog", Some("n=10&last=a%2Fb")),
            Ok(Endpoint::Catalog(Page { n: Some(10), last: Some("a/b".into()) }))
        );
        assert_eq!(
            parse("GET", "/v2/a/b/c/tags/list", None),
            Ok(Endpoint::ListTags { name: name("a/b/c"), page: Page::default() })
        );
        assert!(matches!(
            parse("HEAD", "/v2/team/app/manifests/latest", None),
            Ok(Endpoint::GetManifest { head: true, reference: Reference::Tag(_), .. })
        ));
        assert!(matches!(
            parse("GET", &format!("/v2/team/app/manifests/{}", D.replace(':', "%3A")), None),
            Ok(Endpoint::GetManifest { head: false, reference: Reference::Digest(_), .. })
        ));
        match parse("PUT", &format!("/v2/t/a/manifests/{D}"), Some("tag=a&tag=b")) {
            Ok(Endpoint::PutManifest { tags, .. }) => assert_eq!(tags.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse("DELETE", "/v2/t/a/manifests/x", None), Ok(Endpoint::DeleteManifest { .. })));
        assert!(matches!(parse("GET", &format!("/v2/t/a/blobs/{D}"), None), Ok(Endpoint::GetBlob { head: false, .. })));
        assert!(matches!(parse("DELETE", &format!("/v2/t/a/blobs/{D}"), None), Ok(Endpoint::DeleteBlob { .. })));
        assert_eq!(
            parse("POST", "/v2/t/a/blobs/uploads/", None),
            Ok(Endpoint::StartUpload {
                name: name("t/a"),
                start: UploadStart::Session { algorithm: Algorithm::Sha256 }
            })
        );
        assert_eq!(
            parse("POST", "/v2/t/a/blobs/uploads", Some("digest-algorithm=sha512")),
            Ok(Endpoint::StartUpload {
                name: name("t/a"),
                start: UploadStart::Session { algorithm: Algorithm::Sha512 }
            })
        );
        assert!(matches!(
            parse("POST", "/v2/t/a/blobs/uploads/", Some(&format!("digest={D}"))),
            Ok(Endpoint::StartUpload { start: UploadStart::Monolithic { .. }, .. })
        ));
        assert_eq!(
            parse("POST", "/v2/t/a/blobs/uploads/", Some(&format!("mount={D}&from=o/r"))),
            Ok(Endpoint::StartUpload {
                name: name("t/a"),
                start: UploadStart::Mount { digest: Digest::parse(D).expect("d"), from: Some(name("o/r")) }
            })
        );
        for (m, want) in [("GET", "GetUpload"), ("PATCH", "PatchUpload"), ("DELETE", "DeleteUpload")] {
            let got = parse(m, &format!("/v2/t/a/blobs/uploads/{ID}"), None).expect("parses");
            assert!(format!("{got:?}").starts_with(want), "{got:?}");
        }
        assert!(matches!(
            parse("PUT", &format!("/v2/t/a/blobs/uploads/{ID}"), Some(&format!("digest={D}"))),
            Ok(Endpoint::PutUpload { .. })
        ));
        assert_eq!(
            parse("GET", &format!("/v2/t/a/referrers/{D}"), Some("artifactType=application%2Fx")),
            Ok(Endpoint::Referrers {
                name: name("t/a"),
                digest: Digest::parse(D).expect("d"),
                artifact_type: Some("application/x".into())
            })
        );
    }

    #[test]
    fn every_kind_is_listed_once() {
        let samples = [
            ("GET", "/v2/".to_owned(), None),
            ("GET", "/v2/_catalog".to_owned(), None),
            ("GET", "/v2/a/tags/list".to_owned(), None),
            ("GET", "/v2/a/manifests/t".to_owned(), None),
            ("PUT", "/v2/a/manifests/t".to_owned(), None),
            ("DELETE", "/v2/a/manifests/t".to_owned(), None),
            ("GET", format!("/v2/a/blobs/{D}"), None),
            ("DELETE", format!("/v2/a/blobs/{D}"), None),
            ("POST", "/v2/a/blobs/uploads/".to_owned(), None),
            ("GET", format!("/v2/a/blobs/uploads/{ID}"), None),
            ("PATCH", format!("/v2/a/blobs/uploads/{ID}"), None),
            ("PUT", format!("/v2/a/blobs/uploads/{ID}"), Some(format!("digest={D}"))),
            ("DELETE", format!("/v2/a/blobs/uploads/{ID}"), None),
            ("GET", format!("/v2/a/referrers/{D}"), None),
        ];
        let kinds: Vec<&str> =
            samples.iter().map(|(m, p, q)| parse(m, p, q.as_deref()).expect("parses").kind()).collect();
        assert_eq!(kinds, Endpoint::KINDS);
    }

    #[test]
    fn names_may_contain_resource_words() {
        assert!(
            matches!(parse("GET", "/v2/a/manifests/tags/list", None), Ok(Endpoint::ListTags { name, .. }) if name.as_str() == "a/manifests")
        );
        assert!(
            matches!(parse("POST", "/v2/x/blobs/blobs/uploads/", None), Ok(Endpoint::StartUpload { name, .. }) if name.as_str() == "x/blobs")
        );
        assert!(
            matches!(parse("GET", &format!("/v2/x/blobs/blobs/uploads/{ID}"), None), Ok(Endpoint::GetUpload { name, .. }) if name.as_str() == "x/blobs")
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse("GET", "/v3/", None), Err(PathError::NotFound));
        assert_eq!(parse("GET", "/v2/a/unknown/x", None), Err(PathError::NotFound));
        assert_eq!(parse("GET", "/v2/a", None), Err(PathError::NotFound));
        assert!(matches!(parse("POST", "/v2/a/manifests/x", None), Err(PathError::MethodNotAllowed { .. })));
        assert!(matches!(parse("GET", "/v2/A/manifests/x", None), Err(PathError::Name(_))));
        assert!(matches!(parse("GET", "/v2/manifests/x", None), Err(PathError::Name(_))));
        assert!(matches!(
            parse("GET", "/v2/a/blobs/sha256:zz", None),
            Err(PathError::Digest(DigestError::Malformed(_)))
        ));
        assert!(matches!(
            parse("GET", "/v2/a/blobs/md5:abc", None),
            Err(PathError::Digest(DigestError::Unsupported(_)))
        ));
        assert!(matches!(parse("GET", "/v2/a/manifests/-bad", None), Err(PathError::Tag { put: false, .. })));
        assert!(matches!(parse("PUT", "/v2/a/manifests/x", Some("tag=-bad")), Err(PathError::Tag { put: true, .. })));
        assert!(matches!(parse("GET", "/v2/a/blobs/uploads/nope", None), Err(PathError::UploadUnknown(_))));
        assert_eq!(parse("PUT", &format!("/v2/a/blobs/uploads/{ID}"), None), Err(PathError::MissingDigest));
        assert!(matches!(parse("GET", "/v2/a/tags/list", Some("n=x")), Err(PathError::Pagination(_))));
        assert!(matches!(parse("GET", "/v2/a/tags/list", Some("n=-1")), Err(PathError::Pagination(_))));
    }

    proptest! {
        #[test]
        fn parse_never_panics(method in "(GET|HEAD|PUT|POST|PATCH|DELETE|X)", path in "/v2/[a-z0-9/._:%-]{0,80}", query in proptest::option::of(".{0,60}")) {
            let _ = parse(&method, &path, query.as_deref());
        }

        #[test]
        fn manifest_paths_round_trip(name in "[a-z0-9]{1,6}(/[a-z0-9]{1,6}){0,4}", tag in "[A-Za-z0-9_][A-Za-z0-9._-]{0,20}") {
            let got = parse("GET", &format!("/v2/{name}/manifests/{tag}"), None);
            match got {
                Ok(Endpoint::GetManifest { name: n, reference: Reference::Tag(t), head: false }) => {
                    prop_assert_eq!(n.as_str(), name.as_str());
                    prop_assert_eq!(t.as_str(), tag.as_str());
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }
}

//! Authentication and authorization at the HTTP edge: Docker token auth (challenge ->
//! `/v2/auth` -> signed JWT), Basic credentials on `/v2` directly, and the rules that turn a
//! caller and what a request needs into "go ahead", a challenge, a 403, or a 404 that looks
//! exactly like a repository that does not exist.

pub mod jwt;
pub mod keys;
mod token;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_core::access::{Principal, RepoAccess};
use berth_core::tenancy::API_TOKEN_PREFIX;
use berth_core::{Error, Result};
use berth_oci::RepositoryName;

pub use token::token_endpoint;

use crate::AppState;
use jwt::{Access, Claims};
use sha2::{Digest, Sha256};

#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Off: every request acts as the registry itself (benchmarks, local experiments).
    pub enabled: bool,
    /// The `service` of challenges and the audience of tokens.
    pub service: String,
    pub token_lifetime: Duration,
    /// The externally visible base URL (e.g. `https://registry.example.com`); when unset the
    /// token realm is built from the request's `Host` header.
    pub public_url: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: true,
            service: "berth".into(),
            token_lifetime: Duration::from_secs(300),
            public_url: None,
        }
    }
}

/// The credentials a request carries.
pub enum Credentials {
    None,
    Basic { user: String, secret: String },
    Bearer(String),
    Malformed,
}

pub fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Credentials::None };
    let Ok(value) = value.to_str() else { return Credentials::Malformed };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest.trim()).ok().and_then(|b| String::from_utf8(b).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((user, secret)) => Credentials::Basic { user: user.to_owned(), secret: secret.to_owned() },
            None => Credentials::Malformed,
        }
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
        Credentials::Bearer(rest.trim().to_owned())
    } else {
        Credentials::Malformed
    }
}

/// Who is calling `/v2`, once their credentials are checked.
pub enum Caller {
    Anonymous,
    /// Basic credentials of a user or robot.
    Account(Principal),
    /// A registry token: whom it was issued to and what it grants.
    Token {
        principal: Principal,
        access: Vec<Access>,
    },
}

impl Caller {
    pub fn principal(&self) -> &Principal {
        match self {
            Caller::Anonymous => &Principal::Anonymous,
            Caller::Account(p) | Caller::Token { principal: p, .. } => p,
        }
    }
}

/// Why credentials were not accepted.
pub enum Rejection {
    /// Wrong username/password or malformed header: challenge again.
    BadCredentials(String),
    /// A token that does not verify (tampered, expired, foreign, `alg: none`, audience).
    BadToken(String),
    Throttled(u64),
    /// Berth could not check them (database unavailable or failing): not the caller's fault.
    Failed(Error),
}

pub async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    client_ip: Option<IpAddr>,
) -> std::result::Result<Caller, Rejection> {
    if !state.auth.config.enabled {
        return Ok(Caller::Account(Principal::System));
    }
    match credentials(headers) {
        Credentials::None => Ok(Caller::Anonymous),
        Credentials::Malformed => Err(Rejection::BadCredentials("malformed Authorization header".into())),
        Credentials::Basic { user, secret } => match state.tenancy.authenticate(&user, &secret, client_ip).await {
            Ok(p) => Ok(Caller::Account(p)),
            Err(Error::TooManyRequests { retry_after_secs }) => Err(Rejection::Throttled(retry_after_secs)),
            Err(e @ (Error::Unavailable { .. } | Error::Backend(_))) => Err(Rejection::Failed(e)),
            Err(e) => Err(Rejection::BadCredentials(e.to_string())),
        },
        Credentials::Bearer(token) => token_caller(state, &token).await,
    }
}

/// Tokens whose signature was checked lately, by SHA-256 of the token: a client sends one
/// token with many requests, and an Ed25519 verification costs more than serving a manifest.
pub struct VerifiedTokens(moka::sync::Cache<[u8; 32], Arc<Claims>>);

impl Default for VerifiedTokens {
    fn default() -> Self {
        VerifiedTokens(moka::sync::Cache::builder().max_capacity(20_000).time_to_live(Duration::from_secs(60)).build())
    }
}

/// The caller a registry token stands for, if it verifies.
async fn token_caller(state: &AppState, token: &str) -> std::result::Result<Caller, Rejection> {
    let now = now_secs();
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let claims = match state.auth.verified.0.get(&key) {
        // Still within its validity window (the cache outlives short tokens otherwise).
        Some(claims) if now >= claims.nbf - 30 && now < claims.exp + 30 => claims,
        _ => {
            let claims = jwt::verify(&state.auth.keys, token, &state.auth.config.service, now)
                .await
                .map_err(|e| Rejection::BadToken(e.to_string()))?;
            let claims = Arc::new(claims);
            state.auth.verified.0.insert(key, claims.clone());
            claims
        }
    };
    let claims = Claims::clone(&claims);
    let principal = match claims.berth.kind.as_str() {
        "user" => Principal::User { id: claims.berth.id, name: claims.sub, superuser: claims.berth.superuser },
        "robot" => Principal::Robot { id: claims.berth.id, name: claims.sub },
        "anonymous" => Principal::Anonymous,
        _ => return Err(Rejection::BadToken("unknown subject kind".into())),
    };
    Ok(Caller::Token { principal, access: claims.access })
}

pub fn now_secs() -> i64 {
    berth_core::time::now_ms() / 1000
}

/// What a `/v2` request needs.
pub enum Need<'a> {
    /// `GET /v2/`: any authenticated caller.
    Authenticated,
    /// The catalog: anyone; it lists what the caller may read.
    Catalog,
    Pull(&'a RepositoryName),
    Push(&'a RepositoryName),
    Delete(&'a RepositoryName),
}

impl Need<'_> {
    /// The token scope that would satisfy it.
    pub fn scope(&self) -> Option<String> {
        match self {
            Need::Authenticated => None,
            Need::Catalog => Some("registry:catalog:*".into()),
            Need::Pull(n) => Some(format!("repository:{n}:pull")),
            Need::Push(n) => Some(format!("repository:{n}:pull,push")),
            Need::Delete(n) => Some(format!("repository:{n}:delete")),
        }
    }

    fn allowed_by(&self, access: &RepoAccess) -> bool {
        match self {
            Need::Authenticated | Need::Catalog => true,
            Need::Pull(_) => access.pull,
            Need::Push(_) | Need::Delete(_) => access.push,
        }
    }

    fn granted_by(&self, grants: &[Access]) -> bool {
        let (name, accepted): (&RepositoryName, &[&str]) = match self {
            Need::Authenticated | Need::Catalog => return true,
            Need::Pull(n) => (n, &["pull"]),
            Need::Push(n) => (n, &["push"]),
            Need::Delete(n) => (n, &["delete", "push"]),
        };
        grants.iter().any(|g| {
            g.kind == "repository"
                && g.name == name.as_str()
                && g.actions.iter().any(|a| accepted.contains(&a.as_str()))
        })
    }
}

/// The outcome of an authorization check.
pub enum Decision {
    Allow(Principal),
    /// 401 with a challenge for this scope: credentials (or a broader token) might help.
    Challenge(Option<String>),
    /// Answer as if the repository did not exist (the caller cannot read it).
    NotVisible,
    /// 403: the caller is known and may not do this.
    Denied,
}

pub async fn decide(state: &AppState, caller: &Caller, need: &Need<'_>) -> Result<Decision> {
    let name = match need {
        Need::Authenticated => {
            return Ok(match caller {
                Caller::Anonymous => Decision::Challenge(None),
                _ => Decision::Allow(caller.principal().clone()),
            });
        }
        Need::Catalog => return Ok(Decision::Allow(caller.principal().clone())),
        Need::Pull(n) | Need::Push(n) | Need::Delete(n) => *n,
    };
    if let Caller::Token { principal, access } = caller
        && need.granted_by(access)
    {
        return Ok(Decision::Allow(principal.clone()));
    }
    let principal = caller.principal();
    let access = state.tenancy.access(principal, name).await?;
    if need.allowed_by(&access) {
        return Ok(match caller {
            // A token without this grant, for someone who could have it: ask for a new one.
            Caller::Token { .. } => Decision::Challenge(need.scope()),
            _ => Decision::Allow(principal.clone()),
        });
    }
    Ok(if matches!(principal, Principal::Anonymous) {
        Decision::Challenge(need.scope())
    } else if matches!(need, Need::Pull(_)) {
        Decision::NotVisible
    } else {
        Decision::Denied
    })
}

/// `WWW-Authenticate` for a Bearer challenge.
pub fn challenge(state: &AppState, headers: &HeaderMap, scope: Option<&str>, error: Option<&str>) -> String {
    let mut value = format!("Bearer realm=\"{}\",service=\"{}\"", realm(state, headers), state.auth.config.service);
    if let Some(scope) = scope {
        value.push_str(&format!(",scope=\"{scope}\""));
    }
    if let Some(error) = error {
        value.push_str(&format!(",error=\"{error}\""));
    }
    value
}

/// The token endpoint's URL as clients must see it.
fn realm(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(base) = &state.auth.config.public_url {
        return format!("{}/v2/auth", base.trim_end_matches('/'));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .unwrap_or("localhost");
    // The edge leaves the scheme the client used here (see `forwarded::settle_scheme`).
    let scheme = match headers.get("x-forwarded-proto") {
        Some(proto) if proto == "https" => "https",
        _ => "http",
    };
    format!("{scheme}://{host}/v2/auth")
}

/// The caller of a management API request: Basic credentials, a personal API token, or a
/// registry token, as bearer. Anonymous when none (the use cases decide what that may do).
pub async fn api_principal(state: &AppState, headers: &HeaderMap, client_ip: Option<IpAddr>) -> Result<Principal> {
    if !state.auth.config.enabled {
        return Ok(Principal::System);
    }
    match credentials(headers) {
        Credentials::None => Ok(Principal::Anonymous),
        Credentials::Malformed => Err(Error::Unauthorized("malformed Authorization header".into())),
        Credentials::Basic { user, secret } => state.tenancy.authenticate(&user, &secret, client_ip).await,
        Credentials::Bearer(token) if token.starts_with(API_TOKEN_PREFIX) => {
            state.tenancy.authenticate_api_token(&token).await
        }
        Credentials::Bearer(token) => match token_caller(state, &token).await {
            Ok(caller) => Ok(caller.principal().clone()),
            Err(_) => Err(Error::Unauthorized("invalid or expired token".into())),
        },
    }
}

//! `GET|POST /v2/auth`: the Docker token endpoint. Basic credentials (or none, for anonymous
//! pulls of public repositories) and one or more `scope`s in; a signed token granting the
//! intersection of what was asked and what is allowed out.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use berth_core::Error;
use berth_core::access::Principal;
use berth_oci::RepositoryName;
use http_body_util::{BodyExt, Limited};
use serde_json::json;

use super::jwt::{self, Access, Claims, Subject};
use super::{Credentials, credentials, now_secs};
use crate::TrafficClass;
use crate::{AppState, ClientAddr};

/// Scopes honoured per request; more are ignored.
const MAX_SCOPES: usize = 32;

pub async fn token_endpoint(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response<Body> {
    // Logins hash passwords: their own budget keeps a login storm from eating every core.
    let client_ip = ClientAddr::ip_of(request.extensions());
    let admission = match state.limits.admit(TrafficClass::Auth, client_ip).await {
        Ok(admission) => admission,
        Err(shed) => return error(shed),
    };
    match admission.run(issue(&state, request, client_ip)).await {
        Ok(response) => response,
        Err(e) => error(e),
    }
}

struct TokenRequest {
    service: Option<String>,
    scopes: Vec<String>,
    /// `(username, secret)` from Basic auth or an OAuth2 password grant.
    login: Option<(String, String)>,
}

async fn read_request(request: Request<Body>) -> Result<TokenRequest, Error> {
    let (parts, body) = request.into_parts();
    let basic = match credentials(&parts.headers) {
        Credentials::Basic { user, secret } => Some((user, secret)),
        Credentials::None | Credentials::Bearer(_) => None,
        Credentials::Malformed => return Err(Error::Unauthorized("malformed Authorization header".into())),
    };
    if parts.method == Method::POST {
        // OAuth2 form (containerd): grant_type=password with username/password.
        let form = Limited::new(body, 64 * 1024)
            .collect()
            .await
            .map_err(|_| Error::InvalidInput("unreadable or oversized form".into()))?
            .to_bytes();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&form).into_owned().collect();
        let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let login = match get("grant_type").as_deref() {
            Some("password") => match (get("username"), get("password")) {
                (Some(u), Some(p)) => Some((u, p)),
                _ => return Err(Error::InvalidInput("a password grant needs username and password".into())),
            },
            Some(other) => return Err(Error::InvalidInput(format!("unsupported grant_type {other:?}"))),
            None => basic,
        };
        let scopes = pairs.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| split_scopes(v)).collect();
        return Ok(TokenRequest { service: get("service"), scopes, login });
    }
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let service = pairs.iter().find(|(k, _)| k == "service").map(|(_, v)| v.clone());
    let scopes = pairs.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| split_scopes(v)).collect();
    Ok(TokenRequest { service, scopes, login: basic })
}

/// Several scopes may share one parameter, space-separated.
fn split_scopes(value: &str) -> Vec<String> {
    value.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

async fn issue(state: &AppState, request: Request<Body>, client_ip: Option<IpAddr>) -> Result<Response<Body>, Error> {
    if request.method() != Method::GET && request.method() != Method::POST {
        return Err(Error::Unsupported("the token endpoint takes GET or POST".into()));
    }
    let req = read_request(request).await?;
    if let Some(service) = &req.service
        && service != &state.auth.config.service
    {
        return Err(Error::InvalidInput(format!("unknown service {service:?}")));
    }
    let principal = match &req.login {
        Some((user, secret)) => state.tenancy.authenticate(user, secret, client_ip).await?,
        None => Principal::Anonymous,
    };
    state.limits.check_principal(TrafficClass::Auth, &principal)?;
    let mut access = Vec::new();
    for scope in req.scopes.iter().take(MAX_SCOPES) {
        if let Some(granted) = grant(state, &principal, scope).await? {
            access.push(granted);
        }
    }
    let now = now_secs();
    let lifetime = i64::try_from(state.auth.config.token_lifetime.as_secs()).unwrap_or(300);
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).map_err(Error::backend)?;
    let (kind, id, superuser) = match &principal {
        Principal::User { id, superuser, .. } => ("user", *id, *superuser),
        Principal::Robot { id, .. } => ("robot", *id, false),
        Principal::Anonymous | Principal::System => ("anonymous", 0, false),
    };
    let claims = Claims {
        iss: jwt::issuer().into(),
        sub: principal.name().to_owned(),
        aud: state.auth.config.service.clone(),
        exp: now + lifetime,
        nbf: now,
        iat: now,
        jti: hex::encode(jti),
        access,
        berth: Subject { kind: kind.into(), id, superuser },
    };
    let token = jwt::sign(&state.auth.keys, &claims).map_err(Error::backend)?;
    let body = json!({
        "token": token,
        "access_token": token,
        "expires_in": lifetime,
        "issued_at": rfc3339(now),
    });
    let mut response = crate::oci::json_response(StatusCode::OK, &body);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// What of `scope` (`type:name:actions`) the principal gets; `None` for nothing.
async fn grant(state: &AppState, principal: &Principal, scope: &str) -> Result<Option<Access>, Error> {
    let Some((kind, rest)) = scope.split_once(':') else { return Ok(None) };
    let Some((name, actions)) = rest.rsplit_once(':') else { return Ok(None) };
    let requested: Vec<&str> = actions.split(',').map(str::trim).collect();
    match kind {
        "registry" if name == "catalog" => {
            Ok(Some(Access { kind: "registry".into(), name: "catalog".into(), actions: vec!["*".into()] }))
        }
        // `repository(plugin)` and friends name the same thing.
        kind if kind == "repository" || kind.starts_with("repository(") => {
            let Ok(repo) = RepositoryName::parse(name) else { return Ok(None) };
            let allowed = state.tenancy.access(principal, &repo).await?;
            let mut actions: Vec<String> = Vec::new();
            for (action, ok) in [("pull", allowed.pull), ("push", allowed.push), ("delete", allowed.push)] {
                if ok && (requested.contains(&action) || requested.contains(&"*")) {
                    actions.push(action.into());
                }
            }
            Ok(Some(Access { kind: "repository".into(), name: repo.to_string(), actions }))
        }
        _ => Ok(None),
    }
}

fn error(e: Error) -> Response<Body> {
    let (status, code) = match &e {
        Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        Error::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS"),
        Error::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        Error::InvalidInput(_) | Error::Unsupported(_) => (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
    };
    let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "token endpoint failed");
        "internal error; see the server log".to_owned()
    } else {
        e.to_string()
    };
    let mut response =
        crate::oci::json_response(status, &json!({ "errors": [{ "code": code, "message": message, "detail": null }] }));
    if let Error::TooManyRequests { retry_after_secs } | Error::Unavailable { retry_after_secs, .. } = e {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    }
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"berth\""));
    }
    response
}

/// `2026-11-26T16:05:53Z` from Unix seconds.
fn rfc3339(secs: i64) -> String {
    let (year, month, day, hour, minute, second) = berth_core::time::civil_utc(secs);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_709_153), "2026-11-26T16:05:53Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}

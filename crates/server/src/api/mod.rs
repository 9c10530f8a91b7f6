//! The management REST API under `/api/v1` (Quay-shaped where sensible). Handlers are thin:
//! extract the caller and arguments, call one tenancy use case (which checks the caller's
//! rights), render a view. Every route is listed once in [`routes`], which builds the router
//! and tells the OpenAPI check and the authorization matrix what exists.

mod accounts;
mod error;
mod logs;
mod organizations;
mod repositories;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use berth_core::Error;
use berth_core::access::Actor;
use serde::de::DeserializeOwned;

pub use error::{ApiError, ApiResult};

use crate::{AppState, ClientAddr};

/// The OpenAPI 3 description of this API, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

type State = Arc<AppState>;

/// Every route of the API: method, path (axum syntax) and handler.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<State>)> {
    use accounts as a;
    use organizations as o;
    use repositories as r;
    vec![
        (Method::GET, "/api/v1/openapi.json", get(openapi)),
        (Method::GET, "/api/v1/user", get(a::me)),
        (Method::PUT, "/api/v1/user/password", put(a::change_my_password)),
        (Method::GET, "/api/v1/user/tokens", get(a::my_tokens)),
        (Method::POST, "/api/v1/user/tokens", post(a::create_token)),
        (Method::DELETE, "/api/v1/user/tokens/{token}", delete(a::delete_token)),
        (Method::GET, "/api/v1/users", get(a::list_users)),
        (Method::POST, "/api/v1/users", post(a::create_user)),
        (Method::GET, "/api/v1/users/{user}", get(a::user)),
        (Method::DELETE, "/api/v1/users/{user}", delete(a::delete_user)),
        (Method::PUT, "/api/v1/users/{user}/password", put(a::set_password)),
        (Method::PUT, "/api/v1/users/{user}/superuser", put(a::set_superuser)),
        (Method::GET, "/api/v1/organizations", get(o::list)),
        (Method::POST, "/api/v1/organizations", post(o::create)),
        (Method::GET, "/api/v1/organizations/{org}", get(o::show)),
        (Method::DELETE, "/api/v1/organizations/{org}", delete(o::remove)),
        (Method::GET, "/api/v1/organizations/{org}/teams", get(o::teams)),
        (Method::PUT, "/api/v1/organizations/{org}/teams/{team}", put(o::put_team)),
        (Method::DELETE, "/api/v1/organizations/{org}/teams/{team}", delete(o::delete_team)),
        (Method::GET, "/api/v1/organizations/{org}/teams/{team}/members", get(o::members)),
        (Method::PUT, "/api/v1/organizations/{org}/teams/{team}/members/{member}", put(o::add_member)),
        (Method::DELETE, "/api/v1/organizations/{org}/teams/{team}/members/{member}", delete(o::remove_member)),
        (Method::GET, "/api/v1/organizations/{org}/defaultpermissions", get(o::default_permissions)),
        (Method::POST, "/api/v1/organizations/{org}/defaultpermissions", post(o::add_default_permission)),
        (Method::DELETE, "/api/v1/organizations/{org}/defaultpermissions/{id}", delete(o::remove_default_permission)),
        (Method::GET, "/api/v1/namespaces/{namespace}/robots", get(o::robots)),
        (Method::PUT, "/api/v1/namespaces/{namespace}/robots/{robot}", put(o::create_robot)),
        (Method::POST, "/api/v1/namespaces/{namespace}/robots/{robot}/regenerate", post(o::regenerate_robot)),
        (Method::DELETE, "/api/v1/namespaces/{namespace}/robots/{robot}", delete(o::delete_robot)),
        (Method::GET, "/api/v1/repositories", get(r::list)),
        (Method::POST, "/api/v1/repositories", post(r::create)),
        (Method::GET, "/api/v1/repositories/{namespace}/{repository}", get(r::show)),
        (Method::DELETE, "/api/v1/repositories/{namespace}/{repository}", delete(r::remove)),
        (Method::PUT, "/api/v1/repositories/{namespace}/{repository}/visibility", put(r::set_visibility)),
        (Method::GET, "/api/v1/repositories/{namespace}/{repository}/permissions", get(r::permissions)),
        (
            Method::PUT,
            "/api/v1/repositories/{namespace}/{repository}/permissions/{kind}/{name}",
            put(r::set_permission),
        ),
        (
            Method::DELETE,
            "/api/v1/repositories/{namespace}/{repository}/permissions/{kind}/{name}",
            delete(r::remove_permission),
        ),
        (Method::GET, "/api/v1/repositories/{namespace}/{repository}/tags", get(r::tags)),
        (Method::GET, "/api/v1/logs", get(logs::list)),
        (Method::POST, "/api/v1/signing-keys/rotate", post(logs::rotate_signing_key)),
    ]
}

/// The API's router, built from [`routes`]; unknown paths answer with problem JSON too.
pub fn router(state: State) -> Router<State> {
    let mut router = Router::new();
    for (_, path, handler) in routes() {
        router = router.route(path, handler);
    }
    router
        .fallback(|| async { ApiError(Error::NotFound("no such API endpoint".into())) })
        .layer(axum::middleware::map_response(routing_errors_as_problems))
        .layer(axum::middleware::from_fn_with_state(state, admit))
}

/// Admits a request into the API's traffic class, or sheds it with a 429 problem.
async fn admit(
    axum::extract::State(state): axum::extract::State<State>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let client_ip = ClientAddr::ip_of(request.extensions());
    match state.limits.admit(crate::TrafficClass::Api, client_ip).await {
        // API answers are complete when the handler returns; the slot goes with them.
        Ok(admission) => admission.run(next.run(request)).await,
        Err(shed) => ApiError(shed).into_response(),
    }
}

/// Errors axum answers itself, before any handler runs, come as plain text: a body over its
/// buffering limit (2 MiB) and a method the path does not take. Answer them with problem
/// JSON like every other error.
async fn routing_errors_as_problems(response: Response) -> Response {
    let problem = response.headers().get(header::CONTENT_TYPE).is_some_and(|ct| ct == "application/problem+json");
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE if !problem => {
            ApiError(Error::TooLarge("request bodies are limited to 64 KiB".into())).into_response()
        }
        StatusCode::METHOD_NOT_ALLOWED if !problem => {
            let mut refused = error::problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            );
            if let Some(allow) = response.headers().get(header::ALLOW) {
                refused.headers_mut().insert(header::ALLOW, allow.clone());
            }
            refused
        }
        _ => response,
    }
}

async fn openapi() -> Response {
    let mut response = OPENAPI.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The authenticated caller (anonymous when no credentials came).
pub struct Caller(pub Actor);

impl FromRequestParts<State> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let client_ip = ClientAddr::ip_of(&parts.extensions);
        let principal = crate::auth::api_principal(state, &parts.headers, client_ip).await?;
        state.limits.check_principal(crate::TrafficClass::Api, &principal)?;
        Ok(Caller(Actor { principal, client_ip }))
    }
}

/// Path parameters, with malformed ones reported as problem JSON.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<State> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Params(value)),
            Err(e) => Err(ApiError(Error::InvalidInput(format!("bad path: {e}")))),
        }
    }
}

/// The query string as key/value pairs.
pub struct Query(Vec<(String, String)>);

impl FromRequestParts<State> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let RawQuery(raw) = RawQuery::from_request_parts(parts, state).await.unwrap_or(RawQuery(None));
        Ok(Query(form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()))
    }
}

impl Query {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// A numeric parameter; present but not a number is an error.
    pub fn number<N: std::str::FromStr>(&self, key: &str) -> ApiResult<Option<N>> {
        self.get(key)
            .map(|v| v.parse().map_err(|_| ApiError(Error::InvalidInput(format!("{key}={v:?} is not a valid number")))))
            .transpose()
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "yes"))
    }
}

/// A JSON request body of type `T` (at most 64 KiB).
pub fn json_body<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    if body.len() > 64 * 1024 {
        return Err(ApiError(Error::TooLarge("request bodies are limited to 64 KiB".into())));
    }
    serde_json::from_slice(body).map_err(|e| ApiError(Error::InvalidInput(format!("invalid JSON body: {e}"))))
}

/// A JSON response with a status.
pub fn reply(status: StatusCode, value: impl serde::Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}

/// `204 No Content`.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

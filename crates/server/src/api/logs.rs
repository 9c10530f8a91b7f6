//! The audit log, and rotation of the token signing key.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::Error;
use berth_core::tenancy::records::AuditFilter;
use serde_json::json;

use super::views::{LogEntry, Page};
use super::{ApiError, ApiResult, Caller, Query, reply};

/// Audit rows, newest first, filtered by `namespace`, `repository`, `actor`, `action`,
/// `since`/`until` (Unix milliseconds); `before=ID` continues a listing.
pub async fn list(Caller(actor): Caller, State(state): State<super::State>, query: Query) -> ApiResult<Response> {
    let owned = |k: &str| query.get(k).map(str::to_owned);
    let limit = query.number::<u32>("limit")?.unwrap_or(100).min(berth_core::tenancy::MAX_PAGE);
    let filter = AuditFilter {
        namespace: owned("namespace"),
        repository: owned("repository"),
        actor: owned("actor"),
        action: owned("action"),
        since: query.number("since")?,
        until: query.number("until")?,
        before: query.number("before")?,
        limit,
    };
    let entries: Vec<LogEntry> =
        state.tenancy.audit_log(&actor, &filter).await?.into_iter().map(LogEntry::from).collect();
    Ok(reply(StatusCode::OK, Page::keyed(entries, limit, |e| e.id.to_string())))
}

/// Superusers only: sign new tokens with a new key (old tokens stay valid until they expire).
pub async fn rotate_signing_key(Caller(actor): Caller, State(state): State<super::State>) -> ApiResult<Response> {
    match actor.principal {
        _ if actor.principal.is_superuser() => {}
        berth_core::access::Principal::Anonymous => {
            return Err(ApiError(Error::Unauthorized("authentication required".into())));
        }
        _ => return Err(ApiError(Error::Denied("only superusers rotate signing keys".into()))),
    }
    let id = state.auth.keys.rotate(state.auth.config.token_lifetime).await.map_err(Error::backend)?;
    Ok(reply(StatusCode::OK, json!({ "key_id": id })))
}

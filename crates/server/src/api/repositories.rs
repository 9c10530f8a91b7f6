//! Repositories: listing, creation, visibility, deletion, permissions and tags. A
//! repository is addressed as `{namespace}/{repository}`, where a nested name's slashes are
//! percent-encoded (`team/app%2Fsub`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::access::{GranteeKind, Role, Visibility};
use berth_core::tenancy::records::Grantee;
use serde::Deserialize;

use super::accounts::page;
use super::views::{Page, Permission, Repository, Tag};
use super::{ApiResult, Caller, Params, Query, json_body, no_content, reply};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRepository {
    name: String,
    #[serde(default = "private")]
    visibility: String,
}

fn private() -> String {
    "private".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VisibilitySpec {
    visibility: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSpec {
    role: String,
}

fn full_name(namespace: &str, repository: &str) -> String {
    format!("{namespace}/{repository}")
}

pub async fn list(Caller(actor): Caller, State(state): State<super::State>, query: Query) -> ApiResult<Response> {
    let page = page(&query)?;
    let repos: Vec<Repository> = state
        .tenancy
        .list_repositories(&actor, query.get("namespace"), &page)
        .await?
        .into_iter()
        .map(Repository::from)
        .collect();
    Ok(reply(
        StatusCode::OK,
        Page::keyed(repos, page.limit.unwrap_or(100).min(berth_core::tenancy::MAX_PAGE), |r| r.name.clone()),
    ))
}

pub async fn create(Caller(actor): Caller, State(state): State<super::State>, body: Bytes) -> ApiResult<Response> {
    let new: NewRepository = json_body(&body)?;
    let visibility: Visibility = new.visibility.parse()?;
    let created = state.tenancy.create_repository(&actor, &new.name, visibility).await?;
    state
        .registry
        .forget(
            &berth_oci::RepositoryName::parse(&created.name)
                .map_err(|e| berth_core::Error::InvalidInput(e.to_string()))?,
        )
        .await;
    Ok(reply(StatusCode::CREATED, Repository::from(created)))
}

pub async fn show(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((ns, repo)): Params<(String, String)>,
) -> ApiResult<Response> {
    Ok(reply(StatusCode::OK, Repository::from(state.tenancy.repository(&actor, &full_name(&ns, &repo)).await?)))
}

pub async fn remove(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((ns, repo)): Params<(String, String)>,
) -> ApiResult<Response> {
    let name = full_name(&ns, &repo);
    state.tenancy.delete_repository(&actor, &name, &state.registry).await?;
    state.apps.forget(&name).await;
    Ok(no_content())
}

pub async fn set_visibility(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((ns, repo)): Params<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let VisibilitySpec { visibility } = json_body(&body)?;
    let name = full_name(&ns, &repo);
    state.tenancy.set_visibility(&actor, &name, visibility.parse()?, &state.registry).await?;
    state.apps.forget(&name).await;
    Ok(no_content())
}

pub async fn permissions(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((ns, repo)): Params<(String, String)>,
) -> ApiResult<Response> {
    let grants: Vec<Permission> =
        state.tenancy.permissions(&actor, &full_name(&ns, &repo)).await?.into_iter().map(Permission::from).collect();
    Ok(reply(StatusCode::OK, grants))
}

pub async fn set_permission(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((ns, repo, kind, name)): Params<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let RoleSpec { role } = json_body(&body)?;
    let grantee = Grantee { kind: kind.parse::<GranteeKind>()?, name };
    state.tenancy.set_permission(&actor, &full_name(&ns, &repo), &grantee, role.parse::<Role>()?).await?;
    Ok(no_content())
}

pub async fn remove_permission(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((ns, repo, kind, name)): Params<(String, String, String, String)>,
) -> ApiResult<Response> {
    let grantee = Grantee { kind: kind.parse::<GranteeKind>()?, name };
    state.tenancy.remove_permission(&actor, &full_name(&ns, &repo), &grantee).await?;
    Ok(no_content())
}

/// Live tags, or with `?history=true` every version each tag had, newest first;
/// `?before=ID` continues after the last one seen.
pub async fn tags(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((ns, repo)): Params<(String, String)>,
    query: Query,
) -> ApiResult<Response> {
    let limit = query.number::<u32>("limit")?;
    let tags: Vec<Tag> = state
        .tenancy
        .tags(&actor, &full_name(&ns, &repo), query.flag("history"), query.number("before")?, limit)
        .await?
        .into_iter()
        .map(Tag::from)
        .collect();
    let full = limit.unwrap_or(100).min(berth_core::tenancy::MAX_PAGE);
    Ok(reply(StatusCode::OK, Page::keyed(tags, full, |t| t.id.to_string())))
}

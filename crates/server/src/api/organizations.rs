//! Organizations, their teams and members and default permissions; robots of users and
//! organizations.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::access::{GranteeKind, Role, TeamRole};
use berth_core::tenancy::records::{Grantee, Member};
use serde::Deserialize;

use super::accounts::page;
use super::views::{DefaultPermission, Organization, Page, Robot, Team, TeamMember};
use super::{ApiResult, Caller, Params, Query, json_body, no_content, reply};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrganization {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamSpec {
    role: String,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantSpec {
    kind: String,
    name: String,
    role: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RobotSpec {
    #[serde(default)]
    description: String,
}

pub async fn list(Caller(actor): Caller, State(state): State<super::State>, query: Query) -> ApiResult<Response> {
    let page = page(&query)?;
    let orgs: Vec<Organization> =
        state.tenancy.list_organizations(&actor, &page).await?.into_iter().map(Organization::from).collect();
    Ok(reply(
        StatusCode::OK,
        Page::keyed(orgs, page.limit.unwrap_or(100).min(berth_core::tenancy::MAX_PAGE), |o| o.name.clone()),
    ))
}

pub async fn create(Caller(actor): Caller, State(state): State<super::State>, body: Bytes) -> ApiResult<Response> {
    let NewOrganization { name } = json_body(&body)?;
    Ok(reply(StatusCode::CREATED, Organization::from(state.tenancy.create_organization(&actor, &name).await?)))
}

pub async fn show(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params(org): Params<String>,
) -> ApiResult<Response> {
    Ok(reply(StatusCode::OK, Organization::from(state.tenancy.organization(&actor, &org).await?)))
}

pub async fn remove(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params(org): Params<String>,
) -> ApiResult<Response> {
    state.tenancy.delete_organization(&actor, &org).await?;
    state.apps.forget_namespace(&org).await;
    Ok(no_content())
}

pub async fn teams(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params(org): Params<String>,
) -> ApiResult<Response> {
    let teams: Vec<Team> = state.tenancy.teams(&actor, &org).await?.into_iter().map(Team::from).collect();
    Ok(reply(StatusCode::OK, teams))
}

pub async fn put_team(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((org, team)): Params<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let spec: TeamSpec = json_body(&body)?;
    let role: TeamRole = spec.role.parse()?;
    Ok(reply(StatusCode::OK, Team::from(state.tenancy.put_team(&actor, &org, &team, role, &spec.description).await?)))
}

pub async fn delete_team(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((org, team)): Params<(String, String)>,
) -> ApiResult<Response> {
    state.tenancy.delete_team(&actor, &org, &team).await?;
    Ok(no_content())
}

pub async fn members(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((org, team)): Params<(String, String)>,
) -> ApiResult<Response> {
    let members: Vec<TeamMember> =
        state.tenancy.team_members(&actor, &org, &team).await?.into_iter().map(TeamMember::from).collect();
    Ok(reply(StatusCode::OK, members))
}

pub async fn add_member(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((org, team, member)): Params<(String, String, String)>,
) -> ApiResult<Response> {
    state.tenancy.add_team_member(&actor, &org, &team, &Member::from_name(&member)).await?;
    Ok(no_content())
}

pub async fn remove_member(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((org, team, member)): Params<(String, String, String)>,
) -> ApiResult<Response> {
    state.tenancy.remove_team_member(&actor, &org, &team, &Member::from_name(&member)).await?;
    Ok(no_content())
}

pub async fn default_permissions(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params(org): Params<String>,
) -> ApiResult<Response> {
    let grants: Vec<DefaultPermission> =
        state.tenancy.default_permissions(&actor, &org).await?.into_iter().map(DefaultPermission::from).collect();
    Ok(reply(StatusCode::OK, grants))
}

pub async fn add_default_permission(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params(org): Params<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let spec: GrantSpec = json_body(&body)?;
    let grantee = Grantee { kind: spec.kind.parse::<GranteeKind>()?, name: spec.name };
    let role: Role = spec.role.parse()?;
    let created = state.tenancy.add_default_permission(&actor, &org, &grantee, role).await?;
    Ok(reply(StatusCode::CREATED, DefaultPermission::from(created)))
}

pub async fn remove_default_permission(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((org, id)): Params<(String, i64)>,
) -> ApiResult<Response> {
    state.tenancy.remove_default_permission(&actor, &org, id).await?;
    Ok(no_content())
}

pub async fn robots(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params(namespace): Params<String>,
) -> ApiResult<Response> {
    let robots: Vec<Robot> =
        state.tenancy.robots(&actor, &namespace).await?.into_iter().map(|r| Robot::new(r, None)).collect();
    Ok(reply(StatusCode::OK, robots))
}

pub async fn create_robot(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((namespace, robot)): Params<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let spec: RobotSpec = if body.is_empty() { RobotSpec::default() } else { json_body(&body)? };
    let created = state.tenancy.create_robot(&actor, &namespace, &robot, &spec.description).await?;
    Ok(reply(StatusCode::CREATED, Robot::new(created.robot, Some(created.token))))
}

pub async fn regenerate_robot(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((namespace, robot)): Params<(String, String)>,
) -> ApiResult<Response> {
    let created = state.tenancy.regenerate_robot_token(&actor, &format!("{namespace}+{robot}")).await?;
    Ok(reply(StatusCode::OK, Robot::new(created.robot, Some(created.token))))
}

pub async fn delete_robot(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params((namespace, robot)): Params<(String, String)>,
) -> ApiResult<Response> {
    state.tenancy.delete_robot(&actor, &format!("{namespace}+{robot}")).await?;
    Ok(no_content())
}

//! The caller's own account and personal tokens; users (superusers only).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::tenancy::Page;
use serde::Deserialize;

use super::views::{ApiToken, Page as ViewPage, User};
use super::{ApiResult, Caller, Params, Query, json_body, no_content, reply};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    password: String,
    #[serde(default)]
    superuser: bool,
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Password {
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Superuser {
    superuser: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
}

pub fn page(query: &Query) -> ApiResult<Page> {
    Ok(Page { last: query.get("last").map(str::to_owned), limit: query.number("limit")? })
}

pub async fn me(Caller(actor): Caller, State(state): State<super::State>) -> ApiResult<Response> {
    let name = actor.principal.name().to_owned();
    let user = state.tenancy.user(&actor, &name).await?;
    Ok(reply(StatusCode::OK, User::from(user)))
}

pub async fn change_my_password(
    Caller(actor): Caller,
    State(state): State<super::State>,
    body: Bytes,
) -> ApiResult<Response> {
    let Password { password } = json_body(&body)?;
    let name = actor.principal.name().to_owned();
    state.tenancy.change_password(&actor, &name, password).await?;
    Ok(no_content())
}

pub async fn my_tokens(Caller(actor): Caller, State(state): State<super::State>) -> ApiResult<Response> {
    let tokens: Vec<ApiToken> = state.tenancy.api_tokens(&actor).await?.into_iter().map(ApiToken::from).collect();
    Ok(reply(StatusCode::OK, tokens))
}

pub async fn create_token(
    Caller(actor): Caller,
    State(state): State<super::State>,
    body: Bytes,
) -> ApiResult<Response> {
    let NewToken { name } = json_body(&body)?;
    let created = state.tenancy.create_api_token(&actor, &name).await?;
    Ok(reply(StatusCode::CREATED, ApiToken { token: Some(created.token), ..ApiToken::from(created.record) }))
}

pub async fn delete_token(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params(token): Params<String>,
) -> ApiResult<Response> {
    state.tenancy.delete_api_token(&actor, &token).await?;
    Ok(no_content())
}

pub async fn list_users(Caller(actor): Caller, State(state): State<super::State>, query: Query) -> ApiResult<Response> {
    let page = page(&query)?;
    let users: Vec<User> = state.tenancy.list_users(&actor, &page).await?.into_iter().map(User::from).collect();
    Ok(reply(
        StatusCode::OK,
        ViewPage::keyed(users, page.limit.unwrap_or(100).min(berth_core::tenancy::MAX_PAGE), |u| u.name.clone()),
    ))
}

pub async fn create_user(Caller(actor): Caller, State(state): State<super::State>, body: Bytes) -> ApiResult<Response> {
    let new: NewUser = json_body(&body)?;
    let user = state.tenancy.create_user(&actor, &new.name, new.password, new.superuser, new.email.as_deref()).await?;
    Ok(reply(StatusCode::CREATED, User::from(user)))
}

pub async fn user(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params(name): Params<String>,
) -> ApiResult<Response> {
    Ok(reply(StatusCode::OK, User::from(state.tenancy.user(&actor, &name).await?)))
}

pub async fn delete_user(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params(name): Params<String>,
) -> ApiResult<Response> {
    state.tenancy.delete_user(&actor, &name).await?;
    state.apps.forget_namespace(&name).await;
    Ok(no_content())
}

pub async fn set_password(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params(name): Params<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let Password { password } = json_body(&body)?;
    state.tenancy.change_password(&actor, &name, password).await?;
    Ok(no_content())
}

pub async fn set_superuser(
    Caller(actor): Caller,
    State(state): State<super::State>,
    Params(name): Params<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let Superuser { superuser } = json_body(&body)?;
    state.tenancy.set_superuser(&actor, &name, superuser).await?;
    Ok(no_content())
}

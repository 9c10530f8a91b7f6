//! The `berth admin` subcommands, each turned into one management API request. The same
//! request goes to a running server or, offline, straight to the API handlers over the data
//! directory, so both modes behave alike.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::{Value, json};

/// One management API request.
#[derive(Debug)]
pub struct ApiCall {
    pub method: Method,
    /// Path and query, e.g. `/api/v1/users?limit=10`.
    pub target: String,
    pub body: Option<Value>,
}

/// A password taken from a file, standard input or a prompt.
#[derive(Args, Debug)]
pub struct PasswordSource {
    /// Read the password from standard input (first line).
    #[arg(long, conflicts_with = "password_file")]
    pub password_stdin: bool,
    /// Read the password from this file (first line).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

impl PasswordSource {
    pub fn read(&self) -> anyhow::Result<String> {
        super::read_password(self.password_stdin, self.password_file.as_deref())
    }
}

/// Options that page through a listing.
#[derive(Args, Debug)]
pub struct Paging {
    /// Most entries to return.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Continue after this entry (the `next` cursor of the previous page).
    #[arg(long)]
    pub after: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ApiCommand {
    /// Show the account the credentials belong to.
    Whoami,
    /// Change your own password.
    Passwd(PasswordSource),
    /// Your personal API tokens (online only: they belong to the account you log in as).
    #[command(subcommand)]
    Tokens(TokenCommand),
    /// User accounts (superusers only, except `show`).
    #[command(subcommand)]
    Users(UserCommand),
    /// Organizations.
    #[command(subcommand)]
    Orgs(OrgCommand),
    /// An organization's teams.
    #[command(subcommand)]
    Teams(TeamCommand),
    /// A team's members.
    #[command(subcommand)]
    Members(MemberCommand),
    /// An organization's default permissions for new repositories.
    #[command(subcommand, name = "default-perms")]
    DefaultPerms(DefaultPermCommand),
    /// Robot accounts of a user or organization.
    #[command(subcommand)]
    Robots(RobotCommand),
    /// Repositories.
    #[command(subcommand)]
    Repos(RepoCommand),
    /// Who may read, write or administer a repository.
    #[command(subcommand)]
    Perms(PermCommand),
    /// A repository's tags.
    Tags {
        /// The repository, `namespace/name`.
        repository: String,
        /// Include past tag movements.
        #[arg(long)]
        history: bool,
        /// Most entries to return.
        #[arg(long)]
        limit: Option<u32>,
        /// Continue before this cursor (the `next` of the previous page).
        #[arg(long)]
        before: Option<String>,
    },
    /// The audit log, newest first.
    Logs(LogFilter),
    /// Start signing tokens with a new key; tokens signed with the old one stay valid until
    /// they expire (a running server picks up an offline rotation within a minute).
    RotateSigningKey,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    List,
    /// Create a token; its secret is printed once.
    Create {
        name: String,
    },
    Delete {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    List(Paging),
    Show {
        name: String,
    },
    Create {
        name: String,
        #[arg(long)]
        superuser: bool,
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        password: PasswordSource,
    },
    Delete {
        name: String,
    },
    SetPassword {
        name: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    SetSuperuser {
        name: String,
        #[arg(action = clap::ArgAction::Set)]
        superuser: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    List(Paging),
    Show { name: String },
    Create { name: String },
    Delete { name: String },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TeamRole {
    Member,
    Creator,
    Admin,
}

#[derive(Subcommand, Debug)]
pub enum TeamCommand {
    List {
        org: String,
    },
    /// Create a team or change its role and description.
    Set {
        org: String,
        team: String,
        #[arg(long, value_enum)]
        role: TeamRole,
        #[arg(long, default_value = "")]
        description: String,
    },
    Delete {
        org: String,
        team: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    List {
        org: String,
        team: String,
    },
    /// Add a user or robot (`owner+name`) to a team.
    Add {
        org: String,
        team: String,
        member: String,
    },
    Remove {
        org: String,
        team: String,
        member: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GranteeKind {
    User,
    Team,
    Robot,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RepoRole {
    Read,
    Write,
    Admin,
}

#[derive(Subcommand, Debug)]
pub enum DefaultPermCommand {
    List {
        org: String,
    },
    Add {
        org: String,
        #[arg(value_enum)]
        kind: GranteeKind,
        name: String,
        #[arg(value_enum)]
        role: RepoRole,
    },
    Remove {
        org: String,
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RobotCommand {
    List {
        namespace: String,
    },
    /// Create a robot; its token is printed once.
    Create {
        namespace: String,
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Replace a robot's token; the old one stops working at once.
    Regenerate {
        namespace: String,
        name: String,
    },
    Delete {
        namespace: String,
        name: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Visibility {
    Public,
    Private,
}

#[derive(Subcommand, Debug)]
pub enum RepoCommand {
    List {
        #[arg(long)]
        namespace: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    Show {
        repository: String,
    },
    Create {
        repository: String,
        #[arg(long)]
        public: bool,
    },
    /// Delete a repository with its tags and manifests.
    Delete {
        repository: String,
    },
    SetVisibility {
        repository: String,
        #[arg(value_enum)]
        visibility: Visibility,
    },
}

#[derive(Subcommand, Debug)]
pub enum PermCommand {
    List {
        repository: String,
    },
    /// Grant a role, or change it.
    Set {
        repository: String,
        #[arg(value_enum)]
        kind: GranteeKind,
        name: String,
        #[arg(value_enum)]
        role: RepoRole,
    },
    Revoke {
        repository: String,
        #[arg(value_enum)]
        kind: GranteeKind,
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct LogFilter {
    #[arg(long)]
    namespace: Option<String>,
    /// The repository, `namespace/name`.
    #[arg(long)]
    repository: Option<String>,
    /// The account that acted.
    #[arg(long)]
    actor: Option<String>,
    /// e.g. `login`, `push`, `delete_tag`, `set_permission`.
    #[arg(long)]
    action: Option<String>,
    /// Entries at or after this time, in seconds since the Unix epoch.
    #[arg(long)]
    since: Option<i64>,
    /// Entries before this time, in seconds since the Unix epoch.
    #[arg(long)]
    until: Option<i64>,
    #[arg(long)]
    limit: Option<u32>,
    /// Continue before this cursor (the `next` of the previous page).
    #[arg(long)]
    before: Option<String>,
}

/// Path segments are user input: escape everything but letters and digits and the
/// characters names are made of.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'+');

fn seg(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// `/api/v1/repositories/NS/REPO` for `NS/RE/PO`: the first segment is the namespace, the rest
/// (slashes escaped) the repository.
fn repo_path(repository: &str) -> anyhow::Result<String> {
    match repository.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
            Ok(format!("/api/v1/repositories/{}/{}", seg(namespace), seg(name)))
        }
        _ => anyhow::bail!("{repository:?} is not a repository name of the form namespace/name"),
    }
}

fn with_query(path: String, pairs: &[(&str, Option<String>)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (key, value) in pairs {
        if let Some(value) = value {
            query.append_pair(key, value);
            any = true;
        }
    }
    if any { format!("{path}?{}", query.finish()) } else { path }
}

fn paged(path: String, paging: &Paging) -> String {
    with_query(path, &[("limit", paging.limit.map(|l| l.to_string())), ("last", paging.after.clone())])
}

fn get(target: String) -> ApiCall {
    ApiCall { method: Method::GET, target, body: None }
}

fn delete(target: String) -> ApiCall {
    ApiCall { method: Method::DELETE, target, body: None }
}

fn with_body(method: Method, target: String, body: Value) -> ApiCall {
    ApiCall { method, target, body: Some(body) }
}

fn name_of<T: ValueEnum>(value: T) -> String {
    value.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
}

impl ApiCommand {
    /// The request this command makes (reading any password it needs first).
    pub fn call(&self) -> anyhow::Result<ApiCall> {
        use ApiCommand as C;
        Ok(match self {
            C::Whoami => get("/api/v1/user".into()),
            C::Passwd(password) => {
                with_body(Method::PUT, "/api/v1/user/password".into(), json!({ "password": password.read()? }))
            }
            C::Tokens(TokenCommand::List) => get("/api/v1/user/tokens".into()),
            C::Tokens(TokenCommand::Create { name }) => {
                with_body(Method::POST, "/api/v1/user/tokens".into(), json!({ "name": name }))
            }
            C::Tokens(TokenCommand::Delete { id }) => delete(format!("/api/v1/user/tokens/{}", seg(id))),
            C::Users(command) => user_call(command)?,
            C::Orgs(OrgCommand::List(paging)) => get(paged("/api/v1/organizations".into(), paging)),
            C::Orgs(OrgCommand::Show { name }) => get(format!("/api/v1/organizations/{}", seg(name))),
            C::Orgs(OrgCommand::Create { name }) => {
                with_body(Method::POST, "/api/v1/organizations".into(), json!({ "name": name }))
            }
            C::Orgs(OrgCommand::Delete { name }) => delete(format!("/api/v1/organizations/{}", seg(name))),
            C::Teams(TeamCommand::List { org }) => get(format!("/api/v1/organizations/{}/teams", seg(org))),
            C::Teams(TeamCommand::Set { org, team, role, description }) => with_body(
                Method::PUT,
                format!("/api/v1/organizations/{}/teams/{}", seg(org), seg(team)),
                json!({ "role": name_of(*role), "description": description }),
            ),
            C::Teams(TeamCommand::Delete { org, team }) => {
                delete(format!("/api/v1/organizations/{}/teams/{}", seg(org), seg(team)))
            }
            C::Members(command) => member_call(command),
            C::DefaultPerms(DefaultPermCommand::List { org }) => {
                get(format!("/api/v1/organizations/{}/defaultpermissions", seg(org)))
            }
            C::DefaultPerms(DefaultPermCommand::Add { org, kind, name, role }) => with_body(
                Method::POST,
                format!("/api/v1/organizations/{}/defaultpermissions", seg(org)),
                json!({ "kind": name_of(*kind), "name": name, "role": name_of(*role) }),
            ),
            C::DefaultPerms(DefaultPermCommand::Remove { org, id }) => {
                delete(format!("/api/v1/organizations/{}/defaultpermissions/{}", seg(org), seg(id)))
            }
            C::Robots(command) => robot_call(command),
            C::Repos(command) => repo_call(command)?,
            C::Perms(PermCommand::List { repository }) => get(format!("{}/permissions", repo_path(repository)?)),
            C::Perms(PermCommand::Set { repository, kind, name, role }) => with_body(
                Method::PUT,
                format!("{}/permissions/{}/{}", repo_path(repository)?, name_of(*kind), seg(name)),
                json!({ "role": name_of(*role) }),
            ),
            C::Perms(PermCommand::Revoke { repository, kind, name }) => {
                delete(format!("{}/permissions/{}/{}", repo_path(repository)?, name_of(*kind), seg(name)))
            }
            C::Tags { repository, history, limit, before } => get(with_query(
                format!("{}/tags", repo_path(repository)?),
                &[
                    ("history", history.then(|| "true".to_owned())),
                    ("limit", limit.map(|l| l.to_string())),
                    ("before", before.clone()),
                ],
            )),
            C::Logs(filter) => get(with_query(
                "/api/v1/logs".into(),
                &[
                    ("namespace", filter.namespace.clone()),
                    ("repository", filter.repository.clone()),
                    ("actor", filter.actor.clone()),
                    ("action", filter.action.clone()),
                    ("since", filter.since.map(|t| t.to_string())),
                    ("until", filter.until.map(|t| t.to_string())),
                    ("limit", filter.limit.map(|l| l.to_string())),
                    ("before", filter.before.clone()),
                ],
            )),
            C::RotateSigningKey => {
                ApiCall { method: Method::POST, target: "/api/v1/signing-keys/rotate".into(), body: None }
            }
        })
    }
}

fn user_call(command: &UserCommand) -> anyhow::Result<ApiCall> {
    Ok(match command {
        UserCommand::List(paging) => get(paged("/api/v1/users".into(), paging)),
        UserCommand::Show { name } => get(format!("/api/v1/users/{}", seg(name))),
        UserCommand::Create { name, superuser, email, password } => with_body(
            Method::POST,
            "/api/v1/users".into(),
            json!({ "name": name, "password": password.read()?, "superuser": superuser, "email": email }),
        ),
        UserCommand::Delete { name } => delete(format!("/api/v1/users/{}", seg(name))),
        UserCommand::SetPassword { name, password } => with_body(
            Method::PUT,
            format!("/api/v1/users/{}/password", seg(name)),
            json!({ "password": password.read()? }),
        ),
        UserCommand::SetSuperuser { name, superuser } => {
            with_body(Method::PUT, format!("/api/v1/users/{}/superuser", seg(name)), json!({ "superuser": superuser }))
        }
    })
}

fn member_call(command: &MemberCommand) -> ApiCall {
    let path = |org: &str, team: &str, member: &str| {
        format!("/api/v1/organizations/{}/teams/{}/members/{}", seg(org), seg(team), seg(member))
    };
    match command {
        MemberCommand::List { org, team } => {
            get(format!("/api/v1/organizations/{}/teams/{}/members", seg(org), seg(team)))
        }
        MemberCommand::Add { org, team, member } => {
            ApiCall { method: Method::PUT, target: path(org, team, member), body: None }
        }
        MemberCommand::Remove { org, team, member } => delete(path(org, team, member)),
    }
}

fn robot_call(command: &RobotCommand) -> ApiCall {
    let path = |namespace: &str, name: &str| format!("/api/v1/namespaces/{}/robots/{}", seg(namespace), seg(name));
    match command {
        RobotCommand::List { namespace } => get(format!("/api/v1/namespaces/{}/robots", seg(namespace))),
        RobotCommand::Create { namespace, name, description } => {
            with_body(Method::PUT, path(namespace, name), json!({ "description": description }))
        }
        RobotCommand::Regenerate { namespace, name } => {
            ApiCall { method: Method::POST, target: format!("{}/regenerate", path(namespace, name)), body: None }
        }
        RobotCommand::Delete { namespace, name } => delete(path(namespace, name)),
    }
}

fn repo_call(command: &RepoCommand) -> anyhow::Result<ApiCall> {
    Ok(match command {
        RepoCommand::List { namespace, paging } => get(with_query(
            "/api/v1/repositories".into(),
            &[
                ("namespace", namespace.clone()),
                ("limit", paging.limit.map(|l| l.to_string())),
                ("last", paging.after.clone()),
            ],
        )),
        RepoCommand::Show { repository } => get(repo_path(repository)?),
        RepoCommand::Create { repository, public } => with_body(
            Method::POST,
            "/api/v1/repositories".into(),
            json!({ "name": repository, "visibility": if *public { "public" } else { "private" } }),
        ),
        RepoCommand::Delete { repository } => delete(repo_path(repository)?),
        RepoCommand::SetVisibility { repository, visibility } => with_body(
            Method::PUT,
            format!("{}/visibility", repo_path(repository)?),
            json!({ "visibility": name_of(*visibility) }),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_split_at_the_namespace_and_escape_the_rest() {
        assert_eq!(repo_path("acme/tools/cli").expect("valid"), "/api/v1/repositories/acme/tools%2Fcli");
        assert!(repo_path("acme").is_err());
        assert!(repo_path("/x").is_err());
        assert_eq!(seg("acme+ci"), "acme+ci");
        assert_eq!(seg("a b?"), "a%20b%3F");
    }

    #[test]
    fn empty_query_parameters_are_left_out() {
        let paging = Paging { limit: Some(5), after: None };
        assert_eq!(paged("/api/v1/users".into(), &paging), "/api/v1/users?limit=5");
        assert_eq!(paged("/x".into(), &Paging { limit: None, after: None }), "/x");
    }
}

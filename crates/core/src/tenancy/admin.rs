//! Management use cases. Each checks the actor's rights itself, so every way in (the REST
//! API, the CLI) enforces the same rules:
//! - superusers manage everything;
//! - a user manages their own account, namespace and robots;
//! - an organization's admins (members of a team with role `admin`) manage it: teams,
//!   members, robots, default permissions, and every repository in it;
//! - a repository's admins manage its permissions and visibility and may delete it.

use berth_oci::RepositoryName;
use serde_json::json;

use super::records::{
    ApiTokenRecord, AuditFilter, AuditRecord, DefaultPermissionRecord, Grantee, Member, NamespaceRecord,
    PermissionRecord, RepositoryRecord, RobotRecord, TagVersion, TeamRecord, UserRecord,
};
use super::{Tenancy, audit, credentials, names};
use crate::access::{Actor, GranteeKind, NamespaceKind, Principal, RepoAccess, Role, TeamRole, Visibility};
use crate::registry::Registry;
use crate::{Error, Result};

pub const API_TOKEN_PREFIX: &str = "berth_pat_";
pub const ROBOT_TOKEN_PREFIX: &str = "berth_rbt_";
/// Most rows one listing page returns.
pub const MAX_PAGE: u32 = 1000;

/// Keyset pagination: rows after `last`, at most `limit`.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub last: Option<String>,
    pub limit: Option<u32>,
}

impl Page {
    fn limit(&self) -> u32 {
        self.limit.unwrap_or(100).clamp(1, MAX_PAGE)
    }
}

/// A robot with its token, shown this once.
#[derive(Clone, Debug)]
pub struct CreatedRobot {
    pub robot: RobotRecord,
    pub token: String,
}

/// A personal API token, shown this once.
#[derive(Clone, Debug)]
pub struct CreatedToken {
    pub record: ApiTokenRecord,
    pub token: String,
}

fn denied(what: &str) -> Error {
    Error::Denied(format!("not allowed to {what}"))
}

/// Anonymous callers are asked to authenticate; known ones are refused.
fn refuse(actor: &Actor, what: &str) -> Error {
    match actor.principal {
        Principal::Anonymous => Error::Unauthorized("authentication required".into()),
        _ => denied(what),
    }
}

fn parse_repository(name: &str) -> Result<RepositoryName> {
    RepositoryName::parse(name).map_err(|e| Error::InvalidInput(e.to_string()))
}

impl Tenancy {
    fn require_superuser(&self, actor: &Actor, what: &str) -> Result<()> {
        if actor.principal.is_superuser() { Ok(()) } else { Err(refuse(actor, what)) }
    }

    /// The actor must be a user (or superuser/system): robots manage nothing.
    fn require_user<'a>(&self, actor: &'a Actor) -> Result<&'a str> {
        match &actor.principal {
            Principal::User { name, .. } => Ok(name),
            Principal::System => Ok(""),
            Principal::Robot { .. } => Err(denied("manage accounts as a robot")),
            Principal::Anonymous => Err(Error::Unauthorized("authentication required".into())),
        }
    }

    /// The namespace, if the actor administers it (their own user namespace, or an
    /// organization where one of their teams has the admin role).
    async fn require_namespace_admin(&self, actor: &Actor, namespace: &str, what: &str) -> Result<NamespaceRecord> {
        self.require_user(actor)?;
        let record = self
            .store
            .namespace(namespace)
            .await?
            .ok_or_else(|| Error::NotFound(format!("namespace {namespace} does not exist")))?;
        if actor.principal.is_superuser() {
            return Ok(record);
        }
        let facts = self.facts(&actor.principal, namespace).await?;
        let admin = facts.namespace.is_some_and(|ns| ns.owned || ns.team_role == Some(TeamRole::Admin));
        if admin { Ok(record) } else { Err(denied(what)) }
    }

    async fn require_organization_admin(&self, actor: &Actor, org: &str, what: &str) -> Result<NamespaceRecord> {
        let record = self.require_namespace_admin(actor, org, what).await?;
        if record.kind != NamespaceKind::Organization {
            return Err(Error::NotFound(format!("{org} is a user, not an organization")));
        }
        Ok(record)
    }

    /// The repository, if the actor's access satisfies `allowed`; one the actor cannot even
    /// read is reported as not found, exactly like one that does not exist.
    async fn require_repository(
        &self,
        actor: &Actor,
        name: &RepositoryName,
        allowed: fn(&RepoAccess) -> bool,
        what: &str,
    ) -> Result<RepositoryRecord> {
        let access = self.access(&actor.principal, name).await?;
        let record = match self.store.repository(name).await? {
            Some(record) if access.pull => record,
            _ => return Err(Error::NotFound(format!("repository {name} does not exist"))),
        };
        if allowed(&access) { Ok(record) } else { Err(refuse(actor, what)) }
    }

    // ---------------------------------------------------------------- users

    /// Creates the first accounts from the command line (no actor to check).
    pub async fn bootstrap_user(&self, name: &str, password: String, superuser: bool) -> Result<UserRecord> {
        self.create_user(&Actor::system(), name, password, superuser, None).await
    }

    pub async fn create_user(
        &self,
        actor: &Actor,
        name: &str,
        password: String,
        superuser: bool,
        email: Option<&str>,
    ) -> Result<UserRecord> {
        self.require_superuser(actor, "create users")?;
        names::check_namespace(name)?;
        let hash = credentials::hash_password(password).await?;
        let entry = audit(actor, "create_user", Some(name), None, Some(json!({ "superuser": superuser })));
        self.store.create_user(name, &hash, superuser, email, &entry).await
    }

    /// A user's account: their own, or any for a superuser.
    pub async fn user(&self, actor: &Actor, name: &str) -> Result<UserRecord> {
        let me = self.require_user(actor)?;
        if me != name {
            self.require_superuser(actor, "see other users")?;
        }
        self.store.user(name).await?.ok_or_else(|| Error::NotFound(format!("user {name} does not exist")))
    }

    pub async fn list_users(&self, actor: &Actor, page: &Page) -> Result<Vec<UserRecord>> {
        self.require_superuser(actor, "list users")?;
        self.store.list_users(page.last.as_deref(), page.limit()).await
    }

    pub async fn change_password(&self, actor: &Actor, name: &str, password: String) -> Result<()> {
        self.user(actor, name).await?;
        let hash = credentials::hash_password(password).await?;
        self.store.set_password(name, &hash, &audit(actor, "change_password", Some(name), None, None)).await?;
        self.credentials_changed().await;
        Ok(())
    }

    pub async fn set_superuser(&self, actor: &Actor, name: &str, superuser: bool) -> Result<()> {
        self.require_superuser(actor, "grant superuser rights")?;
        if !superuser && actor.principal.name() == name {
            return Err(Error::InvalidInput("a superuser cannot revoke their own rights".into()));
        }
        let entry = audit(actor, "set_superuser", Some(name), None, Some(json!({ "superuser": superuser })));
        self.store.set_superuser(name, superuser, &entry).await?;
        self.credentials_changed().await;
        Ok(())
    }

    pub async fn delete_user(&self, actor: &Actor, name: &str) -> Result<()> {
        self.require_superuser(actor, "delete users")?;
        if actor.principal.name() == name {
            return Err(Error::InvalidInput("a superuser cannot delete their own account".into()));
        }
        self.store.delete_user(name, &audit(actor, "delete_user", Some(name), None, None)).await?;
        self.credentials_changed().await;
        Ok(())
    }

    pub async fn create_api_token(&self, actor: &Actor, label: &str) -> Result<CreatedToken> {
        let me = self.require_user(actor)?.to_owned();
        names::check_label(label)?;
        let (token, hash) = credentials::new_token(API_TOKEN_PREFIX)?;
        let entry = audit(actor, "create_api_token", Some(&me), None, Some(json!({ "name": label })));
        let record = self.store.create_api_token(&me, label, &hash, &entry).await?;
        Ok(CreatedToken { record, token })
    }

    pub async fn api_tokens(&self, actor: &Actor) -> Result<Vec<ApiTokenRecord>> {
        let me = self.require_user(actor)?;
        self.store.api_tokens(me).await
    }

    pub async fn delete_api_token(&self, actor: &Actor, label: &str) -> Result<()> {
        let me = self.require_user(actor)?.to_owned();
        let entry = audit(actor, "delete_api_token", Some(&me), None, Some(json!({ "name": label })));
        self.store.delete_api_token(&me, label, &entry).await?;
        self.credentials_changed().await;
        Ok(())
    }

    // -------------------------------------------------------- organizations

    /// Any user may create an organization; they become a member of its `owners` team.
    pub async fn create_organization(&self, actor: &Actor, name: &str) -> Result<NamespaceRecord> {
        let me = self.require_user(actor)?.to_owned();
        names::check_namespace(name)?;
        let entry = audit(actor, "create_organization", Some(name), None, None);
        let org = self.store.create_organization(name, &me, &entry).await?;
        self.access_changed().await;
        Ok(org)
    }

    /// An organization; its existence is no secret.
    pub async fn organization(&self, actor: &Actor, name: &str) -> Result<NamespaceRecord> {
        self.require_user(actor)?;
        match self.store.namespace(name).await? {
            Some(ns) if ns.kind == NamespaceKind::Organization => Ok(ns),
            _ => Err(Error::NotFound(format!("organization {name} does not exist"))),
        }
    }

    pub async fn list_organizations(&self, actor: &Actor, page: &Page) -> Result<Vec<NamespaceRecord>> {
        self.require_superuser(actor, "list organizations")?;
        self.store.list_organizations(page.last.as_deref(), page.limit()).await
    }

    pub async fn delete_organization(&self, actor: &Actor, name: &str) -> Result<()> {
        self.require_organization_admin(actor, name, "delete this organization").await?;
        self.store.delete_organization(name, &audit(actor, "delete_organization", Some(name), None, None)).await?;
        self.credentials_changed().await;
        Ok(())
    }

    pub async fn put_team(
        &self,
        actor: &Actor,
        org: &str,
        team: &str,
        role: TeamRole,
        description: &str,
    ) -> Result<TeamRecord> {
        self.require_organization_admin(actor, org, "manage teams").await?;
        names::check_team(team)?;
        let entry = audit(actor, "put_team", Some(org), None, Some(json!({ "team": team, "role": role.as_str() })));
        let record = self.store.put_team(org, team, role, description, &entry).await?;
        self.access_changed().await;
        Ok(record)
    }

    /// Teams of an organization, for its members.
    pub async fn teams(&self, actor: &Actor, org: &str) -> Result<Vec<TeamRecord>> {
        self.require_organization_member(actor, org).await?;
        self.store.teams(org).await
    }

    pub async fn delete_team(&self, actor: &Actor, org: &str, team: &str) -> Result<()> {
        self.require_organization_admin(actor, org, "manage teams").await?;
        let entry = audit(actor, "delete_team", Some(org), None, Some(json!({ "team": team })));
        self.store.delete_team(org, team, &entry).await?;
        self.access_changed().await;
        Ok(())
    }

    pub async fn add_team_member(&self, actor: &Actor, org: &str, team: &str, member: &Member) -> Result<()> {
        self.require_organization_admin(actor, org, "manage team members").await?;
        let entry =
            audit(actor, "add_team_member", Some(org), None, Some(json!({ "team": team, "member": member.name() })));
        self.store.add_team_member(org, team, member, &entry).await?;
        self.access_changed().await;
        Ok(())
    }

    pub async fn remove_team_member(&self, actor: &Actor, org: &str, team: &str, member: &Member) -> Result<()> {
        self.require_organization_admin(actor, org, "manage team members").await?;
        let entry =
            audit(actor, "remove_team_member", Some(org), None, Some(json!({ "team": team, "member": member.name() })));
        self.store.remove_team_member(org, team, member, &entry).await?;
        self.access_changed().await;
        Ok(())
    }

    pub async fn team_members(&self, actor: &Actor, org: &str, team: &str) -> Result<Vec<Member>> {
        self.require_organization_member(actor, org).await?;
        self.store.team_members(org, team).await
    }

    async fn require_organization_member(&self, actor: &Actor, org: &str) -> Result<()> {
        self.organization(actor, org).await?;
        if actor.principal.is_superuser() {
            return Ok(());
        }
        let facts = self.facts(&actor.principal, org).await?;
        if facts.namespace.is_some_and(|ns| ns.team_role.is_some()) {
            Ok(())
        } else {
            Err(denied("see this organization's teams"))
        }
    }

    pub async fn default_permissions(&self, actor: &Actor, org: &str) -> Result<Vec<DefaultPermissionRecord>> {
        self.require_organization_admin(actor, org, "see default permissions").await?;
        self.store.default_permissions(org).await
    }

    pub async fn add_default_permission(
        &self,
        actor: &Actor,
        org: &str,
        grantee: &Grantee,
        role: Role,
    ) -> Result<DefaultPermissionRecord> {
        self.require_organization_admin(actor, org, "manage default permissions").await?;
        let entry = audit(
            actor,
            "add_default_permission",
            Some(org),
            None,
            Some(json!({ "kind": grantee.kind.as_str(), "name": grantee.name, "role": role.as_str() })),
        );
        self.store.add_default_permission(org, grantee, role, &entry).await
    }

    pub async fn remove_default_permission(&self, actor: &Actor, org: &str, id: i64) -> Result<()> {
        self.require_organization_admin(actor, org, "manage default permissions").await?;
        let entry = audit(actor, "remove_default_permission", Some(org), None, Some(json!({ "id": id })));
        self.store.remove_default_permission(org, id, &entry).await
    }

    // ---------------------------------------------------------------- robots

    pub async fn create_robot(
        &self,
        actor: &Actor,
        owner: &str,
        name: &str,
        description: &str,
    ) -> Result<CreatedRobot> {
        self.require_namespace_admin(actor, owner, "manage robots here").await?;
        names::check_robot(name)?;
        let (token, hash) = credentials::new_token(ROBOT_TOKEN_PREFIX)?;
        let entry =
            audit(actor, "create_robot", Some(owner), None, Some(json!({ "robot": format!("{owner}+{name}") })));
        let robot = self.store.create_robot(owner, name, description, &hash, &entry).await?;
        Ok(CreatedRobot { robot, token })
    }

    pub async fn robots(&self, actor: &Actor, owner: &str) -> Result<Vec<RobotRecord>> {
        self.require_namespace_admin(actor, owner, "see robots here").await?;
        self.store.robots(owner).await
    }

    pub async fn regenerate_robot_token(&self, actor: &Actor, full_name: &str) -> Result<CreatedRobot> {
        let (owner, _) = names::split_robot(full_name)?;
        self.require_namespace_admin(actor, owner, "manage robots here").await?;
        let (token, hash) = credentials::new_token(ROBOT_TOKEN_PREFIX)?;
        let entry = audit(actor, "regenerate_robot_token", Some(owner), None, Some(json!({ "robot": full_name })));
        self.store.set_robot_token(full_name, &hash, &entry).await?;
        self.credentials_changed().await;
        let robot = self
            .store
            .robot(full_name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("robot {full_name} does not exist")))?;
        Ok(CreatedRobot { robot, token })
    }

    pub async fn delete_robot(&self, actor: &Actor, full_name: &str) -> Result<()> {
        let (owner, _) = names::split_robot(full_name)?;
        self.require_namespace_admin(actor, owner, "manage robots here").await?;
        let entry = audit(actor, "delete_robot", Some(owner), None, Some(json!({ "robot": full_name })));
        self.store.delete_robot(full_name, &entry).await?;
        self.credentials_changed().await;
        Ok(())
    }

    // ---------------------------------------------------------- repositories

    pub async fn create_repository(
        &self,
        actor: &Actor,
        name: &str,
        visibility: Visibility,
    ) -> Result<RepositoryRecord> {
        let name = parse_repository(name)?;
        if !self.access(&actor.principal, &name).await?.push {
            return Err(refuse(actor, &format!("create repositories in {}", name.namespace())));
        }
        let entry = audit(
            actor,
            "create_repository",
            Some(name.namespace()),
            Some(name.as_str()),
            Some(json!({ "visibility": visibility.as_str() })),
        );
        let record = self.store.create_repository(&name, visibility, &actor.principal, &entry).await?;
        self.access_changed().await;
        Ok(record)
    }

    pub async fn repository(&self, actor: &Actor, name: &str) -> Result<RepositoryRecord> {
        self.require_repository(actor, &parse_repository(name)?, |_| true, "read this repository").await
    }

    /// Repositories the actor may read (anonymous callers see public ones).
    pub async fn list_repositories(
        &self,
        actor: &Actor,
        namespace: Option<&str>,
        page: &Page,
    ) -> Result<Vec<RepositoryRecord>> {
        self.store.list_repositories_for(&actor.principal, namespace, page.last.as_deref(), page.limit()).await
    }

    pub async fn set_visibility(
        &self,
        actor: &Actor,
        name: &str,
        visibility: Visibility,
        registry: &Registry,
    ) -> Result<()> {
        let name = parse_repository(name)?;
        self.require_repository(actor, &name, |a| a.admin, "change this repository's visibility").await?;
        let entry = audit(
            actor,
            "set_visibility",
            Some(name.namespace()),
            Some(name.as_str()),
            Some(json!({ "visibility": visibility.as_str() })),
        );
        self.store.set_visibility(&name, visibility, &entry).await?;
        self.access_changed().await;
        registry.forget(&name).await;
        Ok(())
    }

    /// Deletes a repository with everything in it, ending its upload sessions.
    pub async fn delete_repository(&self, actor: &Actor, name: &str, registry: &Registry) -> Result<()> {
        let name = parse_repository(name)?;
        self.require_repository(actor, &name, |a| a.admin, "delete this repository").await?;
        let entry = audit(actor, "delete_repository", Some(name.namespace()), Some(name.as_str()), None);
        let upload_keys = self.store.delete_repository(&name, &entry).await?;
        self.access_changed().await;
        registry.repository_deleted(&name, &upload_keys).await;
        Ok(())
    }

    pub async fn permissions(&self, actor: &Actor, name: &str) -> Result<Vec<PermissionRecord>> {
        let name = parse_repository(name)?;
        self.require_repository(actor, &name, |a| a.admin, "see this repository's permissions").await?;
        self.store.permissions(&name).await
    }

    pub async fn set_permission(&self, actor: &Actor, name: &str, grantee: &Grantee, role: Role) -> Result<()> {
        let name = parse_repository(name)?;
        self.require_repository(actor, &name, |a| a.admin, "change this repository's permissions").await?;
        check_grantee(&name, grantee)?;
        let entry = audit(
            actor,
            "set_permission",
            Some(name.namespace()),
            Some(name.as_str()),
            Some(json!({ "kind": grantee.kind.as_str(), "name": grantee.name, "role": role.as_str() })),
        );
        self.store.set_permission(&name, grantee, role, &entry).await?;
        self.access_changed().await;
        Ok(())
    }

    pub async fn remove_permission(&self, actor: &Actor, name: &str, grantee: &Grantee) -> Result<()> {
        let name = parse_repository(name)?;
        self.require_repository(actor, &name, |a| a.admin, "change this repository's permissions").await?;
        let entry = audit(
            actor,
            "remove_permission",
            Some(name.namespace()),
            Some(name.as_str()),
            Some(json!({ "kind": grantee.kind.as_str(), "name": grantee.name })),
        );
        self.store.remove_permission(&name, grantee, &entry).await?;
        self.access_changed().await;
        Ok(())
    }

    /// Tags of a repository, newest first; with `history`, every version each tag had.
    pub async fn tags(
        &self,
        actor: &Actor,
        name: &str,
        history: bool,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Vec<TagVersion>> {
        let name = parse_repository(name)?;
        self.require_repository(actor, &name, |a| a.pull, "read this repository").await?;
        self.store.tag_versions(&name, history, before, limit.unwrap_or(100).clamp(1, MAX_PAGE)).await
    }

    // ------------------------------------------------------------- audit log

    /// Audit rows, newest first. Superusers see everything; others must filter on a
    /// namespace they administer or a repository they administer.
    pub async fn audit_log(&self, actor: &Actor, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut filter = filter.clone();
        filter.limit = filter.limit.clamp(1, MAX_PAGE);
        if actor.principal.is_superuser() {
            return self.store.audit_log(&filter).await;
        }
        if let Some(repository) = &filter.repository {
            let name = parse_repository(repository)?;
            self.require_repository(actor, &name, |a| a.admin, "read this repository's audit log").await?;
        } else if let Some(namespace) = &filter.namespace {
            self.require_namespace_admin(actor, namespace, "read this namespace's audit log").await?;
        } else {
            return Err(refuse(actor, "read the whole audit log; filter by a namespace or repository you administer"));
        }
        self.store.audit_log(&filter).await
    }
}

/// Teams are always the repository's organization's; robots must belong to its namespace.
fn check_grantee(name: &RepositoryName, grantee: &Grantee) -> Result<()> {
    match grantee.kind {
        GranteeKind::User => names::check_namespace(&grantee.name),
        GranteeKind::Team => names::check_team(&grantee.name),
        GranteeKind::Robot => {
            let (owner, _) = names::split_robot(&grantee.name)?;
            if owner == name.namespace() {
                Ok(())
            } else {
                Err(Error::InvalidInput(format!("robot {} does not belong to {}", grantee.name, name.namespace())))
            }
        }
    }
}

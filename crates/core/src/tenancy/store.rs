//! The tenancy half of the metadata store port. Every mutation takes the audit row to write
//! in the same transaction, so the log never misses a change that happened.

use async_trait::async_trait;
use berth_oci::RepositoryName;

use super::records::{
    ApiTokenRecord, AuditEntry, AuditFilter, AuditRecord, DefaultPermissionRecord, Grantee, Member, NamespaceRecord,
    PermissionRecord, RepositoryRecord, RobotRecord, TagVersion, TeamRecord, UserRecord,
};
use crate::Result;
use crate::access::{AccessFacts, Principal, Role, TeamRole, Visibility};

#[async_trait]
pub trait TenancyStore: Send + Sync + 'static {
    /// The facts an access decision for `principal` on `name` needs, in one query.
    async fn access_facts(&self, principal: &Principal, name: &RepositoryName) -> Result<AccessFacts>;
    /// Repository names after `last` that `principal` may read, in lexical order.
    async fn readable_repositories(&self, principal: &Principal, last: Option<&str>, limit: u32)
    -> Result<Vec<String>>;

    async fn namespace(&self, name: &str) -> Result<Option<NamespaceRecord>>;

    /// Fails with `Conflict` when the name is taken by a user or an organization.
    async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        superuser: bool,
        email: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<UserRecord>;
    async fn user(&self, name: &str) -> Result<Option<UserRecord>>;
    async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>>;
    async fn list_users(&self, last: Option<&str>, limit: u32) -> Result<Vec<UserRecord>>;
    async fn count_users(&self) -> Result<u64>;
    async fn set_password(&self, name: &str, password_hash: &str, audit: &AuditEntry) -> Result<()>;
    async fn set_superuser(&self, name: &str, superuser: bool, audit: &AuditEntry) -> Result<()>;
    /// Deletes the user, their namespace and everything in it.
    async fn delete_user(&self, name: &str, audit: &AuditEntry) -> Result<()>;

    async fn create_api_token(
        &self,
        user: &str,
        name: &str,
        token_hash: &[u8],
        audit: &AuditEntry,
    ) -> Result<ApiTokenRecord>;
    async fn api_tokens(&self, user: &str) -> Result<Vec<ApiTokenRecord>>;
    async fn delete_api_token(&self, user: &str, name: &str, audit: &AuditEntry) -> Result<()>;
    async fn user_by_api_token(&self, token_hash: &[u8]) -> Result<Option<UserRecord>>;

    /// Creates the organization with an `owners` team (role admin) holding the user
    /// `creator` (none when empty).
    async fn create_organization(&self, name: &str, creator: &str, audit: &AuditEntry) -> Result<NamespaceRecord>;
    async fn list_organizations(&self, last: Option<&str>, limit: u32) -> Result<Vec<NamespaceRecord>>;
    /// Deletes the organization and everything in it.
    async fn delete_organization(&self, name: &str, audit: &AuditEntry) -> Result<()>;

    /// Creates the team or changes its role and description.
    async fn put_team(
        &self,
        org: &str,
        team: &str,
        role: TeamRole,
        description: &str,
        audit: &AuditEntry,
    ) -> Result<TeamRecord>;
    async fn teams(&self, org: &str) -> Result<Vec<TeamRecord>>;
    async fn delete_team(&self, org: &str, team: &str, audit: &AuditEntry) -> Result<()>;
    async fn add_team_member(&self, org: &str, team: &str, member: &Member, audit: &AuditEntry) -> Result<()>;
    async fn remove_team_member(&self, org: &str, team: &str, member: &Member, audit: &AuditEntry) -> Result<()>;
    async fn team_members(&self, org: &str, team: &str) -> Result<Vec<Member>>;

    async fn create_robot(
        &self,
        owner: &str,
        name: &str,
        description: &str,
        token_hash: &[u8],
        audit: &AuditEntry,
    ) -> Result<RobotRecord>;
    async fn robots(&self, owner: &str) -> Result<Vec<RobotRecord>>;
    /// By full name `owner+name`.
    async fn robot(&self, full_name: &str) -> Result<Option<RobotRecord>>;
    async fn set_robot_token(&self, full_name: &str, token_hash: &[u8], audit: &AuditEntry) -> Result<()>;
    async fn delete_robot(&self, full_name: &str, audit: &AuditEntry) -> Result<()>;

    /// Creates a repository in an existing namespace, granting `creator` its due (admin for a
    /// user, write for a robot) plus the organization's default permissions. `Conflict` if it
    /// exists.
    async fn create_repository(
        &self,
        name: &RepositoryName,
        visibility: Visibility,
        creator: &Principal,
        audit: &AuditEntry,
    ) -> Result<RepositoryRecord>;
    async fn repository(&self, name: &RepositoryName) -> Result<Option<RepositoryRecord>>;
    /// Repositories `principal` may read, optionally in one namespace, after `last`.
    async fn list_repositories_for(
        &self,
        principal: &Principal,
        namespace: Option<&str>,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RepositoryRecord>>;
    async fn set_visibility(&self, name: &RepositoryName, visibility: Visibility, audit: &AuditEntry) -> Result<()>;
    /// Deletes the repository with its manifests, tags, permissions and upload sessions;
    /// returns the storage keys of the upload sessions it ended. Blob bytes are left to GC.
    async fn delete_repository(&self, name: &RepositoryName, audit: &AuditEntry) -> Result<Vec<String>>;

    async fn permissions(&self, name: &RepositoryName) -> Result<Vec<PermissionRecord>>;
    /// Grants or changes a permission. `NotFound` if the grantee does not exist (teams are
    /// looked up in the repository's organization).
    async fn set_permission(
        &self,
        name: &RepositoryName,
        grantee: &Grantee,
        role: Role,
        audit: &AuditEntry,
    ) -> Result<()>;
    async fn remove_permission(&self, name: &RepositoryName, grantee: &Grantee, audit: &AuditEntry) -> Result<()>;

    async fn default_permissions(&self, org: &str) -> Result<Vec<DefaultPermissionRecord>>;
    async fn add_default_permission(
        &self,
        org: &str,
        grantee: &Grantee,
        role: Role,
        audit: &AuditEntry,
    ) -> Result<DefaultPermissionRecord>;
    async fn remove_default_permission(&self, org: &str, id: i64, audit: &AuditEntry) -> Result<()>;

    /// Tag versions of a repository, newest first (by id, before `before`): live tags only,
    /// or the whole history.
    async fn tag_versions(
        &self,
        name: &RepositoryName,
        history: bool,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<TagVersion>>;

    /// Appends audit rows written outside a use-case transaction (logins, in batches).
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<()>;
    async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>>;
}

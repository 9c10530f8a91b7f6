//! The tenancy half of the SQL MetaStore (both backends).

use async_trait::async_trait;
use berth_core::access::{
    AccessFacts, GranteeKind, NamespaceFacts, NamespaceKind, Principal, RepositoryFacts, RepositoryKind, Role,
    TeamRole, Visibility,
};
use berth_core::tenancy::records::{
    ApiTokenRecord, AuditEntry, AuditFilter, AuditRecord, DefaultPermissionRecord, Grantee, Member, NamespaceRecord,
    PermissionRecord, RepositoryRecord, RobotRecord, TagVersion, TeamRecord, UserRecord,
};
use berth_core::tenancy::store::TenancyStore;
use berth_core::{Error, Result};
use berth_oci::RepositoryName;
use sqlx::{AssertSqlSafe, QueryBuilder};

use super::Db;
use super::lease::{Tx, Within};
use super::registry::SqlMetaStore;
use super::shared::{READABLE, ensure_repository, insert_audit, principal_ids};

pub(super) fn parse<T: std::str::FromStr<Err = Error>>(value: &str) -> Result<T> {
    value.parse().map_err(|_| Error::Backend(format!("database holds an invalid value {value:?}")))
}

fn not_found(what: String) -> Error {
    Error::NotFound(what)
}

/// Unique-constraint violations become `Conflict(message)` (for [`Within::within_or`]).
fn conflict(message: impl FnOnce() -> String + Send) -> impl FnOnce(&sqlx::Error) -> Option<Error> + Send {
    move |e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Some(Error::Conflict(message())),
        _ => None,
    }
}

const USER_COLUMNS: &str = "u.id, n.name, u.password_hash, u.superuser, u.email, u.created_at";

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    name: String,
    password_hash: String,
    superuser: bool,
    email: Option<String>,
    created_at: i64,
}

impl From<UserRow> for UserRecord {
    fn from(r: UserRow) -> Self {
        UserRecord {
            id: r.id,
            name: r.name,
            password_hash: r.password_hash,
            superuser: r.superuser,
            email: r.email,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct RobotRow {
    id: i64,
    owner: String,
    name: String,
    token_hash: Vec<u8>,
    description: String,
    created_at: i64,
}

impl From<RobotRow> for RobotRecord {
    fn from(r: RobotRow) -> Self {
        RobotRecord {
            id: r.id,
            owner: r.owner,
            name: r.name,
            token_hash: r.token_hash,
            description: r.description,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct RepositoryRow {
    name: String,
    namespace: String,
    kind: String,
    visibility: String,
    created_at: i64,
}

impl RepositoryRow {
    fn into_record(self) -> Result<RepositoryRecord> {
        Ok(RepositoryRecord {
            visibility: parse(&self.visibility)?,
            name: self.name,
            namespace: self.namespace,
            kind: self.kind,
            created_at: self.created_at,
        })
    }
}

const REPOSITORY_COLUMNS: &str = "r.name, COALESCE(n.name, '') AS namespace, r.kind, r.visibility, r.created_at FROM repositories r LEFT JOIN namespaces n ON n.id = r.namespace_id";

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: i64,
    user_name: Option<String>,
    team_name: Option<String>,
    robot_name: Option<String>,
    role: String,
}

impl GrantRow {
    fn grantee(&self) -> Result<Grantee> {
        let (kind, name) = match (&self.user_name, &self.team_name, &self.robot_name) {
            (Some(u), _, _) => (GranteeKind::User, u),
            (_, Some(t), _) => (GranteeKind::Team, t),
            (_, _, Some(r)) => (GranteeKind::Robot, r),
            _ => return Err(Error::Backend("a permission names no grantee".into())),
        };
        Ok(Grantee { kind, name: name.clone() })
    }
}

/// Columns naming a grant's grantee, for a table aliased `g` with user_id/team_id/robot_id.
const GRANTEE_COLUMNS: &str = "gu_ns.name AS user_name, gt.name AS team_name, \
    CASE WHEN gr.id IS NULL THEN NULL ELSE gr_ns.name || '+' || gr.name END AS robot_name, g.role \
    FROM {table} g \
    LEFT JOIN users gu ON gu.id = g.user_id LEFT JOIN namespaces gu_ns ON gu_ns.id = gu.namespace_id \
    LEFT JOIN teams gt ON gt.id = g.team_id \
    LEFT JOIN robots gr ON gr.id = g.robot_id LEFT JOIN namespaces gr_ns ON gr_ns.id = gr.owner_id";

fn grantee_select(id: &str, table: &str) -> String {
    format!("SELECT {id} AS id, {}", GRANTEE_COLUMNS.replace("{table}", table))
}

async fn namespace_id(tx: &mut Tx<'_>, name: &str, kind: Option<NamespaceKind>) -> Result<i64> {
    let found: Option<(i64, String)> = sqlx::query_as("SELECT id, kind FROM namespaces WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *tx.conn)
        .within(tx.limit)
        .await?;
    match (found, kind) {
        (Some((id, k)), Some(want)) if k == want.as_str() => Ok(id),
        (Some((id, _)), None) => Ok(id),
        _ => Err(not_found(format!("{} {name} does not exist", kind.map_or("namespace", |k| k.as_str())))),
    }
}

async fn user_id(tx: &mut Tx<'_>, name: &str) -> Result<i64> {
    sqlx::query_scalar("SELECT u.id FROM users u JOIN namespaces n ON n.id = u.namespace_id WHERE n.name = $1")
        .bind(name)
        .fetch_optional(&mut *tx.conn)
        .within(tx.limit)
        .await?
        .ok_or_else(|| not_found(format!("user {name} does not exist")))
}

async fn robot_id(tx: &mut Tx<'_>, full_name: &str) -> Result<i64> {
    let (owner, name) =
        full_name.split_once('+').ok_or_else(|| not_found(format!("robot {full_name} does not exist")))?;
    sqlx::query_scalar(
        "SELECT r.id FROM robots r JOIN namespaces n ON n.id = r.owner_id WHERE n.name = $1 AND r.name = $2",
    )
    .bind(owner)
    .bind(name)
    .fetch_optional(&mut *tx.conn)
    .within(tx.limit)
    .await?
    .ok_or_else(|| not_found(format!("robot {full_name} does not exist")))
}

async fn team_id(tx: &mut Tx<'_>, organization_id: i64, team: &str) -> Result<i64> {
    sqlx::query_scalar("SELECT id FROM teams WHERE organization_id = $1 AND name = $2")
        .bind(organization_id)
        .bind(team)
        .fetch_optional(&mut *tx.conn)
        .within(tx.limit)
        .await?
        .ok_or_else(|| not_found(format!("team {team} does not exist")))
}

/// `(column, id)` of a grantee: a user, a team of `organization_id`, or a robot.
async fn grantee_column(
    tx: &mut Tx<'_>,
    grantee: &Grantee,
    organization_id: Option<i64>,
) -> Result<(&'static str, i64)> {
    Ok(match grantee.kind {
        GranteeKind::User => ("user_id", user_id(tx, &grantee.name).await?),
        GranteeKind::Robot => ("robot_id", robot_id(tx, &grantee.name).await?),
        GranteeKind::Team => {
            let org = organization_id.ok_or_else(|| Error::InvalidInput("teams exist only in organizations".into()))?;
            ("team_id", team_id(tx, org, &grantee.name).await?)
        }
    })
}

/// The repository's id and its namespace id if that namespace is an organization.
async fn repository_ids(tx: &mut Tx<'_>, name: &RepositoryName) -> Result<(i64, Option<i64>)> {
    let row: Option<(i64, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT r.id, r.namespace_id, n.kind FROM repositories r LEFT JOIN namespaces n ON n.id = r.namespace_id WHERE r.name = $1",
    )
    .bind(name.as_str())
    .fetch_optional(&mut *tx.conn)
    .within(tx.limit)
    .await?;
    let (id, namespace_id, kind) = row.ok_or_else(|| not_found(format!("repository {name} does not exist")))?;
    Ok((id, namespace_id.filter(|_| kind.as_deref() == Some("organization"))))
}

async fn team_record(tx: &mut Tx<'_>, team_id: i64) -> Result<TeamRecord> {
    let (name, role, description, members): (String, String, String, i64) = sqlx::query_as(
        "SELECT name, role, description, (SELECT COUNT(*) FROM team_members WHERE team_id = teams.id) FROM teams WHERE id = $1",
    )
    .bind(team_id)
    .fetch_one(&mut *tx.conn)
    .within(tx.limit)
    .await?;
    Ok(TeamRecord { name, role: parse(&role)?, description, members: u32::try_from(members).unwrap_or(u32::MAX) })
}

#[async_trait]
impl TenancyStore for SqlMetaStore {
    async fn access_facts(&self, principal: &Principal, name: &RepositoryName) -> Result<AccessFacts> {
        let (user, robot) = principal_ids(principal);
        let row: (Option<String>, Option<bool>, Option<i64>, Option<i64>, Option<String>, Option<i64>) = sqlx::query_as(
            "SELECT n.kind, \
                (n.kind = 'user' AND EXISTS (SELECT 1 FROM users ou WHERE ou.namespace_id = n.id AND ou.id = $1)), \
                (SELECT CAST(MAX(CASE t.role WHEN 'admin' THEN 3 WHEN 'creator' THEN 2 ELSE 1 END) AS BIGINT) FROM teams t \
                    JOIN team_members tm ON tm.team_id = t.id \
                    WHERE t.organization_id = n.id AND (tm.user_id = $1 OR tm.robot_id = $2)), \
                r.id, r.visibility, \
                (SELECT CAST(MAX(CASE p.role WHEN 'admin' THEN 3 WHEN 'write' THEN 2 ELSE 1 END) AS BIGINT) FROM permissions p \
                    WHERE p.repository_id = r.id AND (p.user_id = $1 OR p.robot_id = $2 \
                    OR p.team_id IN (SELECT tm.team_id FROM team_members tm WHERE tm.user_id = $1 OR tm.robot_id = $2))) \
             FROM (SELECT 1) AS one \
             LEFT JOIN namespaces n ON n.name = $3 \
             LEFT JOIN repositories r ON r.name = $4",
        )
        .bind(user)
        .bind(robot)
        .bind(name.namespace())
        .bind(name.as_str())
        .fetch_one(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        let (kind, owned, team_rank, repo_id, visibility, repo_rank) = row;
        let namespace = match kind {
            Some(kind) => Some(NamespaceFacts {
                kind: parse(&kind)?,
                owned: owned.unwrap_or(false),
                team_role: team_rank.and_then(|r| TeamRole::ALL.get(usize::try_from(r - 1).ok()?).copied()),
            }),
            None => None,
        };
        let repository = match (repo_id, visibility) {
            (Some(_), Some(visibility)) => Some(RepositoryFacts {
                visibility: parse(&visibility)?,
                role: repo_rank.and_then(|r| Role::ALL.get(usize::try_from(r - 1).ok()?).copied()),
            }),
            _ => None,
        };
        Ok(AccessFacts { repository, namespace })
    }

    async fn readable_repositories(
        &self,
        principal: &Principal,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>> {
        let (user, robot) = principal_ids(principal);
        let sql =
            format!("SELECT r.name FROM repositories r WHERE r.name > $4 AND {READABLE} ORDER BY r.name LIMIT $5");
        sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(user)
            .bind(robot)
            .bind(principal.is_superuser())
            .bind(last.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await
    }

    async fn namespace(&self, name: &str) -> Result<Option<NamespaceRecord>> {
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT name, kind, created_at FROM namespaces WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *self.reader.lease().await?)
                .within(self.reader.limit)
                .await?;
        row.map(|(name, kind, created_at)| Ok(NamespaceRecord { name, kind: parse(&kind)?, created_at })).transpose()
    }

    async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        superuser: bool,
        email: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<UserRecord> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let namespace_id: i64 =
            sqlx::query_scalar("INSERT INTO namespaces (name, kind, created_at) VALUES ($1, 'user', $2) RETURNING id")
                .bind(name)
                .bind(audit.time)
                .fetch_one(&mut *tx.conn)
                .within_or(tx.limit, conflict(|| format!("the name {name} is taken")))
                .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (namespace_id, password_hash, superuser, email, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(namespace_id)
        .bind(password_hash)
        .bind(superuser)
        .bind(email)
        .bind(audit.time)
        .fetch_one(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(UserRecord {
            id,
            name: name.to_owned(),
            password_hash: password_hash.to_owned(),
            superuser,
            email: email.map(str::to_owned),
            created_at: audit.time,
        })
    }

    async fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u JOIN namespaces n ON n.id = u.namespace_id WHERE n.name = $1");
        let row: Option<UserRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        Ok(row.map(UserRecord::from))
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u JOIN namespaces n ON n.id = u.namespace_id WHERE u.id = $1");
        let row: Option<UserRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        Ok(row.map(UserRecord::from))
    }

    async fn list_users(&self, last: Option<&str>, limit: u32) -> Result<Vec<UserRecord>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN namespaces n ON n.id = u.namespace_id WHERE n.name > $1 ORDER BY n.name LIMIT $2"
        );
        let rows: Vec<UserRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(last.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        Ok(rows.into_iter().map(UserRecord::from).collect())
    }

    async fn count_users(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn set_password(&self, name: &str, password_hash: &str, audit: &AuditEntry) -> Result<()> {
        self.update_user(
            name,
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            |q| q.bind(password_hash.to_owned()),
            audit,
        )
        .await
    }

    async fn set_superuser(&self, name: &str, superuser: bool, audit: &AuditEntry) -> Result<()> {
        self.update_user(name, "UPDATE users SET superuser = $1 WHERE id = $2", |q| q.bind(superuser), audit).await
    }

    async fn delete_user(&self, name: &str, audit: &AuditEntry) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let done = sqlx::query("DELETE FROM namespaces WHERE name = $1 AND kind = 'user'")
            .bind(name)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(format!("user {name} does not exist")));
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn create_api_token(
        &self,
        user: &str,
        name: &str,
        token_hash: &[u8],
        audit: &AuditEntry,
    ) -> Result<ApiTokenRecord> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let user_id = user_id(&mut tx, user).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(token_hash)
        .bind(audit.time)
        .fetch_one(&mut *tx.conn)
        .within_or(tx.limit, conflict(|| format!("a token named {name} exists")))
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(ApiTokenRecord { id, name: name.to_owned(), created_at: audit.time })
    }

    async fn api_tokens(&self, user: &str) -> Result<Vec<ApiTokenRecord>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT t.id, t.name, t.created_at FROM api_tokens t JOIN users u ON u.id = t.user_id \
             JOIN namespaces n ON n.id = u.namespace_id WHERE n.name = $1 ORDER BY t.name",
        )
        .bind(user)
        .fetch_all(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        Ok(rows.into_iter().map(|(id, name, created_at)| ApiTokenRecord { id, name, created_at }).collect())
    }

    async fn delete_api_token(&self, user: &str, name: &str, audit: &AuditEntry) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let user_id = user_id(&mut tx, user).await?;
        let done = sqlx::query("DELETE FROM api_tokens WHERE user_id = $1 AND name = $2")
            .bind(user_id)
            .bind(name)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(format!("token {name} does not exist")));
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn user_by_api_token(&self, token_hash: &[u8]) -> Result<Option<UserRecord>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN namespaces n ON n.id = u.namespace_id \
             WHERE t.token_hash = $1"
        );
        let row: Option<UserRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        Ok(row.map(UserRecord::from))
    }

    async fn create_organization(&self, name: &str, creator: &str, audit: &AuditEntry) -> Result<NamespaceRecord> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let org_id: i64 = sqlx::query_scalar(
            "INSERT INTO namespaces (name, kind, created_at) VALUES ($1, 'organization', $2) RETURNING id",
        )
        .bind(name)
        .bind(audit.time)
        .fetch_one(&mut *tx.conn)
        .within_or(tx.limit, conflict(|| format!("the name {name} is taken")))
        .await?;
        let team: i64 = sqlx::query_scalar(
            "INSERT INTO teams (organization_id, name, role, description, created_at) VALUES ($1, 'owners', 'admin', 'Administrators of the organization', $2) RETURNING id",
        )
        .bind(org_id)
        .bind(audit.time)
        .fetch_one(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        if !creator.is_empty() {
            let user = user_id(&mut tx, creator).await?;
            sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)")
                .bind(team)
                .bind(user)
                .execute(&mut *tx.conn)
                .within(tx.limit)
                .await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(NamespaceRecord { name: name.to_owned(), kind: NamespaceKind::Organization, created_at: audit.time })
    }

    async fn list_organizations(&self, last: Option<&str>, limit: u32) -> Result<Vec<NamespaceRecord>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT name, created_at FROM namespaces WHERE kind = 'organization' AND name > $1 ORDER BY name LIMIT $2",
        )
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, created_at)| NamespaceRecord { name, kind: NamespaceKind::Organization, created_at })
            .collect())
    }

    async fn delete_organization(&self, name: &str, audit: &AuditEntry) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let done = sqlx::query("DELETE FROM namespaces WHERE name = $1 AND kind = 'organization'")
            .bind(name)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(format!("organization {name} does not exist")));
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn put_team(
        &self,
        org: &str,
        team: &str,
        role: TeamRole,
        description: &str,
        audit: &AuditEntry,
    ) -> Result<TeamRecord> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let org_id = namespace_id(&mut tx, org, Some(NamespaceKind::Organization)).await?;
        let current: Option<(i64, String)> =
            sqlx::query_as("SELECT id, role FROM teams WHERE organization_id = $1 AND name = $2")
                .bind(org_id)
                .bind(team)
                .fetch_optional(&mut *tx.conn)
                .within(tx.limit)
                .await?;
        if let Some((_, current_role)) = &current
            && current_role == "admin"
            && role != TeamRole::Admin
        {
            last_admin_team_guard(&mut tx, org_id).await?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO teams (organization_id, name, role, description, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (organization_id, name) DO UPDATE SET role = excluded.role, description = excluded.description RETURNING id",
        )
        .bind(org_id)
        .bind(team)
        .bind(role.as_str())
        .bind(description)
        .bind(audit.time)
        .fetch_one(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        insert_audit(&mut tx, audit).await?;
        let record = team_record(&mut tx, id).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn teams(&self, org: &str) -> Result<Vec<TeamRecord>> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT t.name, t.role, t.description, (SELECT COUNT(*) FROM team_members WHERE team_id = t.id) \
             FROM teams t JOIN namespaces n ON n.id = t.organization_id WHERE n.name = $1 ORDER BY t.name",
        )
        .bind(org)
        .fetch_all(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        rows.into_iter()
            .map(|(name, role, description, members)| {
                Ok(TeamRecord {
                    name,
                    role: parse(&role)?,
                    description,
                    members: u32::try_from(members).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn delete_team(&self, org: &str, team: &str, audit: &AuditEntry) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let org_id = namespace_id(&mut tx, org, Some(NamespaceKind::Organization)).await?;
        let id = team_id(&mut tx, org_id, team).await?;
        let role: String = sqlx::query_scalar("SELECT role FROM teams WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        if role == "admin" {
            last_admin_team_guard(&mut tx, org_id).await?;
        }
        sqlx::query("DELETE FROM teams WHERE id = $1").bind(id).execute(&mut *tx.conn).within(tx.limit).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn add_team_member(&self, org: &str, team: &str, member: &Member, audit: &AuditEntry) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let org_id = namespace_id(&mut tx, org, Some(NamespaceKind::Organization)).await?;
        let team_id = team_id(&mut tx, org_id, team).await?;
        match member {
            Member::User(name) => {
                let user = user_id(&mut tx, name).await?;
                sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(team_id)
                    .bind(user)
                    .execute(&mut *tx.conn)
                    .within(tx.limit)
                    .await?;
            }
            Member::Robot(full_name) => {
                if full_name.split_once('+').map(|(owner, _)| owner) != Some(org) {
                    return Err(Error::InvalidInput(format!("robot {full_name} does not belong to {org}")));
                }
                let robot = robot_id(&mut tx, full_name).await?;
                sqlx::query("INSERT INTO team_members (team_id, robot_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(team_id)
                    .bind(robot)
                    .execute(&mut *tx.conn)
                    .within(tx.limit)
                    .await?;
            }
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn remove_team_member(&self, org: &str, team: &str, member: &Member, audit: &AuditEntry) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let org_id = namespace_id(&mut tx, org, Some(NamespaceKind::Organization)).await?;
        let team_id = team_id(&mut tx, org_id, team).await?;
        let (column, id) = match member {
            Member::User(name) => ("user_id", user_id(&mut tx, name).await?),
            Member::Robot(name) => ("robot_id", robot_id(&mut tx, name).await?),
        };
        let role: String = sqlx::query_scalar("SELECT role FROM teams WHERE id = $1")
            .bind(team_id)
            .fetch_one(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        let sql = format!("DELETE FROM team_members WHERE team_id = $1 AND {column} = $2");
        let done =
            sqlx::query(AssertSqlSafe(sql)).bind(team_id).bind(id).execute(&mut *tx.conn).within(tx.limit).await?;
        if done.rows_affected() == 0 {
            return Err(not_found(format!("{} is not a member of {team}", member.name())));
        }
        if role == "admin" {
            let admins: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM team_members tm JOIN teams t ON t.id = tm.team_id \
                 WHERE t.organization_id = $1 AND t.role = 'admin' AND tm.user_id IS NOT NULL",
            )
            .bind(org_id)
            .fetch_one(&mut *tx.conn)
            .within(tx.limit)
            .await?;
            if admins == 0 {
                return Err(Error::InvalidInput(format!("{org} would be left without an administrator")));
            }
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn team_members(&self, org: &str, team: &str) -> Result<Vec<Member>> {
        let mut lease = self.reader.lease().await?;
        let mut tx = lease.begin().await?;
        let org_id = namespace_id(&mut tx, org, Some(NamespaceKind::Organization)).await?;
        let team_id = team_id(&mut tx, org_id, team).await?;
        let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT un.name, CASE WHEN r.id IS NULL THEN NULL ELSE rn.name || '+' || r.name END \
             FROM team_members tm \
             LEFT JOIN users u ON u.id = tm.user_id LEFT JOIN namespaces un ON un.id = u.namespace_id \
             LEFT JOIN robots r ON r.id = tm.robot_id LEFT JOIN namespaces rn ON rn.id = r.owner_id \
             WHERE tm.team_id = $1",
        )
        .bind(team_id)
        .fetch_all(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        tx.commit().await?;
        let mut members: Vec<Member> =
            rows.into_iter().filter_map(|(user, robot)| user.map(Member::User).or(robot.map(Member::Robot))).collect();
        members.sort();
        Ok(members)
    }

    async fn create_robot(
        &self,
        owner: &str,
        name: &str,
        description: &str,
        token_hash: &[u8],
        audit: &AuditEntry,
    ) -> Result<RobotRecord> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let owner_id = namespace_id(&mut tx, owner, None).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO robots (owner_id, name, token_hash, description, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(owner_id)
        .bind(name)
        .bind(token_hash)
        .bind(description)
        .bind(audit.time)
        .fetch_one(&mut *tx.conn)
        .within_or(tx.limit, conflict(|| format!("robot {owner}+{name} exists"))).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(RobotRecord {
            id,
            owner: owner.to_owned(),
            name: name.to_owned(),
            token_hash: token_hash.to_vec(),
            description: description.to_owned(),
            created_at: audit.time,
        })
    }

    async fn robots(&self, owner: &str) -> Result<Vec<RobotRecord>> {
        let rows: Vec<RobotRow> = sqlx::query_as(
            "SELECT r.id, n.name AS owner, r.name, r.token_hash, r.description, r.created_at FROM robots r \
             JOIN namespaces n ON n.id = r.owner_id WHERE n.name = $1 ORDER BY r.name",
        )
        .bind(owner)
        .fetch_all(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        Ok(rows.into_iter().map(RobotRecord::from).collect())
    }

    async fn robot(&self, full_name: &str) -> Result<Option<RobotRecord>> {
        let Some((owner, name)) = full_name.split_once('+') else { return Ok(None) };
        let row: Option<RobotRow> = sqlx::query_as(
            "SELECT r.id, n.name AS owner, r.name, r.token_hash, r.description, r.created_at FROM robots r \
             JOIN namespaces n ON n.id = r.owner_id WHERE n.name = $1 AND r.name = $2",
        )
        .bind(owner)
        .bind(name)
        .fetch_optional(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        Ok(row.map(RobotRecord::from))
    }

    async fn set_robot_token(&self, full_name: &str, token_hash: &[u8], audit: &AuditEntry) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let id = robot_id(&mut tx, full_name).await?;
        sqlx::query("UPDATE robots SET token_hash = $1 WHERE id = $2")
            .bind(token_hash)
            .bind(id)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn delete_robot(&self, full_name: &str, audit: &AuditEntry) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let id = robot_id(&mut tx, full_name).await?;
        sqlx::query("DELETE FROM robots WHERE id = $1").bind(id).execute(&mut *tx.conn).within(tx.limit).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn create_repository(
        &self,
        name: &RepositoryName,
        visibility: Visibility,
        creator: &Principal,
        audit: &AuditEntry,
    ) -> Result<RepositoryRecord> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let (id, created) = ensure_repository(&mut tx, name, RepositoryKind::Image, creator, audit).await?;
        if !created {
            return Err(Error::Conflict(format!("repository {name} exists")));
        }
        sqlx::query("UPDATE repositories SET visibility = $1 WHERE id = $2")
            .bind(visibility.as_str())
            .bind(id)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        let sql = format!("SELECT {REPOSITORY_COLUMNS} WHERE r.id = $1");
        let row: RepositoryRow =
            sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_one(&mut *tx.conn).within(tx.limit).await?;
        tx.commit().await?;
        row.into_record()
    }

    async fn repository(&self, name: &RepositoryName) -> Result<Option<RepositoryRecord>> {
        let sql = format!("SELECT {REPOSITORY_COLUMNS} WHERE r.name = $1");
        let row: Option<RepositoryRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(name.as_str())
            .fetch_optional(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        row.map(RepositoryRow::into_record).transpose()
    }

    async fn list_repositories_for(
        &self,
        principal: &Principal,
        namespace: Option<&str>,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RepositoryRecord>> {
        let (user, robot) = principal_ids(principal);
        let sql = format!(
            "SELECT {REPOSITORY_COLUMNS} WHERE r.name > $4 AND ($5 IS NULL OR n.name = $5) AND {READABLE} ORDER BY r.name LIMIT $6"
        );
        let rows: Vec<RepositoryRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(user)
            .bind(robot)
            .bind(principal.is_superuser())
            .bind(last.unwrap_or(""))
            .bind(namespace)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        rows.into_iter().map(RepositoryRow::into_record).collect()
    }

    async fn set_visibility(&self, name: &RepositoryName, visibility: Visibility, audit: &AuditEntry) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let done = sqlx::query("UPDATE repositories SET visibility = $1 WHERE name = $2")
            .bind(visibility.as_str())
            .bind(name.as_str())
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(format!("repository {name} does not exist")));
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn delete_repository(&self, name: &RepositoryName, audit: &AuditEntry) -> Result<Vec<String>> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let (id, _) = repository_ids(&mut tx, name).await?;
        let keys: Vec<String> = sqlx::query_scalar("SELECT storage_key FROM uploads WHERE repository_id = $1")
            .bind(id)
            .fetch_all(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        sqlx::query("DELETE FROM repositories WHERE id = $1").bind(id).execute(&mut *tx.conn).within(tx.limit).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(keys)
    }

    async fn permissions(&self, name: &RepositoryName) -> Result<Vec<PermissionRecord>> {
        let sql = format!(
            "{} JOIN repositories r ON r.id = g.repository_id WHERE r.name = $1 ORDER BY user_name, team_name, robot_name",
            grantee_select("CAST(0 AS BIGINT)", "permissions")
        );
        let rows: Vec<GrantRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(name.as_str())
            .fetch_all(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        rows.into_iter().map(|r| Ok(PermissionRecord { grantee: r.grantee()?, role: parse(&r.role)? })).collect()
    }

    async fn set_permission(
        &self,
        name: &RepositoryName,
        grantee: &Grantee,
        role: Role,
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let (repository_id, organization_id) = repository_ids(&mut tx, name).await?;
        let (column, id) = grantee_column(&mut tx, grantee, organization_id).await?;
        let sql = format!(
            "INSERT INTO permissions (repository_id, {column}, role) VALUES ($1, $2, $3) \
             ON CONFLICT (repository_id, {column}) WHERE {column} IS NOT NULL DO UPDATE SET role = excluded.role"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(id)
            .bind(role.as_str())
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn remove_permission(&self, name: &RepositoryName, grantee: &Grantee, audit: &AuditEntry) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let (repository_id, organization_id) = repository_ids(&mut tx, name).await?;
        let (column, id) = grantee_column(&mut tx, grantee, organization_id).await?;
        let sql = format!("DELETE FROM permissions WHERE repository_id = $1 AND {column} = $2");
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(repository_id)
            .bind(id)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(format!("{} {} has no permission on {name}", grantee.kind, grantee.name)));
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn default_permissions(&self, org: &str) -> Result<Vec<DefaultPermissionRecord>> {
        let sql = format!(
            "{} JOIN namespaces o ON o.id = g.organization_id WHERE o.name = $1 ORDER BY g.id",
            grantee_select("g.id", "default_permissions")
        );
        let rows: Vec<GrantRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(org)
            .fetch_all(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        rows.into_iter()
            .map(|r| Ok(DefaultPermissionRecord { id: r.id, grantee: r.grantee()?, role: parse(&r.role)? }))
            .collect()
    }

    async fn add_default_permission(
        &self,
        org: &str,
        grantee: &Grantee,
        role: Role,
        audit: &AuditEntry,
    ) -> Result<DefaultPermissionRecord> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let org_id = namespace_id(&mut tx, org, Some(NamespaceKind::Organization)).await?;
        let (column, principal_id) = grantee_column(&mut tx, grantee, Some(org_id)).await?;
        let sql = format!(
            "INSERT INTO default_permissions (organization_id, {column}, role) VALUES ($1, $2, $3) RETURNING id"
        );
        let id: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(org_id)
            .bind(principal_id)
            .bind(role.as_str())
            .fetch_one(&mut *tx.conn)
            .within_or(
                tx.limit,
                conflict(|| format!("{} {} has a default permission in {org} already", grantee.kind, grantee.name)),
            )
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(DefaultPermissionRecord { id, grantee: grantee.clone(), role })
    }

    async fn remove_default_permission(&self, org: &str, id: i64, audit: &AuditEntry) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let org_id = namespace_id(&mut tx, org, Some(NamespaceKind::Organization)).await?;
        let done = sqlx::query("DELETE FROM default_permissions WHERE id = $1 AND organization_id = $2")
            .bind(id)
            .bind(org_id)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(format!("default permission {id} does not exist in {org}")));
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }

    async fn tag_versions(
        &self,
        name: &RepositoryName,
        history: bool,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<TagVersion>> {
        let rows: Vec<(i64, String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT t.id, t.name, m.digest, t.lifetime_start, t.lifetime_end FROM tags t \
             JOIN manifests m ON m.id = t.manifest_id JOIN repositories r ON r.id = t.repository_id \
             WHERE r.name = $1 AND ($2 OR t.lifetime_end IS NULL) AND t.id < $3 ORDER BY t.id DESC LIMIT $4",
        )
        .bind(name.as_str())
        .bind(history)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        Ok(rows.into_iter().map(|(id, name, digest, start, end)| TagVersion { id, name, digest, start, end }).collect())
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        for entry in entries {
            insert_audit(&mut tx, entry).await?;
        }
        tx.commit().await
    }

    async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut q = QueryBuilder::<Db>::new(
            "SELECT id, time, actor_kind, actor, action, namespace, repository, client_ip, details FROM audit_log WHERE id < ",
        );
        q.push_bind(filter.before.unwrap_or(i64::MAX));
        for (column, value) in [
            ("namespace", &filter.namespace),
            ("repository", &filter.repository),
            ("actor", &filter.actor),
            ("action", &filter.action),
        ] {
            if let Some(value) = value {
                q.push(format!(" AND {column} = ")).push_bind(value.clone());
            }
        }
        if let Some(since) = filter.since {
            q.push(" AND time >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            q.push(" AND time < ").push_bind(until);
        }
        q.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(filter.limit));
        let rows: Vec<AuditRow> =
            q.build_query_as().fetch_all(&mut *self.reader.lease().await?).within(self.reader.limit).await?;
        rows.into_iter().map(AuditRow::into_record).collect()
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    time: i64,
    actor_kind: String,
    actor: String,
    action: String,
    namespace: Option<String>,
    repository: Option<String>,
    client_ip: Option<String>,
    details: Option<String>,
}

impl AuditRow {
    fn into_record(self) -> Result<AuditRecord> {
        let details = match self.details {
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|_| Error::Backend("database holds invalid audit details".into()))?,
            ),
            None => None,
        };
        Ok(AuditRecord {
            id: self.id,
            entry: AuditEntry {
                time: self.time,
                actor_kind: self.actor_kind,
                actor: self.actor,
                action: self.action,
                namespace: self.namespace,
                repository: self.repository,
                client_ip: self.client_ip,
                details,
            },
        })
    }
}

/// Refuses to drop an organization's only admin team.
async fn last_admin_team_guard(tx: &mut Tx<'_>, org_id: i64) -> Result<()> {
    let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM teams WHERE organization_id = $1 AND role = 'admin'")
        .bind(org_id)
        .fetch_one(&mut *tx.conn)
        .within(tx.limit)
        .await?;
    if admins <= 1 {
        return Err(Error::InvalidInput("an organization keeps at least one admin team".into()));
    }
    Ok(())
}

impl SqlMetaStore {
    async fn update_user(
        &self,
        name: &str,
        sql: &'static str,
        bind: impl for<'q> FnOnce(
            sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>,
        ) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>,
        audit: &AuditEntry,
    ) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let id = user_id(&mut tx, name).await?;
        bind(sqlx::query(sql)).bind(id).execute(&mut *tx.conn).within(tx.limit).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await
    }
}

// Role ranks in the SQL above follow the enum order: keep them in step.
const _: () = {
    assert!(matches!(Role::ALL, [Role::Read, Role::Write, Role::Admin]));
    assert!(matches!(TeamRole::ALL, [TeamRole::Member, TeamRole::Creator, TeamRole::Admin]));
};

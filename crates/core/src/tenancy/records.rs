//! What the tenancy part of the metadata store holds.

use serde_json::Value;

use crate::access::{GranteeKind, NamespaceKind, Role, TeamRole, Visibility};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub superuser: bool,
    pub email: Option<String>,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceRecord {
    pub name: String,
    pub kind: NamespaceKind,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamRecord {
    pub name: String,
    pub role: TeamRole,
    pub description: String,
    pub members: u32,
}

/// A team member: a user, or a robot by its full `owner+name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Member {
    User(String),
    Robot(String),
}

impl Member {
    /// Robots are recognised by the `+` in their name.
    pub fn from_name(name: &str) -> Member {
        if name.contains('+') { Member::Robot(name.to_owned()) } else { Member::User(name.to_owned()) }
    }

    pub fn name(&self) -> &str {
        match self {
            Member::User(n) | Member::Robot(n) => n,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RobotRecord {
    pub id: i64,
    /// The owning user or organization.
    pub owner: String,
    /// The short name; the full name is `owner+name`.
    pub name: String,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    pub description: String,
    pub created_at: i64,
}

impl RobotRecord {
    pub fn full_name(&self) -> String {
        format!("{}+{}", self.owner, self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryRecord {
    pub name: String,
    pub namespace: String,
    pub kind: String,
    pub visibility: Visibility,
    pub created_at: i64,
}

/// Someone a permission is granted to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grantee {
    pub kind: GranteeKind,
    /// A user name, a team name (within the repository's organization) or a robot's full name.
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionRecord {
    pub grantee: Grantee,
    pub role: Role,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultPermissionRecord {
    pub id: i64,
    pub grantee: Grantee,
    pub role: Role,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

/// One version of a tag: it pointed at `digest` from `start` until `end` (still does when
/// `end` is `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagVersion {
    /// Orders versions; pass the last one seen as `before` to continue a listing.
    pub id: i64,
    pub name: String,
    pub digest: String,
    pub start: i64,
    pub end: Option<i64>,
}

/// A row to append to the audit log.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub time: i64,
    pub actor_kind: String,
    pub actor: String,
    pub action: String,
    pub namespace: Option<String>,
    pub repository: Option<String>,
    pub client_ip: Option<String>,
    pub details: Option<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub entry: AuditEntry,
}

/// Which audit rows to list, newest first; `before` is the id to continue after.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub namespace: Option<String>,
    pub repository: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before: Option<i64>,
    pub limit: u32,
}

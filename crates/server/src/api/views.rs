//! How the management API shows things: stable JSON views of the core records.

use berth_core::tenancy::records::{
    ApiTokenRecord, AuditRecord, DefaultPermissionRecord, Member, NamespaceRecord, PermissionRecord, RepositoryRecord,
    RobotRecord, TagVersion, TeamRecord, UserRecord,
};
use serde::Serialize;
use serde_json::Value;

#[derive(Serialize)]
pub struct User {
    pub name: String,
    pub superuser: bool,
    pub email: Option<String>,
    pub created_at: i64,
}

impl From<UserRecord> for User {
    fn from(u: UserRecord) -> Self {
        User { name: u.name, superuser: u.superuser, email: u.email, created_at: u.created_at }
    }
}

#[derive(Serialize)]
pub struct ApiToken {
    pub name: String,
    pub created_at: i64,
    /// Only when the token was just created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl From<ApiTokenRecord> for ApiToken {
    fn from(t: ApiTokenRecord) -> Self {
        ApiToken { name: t.name, created_at: t.created_at, token: None }
    }
}

#[derive(Serialize)]
pub struct Organization {
    pub name: String,
    pub created_at: i64,
}

impl From<NamespaceRecord> for Organization {
    fn from(n: NamespaceRecord) -> Self {
        Organization { name: n.name, created_at: n.created_at }
    }
}

#[derive(Serialize)]
pub struct Team {
    pub name: String,
    pub role: String,
    pub description: String,
    pub members: u32,
}

impl From<TeamRecord> for Team {
    fn from(t: TeamRecord) -> Self {
        Team { name: t.name, role: t.role.to_string(), description: t.description, members: t.members }
    }
}

#[derive(Serialize)]
pub struct TeamMember {
    pub kind: &'static str,
    pub name: String,
}

impl From<Member> for TeamMember {
    fn from(m: Member) -> Self {
        match m {
            Member::User(name) => TeamMember { kind: "user", name },
            Member::Robot(name) => TeamMember { kind: "robot", name },
        }
    }
}

#[derive(Serialize)]
pub struct Robot {
    /// `owner+name`, the username to log in with.
    pub name: String,
    pub owner: String,
    pub short_name: String,
    pub description: String,
    pub created_at: i64,
    /// Only when the robot was just created or its token regenerated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Robot {
    pub fn new(r: RobotRecord, token: Option<String>) -> Robot {
        Robot {
            name: r.full_name(),
            owner: r.owner,
            short_name: r.name,
            description: r.description,
            created_at: r.created_at,
            token,
        }
    }
}

#[derive(Serialize)]
pub struct Repository {
    pub name: String,
    pub namespace: String,
    pub kind: String,
    pub visibility: String,
    pub created_at: i64,
}

impl From<RepositoryRecord> for Repository {
    fn from(r: RepositoryRecord) -> Self {
        Repository {
            name: r.name,
            namespace: r.namespace,
            kind: r.kind,
            visibility: r.visibility.to_string(),
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize)]
pub struct Permission {
    pub kind: String,
    pub name: String,
    pub role: String,
}

impl From<PermissionRecord> for Permission {
    fn from(p: PermissionRecord) -> Self {
        Permission { kind: p.grantee.kind.to_string(), name: p.grantee.name, role: p.role.to_string() }
    }
}

#[derive(Serialize)]
pub struct DefaultPermission {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub role: String,
}

impl From<DefaultPermissionRecord> for DefaultPermission {
    fn from(p: DefaultPermissionRecord) -> Self {
        DefaultPermission { id: p.id, kind: p.grantee.kind.to_string(), name: p.grantee.name, role: p.role.to_string() }
    }
}

#[derive(Serialize)]
pub struct Tag {
    pub id: i64,
    pub name: String,
    pub digest: String,
    pub start: i64,
    pub end: Option<i64>,
}

impl From<TagVersion> for Tag {
    fn from(t: TagVersion) -> Self {
        Tag { id: t.id, name: t.name, digest: t.digest, start: t.start, end: t.end }
    }
}

#[derive(Serialize)]
pub struct LogEntry {
    pub id: i64,
    pub time: i64,
    pub actor_kind: String,
    pub actor: String,
    pub action: String,
    pub namespace: Option<String>,
    pub repository: Option<String>,
    pub client_ip: Option<String>,
    pub details: Option<Value>,
}

impl From<AuditRecord> for LogEntry {
    fn from(r: AuditRecord) -> Self {
        let e = r.entry;
        LogEntry {
            id: r.id,
            time: e.time,
            actor_kind: e.actor_kind,
            actor: e.actor,
            action: e.action,
            namespace: e.namespace,
            repository: e.repository,
            client_ip: e.client_ip,
            details: e.details,
        }
    }
}

/// A page of a listing: the items, and the cursor for the next page (`null` at the end).
#[derive(Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// `next` is set when the page came back full: more may follow after its last item.
    pub fn keyed(items: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Page<T> {
        let next = if items.len() >= limit.max(1) as usize { items.last().map(key) } else { None };
        Page { items, next }
    }
}

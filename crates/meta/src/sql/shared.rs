//! Statements several use cases run inside their transactions: audit rows, repository
//! creation, principal ids and the "may read" predicate.

use berth_core::access::{Principal, RepositoryKind};
use berth_core::tenancy::records::AuditEntry;
use berth_core::{Error, Result};
use berth_oci::RepositoryName;

use super::lease::{Tx, Within};

pub async fn insert_audit(tx: &mut Tx<'_>, e: &AuditEntry) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (time, actor_kind, actor, action, namespace, repository, client_ip, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(e.time)
    .bind(&e.actor_kind)
    .bind(&e.actor)
    .bind(&e.action)
    .bind(e.namespace.as_deref())
    .bind(e.repository.as_deref())
    .bind(e.client_ip.as_deref())
    .bind(e.details.as_ref().map(|d| d.to_string()))
    .execute(&mut *tx.conn)
    .within(tx.limit)
    .await?;
    Ok(())
}

/// `(user id, robot id)` of a principal, for binding into the access predicates.
pub fn principal_ids(principal: &Principal) -> (Option<i64>, Option<i64>) {
    (principal.user_id(), principal.robot_id())
}

/// The repository's id, creating it first as a push by `creator` does (see
/// `MetaStore::ensure_repository`). Returns `(id, created)`.
/// A repository of the other kind is refused with `WrongKind`.
pub async fn ensure_repository(
    tx: &mut Tx<'_>,
    name: &RepositoryName,
    kind: RepositoryKind,
    creator: &Principal,
    audit: &AuditEntry,
) -> Result<(i64, bool)> {
    let existing: Option<(i64, String)> = sqlx::query_as("SELECT id, kind FROM repositories WHERE name = $1")
        .bind(name.as_str())
        .fetch_optional(&mut *tx.conn)
        .within(tx.limit)
        .await?;
    if let Some((id, existing_kind)) = existing {
        if existing_kind != kind.as_str() {
            return Err(wrong_kind(name, &existing_kind));
        }
        return Ok((id, false));
    }
    let namespace: Option<(i64, String)> = sqlx::query_as("SELECT id, kind FROM namespaces WHERE name = $1")
        .bind(name.namespace())
        .fetch_optional(&mut *tx.conn)
        .within(tx.limit)
        .await?;
    let (namespace_id, namespace_kind) = match namespace {
        Some(ns) => ns,
        None if creator.is_superuser() => {
            let id = sqlx::query_scalar(
                "INSERT INTO namespaces (name, kind, created_at) VALUES ($1, 'organization', $2) RETURNING id",
            )
            .bind(name.namespace())
            .bind(audit.time)
            .fetch_one(&mut *tx.conn)
            .within(tx.limit)
            .await?;
            (id, "organization".to_owned())
        }
        None => return Err(Error::Denied(format!("namespace {} does not exist", name.namespace()))),
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO repositories (name, namespace_id, kind, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(name.as_str())
    .bind(namespace_id)
    .bind(kind.as_str())
    .bind(audit.time)
    .fetch_one(&mut *tx.conn)
    .within(tx.limit)
    .await?;
    // The creator keeps access to what they created (a user owning the namespace needs no row).
    let owns_namespace: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE namespace_id = $1 AND id = $2")
        .bind(namespace_id)
        .bind(creator.user_id())
        .fetch_optional(&mut *tx.conn)
        .within(tx.limit)
        .await?;
    let grant = match creator {
        Principal::User { id, .. } if owns_namespace.is_none() => Some(("user_id", *id, "admin")),
        Principal::Robot { id, .. } => Some(("robot_id", *id, "write")),
        _ => None,
    };
    if let Some((column, principal_id, role)) = grant {
        let sql = if column == "user_id" {
            "INSERT INTO permissions (repository_id, user_id, role) VALUES ($1, $2, $3)"
        } else {
            "INSERT INTO permissions (repository_id, robot_id, role) VALUES ($1, $2, $3)"
        };
        sqlx::query(sql).bind(id).bind(principal_id).bind(role).execute(&mut *tx.conn).within(tx.limit).await?;
    }
    if namespace_kind == "organization" {
        sqlx::query(
            "INSERT INTO permissions (repository_id, user_id, team_id, robot_id, role) \
             SELECT $1, user_id, team_id, robot_id, role FROM default_permissions WHERE organization_id = $2 \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(namespace_id)
        .execute(&mut *tx.conn)
        .within(tx.limit)
        .await?;
    }
    insert_audit(tx, audit).await?;
    Ok((id, true))
}

/// The refusal for using a repository through the other kind's protocol.
pub fn wrong_kind(name: &RepositoryName, existing_kind: &str) -> Error {
    if existing_kind == RepositoryKind::Application.as_str() {
        Error::WrongKind(format!("{name} is an App Registry package repository, not an image repository"))
    } else {
        Error::WrongKind(format!("{name} is an image repository, not an App Registry package"))
    }
}

/// SQL condition: repository `r` is readable by the principal bound as `$1` (user id), `$2`
/// (robot id) and `$3` (whether a superuser asks).
pub const READABLE: &str = "($3 OR r.visibility = 'public' \
    OR EXISTS (SELECT 1 FROM permissions p WHERE p.repository_id = r.id AND (p.user_id = $1 OR p.robot_id = $2 \
        OR p.team_id IN (SELECT tm.team_id FROM team_members tm WHERE tm.user_id = $1 OR tm.robot_id = $2))) \
    OR EXISTS (SELECT 1 FROM users ou WHERE ou.namespace_id = r.namespace_id AND ou.id = $1) \
    OR EXISTS (SELECT 1 FROM teams t JOIN team_members tm ON tm.team_id = t.id \
        WHERE t.organization_id = r.namespace_id AND t.role = 'admin' AND (tm.user_id = $1 OR tm.robot_id = $2)))";

//! Tenancy use cases: who may log in, what they may do, and the management of users,
//! organizations, teams, robots, repositories and permissions (Quay's model).

mod admin;
pub mod credentials;
pub mod names;
pub mod records;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use berth_oci::RepositoryName;
use moka::future::Cache;
use serde_json::Value;
use tokio::sync::mpsc;

pub use admin::{API_TOKEN_PREFIX, CreatedRobot, CreatedToken, MAX_PAGE, Page, ROBOT_TOKEN_PREFIX};
use credentials::Throttle;
use records::AuditEntry;

use crate::access::{AccessFacts, Actor, Principal, RepoAccess};
use crate::changes;
use crate::ports::{Change, MetaStore};
use crate::time::now_ms;
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct TenancyConfig {
    /// How long a verified username/secret pair is trusted without re-checking it.
    pub credential_cache_ttl: Duration,
    /// How long an access decision is reused (changes made through this process apply at
    /// once; this bounds how stale another process's changes can be).
    pub access_cache_ttl: Duration,
    /// Failed logins allowed per client address and window.
    pub failures_per_address: u32,
    /// Failed logins allowed per account and window.
    pub failures_per_account: u32,
    pub failure_window: Duration,
}

impl Default for TenancyConfig {
    fn default() -> Self {
        TenancyConfig {
            credential_cache_ttl: Duration::from_secs(60),
            access_cache_ttl: Duration::from_secs(5),
            failures_per_address: 30,
            failures_per_account: 10,
            failure_window: Duration::from_secs(60),
        }
    }
}

pub struct Tenancy {
    store: Arc<dyn MetaStore>,
    verified: Cache<[u8; 32], Principal>,
    access: Cache<(Principal, String), RepoAccess>,
    address_failures: Throttle,
    account_failures: Throttle,
    audit_queue: mpsc::Sender<AuditEntry>,
}

/// Audit rows queued outside a transaction (logins); written in batches by
/// [`write_audit_batches`].
pub struct AuditQueue(mpsc::Receiver<AuditEntry>);

impl Tenancy {
    pub fn new(store: Arc<dyn MetaStore>, config: &TenancyConfig) -> (Tenancy, AuditQueue) {
        let (tx, rx) = mpsc::channel(10_000);
        let tenancy = Tenancy {
            store,
            verified: Cache::builder().max_capacity(50_000).time_to_live(config.credential_cache_ttl).build(),
            access: Cache::builder().max_capacity(200_000).time_to_live(config.access_cache_ttl).build(),
            address_failures: Throttle::new(config.failures_per_address, config.failure_window),
            account_failures: Throttle::new(config.failures_per_account, config.failure_window),
            audit_queue: tx,
        };
        (tenancy, AuditQueue(rx))
    }

    /// What `principal` may do to the repository `name` (cached briefly).
    pub async fn access(&self, principal: &Principal, name: &RepositoryName) -> Result<RepoAccess> {
        if principal.is_superuser() {
            return Ok(RepoAccess::ALL);
        }
        self.access
            .try_get_with((principal.clone(), name.as_str().to_owned()), async {
                let facts = self.store.access_facts(principal, name).await?;
                Ok(RepoAccess::decide(principal, &facts))
            })
            .await
            .map_err(|e: Arc<Error>| (*e).clone())
    }

    async fn facts(&self, principal: &Principal, namespace: &str) -> Result<AccessFacts> {
        let name = RepositoryName::parse(namespace).map_err(|e| Error::InvalidInput(e.to_string()))?;
        self.store.access_facts(principal, &name).await
    }

    /// Forgets cached decisions after a change to permissions, teams or repositories, here
    /// and on the other instances.
    async fn access_changed(&self) {
        self.access.invalidate_all();
        changes::announce(&*self.store, Change::Access).await;
    }

    /// Forgets verified credentials after a password, token or account change, here and on
    /// the other instances.
    async fn credentials_changed(&self) {
        self.verified.invalidate_all();
        self.access.invalidate_all();
        changes::announce(&*self.store, Change::Credentials).await;
    }

    /// Applies a change another instance announced.
    pub fn apply_change(&self, change: &Change) {
        match change {
            Change::Access => self.access.invalidate_all(),
            Change::Credentials | Change::Everything => {
                self.verified.invalidate_all();
                self.access.invalidate_all();
            }
            _ => {}
        }
    }

    /// Verifies a username and password (or robot token, or personal API token), throttling
    /// failures per client address and per account.
    pub async fn authenticate(
        &self,
        username: &str,
        secret: &str,
        actor_ip: Option<std::net::IpAddr>,
    ) -> Result<Principal> {
        // A pair verified lately is trusted without hashing again, and cannot be a guess:
        // throttling applies to the checks that could be.
        let key = credentials::credential_key(username, secret);
        if let Some(principal) = self.verified.get(&key).await {
            return Ok(principal);
        }
        let address_key = actor_ip.map(|ip| ip.to_string());
        if let Some(key) = &address_key {
            self.address_failures.check(key).await?;
        }
        self.account_failures.check(username).await?;
        match self.verify(username, secret).await? {
            Some(principal) => {
                self.verified.insert(key, principal.clone()).await;
                let actor = Actor { principal: principal.clone(), client_ip: actor_ip };
                self.queue_audit(audit(&actor, "login", None, None, None));
                Ok(principal)
            }
            None => {
                if let Some(key) = &address_key {
                    self.address_failures.record_failure(key).await;
                }
                self.account_failures.record_failure(username).await;
                let actor = Actor { principal: Principal::Anonymous, client_ip: actor_ip };
                self.queue_audit(audit(
                    &actor,
                    "login_failed",
                    None,
                    None,
                    Some(serde_json::json!({ "username": username })),
                ));
                Err(Error::Unauthorized("invalid username or password".into()))
            }
        }
    }

    async fn verify(&self, username: &str, secret: &str) -> Result<Option<Principal>> {
        if username.contains('+') {
            let Some(robot) = self.store.robot(username).await? else { return Ok(None) };
            return Ok(credentials::token_matches(secret, &robot.token_hash)
                .then(|| Principal::Robot { id: robot.id, name: robot.full_name() }));
        }
        let Some(user) = self.store.user(username).await? else { return Ok(None) };
        let principal = Principal::User { id: user.id, name: user.name.clone(), superuser: user.superuser };
        if secret.starts_with(admin::API_TOKEN_PREFIX) {
            let owner = self.store.user_by_api_token(&credentials::token_hash(secret)).await?;
            return Ok(owner.filter(|o| o.id == user.id).map(|_| principal));
        }
        Ok(credentials::verify_password(secret.to_owned(), user.password_hash).await?.then_some(principal))
    }

    /// Resolves a personal API token presented as a bearer token.
    pub async fn authenticate_api_token(&self, token: &str) -> Result<Principal> {
        let user = self.store.user_by_api_token(&credentials::token_hash(token)).await?;
        user.map(|u| Principal::User { id: u.id, name: u.name, superuser: u.superuser })
            .ok_or_else(|| Error::Unauthorized("invalid or revoked API token".into()))
    }

    fn queue_audit(&self, entry: AuditEntry) {
        if self.audit_queue.try_send(entry).is_err() {
            tracing::warn!("audit queue full; a login record was dropped");
        }
    }
}

/// Builds an audit row for `actor` doing `action`.
pub fn audit(
    actor: &Actor,
    action: &str,
    namespace: Option<&str>,
    repository: Option<&str>,
    details: Option<Value>,
) -> AuditEntry {
    AuditEntry {
        time: now_ms(),
        actor_kind: actor.principal.kind().to_owned(),
        actor: actor.principal.name().to_owned(),
        action: action.to_owned(),
        namespace: namespace.map(str::to_owned),
        repository: repository.map(str::to_owned),
        client_ip: actor.client_ip.map(|ip| ip.to_string()),
        details,
    }
}

/// Writes queued audit rows in batches (up to 500, or whatever arrived within 200 ms) until
/// the queue closes.
pub async fn write_audit_batches(queue: AuditQueue, store: Arc<dyn MetaStore>) {
    let mut rx = queue.0;
    let mut batch = Vec::with_capacity(500);
    while rx.recv_many(&mut batch, 500).await > 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        while batch.len() < 500 {
            match rx.try_recv() {
                Ok(entry) => batch.push(entry),
                Err(_) => break,
            }
        }
        if let Err(e) = store.append_audit(&batch).await {
            tracing::error!(error = %e, rows = batch.len(), "writing audit rows failed");
        }
        batch.clear();
    }
}

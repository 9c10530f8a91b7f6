//! Administration on a data directory, without a running server (or beside one: SQLite
//! takes care of concurrent writers; a running server sees account changes at once and
//! permission changes within seconds).

use std::sync::Arc;

use berth_core::ports::MetaStore;
use berth_core::tenancy::records::UserRecord;
use berth_core::tenancy::{Tenancy, TenancyConfig};

use crate::config::Config;

/// Creates an account; the only way in before any superuser exists.
pub async fn create_user(config: &Config, name: &str, password: String, superuser: bool) -> anyhow::Result<UserRecord> {
    let meta = crate::app::open_meta(config).await?;
    let store: Arc<dyn MetaStore> = meta.clone();
    let (tenancy, _audit) = Tenancy::new(store, &TenancyConfig::default());
    let user = tenancy.bootstrap_user(name, password, superuser).await;
    meta.close().await;
    Ok(user?)
}

//! Telling the other instances sharing the database about committed changes, so they drop
//! what they cached (see [`MetaStore::publish_change`]).

use crate::ports::{Change, MetaStore};

/// Publishes `change`. The change itself has committed, so a failure to announce it does not
/// fail the request: it is logged and counted, and the other instances' caches may serve the
/// old state until their change feed reconnects (which drops everything they cached).
pub async fn announce(meta: &dyn MetaStore, change: Change) {
    if let Err(e) = meta.publish_change(&change).await {
        metrics::counter!("berth_change_publish_failures_total").increment(1);
        tracing::warn!(error = %e, change = %change.encode(), "could not tell other instances about a change");
    }
}

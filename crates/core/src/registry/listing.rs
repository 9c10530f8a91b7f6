use berth_oci::RepositoryName;
use std::sync::Arc;

use berth_oci::path::Page;

use super::Registry;
use crate::access::Principal;
use crate::{Error, Result};

/// One page of a lexically ordered listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub items: Vec<String>,
    /// Set when more items may follow: the `last` to ask for the next page with, and the
    /// page size used.
    pub next: Option<(String, u32)>,
}

impl Registry {
    /// A page of `name`'s tags.
    pub async fn tags(&self, name: &RepositoryName, page: &Page) -> Result<Listing> {
        let limit = self.page_size(page);
        if limit == 0 {
            return if self.meta.repository_exists(name).await? {
                Ok(Listing { items: Vec::new(), next: None })
            } else {
                Err(Error::NameUnknown(name.to_string()))
            };
        }
        let key = format!("{limit}/{}", page.last.as_deref().unwrap_or(""));
        let items = self
            .tag_cache
            .get_or_load(&self.generations, name.as_str(), &key, async {
                Ok(self.meta.list_tags(name, page.last.as_deref(), limit + 1).await?.map(Arc::new))
            })
            .await?
            .ok_or_else(|| Error::NameUnknown(name.to_string()))?;
        Ok(paginate(items.as_ref().clone(), limit))
    }

    /// A page of the names of the repositories `principal` may read.
    pub async fn catalog(&self, principal: &Principal, page: &Page) -> Result<Listing> {
        let limit = self.page_size(page);
        if limit == 0 {
            return Ok(Listing { items: Vec::new(), next: None });
        }
        let items = self.meta.readable_repositories(principal, page.last.as_deref(), limit + 1).await?;
        Ok(paginate(items, limit))
    }

    fn page_size(&self, page: &Page) -> u32 {
        page.n.map_or(self.config.page_limit, |n| n.min(self.config.page_limit))
    }
}

/// `items` holds up to `limit + 1` entries; the extra one only says that more follow.
fn paginate(mut items: Vec<String>, limit: u32) -> Listing {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more { items.last().map(|last| (last.clone(), limit)) } else { None };
    Listing { items, next }
}

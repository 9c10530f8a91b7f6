use axum::body::Body;
use axum::http::{Response, StatusCode, header};
use berth_core::Result;
use berth_core::access::Actor;
use berth_core::registry::{Listing, Registry};
use berth_oci::RepositoryName;
use berth_oci::path::Page;
use serde_json::json;

use super::response::{json, value};

pub async fn tags(registry: &Registry, name: &RepositoryName, page: &Page) -> Result<Response<Body>> {
    let listing = registry.tags(name, page).await?;
    let mut response = json(StatusCode::OK, &json!({ "name": name.as_str(), "tags": listing.items }));
    link_next(&mut response, &format!("/v2/{name}/tags/list"), &listing);
    Ok(response)
}

pub async fn catalog(registry: &Registry, actor: &Actor, page: &Page) -> Result<Response<Body>> {
    let listing = registry.catalog(&actor.principal, page).await?;
    let mut response = json(StatusCode::OK, &json!({ "repositories": listing.items }));
    link_next(&mut response, "/v2/_catalog", &listing);
    Ok(response)
}

/// `Link: <path?n=N&last=L>; rel="next"` when more items follow.
fn link_next(response: &mut Response<Body>, path: &str, listing: &Listing) {
    if let Some((last, n)) = &listing.next {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("n", &n.to_string())
            .append_pair("last", last)
            .finish();
        response.headers_mut().insert(header::LINK, value(format!("<{path}?{query}>; rel=\"next\"")));
    }
}

//! Tag lists and the catalog: lexical order, n/last pagination, Link headers.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::content::OCI_MANIFEST;
use crate::support::{TestRegistry, expect_error, header};

async fn get_json(reg: &TestRegistry, path: &str) -> (Value, Option<String>) {
    let r = reg.send(Method::GET, path).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    assert_eq!(header(&r, "content-type"), "application/json");
    let link = r.headers().get("link").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (r.json().await.expect("json"), link)
}

/// The path of a `Link: <path>; rel="next"` header.
fn next_path(link: &str) -> String {
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    link.trim_start_matches('<').split('>').next().expect("link target").to_owned()
}

#[tokio::test]
async fn tags_in_lexical_order_with_pagination() {
    let reg = TestRegistry::start().await;
    let image = reg.push_image("team/tags", "v1", &[b"layer"]).await;
    let mut names = vec!["v1".to_owned()];
    for tag in ["latest", "B", "a", "v10", "v2", "_x", "0.1", "a-b", "a.b"] {
        let r = reg.put_manifest("team/tags", tag, OCI_MANIFEST, &image.manifest).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        names.push(tag.to_owned());
    }
    names.sort();
    let (all, link) = get_json(&reg, "/v2/team/tags/tags/list").await;
    assert_eq!(all, json!({ "name": "team/tags", "tags": names }));
    assert!(link.is_none());

    // Walk with n=3 following Link headers.
    let mut path = "/v2/team/tags/tags/list?n=3".to_owned();
    let mut seen = Vec::new();
    loop {
        let (page, link) = get_json(&reg, &path).await;
        let tags: Vec<String> = serde_json::from_value(page["tags"].clone()).expect("tags");
        assert!(tags.len() <= 3);
        seen.extend(tags);
        match link {
            Some(link) => path = next_path(&link),
            None => break,
        }
    }
    assert_eq!(seen, names);

    let (page, _) = get_json(&reg, "/v2/team/tags/tags/list?n=2&last=a").await;
    assert_eq!(page["tags"], json!(names.iter().filter(|t| t.as_str() > "a").take(2).collect::<Vec<_>>()));
    let (page, link) = get_json(&reg, "/v2/team/tags/tags/list?n=0").await;
    assert_eq!(page["tags"], json!([]));
    assert!(link.is_none(), "n=0 has no Link");
    let (page, link) = get_json(&reg, "/v2/team/tags/tags/list?n=100").await;
    assert_eq!(page["tags"].as_array().map(Vec::len), Some(names.len()));
    assert!(link.is_none());
    let (page, _) = get_json(&reg, "/v2/team/tags/tags/list?last=zzz").await;
    assert_eq!(page["tags"], json!([]));
    // A cached listing reflects a new tag and a deleted one at once.
    assert_eq!(
        reg.put_manifest("team/tags", "zzzz", OCI_MANIFEST, &image.manifest).await.status(),
        StatusCode::CREATED
    );
    let (page, _) = get_json(&reg, "/v2/team/tags/tags/list?last=zzz").await;
    assert_eq!(page["tags"], json!(["zzzz"]));
    assert_eq!(reg.send(Method::DELETE, "/v2/team/tags/manifests/zzzz").await.status(), StatusCode::ACCEPTED);
    let (page, _) = get_json(&reg, "/v2/team/tags/tags/list?last=zzz").await;
    assert_eq!(page["tags"], json!([]));
    reg.stop().await;
}

#[tokio::test]
async fn page_limit_caps_big_pages_with_a_link() {
    let reg = TestRegistry::start_with(|c| c.registry.page_limit = 2).await;
    let image = reg.push_image("team/capped", "a", &[b"layer"]).await;
    for tag in ["b", "c"] {
        reg.put_manifest("team/capped", tag, OCI_MANIFEST, &image.manifest).await;
    }
    let (page, link) = get_json(&reg, "/v2/team/capped/tags/list").await;
    assert_eq!(page["tags"], json!(["a", "b"]));
    let (page, link) = get_json(&reg, &next_path(&link.expect("a Link when the page is capped"))).await;
    assert_eq!(page["tags"], json!(["c"]));
    assert!(link.is_none());
    reg.stop().await;
}

#[tokio::test]
async fn tag_list_errors() {
    let reg = TestRegistry::start().await;
    expect_error(reg.send(Method::GET, "/v2/team/nothing/tags/list").await, StatusCode::NOT_FOUND, "NAME_UNKNOWN")
        .await;
    reg.push_image("team/app", "v1", &[b"x"]).await;
    for n in ["x", "-1", "99999999999"] {
        expect_error(
            reg.send(Method::GET, &format!("/v2/team/app/tags/list?n={n}")).await,
            StatusCode::BAD_REQUEST,
            "PAGINATION_NUMBER_INVALID",
        )
        .await;
    }
    expect_error(reg.send(Method::GET, "/v2/Team/app/tags/list").await, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    reg.stop().await;
}

#[tokio::test]
async fn catalog_pages() {
    let reg = TestRegistry::start().await;
    let mut repos = vec![
        "z/last".to_owned(),
        "a/first".to_owned(),
        "m/middle".to_owned(),
        "m/middle/deeper".to_owned(),
        "b/x".to_owned(),
    ];
    for repo in &repos {
        reg.push_image(repo, "v1", &[b"x"]).await;
    }
    repos.sort();
    let (all, link) = get_json(&reg, "/v2/_catalog").await;
    assert_eq!(all, json!({ "repositories": repos }));
    assert!(link.is_none());
    let mut path = "/v2/_catalog?n=2".to_owned();
    let mut seen = Vec::new();
    loop {
        let (page, link) = get_json(&reg, &path).await;
        let names: Vec<String> = serde_json::from_value(page["repositories"].clone()).expect("names");
        seen.extend(names);
        match link {
            Some(link) => path = next_path(&link),
            None => break,
        }
    }
    assert_eq!(seen, repos);
    let (page, _) = get_json(&reg, "/v2/_catalog?n=1&last=m/middle").await;
    assert_eq!(page["repositories"], json!(["m/middle/deeper"]));
    reg.stop().await;
}

//! Behind a reverse proxy: `X-Forwarded-For`/`Forwarded` and `X-Forwarded-Proto` are believed
//! from configured trusted proxies only, for rate limits, the audit log and the token realm.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{TestRegistry, anonymous_client, header};

/// Three pulls per client address, then 429 (nothing refills during the test).
async fn rate_limited_registry(trusted_proxies: &[&str]) -> TestRegistry {
    let trusted_proxies = trusted_proxies.iter().map(|s| (*s).to_owned()).collect();
    TestRegistry::start_with(|c| {
        c.limits.pull.per_address_per_sec = Some(1.0 / 600.0);
        c.limits.pull.per_address_burst = Some(3);
        c.trusted_proxies = trusted_proxies;
    })
    .await
}

async fn ping_as(registry: &TestRegistry, forwarded_for: &str) -> StatusCode {
    let r = registry.req(Method::GET, "/v2/").header("x-forwarded-for", forwarded_for).send().await.expect("send");
    r.status()
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_for_rate_limits_and_the_audit_log() {
    let registry = rate_limited_registry(&["127.0.0.0/8"]).await;
    for _ in 0..3 {
        assert_eq!(ping_as(&registry, "198.51.100.1").await, StatusCode::OK);
    }
    assert_eq!(ping_as(&registry, "198.51.100.1").await, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy has its own budget; so has one named by Forwarded.
    assert_eq!(ping_as(&registry, "198.51.100.2").await, StatusCode::OK);
    let r = registry.req(Method::GET, "/v2/").header("forwarded", "for=\"[2001:db8::7]:1234\"").send().await;
    assert_eq!(r.expect("send").status(), StatusCode::OK);

    // The audit log records the forwarded address of a push.
    let pushed = registry
        .req(Method::POST, "/v2/acme/proxied/blobs/uploads/")
        .header("x-forwarded-for", "203.0.113.5, 127.0.0.1")
        .send()
        .await
        .expect("send");
    assert_eq!(pushed.status(), StatusCode::ACCEPTED);
    let mut rows = Vec::new();
    for _ in 0..50 {
        let page: Value =
            registry.send(Method::GET, "/api/v1/logs?action=create_repository").await.json().await.expect("json");
        rows = page["items"].as_array().cloned().unwrap_or_default();
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(rows.first().map(|row| row["client_ip"].clone()), Some(Value::from("203.0.113.5")), "{rows:?}");
    registry.stop().await;
}

#[tokio::test]
async fn forwarding_headers_from_anyone_else_are_ignored() {
    // Trusting another network: this test's connections come from 127.0.0.1, not a proxy.
    let registry = rate_limited_registry(&["10.0.0.0/8"]).await;
    for n in 1..=3 {
        assert_eq!(ping_as(&registry, &format!("198.51.100.{n}")).await, StatusCode::OK);
    }
    // A new claimed address each time does not escape 127.0.0.1's budget.
    assert_eq!(ping_as(&registry, "198.51.100.4").await, StatusCode::TOO_MANY_REQUESTS);
    registry.stop().await;
}

#[tokio::test]
async fn the_token_realm_uses_https_on_a_trusted_proxys_word_only() {
    let realm = async |registry: &TestRegistry, proto: &str| {
        let r = anonymous_client()
            .get(format!("{}/v2/", registry.base))
            .header("x-forwarded-proto", proto)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        header(&r, "www-authenticate").to_owned()
    };
    let trusting = TestRegistry::start_with(|c| c.trusted_proxies = vec!["127.0.0.1".into()]).await;
    let expected = format!("realm=\"https://{}/v2/auth\"", trusting.host());
    assert!(realm(&trusting, "https").await.contains(&expected));
    trusting.stop().await;
    let wary = TestRegistry::start().await;
    let expected = format!("realm=\"http://{}/v2/auth\"", wary.host());
    assert!(realm(&wary, "https").await.contains(&expected));
    wary.stop().await;
}

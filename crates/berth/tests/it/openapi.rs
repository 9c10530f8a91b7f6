//! The management API's OpenAPI document: served, complete (exactly the operations of
//! `berth_server::api::routes()`), well formed, and true: a scripted scenario calls every
//! operation, successfully and in its error cases, and checks each response's status,
//! content type, required headers and body against the document.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::schema::Validator;
use crate::support::{ADMIN, TestRegistry, anonymous_client, base64_basic, client_as};

fn document() -> Value {
    serde_json::from_str(berth_server::api::OPENAPI).expect("openapi.json is valid JSON")
}

const HTTP_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// `(METHOD, path template)` of every operation in the document.
fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths is an object") {
        for key in item.as_object().expect("a path item is an object").keys() {
            if HTTP_METHODS.contains(&key.as_str()) {
                ops.insert((key.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// `(METHOD, path template)` of every route the server has.
fn routed_operations() -> BTreeSet<(String, String)> {
    let routes = berth_server::api::routes();
    let ops: BTreeSet<(String, String)> =
        routes.iter().map(|(method, path, _)| (method.as_str().to_owned(), (*path).to_owned())).collect();
    assert_eq!(ops.len(), routes.len(), "every route is listed once");
    ops
}

/// The names in a path template's `{braces}`, in order.
fn template_params(template: &str) -> Vec<&str> {
    template.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
}

#[test]
fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let documented = documented_operations(&document());
    let routed = routed_operations();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(undocumented.is_empty(), "routes missing from openapi.json: {undocumented:?}");
    assert!(unrouted.is_empty(), "operations in openapi.json that no route serves: {unrouted:?}");
}

#[test]
fn the_document_is_well_formed() {
    let doc = document();
    let v = Validator::new(&doc);
    let mut problems = Vec::new();
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string(), "info names the API");

    // Every reference resolves.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    for r in all_refs {
        if v.pointer(r).is_none() {
            problems.push(format!("unresolvable $ref {r}"));
        }
    }

    // Every schema stays within what the test validator checks.
    for (name, schema) in doc["components"]["schemas"].as_object().expect("component schemas") {
        for u in v.unsupported(schema) {
            problems.push(format!("schema {name}: {u}"));
        }
    }

    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    assert_eq!(schemes.get("basicAuth").map(|s| (&s["type"], &s["scheme"])), Some((&json!("http"), &json!("basic"))));
    assert_eq!(schemes.get("bearerAuth").map(|s| (&s["type"], &s["scheme"])), Some((&json!("http"), &json!("bearer"))));

    let mut operation_ids = BTreeSet::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let at = format!("{} {template}", method.to_uppercase());
            if !HTTP_METHODS.contains(&method.as_str()) {
                problems.push(format!("{template}: unexpected key {method}"));
                continue;
            }
            match op["operationId"].as_str() {
                Some(id) if operation_ids.insert(id.to_owned()) => {}
                other => problems.push(format!("{at}: missing or repeated operationId {other:?}")),
            }
            if !op["summary"].is_string() {
                problems.push(format!("{at}: no summary"));
            }
            // Path parameters: exactly the template's, all required.
            let mut path_params = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let p = v.resolve(p).expect("parameter resolves");
                for u in v.unsupported(&p["schema"]) {
                    problems.push(format!("{at}: parameter {}: {u}", p["name"]));
                }
                match p["in"].as_str() {
                    Some("path") => {
                        if p["required"] != true {
                            problems.push(format!("{at}: path parameter {} must be required", p["name"]));
                        }
                        path_params.push(p["name"].as_str().unwrap_or_default().to_owned());
                    }
                    Some("query") => {}
                    other => problems.push(format!("{at}: parameter in {other:?}")),
                }
            }
            let wanted: Vec<String> = template_params(template).into_iter().map(str::to_owned).collect();
            if path_params != wanted {
                problems.push(format!("{at}: path parameters {path_params:?}, template has {wanted:?}"));
            }
            // Request bodies: JSON objects that refuse unknown fields (serde deny_unknown_fields).
            if let Some(body) = op.get("requestBody") {
                let schema = &body["content"]["application/json"]["schema"];
                match v.resolve(schema) {
                    Ok(s) if s["type"] == "object" && s["additionalProperties"] == false => {}
                    _ => problems.push(format!("{at}: request body is not a closed JSON object schema")),
                }
                for u in v.unsupported(schema) {
                    problems.push(format!("{at}: request body: {u}"));
                }
            }
            // Security names exist.
            for requirement in op["security"].as_array().into_iter().flatten() {
                for name in requirement.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !schemes.contains_key(name) {
                        problems.push(format!("{at}: unknown security scheme {name}"));
                    }
                }
            }
            // Responses: one success; JSON for successes with a body, problem JSON for errors.
            let responses = op["responses"].as_object().expect("responses");
            let successes = responses.keys().filter(|k| k.starts_with('2')).count();
            if successes != 1 {
                problems.push(format!("{at}: {successes} success responses"));
            }
            for (status, response) in responses {
                let code: u16 = status.parse().unwrap_or_else(|_| panic!("{at}: status {status} is not a number"));
                let response = v.resolve(response).expect("response resolves");
                if !response["description"].is_string() {
                    problems.push(format!("{at} {status}: no description"));
                }
                let content = response.get("content").and_then(Value::as_object);
                let media = content.map(|c| c.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
                let expected: Vec<String> = match code {
                    204 => vec![],
                    200..=299 => vec!["application/json".into()],
                    _ => vec!["application/problem+json".into()],
                };
                if media != expected {
                    problems.push(format!("{at} {status}: content types {media:?}, expected {expected:?}"));
                }
                for (_, m) in content.into_iter().flatten() {
                    for u in v.unsupported(&m["schema"]) {
                        problems.push(format!("{at} {status}: {u}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "openapi.json has problems:\n{}", problems.join("\n"));
}

#[test]
fn the_validator_holds_views_to_the_documented_schemas() {
    let doc = document();
    let v = Validator::new(&doc);
    let user = json!({ "$ref": "#/components/schemas/User" });
    let good = json!({ "name": "alice", "superuser": false, "email": null, "created_at": 1 });
    assert_eq!(v.validate(&user, &good), Vec::<String>::new());
    for bad in [
        json!({ "name": "alice", "superuser": false, "email": null }),
        json!({ "name": "alice", "superuser": "no", "email": null, "created_at": 1 }),
        json!({ "name": "alice", "superuser": false, "email": null, "created_at": 1, "admin": true }),
    ] {
        assert!(!v.validate(&user, &bad).is_empty(), "{bad} is not a User");
    }
    let page = json!({ "$ref": "#/components/schemas/UserPage" });
    assert!(v.validate(&page, &json!({ "items": [good], "next": null })).is_empty());
    assert!(!v.validate(&page, &json!({ "items": [good] })).is_empty(), "next is required");
    let not_found = v.resolve(&doc["components"]["responses"]["NotFound"]).expect("NotFound");
    let schema = &not_found["content"]["application/problem+json"]["schema"];
    let problem =
        json!({ "type": "about:blank", "title": "Not Found", "status": 404, "detail": "x", "code": "not_found" });
    assert!(v.validate(schema, &problem).is_empty());
    let wrong = json!({ "type": "about:blank", "title": "Conflict", "status": 409, "detail": "x", "code": "conflict" });
    assert!(!v.validate(schema, &wrong).is_empty(), "a 404 carries code not_found");
}

#[tokio::test]
async fn the_document_is_served() {
    let reg = TestRegistry::start().await;
    let r = anonymous_client().get(format!("{}/api/v1/openapi.json", reg.base)).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let served: Value = r.json().await.expect("the served document is JSON");
    assert!(served["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "OpenAPI 3.x: {}", served["openapi"]);
    assert_eq!(served, document());
    reg.stop().await;
}

// ------------------------------------------------------------------------------------------
// The scenario and its checker.

/// Who sends a request, and where to.
#[derive(Clone)]
struct Caller {
    base: String,
    client: reqwest::Client,
}

impl Caller {
    fn basic(reg: &TestRegistry, user: &str, password: &str) -> Caller {
        Caller { base: reg.base.clone(), client: client_as(user, password) }
    }

    fn anonymous(reg: &TestRegistry) -> Caller {
        Caller { base: reg.base.clone(), client: anonymous_client() }
    }

    fn bearer(reg: &TestRegistry, token: &str) -> Caller {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
        headers.insert(reqwest::header::AUTHORIZATION, value);
        let client = reqwest::Client::builder().default_headers(headers).build().expect("client");
        Caller { base: reg.base.clone(), client }
    }
}

enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

/// Sends requests, checks every response against the document, and remembers which
/// operations answered with which statuses.
struct Checker {
    doc: Value,
    seen: BTreeMap<(String, String), BTreeSet<u16>>,
    problems: Vec<String>,
    calls: usize,
}

fn template_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| if t.starts_with('{') && t.ends_with('}') { !p.is_empty() } else { t == p })
}

/// Whether a query parameter's text fits its documented schema.
fn query_value_fits(schema: &Value, text: &str) -> bool {
    match schema["type"].as_str() {
        Some("integer") => text.parse::<i64>().is_ok_and(|n| schema["minimum"].as_i64().is_none_or(|min| n >= min)),
        Some("boolean") => matches!(text, "true" | "false"),
        _ => true,
    }
}

impl Checker {
    fn new() -> Checker {
        Checker { doc: document(), seen: BTreeMap::new(), problems: Vec::new(), calls: 0 }
    }

    /// The documented template (the most specific) for a concrete path and method.
    fn template_for(&self, method: &str, path: &str) -> Option<String> {
        let paths = self.doc["paths"].as_object().expect("paths");
        paths
            .iter()
            .filter(|(t, item)| item.get(method).is_some() && template_matches(t, path))
            .max_by_key(|(t, _)| t.split('/').filter(|s| !s.starts_with('{')).count())
            .map(|(t, _)| t.clone())
    }

    async fn call(&mut self, who: &Caller, method: Method, target: &str, body: Body, expected: u16) -> Value {
        self.calls += 1;
        let url = reqwest::Url::parse(&format!("{}{target}", who.base)).expect("url");
        let mut request = who.client.request(method.clone(), url.clone());
        match &body {
            Body::None => {}
            Body::Json(value) => request = request.json(value),
            Body::Raw(bytes) => request = request.header("content-type", "application/json").body(bytes.clone()),
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("response body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let at = format!("{method} {target} -> {status}");
        assert!(
            status == expected,
            "{method} {target}: expected {expected}, got {status}: {text}\n(document problems so far: {:?})",
            self.problems
        );
        if status >= 500 {
            self.problems.push(format!("{at}: a server error: {text}"));
        }

        let m = method.as_str().to_lowercase();
        let Some(template) = self.template_for(&m, url.path()) else {
            self.problems.push(format!("{at}: no documented operation matches"));
            return serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        };
        self.seen.entry((method.as_str().to_owned(), template.clone())).or_default().insert(status);
        let v = Validator::new(&self.doc);
        let item = &self.doc["paths"][&template];
        let op = &item[&m];
        let success = (200..300).contains(&status);

        // Query parameters are documented (and, when accepted, fit their schema).
        let params: Vec<&Value> = item["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(op["parameters"].as_array().into_iter().flatten())
            .map(|p| v.resolve(p).expect("parameter resolves"))
            .collect();
        for (key, value) in url.query_pairs() {
            match params.iter().find(|p| p["in"] == "query" && p["name"] == key.as_ref()) {
                None => self.problems.push(format!("{at}: query parameter {key} is not documented")),
                Some(p) if success && !query_value_fits(&p["schema"], &value) => {
                    self.problems.push(format!("{at}: accepted {key}={value}, which the document does not allow"));
                }
                Some(_) => {}
            }
        }

        // Request bodies: only where documented; an accepted one fits the documented schema.
        let documented_body = op.get("requestBody");
        match (&body, documented_body) {
            (Body::Json(_) | Body::Raw(_), None) => {
                self.problems.push(format!("{at}: sent a body to an operation that documents none"));
            }
            (Body::Json(value), Some(rb)) if success => {
                for e in v.validate(&rb["content"]["application/json"]["schema"], value) {
                    self.problems.push(format!("{at}: accepted body {value} against the document: {e}"));
                }
            }
            (Body::None, Some(rb)) if success && rb["required"] == true => {
                self.problems.push(format!("{at}: accepted no body, but the document requires one"));
            }
            _ => {}
        }

        // The response: a documented status, its content type, headers and schema.
        let Some(documented) = op["responses"].get(status.to_string()) else {
            self.problems.push(format!("{at}: status {status} is not documented for {method} {template}"));
            return serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        };
        let documented = v.resolve(documented).expect("response resolves");
        for (name, header) in documented["headers"].as_object().into_iter().flatten() {
            if header["required"] == true && !headers.contains_key(name.as_str()) {
                self.problems.push(format!("{at}: documented header {name} is missing"));
            }
        }
        let content_type = headers
            .get("content-type")
            .and_then(|h| h.to_str().ok())
            .map(|h| h.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        let Some(content) = documented.get("content").and_then(Value::as_object) else {
            if !bytes.is_empty() {
                self.problems.push(format!("{at}: documented without content, but answered {text}"));
            }
            return Value::Null;
        };
        let Some(media) = content_type.as_deref().and_then(|ct| content.get(ct)) else {
            self.problems.push(format!(
                "{at}: content type {content_type:?} is not one of {:?}",
                content.keys().collect::<Vec<_>>()
            ));
            return serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        };
        let json: Value = match serde_json::from_slice(&bytes) {
            Ok(json) => json,
            Err(e) => {
                self.problems.push(format!("{at}: the body is not JSON ({e}): {text}"));
                return Value::Null;
            }
        };
        for e in v.validate(&media["schema"], &json) {
            self.problems.push(format!("{at}: {e} in {}", json.to_string().chars().take(300).collect::<String>()));
        }
        json
    }

    async fn get(&mut self, who: &Caller, path: &str, expected: u16) -> Value {
        self.call(who, Method::GET, path, Body::None, expected).await
    }

    async fn delete(&mut self, who: &Caller, path: &str, expected: u16) -> Value {
        self.call(who, Method::DELETE, path, Body::None, expected).await
    }

    async fn put(&mut self, who: &Caller, path: &str, expected: u16) -> Value {
        self.call(who, Method::PUT, path, Body::None, expected).await
    }

    async fn post(&mut self, who: &Caller, path: &str, expected: u16) -> Value {
        self.call(who, Method::POST, path, Body::None, expected).await
    }

    async fn json(&mut self, who: &Caller, method: Method, path: &str, body: Value, expected: u16) -> Value {
        self.call(who, method, path, Body::Json(body), expected).await
    }

    async fn raw(&mut self, who: &Caller, method: Method, path: &str, body: &[u8], expected: u16) -> Value {
        self.call(who, method, path, Body::Raw(body.to_vec()), expected).await
    }

    /// Every documented operation was called, and nothing disagreed with the document.
    fn finish(mut self) {
        let documented = documented_operations(&self.doc);
        for (method, template) in &documented {
            if !self.seen.contains_key(&(method.clone(), template.clone())) {
                self.problems.push(format!("{method} {template} was never exercised"));
            }
        }
        // For information: documented statuses the scenario did not provoke.
        let mut unobserved = Vec::new();
        for (method, template) in &documented {
            let responses = self.doc["paths"][template][method.to_lowercase()]["responses"].as_object();
            let seen = self.seen.get(&(method.clone(), template.clone()));
            for status in responses.into_iter().flat_map(|r| r.keys()) {
                let code: u16 = status.parse().expect("numeric status");
                if !seen.is_some_and(|s| s.contains(&code)) {
                    unobserved.push(format!("{method} {template} {code}"));
                }
            }
        }
        let pairs: usize = self.seen.values().map(BTreeSet::len).sum();
        eprintln!(
            "openapi scenario: {} requests, {} of {} operations, {pairs} (operation, status) pairs observed; \
             documented but not provoked ({}): {}",
            self.calls,
            self.seen.len(),
            documented.len(),
            unobserved.len(),
            unobserved.join(", ")
        );
        assert!(self.problems.is_empty(), "the API and openapi.json disagree:\n{}", self.problems.join("\n"));
    }
}

const ALICE: &str = "alice-password-1";
const BOB: &str = "bob-password-1";
const BOB_NEW: &str = "bob-password-2";
const CAROL: &str = "carol-password-1";
const CAROL_NEW: &str = "carol-password-2";

/// The cast: a superuser, users, and callers without (valid) credentials.
struct Cast {
    admin: Caller,
    anon: Caller,
    /// Wrong credentials (a few failed logins; well under the throttle).
    wrong: Caller,
    alice: Caller,
    bob: Caller,
    carol: Caller,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_documented() {
    let reg = TestRegistry::start().await;
    let mut api = Checker::new();
    let mut cast = Cast {
        admin: Caller::basic(&reg, ADMIN.0, ADMIN.1),
        anon: Caller::anonymous(&reg),
        wrong: Caller::basic(&reg, "nobody", "not-the-password"),
        alice: Caller::basic(&reg, "alice", ALICE),
        bob: Caller::basic(&reg, "bob", BOB),
        carol: Caller::basic(&reg, "carol", CAROL),
    };

    let served = api.get(&cast.anon, "/api/v1/openapi.json", 200).await;
    assert_eq!(served, document());

    accounts(&mut api, &mut cast, &reg).await;
    let robot = organizations_and_robots(&mut api, &cast, &reg).await;
    repositories(&mut api, &cast, &reg, &robot).await;
    logs_and_keys(&mut api, &cast).await;
    cleanup_deletes(&mut api, &cast).await;
    throttling(&mut api).await;

    // An unknown API path answers problem JSON too.
    let r = cast.admin.client.get(format!("{}/api/v1/nothing-here", reg.base)).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    api.finish();
    reg.stop().await;
}

/// Users, the caller's own account, passwords, superuser rights and personal API tokens.
async fn accounts(api: &mut Checker, cast: &mut Cast, reg: &TestRegistry) {
    let (admin, anon, wrong) = (cast.admin.clone(), cast.anon.clone(), cast.wrong.clone());
    let users = "/api/v1/users";
    let alice = api
        .json(
            &admin,
            Method::POST,
            users,
            json!({ "name": "alice", "password": ALICE, "email": "alice@example.com" }),
            201,
        )
        .await;
    assert_eq!((alice["name"].as_str(), alice["superuser"].as_bool()), (Some("alice"), Some(false)));
    assert_eq!(alice["email"], "alice@example.com");
    let bob = json!({ "name": "bob", "password": BOB, "superuser": false, "email": null });
    assert_eq!(api.json(&admin, Method::POST, users, bob, 201).await["email"], Value::Null);
    api.json(&admin, Method::POST, users, json!({ "name": "carol", "password": CAROL }), 201).await;
    let dave = json!({ "name": "dave", "password": "dave-password" });
    api.json(&anon, Method::POST, users, dave.clone(), 401).await;
    api.json(&cast.bob, Method::POST, users, dave.clone(), 403).await;
    api.json(&admin, Method::POST, users, json!({ "name": "alice", "password": "another-password" }), 409).await;
    api.json(&admin, Method::POST, users, json!({ "name": "dave", "password": "dave-password", "admin": true }), 400)
        .await;
    api.json(&admin, Method::POST, users, json!({ "name": "dave", "password": "short" }), 400).await;
    api.json(&admin, Method::POST, users, json!({ "name": "Dave!", "password": "dave-password" }), 400).await;
    api.json(&admin, Method::POST, users, json!({ "password": "dave-password" }), 400).await;
    api.raw(&admin, Method::POST, users, b"not json", 400).await;
    let oversized = format!(r#"{{"name":"dave","password":"{}"}}"#, "x".repeat(65 * 1024));
    api.raw(&admin, Method::POST, users, oversized.as_bytes(), 413).await;
    // Also past the server's buffering limit, which refuses the body before the handler runs.
    api.raw(&admin, Method::POST, users, &vec![b' '; 3 << 20], 413).await;

    // Listing, with keyset pagination.
    let page = api.get(&admin, "/api/v1/users?limit=2", 200).await;
    assert_eq!(names(&page["items"]), ["admin", "alice"]);
    assert_eq!(page["next"], "alice");
    let page = api.get(&admin, "/api/v1/users?limit=2&last=alice", 200).await;
    assert_eq!(names(&page["items"]), ["bob", "carol"]);
    let page = api.get(&admin, "/api/v1/users?last=carol", 200).await;
    assert_eq!((page["items"].as_array().map(Vec::len), &page["next"]), (Some(0), &Value::Null));
    api.get(&admin, "/api/v1/users?limit=many", 400).await;
    api.get(&cast.bob, users, 403).await;
    api.get(&anon, users, 401).await;
    api.get(&wrong, users, 401).await;

    // One user: themselves or a superuser.
    assert_eq!(api.get(&admin, "/api/v1/users/alice", 200).await["name"], "alice");
    assert_eq!(api.get(&cast.bob, "/api/v1/users/bob", 200).await["name"], "bob");
    api.get(&cast.bob, "/api/v1/users/alice", 403).await;
    api.get(&admin, "/api/v1/users/nobody", 404).await;
    api.get(&admin, "/api/v1/users/%FF", 400).await;
    api.get(&anon, "/api/v1/users/alice", 401).await;

    // The caller's own account and password.
    assert_eq!(api.get(&cast.alice, "/api/v1/user", 200).await["email"], "alice@example.com");
    api.get(&anon, "/api/v1/user", 401).await;
    let own = "/api/v1/user/password";
    api.json(&cast.bob, Method::PUT, own, json!({ "password": BOB_NEW }), 204).await;
    api.get(&cast.bob, "/api/v1/user", 401).await;
    cast.bob = Caller::basic(reg, "bob", BOB_NEW);
    assert_eq!(api.get(&cast.bob, "/api/v1/user", 200).await["name"], "bob");
    api.json(&cast.bob, Method::PUT, own, json!({ "password": "short" }), 400).await;
    api.json(&cast.bob, Method::PUT, own, json!({ "pass": BOB_NEW }), 400).await;
    api.json(&anon, Method::PUT, own, json!({ "password": "whatever-password" }), 401).await;

    // Another user's password: themselves or a superuser.
    api.json(&admin, Method::PUT, "/api/v1/users/carol/password", json!({ "password": CAROL_NEW }), 204).await;
    cast.carol = Caller::basic(reg, "carol", CAROL_NEW);
    api.json(&cast.bob, Method::PUT, "/api/v1/users/bob/password", json!({ "password": BOB_NEW }), 204).await;
    api.json(&cast.bob, Method::PUT, "/api/v1/users/alice/password", json!({ "password": "bobs-choice" }), 403).await;
    api.json(&admin, Method::PUT, "/api/v1/users/nobody/password", json!({ "password": "long-enough" }), 404).await;
    api.json(&admin, Method::PUT, "/api/v1/users/carol/password", json!({ "password": "short" }), 400).await;
    api.json(&anon, Method::PUT, "/api/v1/users/carol/password", json!({ "password": "long-enough" }), 401).await;

    // Superuser rights take effect at once.
    let carol_su = "/api/v1/users/carol/superuser";
    api.json(&admin, Method::PUT, carol_su, json!({ "superuser": true }), 204).await;
    api.get(&cast.carol, users, 200).await;
    api.json(&admin, Method::PUT, carol_su, json!({ "superuser": false }), 204).await;
    api.get(&cast.carol, users, 403).await;
    api.json(&cast.bob, Method::PUT, carol_su, json!({ "superuser": true }), 403).await;
    api.json(&admin, Method::PUT, "/api/v1/users/nobody/superuser", json!({ "superuser": true }), 404).await;
    api.json(&admin, Method::PUT, carol_su, json!({ "superuser": "yes" }), 400).await;
    api.json(&anon, Method::PUT, carol_su, json!({ "superuser": true }), 401).await;

    // Personal API tokens: as bearer tokens and as Basic passwords, until revoked.
    let tokens = "/api/v1/user/tokens";
    let created = api.json(&cast.alice, Method::POST, tokens, json!({ "name": "laptop" }), 201).await;
    let token = created["token"].as_str().expect("the token is shown once").to_owned();
    assert!(token.starts_with("berth_pat_"), "{token}");
    api.json(&cast.alice, Method::POST, tokens, json!({ "name": "laptop" }), 409).await;
    api.json(&cast.alice, Method::POST, tokens, json!({ "name": "" }), 400).await;
    api.json(&anon, Method::POST, tokens, json!({ "name": "laptop" }), 401).await;
    let listed = api.get(&cast.alice, tokens, 200).await;
    assert_eq!(names(&listed), ["laptop"]);
    assert!(listed[0].get("token").is_none(), "secrets are shown once: {listed}");
    api.get(&anon, tokens, 401).await;
    let pat = Caller::bearer(reg, &token);
    assert_eq!(api.get(&pat, "/api/v1/user", 200).await["name"], "alice");
    assert_eq!(api.get(&Caller::basic(reg, "alice", &token), "/api/v1/user", 200).await["name"], "alice");
    api.get(&Caller::bearer(reg, "berth_pat_unknown"), "/api/v1/user", 401).await;
    api.get(&Caller::bearer(reg, "not.a.token"), "/api/v1/user", 401).await;
    // A registry token from /v2/auth works too.
    let r = anonymous_client()
        .get(format!("{}/v2/auth?service=berth", reg.base))
        .header("authorization", base64_basic("alice", ALICE))
        .send()
        .await
        .expect("token request");
    assert_eq!(r.status(), StatusCode::OK);
    let registry_token = r.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned();
    assert_eq!(api.get(&Caller::bearer(reg, &registry_token), "/api/v1/user", 200).await["name"], "alice");
    api.delete(&cast.alice, "/api/v1/user/tokens/laptop", 204).await;
    api.delete(&cast.alice, "/api/v1/user/tokens/laptop", 404).await;
    api.delete(&anon, "/api/v1/user/tokens/laptop", 401).await;
    api.get(&pat, "/api/v1/user", 401).await;
}

/// Organizations, teams, members, default permissions and robots; returns the credentials
/// of the robot `acme+ci`.
async fn organizations_and_robots(api: &mut Checker, cast: &Cast, reg: &TestRegistry) -> Caller {
    let Cast { admin, anon, alice, bob, carol, .. } = cast;
    let orgs = "/api/v1/organizations";
    let acme = api.json(alice, Method::POST, orgs, json!({ "name": "acme" }), 201).await;
    assert_eq!(acme["name"], "acme");
    api.json(alice, Method::POST, orgs, json!({ "name": "acme" }), 409).await;
    api.json(bob, Method::POST, orgs, json!({ "name": "alice" }), 409).await;
    api.json(alice, Method::POST, orgs, json!({ "name": "Bad Name" }), 400).await;
    api.json(alice, Method::POST, orgs, json!({ "name": "acme2", "public": true }), 400).await;
    api.json(anon, Method::POST, orgs, json!({ "name": "anonymous" }), 401).await;

    let page = api.get(admin, "/api/v1/organizations?limit=1", 200).await;
    assert_eq!((names(&page["items"]), &page["next"]), (vec!["acme".to_owned()], &json!("acme")));
    let page = api.get(admin, "/api/v1/organizations?last=acme", 200).await;
    assert_eq!(page, json!({ "items": [], "next": null }));
    api.get(admin, "/api/v1/organizations?limit=-1", 400).await;
    api.get(alice, orgs, 403).await;
    api.get(anon, orgs, 401).await;

    api.get(bob, "/api/v1/organizations/acme", 200).await;
    api.get(bob, "/api/v1/organizations/nope", 404).await;
    api.get(bob, "/api/v1/organizations/alice", 404).await;
    api.get(anon, "/api/v1/organizations/acme", 401).await;

    // Teams: visible to members, managed by admins.
    let teams = api.get(alice, "/api/v1/organizations/acme/teams", 200).await;
    assert_eq!(teams[0]["name"], "owners");
    assert_eq!((&teams[0]["role"], &teams[0]["members"]), (&json!("admin"), &json!(1)));
    api.get(bob, "/api/v1/organizations/acme/teams", 403).await;
    api.get(alice, "/api/v1/organizations/nope/teams", 404).await;
    api.get(anon, "/api/v1/organizations/acme/teams", 401).await;
    let devs = "/api/v1/organizations/acme/teams/devs";
    let team = api.json(alice, Method::PUT, devs, json!({ "role": "member" }), 200).await;
    assert_eq!((&team["role"], &team["description"]), (&json!("member"), &json!("")));
    let team = api.json(alice, Method::PUT, devs, json!({ "role": "creator", "description": "Developers" }), 200).await;
    assert_eq!((&team["role"], &team["description"]), (&json!("creator"), &json!("Developers")));
    api.json(alice, Method::PUT, devs, json!({ "role": "boss" }), 400).await;
    api.json(alice, Method::PUT, devs, json!({ "role": "member", "members": 3 }), 400).await;
    api.json(alice, Method::PUT, "/api/v1/organizations/acme/teams/-x", json!({ "role": "member" }), 400).await;
    api.json(alice, Method::PUT, "/api/v1/organizations/acme/teams/owners", json!({ "role": "member" }), 400).await;
    api.json(alice, Method::PUT, "/api/v1/organizations/nope/teams/devs", json!({ "role": "member" }), 404).await;
    api.json(bob, Method::PUT, devs, json!({ "role": "admin" }), 403).await;
    api.json(anon, Method::PUT, devs, json!({ "role": "admin" }), 401).await;

    // Members.
    let members = "/api/v1/organizations/acme/teams/devs/members";
    assert_eq!(api.get(alice, members, 200).await, json!([]));
    api.put(alice, &format!("{members}/bob"), 204).await;
    api.put(alice, &format!("{members}/bob"), 204).await;
    api.put(alice, &format!("{members}/nobody"), 404).await;
    api.put(alice, &format!("{members}/bob+builder"), 400).await;
    api.put(alice, "/api/v1/organizations/acme/teams/nope/members/bob", 404).await;
    api.put(bob, &format!("{members}/carol"), 403).await;
    api.put(anon, &format!("{members}/carol"), 401).await;
    assert_eq!(api.get(bob, "/api/v1/organizations/acme/teams", 200).await.as_array().map(Vec::len), Some(2));
    assert_eq!(api.get(bob, members, 200).await, json!([{ "kind": "user", "name": "bob" }]));
    api.get(alice, "/api/v1/organizations/acme/teams/nope/members", 404).await;
    api.get(carol, members, 403).await;
    api.get(anon, members, 401).await;
    api.put(alice, &format!("{members}/carol"), 204).await;
    api.delete(alice, &format!("{members}/carol"), 204).await;
    api.delete(alice, &format!("{members}/carol"), 404).await;
    api.delete(alice, "/api/v1/organizations/acme/teams/owners/members/alice", 400).await;
    api.delete(bob, &format!("{members}/bob"), 403).await;
    api.delete(anon, &format!("{members}/bob"), 401).await;

    // Deleting teams.
    let temp = "/api/v1/organizations/acme/teams/temp";
    api.json(alice, Method::PUT, temp, json!({ "role": "member" }), 200).await;
    api.delete(alice, temp, 204).await;
    api.delete(alice, temp, 404).await;
    api.delete(alice, "/api/v1/organizations/acme/teams/owners", 400).await;
    api.delete(bob, devs, 403).await;
    api.delete(anon, devs, 401).await;

    // Robots, of an organization and of a user.
    let created = api.put(alice, "/api/v1/namespaces/acme/robots/ci", 201).await;
    assert_eq!(
        (&created["name"], &created["owner"], &created["short_name"]),
        (&json!("acme+ci"), &json!("acme"), &json!("ci"))
    );
    let first_token = created["token"].as_str().expect("robot token").to_owned();
    assert!(first_token.starts_with("berth_rbt_"));
    let builder = json!({ "description": "Builds" });
    let own = api.json(bob, Method::PUT, "/api/v1/namespaces/bob/robots/builder", builder, 201).await;
    assert_eq!(own["description"], "Builds");
    api.put(alice, "/api/v1/namespaces/acme/robots/ci", 409).await;
    api.put(alice, "/api/v1/namespaces/acme/robots/Bad", 400).await;
    api.json(alice, Method::PUT, "/api/v1/namespaces/acme/robots/x", json!({ "desc": "typo" }), 400).await;
    api.put(alice, "/api/v1/namespaces/nope/robots/x", 404).await;
    api.put(bob, "/api/v1/namespaces/acme/robots/x", 403).await;
    api.put(anon, "/api/v1/namespaces/acme/robots/x", 401).await;
    let robots = api.get(alice, "/api/v1/namespaces/acme/robots", 200).await;
    assert_eq!(names(&robots), ["acme+ci"]);
    assert!(robots[0].get("token").is_none(), "tokens are shown once: {robots}");
    assert_eq!(names(&api.get(bob, "/api/v1/namespaces/bob/robots", 200).await), ["bob+builder"]);
    api.get(bob, "/api/v1/namespaces/acme/robots", 403).await;
    api.get(alice, "/api/v1/namespaces/nope/robots", 404).await;
    api.get(anon, "/api/v1/namespaces/acme/robots", 401).await;

    let regenerated = api.post(alice, "/api/v1/namespaces/acme/robots/ci/regenerate", 200).await;
    let token = regenerated["token"].as_str().expect("new token").to_owned();
    assert_ne!(token, first_token);
    api.post(alice, "/api/v1/namespaces/acme/robots/nope/regenerate", 404).await;
    api.post(alice, "/api/v1/namespaces/acme/robots/Bad/regenerate", 400).await;
    api.post(bob, "/api/v1/namespaces/acme/robots/ci/regenerate", 403).await;
    api.post(anon, "/api/v1/namespaces/acme/robots/ci/regenerate", 401).await;
    let robot = Caller::basic(reg, "acme+ci", &token);
    api.get(&Caller::basic(reg, "acme+ci", &first_token), "/api/v1/user", 401).await;

    api.put(alice, "/api/v1/namespaces/acme/robots/tmp", 201).await;
    api.delete(alice, "/api/v1/namespaces/acme/robots/tmp", 204).await;
    api.delete(alice, "/api/v1/namespaces/acme/robots/tmp", 404).await;
    api.delete(alice, "/api/v1/namespaces/acme/robots/Bad", 400).await;
    api.delete(bob, "/api/v1/namespaces/acme/robots/ci", 403).await;
    api.delete(anon, "/api/v1/namespaces/acme/robots/ci", 401).await;

    // Robots manage nothing, not even an account of their own.
    api.get(&robot, "/api/v1/user", 403).await;
    api.json(&robot, Method::PUT, "/api/v1/user/password", json!({ "password": "robot-password" }), 403).await;
    api.get(&robot, "/api/v1/user/tokens", 403).await;
    api.json(&robot, Method::POST, "/api/v1/user/tokens", json!({ "name": "robot" }), 403).await;
    api.delete(&robot, "/api/v1/user/tokens/robot", 403).await;
    api.get(&robot, "/api/v1/users/alice", 403).await;
    api.json(&robot, Method::POST, orgs, json!({ "name": "robotorg" }), 403).await;
    api.get(&robot, "/api/v1/organizations/acme", 403).await;
    // ...but they can be team members.
    api.put(alice, &format!("{members}/acme+ci"), 204).await;
    let listed = api.get(alice, members, 200).await;
    assert!(listed.as_array().is_some_and(|m| m.contains(&json!({ "kind": "robot", "name": "acme+ci" }))), "{listed}");

    // Default permissions.
    let defaults = "/api/v1/organizations/acme/defaultpermissions";
    let dp =
        api.json(alice, Method::POST, defaults, json!({ "kind": "team", "name": "devs", "role": "write" }), 201).await;
    assert_eq!((&dp["kind"], &dp["name"], &dp["role"]), (&json!("team"), &json!("devs"), &json!("write")));
    let grant = json!({ "kind": "user", "name": "carol", "role": "read" });
    api.json(alice, Method::POST, defaults, json!({ "kind": "user", "name": "nobody", "role": "read" }), 404).await;
    api.json(alice, Method::POST, defaults, json!({ "kind": "group", "name": "devs", "role": "read" }), 400).await;
    api.json(alice, Method::POST, defaults, json!({ "kind": "user", "name": "carol" }), 400).await;
    api.json(alice, Method::POST, "/api/v1/organizations/nope/defaultpermissions", grant.clone(), 404).await;
    api.json(bob, Method::POST, defaults, grant.clone(), 403).await;
    api.json(anon, Method::POST, defaults, grant.clone(), 401).await;
    let listed = api.get(alice, defaults, 200).await;
    assert_eq!(listed, json!([dp]));
    api.get(bob, defaults, 403).await;
    api.get(alice, "/api/v1/organizations/nope/defaultpermissions", 404).await;
    api.get(anon, defaults, 401).await;
    let second = api
        .json(alice, Method::POST, defaults, json!({ "kind": "robot", "name": "acme+ci", "role": "read" }), 201)
        .await;
    let id = second["id"].as_i64().expect("id");
    api.delete(bob, &format!("{defaults}/{id}"), 403).await;
    api.delete(anon, &format!("{defaults}/{id}"), 401).await;
    api.delete(alice, &format!("{defaults}/{id}"), 204).await;
    api.delete(alice, &format!("{defaults}/{id}"), 404).await;
    api.delete(alice, &format!("{defaults}/abc"), 400).await;
    robot
}

/// Repositories: creation, listing, visibility, permissions, tags, deletion.
async fn repositories(api: &mut Checker, cast: &Cast, reg: &TestRegistry, robot: &Caller) {
    let Cast { admin, anon, wrong, alice, bob, carol } = cast;
    let repos = "/api/v1/repositories";
    let app = api.json(alice, Method::POST, repos, json!({ "name": "acme/app" }), 201).await;
    assert_eq!(app["visibility"], "private");
    assert_eq!((&app["namespace"], &app["kind"]), (&json!("acme"), &json!("image")));
    let cli = json!({ "name": "acme/tools/cli", "visibility": "public" });
    assert_eq!(api.json(alice, Method::POST, repos, cli, 201).await["visibility"], "public");
    api.json(alice, Method::POST, repos, json!({ "name": "acme/app" }), 409).await;
    api.json(carol, Method::POST, repos, json!({ "name": "acme/x" }), 403).await;
    api.json(anon, Method::POST, repos, json!({ "name": "acme/x" }), 401).await;
    api.json(alice, Method::POST, repos, json!({ "name": "acme/UPPER" }), 400).await;
    api.json(alice, Method::POST, repos, json!({ "name": "acme/x", "visibility": "secret" }), 400).await;
    api.json(alice, Method::POST, repos, json!({ "name": "acme/x", "private": true }), 400).await;
    // Members of a creator team create repositories in the organization; users in their own.
    api.json(bob, Method::POST, repos, json!({ "name": "acme/bobs" }), 201).await;
    api.json(bob, Method::POST, repos, json!({ "name": "bob/own" }), 201).await;
    // Three tag versions: v1, v2, and v1 moved to another image.
    reg.push_image("acme/app", "v1", &[b"first layer"]).await;
    reg.push_image("acme/app", "v2", &[b"second layer"]).await;
    reg.push_image("acme/app", "v1", &[b"third layer"]).await;

    assert_eq!(names(&api.get(anon, repos, 200).await["items"]), ["acme/tools/cli"]);
    api.get(wrong, repos, 401).await;
    let page = api.get(alice, "/api/v1/repositories?namespace=acme", 200).await;
    assert_eq!(names(&page["items"]), ["acme/app", "acme/bobs", "acme/tools/cli"]);
    let page = api.get(alice, "/api/v1/repositories?namespace=acme&limit=1", 200).await;
    assert_eq!((names(&page["items"]), &page["next"]), (vec!["acme/app".to_owned()], &json!("acme/app")));
    let page = api.get(alice, "/api/v1/repositories?namespace=acme&limit=1&last=acme/app", 200).await;
    assert_eq!(names(&page["items"]), ["acme/bobs"]);
    api.get(alice, "/api/v1/repositories?limit=x", 400).await;

    // One repository; a nested name's slashes are percent-encoded.
    let app_path = "/api/v1/repositories/acme/app";
    let cli_path = "/api/v1/repositories/acme/tools%2Fcli";
    assert_eq!(api.get(alice, app_path, 200).await["name"], "acme/app");
    assert_eq!(api.get(anon, cli_path, 200).await["name"], "acme/tools/cli");
    api.get(anon, app_path, 404).await;
    api.get(carol, app_path, 404).await;
    api.get(alice, "/api/v1/repositories/acme/nope", 404).await;
    api.get(alice, "/api/v1/repositories/acme/UPPER", 400).await;

    // Permissions.
    let perms = format!("{app_path}/permissions");
    let read = json!({ "role": "read" });
    api.json(alice, Method::PUT, &format!("{perms}/user/carol"), read.clone(), 204).await;
    api.json(alice, Method::PUT, &format!("{perms}/robot/acme+ci"), json!({ "role": "write" }), 204).await;
    api.json(alice, Method::PUT, &format!("{perms}/team/devs"), json!({ "role": "write" }), 204).await;
    api.json(alice, Method::PUT, &format!("{perms}/group/devs"), read.clone(), 400).await;
    api.json(alice, Method::PUT, &format!("{perms}/user/carol"), json!({ "role": "owner" }), 400).await;
    api.json(alice, Method::PUT, &format!("{perms}/user/carol"), json!({ "role": "read", "until": 1 }), 400).await;
    api.json(alice, Method::PUT, &format!("{perms}/robot/bob+builder"), read.clone(), 400).await;
    api.json(alice, Method::PUT, &format!("{perms}/user/nobody"), read.clone(), 404).await;
    api.json(alice, Method::PUT, "/api/v1/repositories/acme/nope/permissions/user/carol", read.clone(), 404).await;
    api.json(carol, Method::PUT, &format!("{perms}/user/carol"), json!({ "role": "admin" }), 403).await;
    api.json(anon, Method::PUT, &format!("{cli_path}/permissions/user/carol"), read.clone(), 401).await;
    let grants = api.get(alice, &perms, 200).await;
    for grant in [
        json!({ "kind": "user", "name": "alice", "role": "admin" }),
        json!({ "kind": "user", "name": "carol", "role": "read" }),
        json!({ "kind": "team", "name": "devs", "role": "write" }),
        json!({ "kind": "robot", "name": "acme+ci", "role": "write" }),
    ] {
        assert!(grants.as_array().is_some_and(|g| g.contains(&grant)), "{grant} in {grants}");
    }
    api.get(carol, &perms, 403).await;
    api.get(bob, &perms, 403).await;
    api.get(robot, &perms, 403).await;
    api.get(anon, &format!("{cli_path}/permissions"), 401).await;
    api.get(alice, "/api/v1/repositories/acme/nope/permissions", 404).await;
    api.delete(alice, &format!("{perms}/robot/acme+ci"), 204).await;
    api.delete(alice, &format!("{perms}/robot/acme+ci"), 404).await;
    api.delete(alice, &format!("{perms}/group/devs"), 400).await;
    api.delete(carol, &format!("{perms}/user/carol"), 403).await;
    api.delete(anon, &format!("{cli_path}/permissions/user/carol"), 401).await;

    // Visibility.
    let vis = format!("{app_path}/visibility");
    api.json(alice, Method::PUT, &vis, json!({ "visibility": "public" }), 204).await;
    api.get(anon, app_path, 200).await;
    api.json(alice, Method::PUT, &vis, json!({ "visibility": "private" }), 204).await;
    api.get(anon, app_path, 404).await;
    api.json(alice, Method::PUT, &vis, json!({ "visibility": "hidden" }), 400).await;
    api.json(carol, Method::PUT, &vis, json!({ "visibility": "public" }), 403).await;
    api.json(anon, Method::PUT, &format!("{cli_path}/visibility"), json!({ "visibility": "private" }), 401).await;
    api.json(alice, Method::PUT, "/api/v1/repositories/acme/nope/visibility", json!({ "visibility": "public" }), 404)
        .await;

    // Tags: live ones, then the history page by page.
    let tags = format!("{app_path}/tags");
    let live = api.get(alice, &tags, 200).await;
    assert_eq!(names(&live["items"]), ["v1", "v2"]);
    assert!(live["items"].as_array().is_some_and(|t| t.iter().all(|t| t["end"].is_null())), "{live}");
    let first = api.get(alice, &format!("{tags}?history=true&limit=2"), 200).await;
    assert_eq!(names(&first["items"]), ["v1", "v2"]);
    let next = first["next"].as_str().expect("a full page has a next cursor").to_owned();
    let rest = api.get(alice, &format!("{tags}?history=true&limit=2&before={next}"), 200).await;
    assert_eq!((names(&rest["items"]), &rest["next"]), (vec!["v1".to_owned()], &Value::Null));
    assert!(rest["items"][0]["end"].is_i64(), "the moved tag's first version ended: {rest}");
    assert_eq!(names(&api.get(carol, &format!("{tags}?history=1"), 200).await["items"]), ["v1", "v2", "v1"]);
    api.get(anon, &tags, 404).await;
    assert_eq!(api.get(anon, &format!("{cli_path}/tags"), 200).await, json!({ "items": [], "next": null }));
    api.get(alice, &format!("{tags}?before=x"), 400).await;
    api.get(alice, "/api/v1/repositories/acme/nope/tags", 404).await;

    // Deletion.
    api.delete(carol, app_path, 403).await;
    api.delete(anon, cli_path, 401).await;
    api.delete(alice, cli_path, 204).await;
    api.delete(alice, cli_path, 404).await;
    api.delete(alice, "/api/v1/repositories/acme/UPPER", 400).await;
    api.get(admin, cli_path, 404).await;
}

/// The audit log and the signing key.
async fn logs_and_keys(api: &mut Checker, cast: &Cast) {
    let Cast { admin, anon, wrong, alice, bob, carol } = cast;
    let all = api.get(admin, "/api/v1/logs", 200).await;
    assert!(all["items"].as_array().is_some_and(|i| i.len() > 10), "{all}");
    let page = api.get(admin, "/api/v1/logs?limit=2", 200).await;
    let next = page["next"].as_str().expect("next").to_owned();
    let more = api.get(admin, &format!("/api/v1/logs?limit=2&before={next}"), 200).await;
    assert!(more["items"][0]["id"].as_i64() < next.parse().ok(), "older entries follow: {more}");
    let created = api
        .get(
            admin,
            "/api/v1/logs?namespace=acme&actor=alice&action=create_organization&since=0&until=99999999999999",
            200,
        )
        .await;
    assert_eq!(created["items"].as_array().map(Vec::len), Some(1), "{created}");
    assert_eq!(created["items"][0]["actor_kind"], "user");
    let acme = api.get(alice, "/api/v1/logs?namespace=acme", 200).await;
    assert!(acme["items"].as_array().is_some_and(|i| !i.is_empty() && i.iter().all(|e| e["namespace"] == "acme")));
    let app = api.get(alice, "/api/v1/logs?repository=acme/app", 200).await;
    assert!(app["items"].as_array().is_some_and(|i| i.iter().any(|e| e["action"] == "set_visibility")), "{app}");
    api.get(bob, "/api/v1/logs", 403).await;
    api.get(bob, "/api/v1/logs?namespace=acme", 403).await;
    api.get(alice, "/api/v1/logs?namespace=nope", 404).await;
    api.get(carol, "/api/v1/logs?repository=acme/bobs", 404).await;
    api.get(anon, "/api/v1/logs", 401).await;
    api.get(admin, "/api/v1/logs?since=yesterday", 400).await;

    let rotate = "/api/v1/signing-keys/rotate";
    let first = api.post(admin, rotate, 200).await;
    let second = api.post(admin, rotate, 200).await;
    assert_ne!(first["key_id"], second["key_id"]);
    api.post(bob, rotate, 403).await;
    api.post(wrong, rotate, 401).await;
}

/// Deleting organizations and users.
async fn cleanup_deletes(api: &mut Checker, cast: &Cast) {
    let Cast { admin, anon, alice, bob, .. } = cast;
    api.json(alice, Method::POST, "/api/v1/organizations", json!({ "name": "tmporg" }), 201).await;
    api.delete(bob, "/api/v1/organizations/tmporg", 403).await;
    api.delete(anon, "/api/v1/organizations/tmporg", 401).await;
    api.delete(alice, "/api/v1/organizations/tmporg", 204).await;
    api.delete(alice, "/api/v1/organizations/tmporg", 404).await;
    api.delete(admin, "/api/v1/organizations/bob", 404).await;

    api.delete(bob, "/api/v1/users/alice", 403).await;
    api.delete(anon, "/api/v1/users/alice", 401).await;
    api.delete(admin, "/api/v1/users/admin", 400).await;
    api.delete(admin, "/api/v1/users/carol", 204).await;
    api.delete(admin, "/api/v1/users/carol", 404).await;
}

/// Failed logins are throttled per account with 429 and `Retry-After`.
async fn throttling(api: &mut Checker) {
    let reg = TestRegistry::start_with(|c| c.auth.failures_per_account = 2).await;
    let mallory = Caller::basic(&reg, "mallory", "guess");
    api.get(&mallory, "/api/v1/user", 401).await;
    api.get(&mallory, "/api/v1/user", 401).await;
    api.get(&mallory, "/api/v1/user", 429).await;
    reg.stop().await;
}

/// The `name` of each item of a JSON array.
fn names(items: &Value) -> Vec<String> {
    items.as_array().expect("an array").iter().map(|i| i["name"].as_str().expect("a name").to_owned()).collect()
}

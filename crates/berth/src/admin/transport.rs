//! Where `berth admin` sends its management API requests: to a running server over HTTP, or
//! offline to the same handlers over the data directory, acting as the system (full rights,
//! audited as `system`).

use std::sync::Arc;

use anyhow::Context;
use berth_core::ports::MetaStore;
use berth_core::tenancy::write_audit_batches;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tower::ServiceExt;

use super::commands::ApiCall;
use crate::config::Config;

/// A management API response: its status and body.
pub struct Answer {
    pub status: StatusCode,
    pub body: bytes::Bytes,
}

pub enum Transport {
    Online { client: reqwest::Client, base: String, authorization: Option<HeaderValue> },
    Offline { router: axum::Router, audit: tokio::task::JoinHandle<()>, meta: Arc<dyn MetaStore> },
}

/// How to log in to a running server.
pub enum Login {
    Token(String),
    Password { user: String, password: String },
    Anonymous,
}

impl Transport {
    pub fn online(server: &str, login: Login) -> anyhow::Result<Transport> {
        let authorization = match login {
            Login::Token(token) => Some(format!("Bearer {token}")),
            Login::Password { user, password } => {
                use base64::Engine as _;
                let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {pair}"))
            }
            Login::Anonymous => None,
        }
        .map(|value| HeaderValue::from_str(&value).context("the credentials contain characters HTTP cannot carry"))
        .transpose()?;
        let client =
            reqwest::Client::builder().user_agent(concat!("berth-admin/", env!("CARGO_PKG_VERSION"))).build()?;
        Ok(Transport::Online { client, base: server.trim_end_matches('/').to_owned(), authorization })
    }

    /// The API over the data directory, without taking the server's lock: SQLite serialises
    /// the writes, and a running server sees the changes (permissions within its cache time).
    pub async fn offline(config: &Config) -> anyhow::Result<Transport> {
        let mut config = config.clone();
        // The caller is whoever can read the data directory: the system itself.
        config.auth.enabled = false;
        let assembled = crate::app::assemble(&config).await?;
        let store = assembled.meta.clone();
        let audit = tokio::spawn(write_audit_batches(assembled.audit_queue, store));
        Ok(Transport::Offline { router: berth_server::router(assembled.state), audit, meta: assembled.meta })
    }

    pub async fn send(&self, call: &ApiCall) -> anyhow::Result<Answer> {
        let body = match &call.body {
            Some(value) => serde_json::to_vec(value)?,
            None => Vec::new(),
        };
        match self {
            Transport::Online { client, base, authorization } => {
                let mut request = client.request(call.method.clone(), format!("{base}{}", call.target));
                if let Some(authorization) = authorization {
                    request = request.header(AUTHORIZATION, authorization.clone());
                }
                if call.body.is_some() {
                    request = request.header(CONTENT_TYPE, "application/json").body(body);
                }
                let response = request.send().await.with_context(|| format!("reaching {base}"))?;
                let status = response.status();
                Ok(Answer { status, body: response.bytes().await.context("reading the response")? })
            }
            Transport::Offline { router, .. } => {
                let request = axum::http::Request::builder()
                    .method(call.method.clone())
                    .uri(&call.target)
                    .header(CONTENT_TYPE, "application/json")
                    .body(axum::body::Body::from(body))?;
                let response = router.clone().oneshot(request).await?;
                let status = response.status();
                let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
                Ok(Answer { status, body })
            }
        }
    }

    /// Waits until the audit entries of an offline session are written.
    pub async fn close(self) {
        if let Transport::Offline { router, audit, meta } = self {
            drop(router);
            let _ = audit.await;
            meta.close().await;
        }
    }
}

//! An in-process S3-compatible server (s3s-fs on a temporary directory, SigV4 auth) on
//! 127.0.0.1:0, for tests of the S3 backend and of a registry running on it.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

use crate::S3Config;

const ACCESS_KEY: &str = "berth-access";
const SECRET_KEY: &str = "berth-secret";
const BUCKET: &str = "berth";

/// The server; it stops when dropped.
pub struct S3TestServer {
    pub dir: tempfile::TempDir,
    pub endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl S3TestServer {
    /// Starts a server with one bucket. Panics on failure: it is for tests.
    pub async fn start() -> S3TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(BUCKET)).expect("create the bucket");
        let mut builder = S3ServiceBuilder::new(s3s_fs::FileSystem::new(dir.path()).expect("s3s-fs"));
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("local address"));
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(socket), service).await;
                });
            }
        });
        S3TestServer { dir, endpoint, task }
    }

    /// A configuration for this server's bucket, under `prefix`.
    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint.clone()),
            bucket: BUCKET.into(),
            region: "us-east-1".into(),
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            prefix: prefix.into(),
            allow_http: true,
        }
    }
}

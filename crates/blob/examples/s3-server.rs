//! The tests' S3-compatible server (s3s-fs on a temporary directory) as a process of its own,
//! for benchmarks: prints a `[storage.s3]` table for Berth's configuration, then serves on
//! 127.0.0.1 until interrupted.
//!
//!     cargo run --release -p berth-blob --features testing --example s3-server

use berth_blob::s3_test_server::S3TestServer;

#[tokio::main]
async fn main() {
    let server = S3TestServer::start().await;
    let s3 = server.config("bench");
    println!("[storage.s3]");
    println!("endpoint = {:?}", s3.endpoint.unwrap_or_default());
    println!("bucket = {:?}\nregion = {:?}", s3.bucket, s3.region);
    println!("access_key_id = {:?}\nsecret_access_key = {:?}", s3.access_key_id, s3.secret_access_key);
    println!("prefix = {:?}\nallow_http = true", s3.prefix);
    // The benchmark script reads the table above from a pipe: end it now.
    println!();
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("waiting for Ctrl-C: {e}");
    }
    drop(server);
}

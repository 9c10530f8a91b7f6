//! The `berth` binary's library half: configuration and wiring, shared by `main` and the
//! integration tests (which start real servers on 127.0.0.1:0 through [`app::start`]).

pub mod admin;
pub mod app;
pub mod bench;
pub mod config;
pub mod migrate_store;

//! Berth's rules and use cases, written against two ports: [`ports::MetaStore`] (the
//! relational source of truth) and [`ports::BlobStore`] (opaque bytes under opaque keys).
//!
//! Nothing here knows HTTP or SQL; the server crate translates requests into calls on
//! [`registry::Registry`] and maps [`Error`] onto each wire protocol.

pub mod access;
pub mod appregistry;
pub mod cache;
pub mod changes;
pub mod connection_share;
pub mod error;
pub mod metered_store;
pub mod ports;
pub mod registry;
pub mod stream;
pub mod tenancy;
pub mod time;

pub use error::{Error, Result};

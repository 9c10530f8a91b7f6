//! Implementations of the [`berth_core::ports::MetaStore`] port on sqlx.
//!
//! SQLite is the embedded default. Every backend runs its own embedded migrations and passes
//! [`testsuite`].

mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testsuite;
#[cfg(any(test, feature = "testing"))]
mod testsuite_appregistry;
#[cfg(any(test, feature = "testing"))]
mod testsuite_tenancy;

pub use sqlite::{DatabaseLimits, SqliteMetaStore};

//! Every `Store` keeps the same contract: each behaviour of the test kit's contract
//! (`fastapihooks_testkit::contract`, run by `store_contract!`) is written once and run against
//! each store (memory, SQLite, PostgreSQL, MariaDB), each test on a fresh, isolated
//! store (own SQLite file, own PostgreSQL schema, own MariaDB database), so they run in
//! parallel. `sql.rs` adds what only a SQL store promises (migrations, concurrent writers, one
//! payload per event, WAL); `parents.rs` what the history's dropped foreign keys guaranteed,
//! on the databases with concurrent writers.

// The macro first: the backend modules below expand it.
#[cfg(feature = "sql")]
#[macro_use]
mod sql;
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[macro_use]
mod parents;

mod defaults;
#[cfg(feature = "sqlite")]
mod engine;
mod memory;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

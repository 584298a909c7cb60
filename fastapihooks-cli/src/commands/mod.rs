//! One file per command.

pub mod database;
pub mod migrate;
pub mod retry;
pub mod start;
pub mod subscriptions;

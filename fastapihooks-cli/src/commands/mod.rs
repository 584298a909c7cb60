//! One file per command.

pub mod database;
pub mod migrate;
pub mod start;
pub mod subscriptions;

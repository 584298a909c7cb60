//! One file per command.

pub mod database;
pub mod deliveries;
pub mod events;
pub mod history_flags;
pub mod inbox;
pub mod listen;
pub mod migrate;
pub mod prune;
pub mod queue;
pub mod receive_scheme;
pub mod replaying;
pub mod retry;
pub mod start;
pub mod subscriptions;
pub mod verify;

//! sea-orm entities of the store's tables: one row type per table, plain columns only.
//!
//! Times are stored as microseconds since the unix epoch (`BIGINT`): the same on every database,
//! sortable, and free of time-zone conversions.

pub(crate) mod attempt;
pub(crate) mod delivery;
pub(crate) mod event;
pub(crate) mod first_attempt;
pub(crate) mod inbox;
pub(crate) mod subscription;

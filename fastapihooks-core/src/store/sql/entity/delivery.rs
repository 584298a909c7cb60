//! `fastapihooks_deliveries`: one row per (event, subscription), updated after each attempt.
//! Its `first_attempt_*` columns are read apart, as [`first_attempt`](super::first_attempt).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "fastapihooks_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The event's row, written or found by the same transaction. Not a foreign key on
    /// PostgreSQL and MariaDB (migration 16: its check cost a locked row and a WAL record per
    /// delivery written); the store's statements keep the order it kept (`parents.rs`).
    pub event_id: String,
    /// Not a foreign key: static subscribers live in code, and history outlives removed
    /// subscriptions.
    pub subscription_id: String,
    /// `DeliveryStatus::as_str`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at_us: Option<i64>,
    pub created_at_us: i64,
    pub updated_at_us: i64,
    /// Times replayed (`Delivery::replays`): fences the runs of earlier replays.
    pub replays: i64,
    pub attempts_before_replay: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

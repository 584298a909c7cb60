//! `fastapihooks_attempts`: one row per HTTP try of a delivery — but a first attempt written
//! with its delivery on PostgreSQL, which the delivery's row keeps
//! ([`first_attempt`](super::first_attempt)).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "fastapihooks_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The delivery's row, written or found (and held) by the same transaction. Not a foreign
    /// key on PostgreSQL and MariaDB (migration 16; `parents.rs`).
    pub delivery_id: String,
    pub number: i64,
    pub started_at_us: i64,
    pub duration_us: i64,
    /// `response` or `error`.
    pub outcome: String,
    /// The HTTP status, for a `response`.
    pub status_code: Option<i32>,
    /// `AttemptErrorKind::as_str`, for an `error`.
    pub error_kind: Option<String>,
    /// The response body excerpt, or the error message.
    pub detail: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! A delivery's first attempt as kept in the delivery's own row: the `first_attempt_*` columns
//! of `fastapihooks_deliveries` (migration 17), read apart from the delivery's other columns so
//! reads of deliveries do not carry it.
//!
//! Written by the sidecar's batches on PostgreSQL (`batch_postgres`), which insert a delivery
//! and its first attempt together; every other attempt is a row of `fastapihooks_attempts`. A
//! row without one has all of them NULL.

use sea_orm::entity::prelude::*;

use super::attempt;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "fastapihooks_deliveries")]
pub struct Model {
    /// The delivery's id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub first_attempt_id: Option<String>,
    pub first_attempt_number: Option<i64>,
    pub first_attempt_started_at_us: Option<i64>,
    pub first_attempt_duration_us: Option<i64>,
    pub first_attempt_outcome: Option<String>,
    pub first_attempt_status_code: Option<i32>,
    pub first_attempt_error_kind: Option<String>,
    pub first_attempt_detail: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The attempt this row keeps, as a row of `fastapihooks_attempts` would hold it; `None`
    /// when it keeps none. A row missing some of the columns the attempt needs is given as
    /// such: the attempt's conversion names the column.
    pub(crate) fn into_attempt(self) -> Option<attempt::Model> {
        Some(attempt::Model {
            id: self.first_attempt_id?,
            delivery_id: self.id,
            number: self.first_attempt_number.unwrap_or(-1),
            started_at_us: self.first_attempt_started_at_us.unwrap_or(i64::MIN),
            duration_us: self.first_attempt_duration_us.unwrap_or(-1),
            outcome: self.first_attempt_outcome.unwrap_or_default(),
            status_code: self.first_attempt_status_code,
            error_kind: self.first_attempt_error_kind,
            detail: self.first_attempt_detail.unwrap_or_default(),
        })
    }
}

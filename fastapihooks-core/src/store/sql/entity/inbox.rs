//! `fastapihooks_inbox`: one row per received webhook, unique on (source, external id).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "fastapihooks_inbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub source: String,
    pub external_id: String,
    /// The headers kept, as a JSON array of `[name, value]` pairs.
    pub headers: String,
    /// The raw body, exactly as received.
    pub body: Vec<u8>,
    /// `OrderingKey::object`, when the provider gave one (then with the position).
    pub ordering_object: Option<String>,
    pub ordering_position: Option<i64>,
    /// `InboxStatus::as_str`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub received_at_us: i64,
    pub updated_at_us: i64,
    pub processed_at_us: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

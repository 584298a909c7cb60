//! `fastapihooks_subscriptions`: one row per subscription.

use sea_orm::entity::prelude::*;

/// A subscription row. `event_filter` holds the filter's text form (`order.created`,
/// `order.*`, `*`), which is what `matching` looks up through its index.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "fastapihooks_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_filter: String,
    pub url: String,
    /// `Auth` as JSON, credentials included (they are needed to deliver).
    pub auth: String,
    /// The signing secret, when the subscription has its own.
    pub secret: Option<String>,
    /// Secrets replaced by a rotation and still signing, as JSON (`[]` when none).
    pub previous_secrets: String,
    /// Its own signature scheme (`sha256_hex`, `standard_webhooks`), if any.
    pub signature_scheme: Option<String>,
    pub owner: Option<String>,
    /// Its own retry policy as JSON, if any.
    pub retry_policy: Option<String>,
    /// Application metadata as JSON text.
    pub metadata: String,
    pub enabled: bool,
    pub created_at_us: i64,
    /// Why it was disabled (`Disabled::reason`), when the engine disabled it.
    pub disabled_reason: Option<String>,
    pub disabled_at_us: Option<i64>,
    /// The failure streak (`EndpointHealth`): its start, and its failed attempts.
    pub failing_since_us: Option<i64>,
    pub failures: i64,
}

impl std::fmt::Debug for Model {
    /// Like the model's `Subscription`: credentials and the secret are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("subscription::Model")
            .field("id", &self.id)
            .field("event_filter", &self.event_filter)
            .field("url", &self.url)
            .field("auth", &"***")
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("previous_secrets", &"***")
            .field("signature_scheme", &self.signature_scheme)
            .field("owner", &self.owner)
            .field("retry_policy", &self.retry_policy)
            .field("metadata", &self.metadata)
            .field("enabled", &self.enabled)
            .field("created_at_us", &self.created_at_us)
            .field("disabled_reason", &self.disabled_reason)
            .field("disabled_at_us", &self.disabled_at_us)
            .field("failing_since_us", &self.failing_since_us)
            .field("failures", &self.failures)
            .finish()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

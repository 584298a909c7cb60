//! What the management API reads and writes: the core's objects as the API shows them (secrets
//! never among them), and the bodies it takes.

use chrono::{DateTime, Utc};
use fastapihooks_core::{
    Attempt, AttemptOutcome, Delivery, DeliveryStatus, Event, ReplaySummary, Subscription,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A subscription, without its secrets.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "sub_01JE6Y0V3K8Q2M4N6P8R0T2V4W", "filter": "order.*",
    "url": "https://example.com/hooks", "owner": "acme", "metadata": {"plan": "pro"},
    "enabled": true, "has_secret": true, "created_at": "2026-12-01T10:00:00Z"
}))]
pub struct SubscriptionView {
    /// `sub_…`.
    pub id: String,
    /// Which events it receives: a name, `prefix.*` or `*`.
    pub filter: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The owner (tenant) it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Free JSON for the application.
    pub metadata: serde_json::Value,
    /// Disabled subscriptions receive nothing.
    pub enabled: bool,
    /// Why and when the engine disabled it (a 410, a failure streak), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Whether it signs with a secret of its own (the secret itself is never shown again).
    pub has_secret: bool,
    /// Until when a rotated-out secret still signs too, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> Self {
        Self {
            id: s.id.to_string(),
            filter: s.filter.to_string(),
            url: s.url.to_string(),
            owner: s.owner,
            metadata: s.metadata,
            enabled: s.enabled,
            disabled_reason: s.disabled.map(|d| d.reason),
            has_secret: s.secret.is_some(),
            previous_secret_expires_at: s.previous_secrets.iter().map(|p| p.expires_at).max(),
            created_at: s.created_at,
        }
    }
}

/// The body creating a subscription.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"filter": "order.*", "url": "https://example.com/hooks", "metadata": {"plan": "pro"}}))]
pub struct NewSubscription {
    /// Which events it receives: a name, `prefix.*` or `*`.
    pub filter: String,
    /// Where deliveries are POSTed (`https`, or `http` where the deployment allows it).
    pub url: String,
    /// Its signing secret; left out, one is generated. Shown once, in the answer.
    #[serde(default)]
    pub secret: Option<String>,
    /// The owner; in an owner-scoped API, left out or the request's own.
    #[serde(default)]
    pub owner: Option<String>,
    /// Free JSON for the application.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// Created disabled when `false` (default `true`).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A subscription just created, or whose secret was just rotated, with the secret: shown this
/// once.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedSubscription {
    /// The subscription.
    pub subscription: SubscriptionView,
    /// Its signing secret (`whsec_…` when generated): keep it, it is not shown again.
    pub secret: String,
}

/// The body changing a subscription: the fields given replace the stored ones.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://example.com/v2/hooks"}))]
pub struct SubscriptionPatch {
    /// A new event filter.
    #[serde(default)]
    pub filter: Option<String>,
    /// A new URL.
    #[serde(default)]
    pub url: Option<String>,
    /// New metadata (replaces the old entirely).
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

/// The body rotating a subscription's secret.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grace_seconds": 86400}))]
pub struct RotateSecret {
    /// How long the old secret keeps signing too, so receivers can switch (default 86,400: a
    /// day).
    #[serde(default)]
    pub grace_seconds: Option<u64>,
    /// The new secret; left out, one is generated.
    #[serde(default)]
    pub secret: Option<String>,
}

/// A test delivery queued to one subscription.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TestDelivery {
    /// The test event (`fastapihooks.test`).
    pub event_id: String,
    /// Its delivery: follow it under `/deliveries/{id}`.
    pub delivery_id: String,
}

/// An event, with its payload.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// `evt_…`.
    pub id: String,
    /// Its name, e.g. `order.created`.
    pub name: String,
    /// The owner (tenant) it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The payload (JSON).
    pub payload: serde_json::Value,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id().to_string(),
            name: e.name().to_string(),
            owner: e.owner().map(str::to_owned),
            payload: serde_json::from_slice(e.payload()).unwrap_or(serde_json::Value::Null),
            created_at: e.created_at(),
        }
    }
}

/// A delivery: one event to one subscription.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// `dlv_…`: the same through every retry and replay.
    pub id: String,
    /// Its event's id.
    pub event_id: String,
    /// Its event's name.
    pub event_name: String,
    /// The subscription it goes to.
    pub subscription_id: String,
    /// `pending`, `delivered`, `failed` (refused for good) or `dead` (out of retries).
    pub status: String,
    /// Attempts made, over every run.
    pub attempts: u32,
    /// Times it was replayed.
    pub replays: u32,
    /// When the next attempt is due, while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id.to_string(),
            event_id: d.event.id().to_string(),
            event_name: d.event.name().to_string(),
            subscription_id: d.subscription_id.to_string(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            replays: d.replays,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// One HTTP try of a delivery.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    /// `att_…`.
    pub id: String,
    /// 1 for the first try, over every run.
    pub number: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The HTTP status answered, when there was an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// The start of the answer's body, when there was an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
    /// Why there was no answer (`connect`, `timeout`, `blocked`, `transport`, `not_sent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// What happened, when there was no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        let (status_code, response_excerpt, error_kind, error) = match a.outcome {
            AttemptOutcome::Response {
                status,
                body_excerpt,
            } => (Some(status), Some(body_excerpt), None, None),
            AttemptOutcome::Error { kind, message } => {
                let kind = serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned));
                (None, None, kind, Some(message))
            }
        };
        Self {
            id: a.id.to_string(),
            number: a.number,
            started_at: a.started_at,
            duration_ms: u64::try_from(a.duration.as_millis()).unwrap_or(u64::MAX),
            status_code,
            response_excerpt,
            error_kind,
            error,
        }
    }
}

/// The body of a replay.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Send delivered deliveries again too (default: only failed and dead ones are replayed).
    #[serde(default)]
    pub resend_delivered: bool,
}

/// What the replay of one delivery came to.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReplayResult {
    /// `queued`, `resumed`, `already_pending`, `delivered` (not resent),
    /// `subscription_disabled` or `not_found`.
    pub outcome: String,
}

/// What a replay of many deliveries came to (or, for a dry run, how many it would replay).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ReplaySummaryView {
    /// New runs started and queued.
    pub queued: u64,
    /// Runs of an interrupted replay queued now.
    pub resumed: u64,
    /// Already pending: nothing to do.
    pub already_pending: u64,
    /// Delivered and not resent.
    pub delivered: u64,
    /// Left alone because their subscription is disabled.
    pub subscription_disabled: u64,
    /// For a dry run: how many would be replayed (nothing was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_replay: Option<u64>,
}

impl From<ReplaySummary> for ReplaySummaryView {
    fn from(s: ReplaySummary) -> Self {
        Self {
            queued: s.queued,
            resumed: s.resumed,
            already_pending: s.already_pending,
            delivered: s.delivered,
            subscription_disabled: s.subscription_disabled,
            would_replay: None,
        }
    }
}

/// A delivery status from a query string.
pub(crate) fn status(text: &str) -> Result<DeliveryStatus, crate::Problem> {
    text.parse().map_err(|_| {
        super::problems::invalid(format!(
            "`status` is `{text}`: one of pending, delivered, failed, dead"
        ))
    })
}

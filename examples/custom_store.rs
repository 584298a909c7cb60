//! A `Store` of one's own: subscriptions and delivery history in `HashMap`s behind
//! `tokio::sync::RwLock`s, with a twist a SaaS wants — **a quota of subscriptions per tenant**
//! (the free plan gets two endpoints) enforced by the store itself, so every path that adds
//! subscriptions (an admin API, the CLI, a migration script) obeys it.
//!
//! ```sh
//! cargo run --example custom_store
//! ```
//!
//! Needs no server: it starts a receiver on 127.0.0.1, subscribes two endpoints for tenant
//! `acme` (a third is refused by the quota), emits one event for `acme` and one for `globex`, and
//! prints what each endpoint received and the delivery history the store recorded.
//!
//! What a store must get right (the `Store` docs say it in full):
//! - `matching` agrees with `Subscription::receives` (enabled, filter, owner);
//! - `record_deliveries` is insert-if-absent: fan-out may run twice for one event, and a delivery
//!   that already succeeded must keep its state;
//! - errors of its own travel as `fastapihooks::Error::Storage`, keeping their type;
//! - `prune` (retention of delivered history) is optional: this store keeps the trait's default,
//!   which refuses with `Error::Unsupported`, so a retention setting is never silently ignored.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::routing::post;
use fastapihooks::prelude::*;
use fastapihooks::{
    Attempt, Delivery, DeliveryId, DeliveryQuery, Emitter, EndpointHealth, EventId, EventName,
    EventQuery, Reopen, SubscriptionId, SubscriptionQuery,
};

/// The store's own error: kept as the source of `Error::Storage`, so callers can downcast it.
#[derive(Debug, thiserror::Error)]
#[error("tenant {owner:?} already has {limit} subscriptions, the most its plan allows")]
pub struct QuotaExceeded {
    /// The tenant.
    pub owner: String,
    /// Its plan's limit.
    pub limit: usize,
}

/// Subscriptions and history in memory, at most `per_tenant` subscriptions per owner.
#[derive(Debug)]
pub struct TenantStore {
    per_tenant: usize,
    subscriptions: tokio::sync::RwLock<HashMap<SubscriptionId, Subscription>>,
    history: tokio::sync::RwLock<HashMap<DeliveryId, (Delivery, Vec<Attempt>)>>,
}

impl TenantStore {
    pub fn new(per_tenant: usize) -> Self {
        Self {
            per_tenant,
            subscriptions: Default::default(),
            history: Default::default(),
        }
    }
}

#[async_trait]
impl Store for TenantStore {
    async fn add_subscription(&self, subscription: Subscription) -> Result<(), Error> {
        // One write lock for the check and the insert: two concurrent adds cannot both pass.
        let mut subscriptions = self.subscriptions.write().await;
        if subscriptions.contains_key(&subscription.id) {
            return Err(Error::SubscriptionExists {
                id: subscription.id.to_string(),
            });
        }
        if let Some(owner) = &subscription.owner {
            let held = subscriptions
                .values()
                .filter(|s| s.owner.as_ref() == Some(owner))
                .count();
            if held >= self.per_tenant {
                let exceeded = QuotaExceeded {
                    owner: owner.clone(),
                    limit: self.per_tenant,
                };
                return Err(Error::storage("tenant_store.add_subscription", exceeded));
            }
        }
        subscriptions.insert(subscription.id.clone(), subscription);
        Ok(())
    }

    async fn get_subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>, Error> {
        Ok(self.subscriptions.read().await.get(id).cloned())
    }

    async fn update_subscription(&self, subscription: Subscription) -> Result<(), Error> {
        match self.subscriptions.write().await.get_mut(&subscription.id) {
            Some(slot) => {
                // The failure streak is the engine's to write (`record_health` below).
                let health = slot.health;
                *slot = Subscription {
                    health,
                    ..subscription
                };
                Ok(())
            }
            None => Err(Error::SubscriptionNotFound {
                id: subscription.id.to_string(),
            }),
        }
    }

    async fn set_enabled(&self, id: &SubscriptionId, enabled: bool) -> Result<(), Error> {
        let mut subscriptions = self.subscriptions.write().await;
        let sub = subscriptions
            .get_mut(id)
            .ok_or_else(|| Error::SubscriptionNotFound { id: id.to_string() })?;
        sub.enabled = enabled;
        if enabled {
            // Enabled again: it starts afresh.
            sub.disabled = None;
            sub.health = EndpointHealth::default();
        }
        Ok(())
    }

    async fn record_health(
        &self,
        id: &SubscriptionId,
        delivered: bool,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<EndpointHealth, Error> {
        // Under the write lock: concurrent failures all count.
        Ok(match self.subscriptions.write().await.get_mut(id) {
            Some(sub) => {
                sub.health = sub.health.after(delivered, at);
                sub.health
            }
            None => EndpointHealth::default(),
        })
    }

    async fn remove_subscription(&self, id: &SubscriptionId) -> Result<(), Error> {
        match self.subscriptions.write().await.remove(id) {
            Some(_) => Ok(()),
            None => Err(Error::SubscriptionNotFound { id: id.to_string() }),
        }
    }

    async fn list_subscriptions(
        &self,
        query: &SubscriptionQuery,
    ) -> Result<Vec<Subscription>, Error> {
        let subscriptions = self.subscriptions.read().await;
        // Ids are time-sortable: sorting by id is oldest first, and `after` is a keyset.
        let mut page: Vec<Subscription> = subscriptions
            .values()
            .filter(|s| query.owner.is_none() || s.owner == query.owner)
            .filter(|s| query.after.as_ref().is_none_or(|after| &s.id > after))
            .cloned()
            .collect();
        page.sort_by(|a, b| a.id.cmp(&b.id));
        page.truncate(query.limit);
        Ok(page)
    }

    async fn matching(
        &self,
        event: &EventName,
        owner: Option<&str>,
    ) -> Result<Vec<Subscription>, Error> {
        Ok(self
            .subscriptions
            .read()
            .await
            .values()
            .filter(|s| s.receives(event, owner))
            .cloned()
            .collect())
    }

    async fn record_deliveries(&self, deliveries: &[Delivery]) -> Result<(), Error> {
        let mut history = self.history.write().await;
        for delivery in deliveries {
            // Insert if absent: a redelivered event must not reset a finished delivery.
            history
                .entry(delivery.id.clone())
                .or_insert_with(|| (delivery.clone(), Vec::new()));
        }
        Ok(())
    }

    async fn record_attempt(&self, delivery: &Delivery, attempt: &Attempt) -> Result<(), Error> {
        if let Some((stored, attempts)) = self.history.write().await.get_mut(&delivery.id) {
            // A final status never goes back, and a late attempt of a run overtaken by a replay
            // does not set the state: both are still history.
            if !stored.status.is_final() && stored.replays == delivery.replays {
                *stored = Delivery {
                    attempts_before_replay: stored.attempts_before_replay,
                    ..delivery.clone()
                };
            }
            attempts.push(attempt.clone());
        }
        Ok(())
    }

    async fn replay_delivery(
        &self,
        id: &DeliveryId,
        resend_delivered: bool,
    ) -> Result<Option<Reopen>, Error> {
        // One write lock: two replays racing start one run (the other finds it pending).
        let mut history = self.history.write().await;
        Ok(history
            .get_mut(id)
            .map(|(stored, _)| Reopen::apply(stored, resend_delivered)))
    }

    async fn get_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, Error> {
        Ok(self.history.read().await.get(id).map(|(d, _)| d.clone()))
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, Error> {
        let history = self.history.read().await;
        // `matches` is every filter and the cursor, as the contract defines them.
        let mut page: Vec<Delivery> = history
            .values()
            .map(|(d, _)| d)
            .filter(|d| query.matches(d))
            .cloned()
            .collect();
        page.sort_by(|a, b| b.id.cmp(&a.id)); // newest first
        page.truncate(query.limit);
        Ok(page)
    }

    async fn list_attempts(&self, delivery: &DeliveryId) -> Result<Vec<Attempt>, Error> {
        Ok(self
            .history
            .read()
            .await
            .get(delivery)
            .map(|(_, a)| a.clone())
            .unwrap_or_default())
    }

    async fn get_event(&self, id: &EventId) -> Result<Option<Event>, Error> {
        Ok(self
            .history
            .read()
            .await
            .values()
            .map(|(d, _)| &d.event)
            .find(|e| e.id() == id)
            .cloned())
    }

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<Event>, Error> {
        // Events are kept with their deliveries: each once, newest first.
        let history = self.history.read().await;
        Ok(query.page(history.values().map(|(d, _)| &d.event)))
    }
}

/// What the demo saw.
#[derive(Debug)]
pub struct Outcome {
    /// The third `acme` subscription was refused, with this message.
    pub refused: String,
    /// Requests received per endpoint path.
    pub received: HashMap<String, usize>,
    /// Deliveries the store recorded as delivered.
    pub delivered: usize,
}

/// Runs the demo: a receiver on 127.0.0.1, a `TenantStore` allowing two subscriptions per
/// tenant, one event for `acme` and one for `globex`.
pub async fn demo() -> anyhow::Result<Outcome> {
    let hits: Arc<std::sync::Mutex<HashMap<String, usize>>> = Arc::default();
    let seen = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route(
        "/{endpoint}",
        post({
            let (hits, seen) = (hits.clone(), seen.clone());
            move |axum::extract::Path(endpoint): axum::extract::Path<String>| async move {
                *hits.lock().unwrap().entry(endpoint).or_default() += 1;
                seen.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let store = Arc::new(TenantStore::new(2));
    for endpoint in ["acme-billing", "acme-crm"] {
        let url = format!("http://{addr}/{endpoint}");
        store
            .add_subscription(Subscription::new("invoice.*", &url)?.with_owner("acme"))
            .await?;
    }
    let third = Subscription::new("*", &format!("http://{addr}/acme-extra"))?.with_owner("acme");
    let refused = match store.add_subscription(third).await {
        Err(e) => e.to_string(),
        Ok(()) => anyhow::bail!("the quota let a third acme subscription in"),
    };
    store
        .add_subscription(
            Subscription::new("invoice.paid", &format!("http://{addr}/globex"))?
                .with_owner("globex"),
        )
        .await?;

    let emitter = Emitter::builder()
        .shared_store(store.clone())
        .secret(Secret::new("custom-store-demo")?)
        // The demo's receiver listens on 127.0.0.1, which the SSRF guard refuses by default.
        .http(HttpConfig::default().allow_loopback())
        .build()?;
    let paid = serde_json::json!({"invoice": "inv_1", "amount": 4200});
    emitter
        .publish(Event::new("invoice.paid", &paid)?.with_owner("acme"))
        .await?;
    emitter
        .publish(Event::new("invoice.paid", &paid)?.with_owner("globex"))
        .await?;
    emitter.shutdown(Duration::from_secs(10)).await?;

    let delivered = store
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Delivered))
        .await?
        .len();
    let received = hits.lock().unwrap().clone();
    Ok(Outcome {
        refused,
        received,
        delivered,
    })
}

#[tokio::main]
#[allow(dead_code, reason = "tests include this file and call `demo` instead")]
async fn main() -> anyhow::Result<()> {
    let outcome = demo().await?;
    println!("refused: {}", outcome.refused);
    let mut received: Vec<_> = outcome.received.into_iter().collect();
    received.sort();
    for (endpoint, n) in received {
        println!("{endpoint} received {n}");
    }
    println!("the store recorded {} delivered", outcome.delivered);
    Ok(())
}

//! What the store recorded of a sidecar run, read through the `Store` API: every delivery by
//! status, matched by id against the deliveries expected.

use std::collections::HashSet;

use fastapihooks_core::{DeliveryQuery, DeliveryStatus, Store};
use serde::Serialize;

/// Deliveries read per `list_deliveries` page.
const PAGE: usize = 1_000;

/// The store's record of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct History {
    /// Deliveries in the store, any status.
    pub recorded: u64,
    /// Of those, delivered.
    pub delivered: u64,
    /// Still pending (must be 0 once the sidecar has drained).
    pub pending: u64,
    /// Failed or dead (must be 0: the receiver answers every delivery 2xx).
    pub failed_or_dead: u64,
    /// Attempts counted on the deliveries (one per delivery when none was retried).
    pub attempts: u64,
    /// Expected deliveries the store does not hold as delivered (must be 0).
    pub missing: u64,
    /// Deliveries in the store that were not expected (must be 0).
    pub unexpected: u64,
}

impl History {
    /// Whether the store holds exactly the expected deliveries, every one delivered, each with
    /// its attempt counted.
    pub fn exact(&self, expected: u64) -> bool {
        self.delivered == expected
            && self.recorded == expected
            && self.missing == 0
            && self.unexpected == 0
            && self.attempts >= expected
    }
}

/// Reads every delivery of `store`, newest first one page at a time, and matches the ids
/// against `expected` (`(delivery id, _)`, as the accounting takes them).
pub async fn read(store: &dyn Store, expected: &[(String, u64)]) -> anyhow::Result<History> {
    let expected_ids: HashSet<&str> = expected.iter().map(|(id, _)| id.as_str()).collect();
    let mut not_delivered = expected_ids.clone();
    let mut h = History::default();
    let mut query = DeliveryQuery::default().limit(PAGE);
    loop {
        let page = store.list_deliveries(&query).await?;
        for delivery in &page {
            let id = delivery.id.as_str();
            h.recorded += 1;
            h.attempts += u64::from(delivery.attempts);
            if !expected_ids.contains(id) {
                h.unexpected += 1;
            }
            match delivery.status {
                DeliveryStatus::Delivered => {
                    h.delivered += 1;
                    not_delivered.remove(id);
                }
                DeliveryStatus::Pending => h.pending += 1,
                DeliveryStatus::Failed | DeliveryStatus::Dead => h.failed_or_dead += 1,
            }
        }
        let Some(last) = page.last().filter(|_| page.len() == PAGE) else {
            break;
        };
        query = query.before(last.id.clone());
    }
    h.missing = not_delivered.len() as u64;
    Ok(h)
}

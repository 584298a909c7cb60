//! Retention: [`Pruned`], what one [`Store::prune`](super::Store::prune) call removed, and
//! [`prune_history`], which prunes everything old in short batches.

use std::ops::AddAssign;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Store;
use crate::error::Result;

/// The most batches one [`prune_history`] call runs before it stops (with `batch` 500: five
/// million deliveries). What is left is pruned by the next call.
pub const MAX_PRUNE_BATCHES: usize = 10_000;

/// What one [`Store::prune`](super::Store::prune) call removed: delivered deliveries last
/// updated before the cut-off, their attempts, and the events left with no delivery at all.
///
/// A call removes a bounded batch; the caller calls again until one removes nothing
/// ([`is_empty`](Self::is_empty)), adding the batches up with `+=`.
///
/// ```
/// use fastapihooks_core::store::Pruned;
/// let mut total = Pruned::default();
/// let mut batch = Pruned::default();
/// batch.deliveries = 2;
/// batch.attempts = 3;
/// total += batch;
/// total += Pruned::default();
/// assert_eq!((total.deliveries, total.attempts, total.events), (2, 3, 0));
/// assert!(!total.is_empty());
/// assert!(Pruned::default().is_empty());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pruned {
    /// Deliveries removed (all of them `delivered`).
    pub deliveries: u64,
    /// Attempts removed: those of the removed deliveries.
    pub attempts: u64,
    /// Events removed: those none of whose deliveries remains.
    pub events: u64,
}

impl Pruned {
    /// Whether nothing was removed: a caller pruning in batches is done.
    pub fn is_empty(&self) -> bool {
        self.deliveries == 0 && self.attempts == 0 && self.events == 0
    }
}

impl AddAssign for Pruned {
    fn add_assign(&mut self, batch: Self) {
        self.deliveries += batch.deliveries;
        self.attempts += batch.attempts;
        self.events += batch.events;
    }
}

/// Prunes the delivered history last changed before `older_than`: calls
/// [`Store::prune`](super::Store::prune) with at most `batch` deliveries a call until a call
/// removes nothing, sleeping `pause` between calls, and returns what all of them removed.
///
/// Each call is one short step (one small transaction on a SQL store), and the pause between
/// them lets the application's and the sidecar's own writes in: a large backlog is pruned
/// without holding a lock for long. Failed, dead and pending deliveries are never removed.
///
/// Bounded: it stops after [`MAX_PRUNE_BATCHES`] calls even if there is more to prune (the
/// next call goes on where it stopped), so it never runs unbounded. A `batch` of 0 prunes
/// nothing.
///
/// # Errors
///
/// The first error of a call, e.g. [`Error::Unsupported`](crate::Error::Unsupported) from a
/// store that does not prune. What earlier calls removed stays removed (each call commits on
/// its own); running it again goes on.
///
/// ```no_run
/// # async fn demo(store: &dyn fastapihooks_core::Store) -> fastapihooks_core::Result<()> {
/// use std::time::Duration;
/// use fastapihooks_core::prune_history;
///
/// // Keep 30 days of delivered history: 500 deliveries a step, 50 ms between steps.
/// let cut_off = chrono::Utc::now() - chrono::Duration::days(30);
/// let pruned = prune_history(store, cut_off, 500, Duration::from_millis(50)).await?;
/// println!(
///     "pruned {} deliveries, {} attempts, {} events",
///     pruned.deliveries, pruned.attempts, pruned.events
/// );
/// # Ok(()) }
/// ```
pub async fn prune_history(
    store: &dyn Store,
    older_than: DateTime<Utc>,
    batch: usize,
    pause: Duration,
) -> Result<Pruned> {
    let mut total = Pruned::default();
    if batch == 0 {
        return Ok(total);
    }
    for n in 0..MAX_PRUNE_BATCHES {
        if n > 0 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let pruned = store.prune(older_than, batch).await?;
        if pruned.is_empty() {
            return Ok(total);
        }
        total += pruned;
    }
    tracing::info!(
        batches = MAX_PRUNE_BATCHES,
        deliveries = total.deliveries,
        "retention: stopped after the most batches one call runs; the next one goes on"
    );
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::{Delivery, DeliveryStatus, Event, SubscriptionId};

    async fn stored(
        store: &MemoryStore,
        status: DeliveryStatus,
        changed: DateTime<Utc>,
    ) -> Delivery {
        let mut d = Delivery::new(
            Event::new("order.created", &1).unwrap(),
            SubscriptionId::new(),
        );
        d.status = status;
        d.updated_at = changed;
        store
            .record_deliveries(std::slice::from_ref(&d))
            .await
            .unwrap();
        d
    }

    #[tokio::test]
    async fn history_is_pruned_in_batches_until_nothing_old_is_left() {
        let store = MemoryStore::new();
        let cut = Utc::now();
        let old = cut - chrono::Duration::days(2);
        let mut gone = Vec::new();
        for _ in 0..5 {
            gone.push(stored(&store, DeliveryStatus::Delivered, old).await);
        }
        let kept = [
            stored(
                &store,
                DeliveryStatus::Delivered,
                cut + chrono::Duration::seconds(1),
            )
            .await,
            stored(&store, DeliveryStatus::Dead, old).await,
            stored(&store, DeliveryStatus::Failed, old).await,
        ];

        let pruned = prune_history(&store, cut, 2, Duration::from_millis(1))
            .await
            .unwrap();
        assert_eq!(
            (pruned.deliveries, pruned.attempts, pruned.events),
            (5, 0, 5)
        );
        for d in &gone {
            assert!(store.get_delivery(&d.id).await.unwrap().is_none());
        }
        for d in &kept {
            assert!(store.get_delivery(&d.id).await.unwrap().is_some());
        }
        let again = prune_history(&store, cut, 2, Duration::ZERO).await.unwrap();
        assert!(again.is_empty());
        let none = prune_history(
            &store,
            Utc::now() + chrono::Duration::days(1),
            0,
            Duration::ZERO,
        )
        .await
        .unwrap();
        assert!(none.is_empty(), "a batch of 0 prunes nothing");
    }
}

//! Retention: [`Pruned`], what one [`Store::prune`](super::Store::prune) call removed.

use std::ops::AddAssign;

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

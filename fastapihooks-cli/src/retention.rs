//! The sidecar's retention (`fastapihooks start --retain 30d`): in the background, prunes the
//! delivered history (deliveries, their attempts, the events left with none) whose state last
//! changed longer ago than the retention — and, with the SQL outbox, its dead rows that died
//! that long ago — once at start and then every `retain / 24`, between a minute and an hour.
//!
//! It prunes in short batches with a pause between them ([`prune_history`]), so the worker's
//! own writes get in. It stops with the sidecar's shutdown and never delays it (a batch under
//! way is abandoned: its transaction rolls back). An error is logged and tried again at the next
//! period; it never ends the sidecar. Failed, dead and pending deliveries are never pruned.

use std::sync::Arc;
use std::time::Duration;

use fastapihooks_core::worker::CancellationToken;
use fastapihooks_core::{Error, SqlBackend, Store, prune_history};

use crate::commands::prune::{cut_off, prune_dead_letters};

/// The shortest period between two prunes.
const MIN_PERIOD: Duration = Duration::from_secs(60);
/// The longest period between two prunes.
const MAX_PERIOD: Duration = Duration::from_secs(3600);
/// Deliveries (or outbox rows) removed per step.
const BATCH: usize = 500;
/// The pause between two steps, for the worker's writes to get in.
const PAUSE: Duration = Duration::from_millis(50);

/// How long the sidecar keeps delivered history, and the outbox whose dead rows it prunes too.
#[derive(Clone, Debug)]
pub struct Retention {
    /// Delivered deliveries whose state last changed longer ago than this are pruned.
    pub retain: Duration,
    /// The SQL outbox whose dead rows that died longer ago than `retain` are pruned too.
    pub outbox: Option<Arc<SqlBackend>>,
}

impl Retention {
    /// Keeps delivered history for `retain`. It must be longer than zero: a retention of zero is
    /// refused (logged, and nothing is pruned).
    pub fn new(retain: Duration) -> Self {
        Self {
            retain,
            outbox: None,
        }
    }

    /// Prunes the dead rows of this SQL outbox too.
    pub fn outbox(mut self, outbox: Arc<SqlBackend>) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// How often it prunes: `retain / 24`, between a minute and an hour.
    pub fn period(&self) -> Duration {
        (self.retain / 24).clamp(MIN_PERIOD, MAX_PERIOD)
    }
}

/// Runs `retention` over `store` in a task of its own until `shutdown` is cancelled.
pub(crate) fn spawn(
    retention: Retention,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if retention.retain.is_zero() {
            tracing::warn!("retention: a retention of zero would prune all history; it is off");
            return;
        }
        let period = retention.period();
        tracing::info!(
            retain = %humantime::format_duration(retention.retain),
            every = %humantime::format_duration(period),
            "retention: pruning delivered history older than the retention"
        );
        let mut history = true;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                () = prune_once(&retention, store.as_ref(), &mut history, period) => {}
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
        }
    })
}

/// One prune: the history (while the store supports it), then the outbox's dead rows.
async fn prune_once(
    retention: &Retention,
    store: &dyn Store,
    history: &mut bool,
    period: Duration,
) {
    let Some(cut_off) = cut_off(retention.retain) else {
        tracing::warn!("retention: the cut-off is out of range; nothing pruned");
        return;
    };
    let every = humantime::format_duration(period);
    if *history {
        match prune_history(store, cut_off, BATCH, PAUSE).await {
            Ok(pruned) if pruned.is_empty() => {
                tracing::debug!(%cut_off, "retention: no delivered history to prune");
            }
            Ok(pruned) => tracing::info!(
                deliveries = pruned.deliveries,
                attempts = pruned.attempts,
                events = pruned.events,
                %cut_off,
                "retention: pruned delivered history"
            ),
            Err(Error::Unsupported { what }) => {
                *history = false;
                tracing::warn!(
                    what,
                    "retention: the store does not prune; its delivery history is kept"
                );
            }
            Err(error) => tracing::warn!(
                %error,
                "retention: pruning the delivery history failed; trying again in {every}"
            ),
        }
    }
    if let Some(outbox) = &retention.outbox {
        match prune_dead_letters(outbox, cut_off, BATCH, PAUSE).await {
            Ok(0) => {}
            Ok(dead_letters) => tracing::info!(
                dead_letters,
                %cut_off,
                "retention: pruned dead letters of the SQL outbox"
            ),
            Err(error) => tracing::warn!(
                %error,
                "retention: pruning the outbox's dead letters failed; trying again in {every}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastapihooks_core::{Delivery, DeliveryStatus, Event, MemoryStore, SubscriptionId};

    #[test]
    fn the_period_is_a_24th_of_the_retention_between_a_minute_and_an_hour() {
        let period = |secs| Retention::new(Duration::from_secs(secs)).period();
        assert_eq!(period(30 * 86_400), MAX_PERIOD);
        assert_eq!(period(12 * 3600), Duration::from_secs(1800));
        assert_eq!(period(10), MIN_PERIOD);
    }

    #[tokio::test]
    async fn it_prunes_at_start_and_stops_with_the_shutdown() {
        let store = Arc::new(MemoryStore::new());
        let mut d = Delivery::new(Event::new("a", &1).unwrap(), SubscriptionId::new());
        d.status = DeliveryStatus::Delivered;
        d.updated_at = chrono::Utc::now() - chrono::Duration::days(2);
        store
            .record_deliveries(std::slice::from_ref(&d))
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let task = spawn(
            Retention::new(Duration::from_secs(86_400)),
            store.clone(),
            shutdown.clone(),
        );
        let pruned = async {
            while store.get_delivery(&d.id).await.unwrap().is_some() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), pruned)
            .await
            .expect("pruned at start");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("stopped with the shutdown")
            .unwrap();
    }
}

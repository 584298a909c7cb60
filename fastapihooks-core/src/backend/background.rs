//! [`BackgroundTaskBackend`]: in-process delivery on tokio tasks, bounded everywhere.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Backend, ShutdownReport};
use crate::delivery::Delivery;
use crate::engine::{DeliveryEngine, NextStep};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::subscription::Subscription;

/// Limits of the in-process backend.
#[derive(Clone, Debug)]
pub struct BackgroundConfig {
    /// Events waiting for fan-out. Default 10,000.
    pub capacity: usize,
    /// HTTP attempts in flight at once, over all subscribers. Default 100.
    pub concurrency: usize,
    /// Deliveries held in memory at once (in flight, waiting for a permit or for a retry).
    /// When reached, fan-out waits, the channel fills, and `publish` pushes back. Default 100,000.
    pub max_pending_deliveries: usize,
    /// How long `publish` waits for room in a full channel before failing with
    /// [`Error::QueueFull`]. Default 1 s.
    pub publish_timeout: Duration,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            concurrency: 100,
            max_pending_deliveries: 100_000,
            publish_timeout: Duration::from_secs(1),
        }
    }
}

impl BackgroundConfig {
    fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("background.capacity", self.capacity),
            ("background.concurrency", self.concurrency),
            (
                "background.max_pending_deliveries",
                self.max_pending_deliveries,
            ),
        ] {
            if value == 0 {
                return Err(Error::InvalidConfig {
                    field,
                    reason: "must be at least 1".into(),
                });
            }
        }
        if self.max_pending_deliveries > Semaphore::MAX_PERMITS {
            return Err(Error::InvalidConfig {
                field: "background.max_pending_deliveries",
                reason: format!("must be at most {}", Semaphore::MAX_PERMITS),
            });
        }
        Ok(())
    }
}

/// Delivers in the same process, on tokio tasks: fast, and nothing to run beside the service.
///
/// A bounded channel feeds a dispatcher task; each event fans out to one task per delivery, so a
/// slow or failing subscriber never delays the others; at most `concurrency` HTTP attempts run
/// at once; retries wait on timers without holding a permit.
///
/// **Not durable**: deliveries in memory when the process dies are not sent (with a persistent
/// store they stay `pending` there). Use a durable queue backend when that matters.
///
/// Must be created inside a tokio runtime.
#[derive(Debug)]
pub struct BackgroundTaskBackend {
    tx: mpsc::Sender<Event>,
    publish_timeout: Duration,
    stop_accepting: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
    pending: Arc<Semaphore>,
    max_pending: usize,
}

struct DeliveryPool {
    engine: DeliveryEngine,
    concurrency: Arc<Semaphore>,
    pending: Arc<Semaphore>,
    fanout_limit: usize,
    tracker: TaskTracker,
    abort: CancellationToken,
}

impl BackgroundTaskBackend {
    /// Starts the dispatcher task on the current tokio runtime.
    pub fn start(engine: DeliveryEngine, config: BackgroundConfig) -> Result<Self> {
        config.validate()?;
        let (tx, rx) = mpsc::channel(config.capacity);
        let tracker = TaskTracker::new();
        let stop_accepting = CancellationToken::new();
        let abort = CancellationToken::new();
        let pending = Arc::new(Semaphore::new(config.max_pending_deliveries));
        let pool = Arc::new(DeliveryPool {
            engine,
            concurrency: Arc::new(Semaphore::new(config.concurrency)),
            pending: pending.clone(),
            fanout_limit: config.concurrency,
            tracker: tracker.clone(),
            abort: abort.clone(),
        });
        tracker.spawn(dispatch_loop(rx, pool, stop_accepting.clone()));
        Ok(Self {
            tx,
            publish_timeout: config.publish_timeout,
            stop_accepting,
            abort,
            tracker,
            pending,
            max_pending: config.max_pending_deliveries,
        })
    }

    /// Deliveries currently held in memory (in flight or waiting for a retry).
    pub fn pending_deliveries(&self) -> usize {
        self.max_pending - self.pending.available_permits()
    }
}

#[async_trait]
impl Backend for BackgroundTaskBackend {
    async fn publish(&self, event: Event) -> Result<()> {
        if self.stop_accepting.is_cancelled() {
            return Err(Error::ShutDown);
        }
        match self.tx.send_timeout(event, self.publish_timeout).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(event)) => {
                metrics::counter!("fastapihooks_publish_rejected_total", "reason" => "queue_full")
                    .increment(1);
                tracing::error!(event = %event.id(), name = %event.name(), "queue full: event not accepted");
                Err(Error::QueueFull {
                    waited: self.publish_timeout,
                })
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(Error::ShutDown),
        }
    }

    async fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport> {
        self.stop_accepting.cancel();
        self.tracker.close();
        if tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_ok()
        {
            return Ok(ShutdownReport::default());
        }
        let abandoned = self.pending_deliveries();
        tracing::error!(
            abandoned,
            "shutdown deadline passed: deliveries still pending are abandoned (they stay pending in the store)"
        );
        self.abort.cancel();
        Ok(ShutdownReport { abandoned })
    }
}

async fn dispatch_loop(
    mut rx: mpsc::Receiver<Event>,
    pool: Arc<DeliveryPool>,
    stop_accepting: CancellationToken,
) {
    // At most `concurrency` events are being fanned out at once; each holds its permit until
    // its deliveries have room. This is what turns a backlog into backpressure on `publish`.
    let fanouts = Arc::new(Semaphore::new(pool.fanout_limit));
    let mut closing = false;
    loop {
        let event = tokio::select! {
            biased;
            event = rx.recv() => match event {
                Some(event) => event,
                None => break,
            },
            _ = stop_accepting.cancelled(), if !closing => {
                closing = true;
                rx.close(); // what is already queued is still received, then `None`
                continue;
            }
        };
        let Ok(permit) = fanouts.clone().acquire_owned().await else {
            break;
        };
        let task_pool = pool.clone();
        pool.tracker.spawn(async move {
            process_event(&task_pool, event).await;
            drop(permit);
        });
    }
}

async fn process_event(pool: &Arc<DeliveryPool>, event: Event) {
    let planned = match fan_out_with_retries(pool, &event).await {
        Some(planned) => planned,
        None => return,
    };
    for (delivery, subscription) in planned {
        // The delivery task is spawned only once its first attempt may start: a backlog waits
        // here as plain data, not as thousands of parked tasks, each the size of a whole HTTP
        // attempt's future.
        let permits = tokio::select! {
            p = async {
                let pending = pool.pending.clone().acquire_owned().await?;
                let attempt = pool.concurrency.clone().acquire_owned().await?;
                Ok::<_, tokio::sync::AcquireError>((pending, attempt))
            } => p,
            _ = pool.abort.cancelled() => return,
        };
        let Ok((pending, first_attempt)) = permits else {
            return;
        };
        let task_pool = pool.clone();
        pool.tracker.spawn(async move {
            deliver(&task_pool, delivery, subscription, first_attempt).await;
            drop(pending);
        });
    }
}

/// Fan-out needs the store; a store that is briefly down must not lose the event, so fan-out is
/// retried on the delivery retry policy before the event is given up — loudly.
async fn fan_out_with_retries(
    pool: &DeliveryPool,
    event: &Event,
) -> Option<Vec<(Delivery, Subscription)>> {
    let mut failures = 0u32;
    loop {
        match pool.engine.fan_out(event).await {
            Ok(planned) => return Some(planned),
            Err(e) => {
                failures += 1;
                let Some(delay) = pool.engine.retry_policy().delay(failures, None) else {
                    metrics::counter!("fastapihooks_fanout_failed_total").increment(1);
                    tracing::error!(event = %event.id(), name = %event.name(), error = %e, failures, "fan-out failed for good: event not delivered");
                    return None;
                };
                tracing::warn!(event = %event.id(), error = %e, ?delay, "fan-out failed; will retry");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = pool.abort.cancelled() => return None,
                }
            }
        }
    }
}

/// Attempts `delivery` until it is done; `first_attempt` is the permit its first attempt runs
/// under, retries wait for one of their own.
async fn deliver(
    pool: &DeliveryPool,
    mut delivery: Delivery,
    subscription: Subscription,
    first_attempt: OwnedSemaphorePermit,
) {
    let mut permit = Some(first_attempt);
    loop {
        let step = {
            let _permit = match permit.take() {
                Some(p) => p,
                None => match pool.concurrency.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            metrics::gauge!("fastapihooks_attempts_in_flight").increment(1.0);
            let step = pool.engine.attempt(&mut delivery, &subscription).await;
            metrics::gauge!("fastapihooks_attempts_in_flight").decrement(1.0);
            step
        };
        match step {
            NextStep::Done(_) => return,
            NextStep::RetryIn(delay) => {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = pool.abort.cancelled() => return,
                }
            }
        }
    }
}

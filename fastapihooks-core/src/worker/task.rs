//! Running one leased task and settling its lease exactly one way.

use std::sync::Arc;
use std::time::Duration;

use super::report::Stats;
use crate::backend::{Leased, Queue, Receipt, Task};
use crate::delivery::{Delivery, DeliveryStatus};
use crate::engine::{DeliveryEngine, NextStep};
use crate::error::Result;
use crate::event::Event;
use crate::id::{DeliveryId, SubscriptionId};

/// What every task of one worker shares.
pub(super) struct Ctx<Q> {
    pub(super) queue: Arc<Q>,
    pub(super) engine: DeliveryEngine,
    pub(super) stats: Stats,
}

impl<Q: Queue> Ctx<Q> {
    pub(super) fn new(queue: Arc<Q>, engine: DeliveryEngine) -> Self {
        Self {
            queue,
            engine,
            stats: Stats::default(),
        }
    }
}

/// Runs `leased` and settles it. An error leaves the lease as it is: it expires and the task
/// runs again (on this worker or another), which the store's delivery status makes safe.
pub(super) async fn run<Q: Queue>(ctx: &Ctx<Q>, leased: Leased) {
    let Leased { receipt, task } = leased;
    let kind = task.kind();
    let settled = match task {
        Task::Fanout { event, failures } => fan_out(ctx, &receipt, event, failures).await,
        Task::Deliver {
            delivery_id,
            subscription_id,
            event,
            attempts,
        } => {
            let task = DeliverTask {
                delivery_id,
                subscription_id,
                event,
                attempts,
            };
            deliver(ctx, &receipt, task).await
        }
    };
    match settled {
        Ok(true) => {}
        Ok(false) => {
            Stats::bump(&ctx.stats.leases_lost);
            tracing::warn!(%receipt, kind, "lease was taken over by another worker before it was settled; left to it");
        }
        Err(e) => {
            Stats::bump(&ctx.stats.errors);
            metrics::counter!("fastapihooks_queue_errors_total").increment(1);
            tracing::error!(%receipt, kind, error = %e, "task failed; it runs again when its lease expires");
        }
    }
}

/// Records the event's deliveries in the store, then swaps the event for one delivery task per
/// delivery in one atomic queue step. A store that is down delays the event; it never drops it.
async fn fan_out<Q: Queue>(
    ctx: &Ctx<Q>,
    receipt: &Receipt,
    event: Event,
    failures: u32,
) -> Result<bool> {
    match ctx.engine.fan_out(&event).await {
        Ok(planned) => {
            let tasks: Vec<Task> = planned
                .into_iter()
                .map(|(delivery, _)| Task::Deliver {
                    delivery_id: delivery.id,
                    subscription_id: delivery.subscription_id,
                    event: event.clone(),
                    attempts: 0,
                })
                .collect();
            let settled = ctx.queue.replace(receipt, &tasks).await?;
            if settled {
                Stats::bump(&ctx.stats.fanned_out);
            }
            Ok(settled)
        }
        Err(e) => {
            let failures = failures.saturating_add(1);
            let delay = outage_delay(ctx, failures);
            tracing::warn!(event = %event.id(), error = %e, failures, ?delay, "fan-out failed (store unreachable?); the event will be fanned out later");
            ctx.queue
                .retry_in(receipt, &Task::Fanout { event, failures }, delay)
                .await
        }
    }
}

struct DeliverTask {
    delivery_id: DeliveryId,
    subscription_id: SubscriptionId,
    event: Event,
    attempts: u32,
}

impl DeliverTask {
    fn into_task(self, attempts: u32) -> Task {
        Task::Deliver {
            delivery_id: self.delivery_id,
            subscription_id: self.subscription_id,
            event: self.event,
            attempts,
        }
    }
}

/// One attempt of one delivery — unless the store says it is already final, which is how a
/// redelivered task never re-sends to a subscription that already got it.
async fn deliver<Q: Queue>(ctx: &Ctx<Q>, receipt: &Receipt, task: DeliverTask) -> Result<bool> {
    let store = ctx.engine.store();
    let looked_up = async {
        let stored = store.get_delivery(&task.delivery_id).await?;
        let subscription = ctx.engine.subscription(&task.subscription_id).await?;
        Ok::<_, crate::Error>((stored, subscription))
    }
    .await;
    let (stored, subscription) = match looked_up {
        Ok(found) => found,
        Err(e) => {
            let delay = outage_delay(ctx, 1);
            tracing::warn!(delivery = %task.delivery_id, error = %e, ?delay, "store unreachable before an attempt; trying later");
            let attempts = task.attempts;
            return ctx
                .queue
                .retry_in(receipt, &task.into_task(attempts), delay)
                .await;
        }
    };
    if let Some(done) = stored.as_ref().filter(|d| d.status.is_final()) {
        tracing::debug!(delivery = %done.id, status = %done.status, "already final: not sent again");
        Stats::bump(&ctx.stats.skipped);
        return ctx.queue.ack(receipt).await;
    }
    let Some(subscription) = subscription.filter(|s| s.enabled) else {
        tracing::warn!(delivery = %task.delivery_id, subscription = %task.subscription_id, "subscription removed or disabled: delivery dropped");
        Stats::bump(&ctx.stats.skipped);
        return ctx.queue.ack(receipt).await;
    };

    let mut delivery = Delivery::new(task.event.clone(), task.subscription_id.clone());
    delivery.id = task.delivery_id.clone();
    delivery.attempts = task.attempts;
    if let Some(stored) = &stored {
        delivery.attempts = delivery.attempts.max(stored.attempts);
        delivery.created_at = stored.created_at;
    }
    let step = ctx.engine.attempt(&mut delivery, &subscription).await;
    let attempts = delivery.attempts;
    match step {
        NextStep::Done(DeliveryStatus::Delivered) => {
            Stats::bump(&ctx.stats.delivered);
            ctx.queue.ack(receipt).await
        }
        NextStep::RetryIn(delay) => {
            Stats::bump(&ctx.stats.retried);
            ctx.queue
                .retry_in(receipt, &task.into_task(attempts), delay)
                .await
        }
        NextStep::Done(status) => {
            Stats::bump(&ctx.stats.dead_lettered);
            let reason = match status {
                DeliveryStatus::Dead => format!("out of retries after {attempts} attempts"),
                _ => format!("refused for good after {attempts} attempts"),
            };
            ctx.queue
                .dead_letter(receipt, &task.into_task(attempts), &reason)
                .await
        }
    }
}

/// The longest a task waits between tries while the store is unreachable.
const MAX_OUTAGE_DELAY: Duration = Duration::from_secs(60);

/// How long a task waits after the store failed it `failures` times in a row: the retry
/// policy's delays, then its last delay for as long as the outage lasts (at most a minute) —
/// an outage delays work, it never drops it.
fn outage_delay<Q>(ctx: &Ctx<Q>, failures: u32) -> Duration {
    let policy = ctx.engine.retry_policy();
    let step = failures.clamp(1, policy.max_retries().max(1));
    policy
        .delay(step, None)
        .unwrap_or(Duration::from_secs(1))
        .min(MAX_OUTAGE_DELAY)
}

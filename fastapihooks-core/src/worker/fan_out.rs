//! Fanning out one event ([`Task::Fanout`]): its deliveries recorded in the store, then swapped
//! for one delivery task each in one atomic queue step — or, when the event has one delivery,
//! that delivery run right here, on the event's lease, exactly as its task would run.
//!
//! The second way saves a whole queue cycle per event with one subscriber (the delivery task's
//! queueing, its lease and its settle, and the subscription read a delivery task starts with)
//! and keeps every guarantee of the first. Unless the store says this fan-out has just
//! recorded the delivery ([`Store::record_new_deliveries`](crate::Store::record_new_deliveries)),
//! the delivery is read from the store first: one already final — the same event published
//! twice — is not sent again. The event's lease is settled only after the attempt is recorded,
//! exactly as the delivery task's would be: acked when delivered; replaced by the delivery's
//! task, due after the retry delay, when it must be tried again; dead-lettered as the
//! delivery's task when final. A worker that crashes mid-attempt leaves the event's lease to
//! expire, and whoever leases it next fans it out again, finds the delivery recorded already,
//! and reads its state.

use super::deliver::{Known, deliver};
use super::report::Stats;
use super::task::{Ctx, Running};
use crate::backend::{DeliverTask, Queue, Receipt, Settlement, Task};
use crate::delivery::Delivery;
use crate::engine::DeliveryEngine;
use crate::error::Result;
use crate::event::Event;

/// Records the event's deliveries in the store, then either attempts its only delivery (see
/// the [module docs](self)) or swaps the event for one delivery task per delivery in one atomic
/// queue step. A store that is down delays the event; it never drops it.
pub(super) async fn fan_out<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    receipt: &Receipt,
    event: Event,
    failures: u32,
) -> Result<bool> {
    let (mut planned, new) = match engine.fan_out_telling_new(&event).await {
        Ok(planned) => planned,
        Err(e) => {
            let failures = failures.saturating_add(1);
            let delay = engine.outage_delay(failures);
            tracing::warn!(event = %event.id(), error = %e, failures, ?delay, "fan-out failed (store unreachable?); the event will be fanned out later");
            return ctx
                .settle(Settlement::RetryIn {
                    receipt: receipt.clone(),
                    task: Task::Fanout { event, failures },
                    delay,
                })
                .await;
        }
    };
    if planned.len() == 1
        && let Some((delivery, subscription)) = planned.pop()
    {
        // With its event: this task runs here, and goes into the queue (once) only to be
        // tried again.
        let task = DeliverTask::of(delivery);
        match Running::claim(ctx, task.delivery_id().as_str().to_owned()) {
            Some(_running) => {
                // Recorded just now: no earlier state to read back.
                let known = match new.as_deref() {
                    Some([true]) => Known::NewDelivery(&subscription),
                    _ => Known::Subscription(&subscription),
                };
                let settled = deliver(ctx, engine, receipt, task, known).await?;
                if settled {
                    Stats::bump(&ctx.stats.fanned_out);
                }
                return Ok(settled);
            }
            // A replay of this very delivery runs in this worker: queued instead.
            None => return replace(ctx, receipt, vec![task.into()]).await,
        }
    }
    let tasks = planned
        .into_iter()
        .map(|(delivery, _)| delivery_task(engine, delivery).into())
        .collect();
    replace(ctx, receipt, tasks).await
}

/// The task of a delivery just planned. The payload goes into the queue once per event at
/// most: not at all when the store keeps it (each task then reads it back with its delivery).
fn delivery_task(engine: &DeliveryEngine, delivery: Delivery) -> DeliverTask {
    let task = DeliverTask::of(delivery);
    if engine.store().keeps_events() {
        task.without_event()
    } else {
        task
    }
}

/// The event's task swapped for its deliveries' tasks, in one atomic queue step.
async fn replace<Q: Queue>(ctx: &Ctx<Q>, receipt: &Receipt, next: Vec<Task>) -> Result<bool> {
    let settled = ctx
        .settle(Settlement::Replace {
            receipt: receipt.clone(),
            next,
        })
        .await?;
    if settled {
        Stats::bump(&ctx.stats.fanned_out);
    }
    Ok(settled)
}

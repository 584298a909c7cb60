//! Fanning out one event ([`Task::Fanout`]): its deliveries recorded in the store, then
//! attempted right here, on the event's lease, exactly as their tasks would run — the event's
//! lease settled once, after the last of them, with a task for each delivery that must be tried
//! again.
//!
//! This saves a whole queue cycle per delivery (the delivery task's queueing, its lease and its
//! settle, and the subscription read a delivery task starts with) and keeps every guarantee of
//! a delivery task. Unless the store says this fan-out has just recorded a delivery
//! ([`Store::record_new_deliveries`](crate::Store::record_new_deliveries)), the delivery is read
//! from the store first: one already final — the same event published twice — is not sent
//! again. The event's lease is settled only after every attempt is recorded: acked when all
//! were delivered; otherwise replaced, in one atomic step
//! ([`Settlement::replaced_by`]), by each undelivered delivery's task — due after its retry
//! delay, or kept as a dead letter when final. A worker that crashes mid-way leaves the
//! event's lease to expire, and whoever leases it next fans it out again, finds the deliveries
//! recorded already, and reads their states.
//!
//! **Concurrency.** The first delivery runs on the event's own permit; each further one that
//! may start takes another of the worker's permits if one is free (never waiting for one: a
//! worker whose every permit holds an event still makes progress on each), so the worker never
//! has more than `concurrency` attempts in flight and an event's deliveries run in parallel
//! when the worker has room. Once shutdown is asked for, deliveries not started yet are not
//! started: their tasks replace the event's, due at once, for whoever leases them next.

use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::OwnedSemaphorePermit;

use super::deliver::{Known, attempt};
use super::report::Stats;
use super::task::{Ctx, Running};
use crate::backend::{DeliverTask, Queue, Receipt, Replacement, Settlement, Task};
use crate::delivery::Delivery;
use crate::engine::DeliveryEngine;
use crate::error::Result;
use crate::event::Event;
use crate::subscription::Subscription;

/// Records the event's deliveries in the store, then attempts them on the event's lease (see
/// the [module docs](self)) and settles the lease with what must run again. A store that is
/// down delays the event; it never drops it.
pub(super) async fn fan_out<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    receipt: &Receipt,
    event: Event,
    failures: u32,
) -> Result<bool> {
    let (planned, new) = match engine.fan_out_telling_new(&event).await {
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
    let next = attempt_all(ctx, engine, planned, new).await;
    // What runs again goes into the queue once per event at most: the payload not at all when
    // the store keeps it (each task then reads it back with its delivery).
    let keeps_events = engine.store().keeps_events();
    let next = next
        .into_iter()
        .map(|replacement| lighten(replacement, keeps_events))
        .collect();
    let settled = ctx
        .settle(Settlement::replaced_by(receipt.clone(), next))
        .await?;
    if settled {
        Stats::bump(&ctx.stats.fanned_out);
    }
    Ok(settled)
}

/// Attempts every planned delivery, as many at once as the worker's free permits allow (one at
/// least: the event's own). Returns what must take the event's place.
async fn attempt_all<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    planned: Vec<(Delivery, Arc<Subscription>)>,
    new: Option<Vec<bool>>,
) -> Vec<Replacement> {
    let mut next = Vec::new();
    let mut waiting = planned
        .into_iter()
        .enumerate()
        .map(|(i, (delivery, subscription))| {
            let new = new.as_ref().and_then(|new| new.get(i).copied());
            (DeliverTask::of(delivery), subscription, new == Some(true))
        })
        .peekable();
    let mut running = FuturesUnordered::new();
    let mut own_permit_free = true;
    loop {
        // Start what may start: on the event's permit when it is free, else on a free one.
        while waiting.peek().is_some() && !ctx.stopping.is_cancelled() {
            let permit = if own_permit_free {
                own_permit_free = false;
                None
            } else {
                match ctx.permits.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => break,
                }
            };
            if let Some((task, subscription, new)) = waiting.next() {
                running.push(attempt_one(ctx, engine, task, subscription, new, permit));
            }
        }
        let Some((replacement, permit)) = running.next().await else {
            break;
        };
        next.extend(replacement);
        // A permit of the worker's goes back at once; the event's own is free again.
        match permit {
            Some(permit) => drop(permit),
            None => own_permit_free = true,
        }
    }
    // Shutdown was asked for: what never started runs from the queue.
    next.extend(waiting.map(|(task, _, _)| Replacement::Due(task.into())));
    next
}

/// One delivery's attempt, holding `permit` (`None`: the event's own) until it ends.
async fn attempt_one<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    task: DeliverTask,
    subscription: Arc<Subscription>,
    new: bool,
    permit: Option<OwnedSemaphorePermit>,
) -> (Option<Replacement>, Option<OwnedSemaphorePermit>) {
    let Some(_running) = Running::claim(ctx, task.delivery_id().as_str().to_owned()) else {
        // A replay of this very delivery runs in this worker: queued instead.
        return (Some(Replacement::Due(task.into())), permit);
    };
    let known = if new {
        // Recorded just now: no earlier state to read back.
        Known::NewDelivery(&subscription)
    } else {
        Known::Subscription(&subscription)
    };
    (attempt(ctx, engine, task, known).await, permit)
}

/// A delivery's task as it goes back into the queue: without its event when the store keeps
/// it.
fn lighten(replacement: Replacement, keeps_events: bool) -> Replacement {
    let light = |task: Task| match task {
        Task::Deliver(task) if keeps_events => Task::Deliver(task.without_event()),
        task => task,
    };
    match replacement {
        Replacement::Due(task) => Replacement::Due(light(task)),
        Replacement::DueIn(task, delay) => Replacement::DueIn(light(task), delay),
        Replacement::Dead { task, reason } => Replacement::Dead {
            task: light(task),
            reason,
        },
    }
}

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
//! when the worker has room. Deliveries still waiting for a permit a second after the fan-out
//! are queued as tasks of their own, so an endpoint that is slow to answer on the event's
//! permit does not hold back the event's other deliveries. Once shutdown is asked for,
//! deliveries not started yet are not started: their tasks replace the event's, due at once,
//! for whoever leases them next.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

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

/// How long an event's deliveries may wait for a permit on its lease before those not started
/// are handed to the queue as tasks of their own.
const HAND_OFF_AFTER: Duration = Duration::from_secs(1);

/// A delivery waiting to start: its task, its subscription, and whether the fan-out has just
/// recorded it.
type Waiting = (DeliverTask, Arc<Subscription>, bool);

/// Attempts every planned delivery, as many at once as the worker's free permits allow (one at
/// least: the event's own). Returns what must take the event's place.
async fn attempt_all<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    planned: Vec<(Delivery, Arc<Subscription>)>,
    new: Option<Vec<bool>>,
) -> Vec<Replacement> {
    let mut next = Vec::new();
    let mut waiting: VecDeque<Waiting> = planned
        .into_iter()
        .enumerate()
        .map(|(i, (delivery, subscription))| {
            let new = new.as_ref().and_then(|new| new.get(i).copied());
            (DeliverTask::of(delivery), subscription, new == Some(true))
        })
        .collect();
    let mut running = FuturesUnordered::new();
    let mut own_permit_free = true;
    let hand_off_at = tokio::time::Instant::now() + HAND_OFF_AFTER;
    loop {
        // Start what may start: on the event's permit when it is free, else on a free one.
        while !waiting.is_empty() && !ctx.stopping.is_cancelled() {
            let permit = if own_permit_free {
                own_permit_free = false;
                None
            } else {
                match ctx.permits.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => break,
                }
            };
            if let Some((task, subscription, new)) = waiting.pop_front() {
                running.push(attempt_one(ctx, engine, task, subscription, new, permit));
            }
        }
        let ended = if waiting.is_empty() {
            running.next().await
        } else {
            match tokio::time::timeout_at(hand_off_at, running.next()).await {
                Ok(ended) => ended,
                Err(_) => {
                    hand_off(ctx, engine, &mut waiting).await;
                    continue;
                }
            }
        };
        let Some((replacement, permit)) = ended else {
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
    next.extend(
        waiting
            .into_iter()
            .map(|(task, _, _)| Replacement::Due(task.into())),
    );
    next
}

/// Queues the deliveries still waiting for a permit as tasks of their own, due at once, so an
/// endpoint slow to answer on the event's permit does not hold back the event's other
/// deliveries; they are then leased like any task, whichever permit frees first. Done before
/// the event's lease is settled (at least once: a crash in between fans the event out again,
/// and each delivery's stored state keeps a final one from being sent twice). When the queue
/// cannot take them, they stay on the event's lease.
async fn hand_off<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    waiting: &mut VecDeque<Waiting>,
) {
    let keeps_events = engine.store().keeps_events();
    let tasks: Vec<Task> = waiting
        .iter()
        .map(|(task, _, _)| light(Task::from(task.clone()), keeps_events))
        .collect();
    match ctx.queue.enqueue(&tasks).await {
        Ok(()) => {
            tracing::debug!(
                handed_off = tasks.len(),
                "deliveries that waited for a permit on their event's lease queued as tasks of their own"
            );
            waiting.clear();
        }
        Err(e) => {
            tracing::warn!(error = %e, waiting = tasks.len(), "could not queue deliveries waiting on their event's lease; they stay on it");
        }
    }
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
fn light(task: Task, keeps_events: bool) -> Task {
    match task {
        Task::Deliver(task) if keeps_events => Task::Deliver(task.without_event()),
        task => task,
    }
}

/// [`light`], for what replaces the event's task.
fn lighten(replacement: Replacement, keeps_events: bool) -> Replacement {
    match replacement {
        Replacement::Due(task) => Replacement::Due(light(task, keeps_events)),
        Replacement::DueIn(task, delay) => Replacement::DueIn(light(task, keeps_events), delay),
        Replacement::Dead { task, reason } => Replacement::Dead {
            task: light(task, keeps_events),
            reason,
        },
    }
}

//! Fanning out one event ([`Task::Fanout`]): its deliveries attempted right here, on the
//! event's lease, exactly as their tasks would run — each recorded in the store with its first
//! attempt — and the event's lease settled once, after the last of them, with a task for each
//! delivery that must be tried again.
//!
//! This saves a whole queue cycle per delivery (the delivery task's queueing, its lease and its
//! settle, and the subscription read a delivery task starts with) and keeps every guarantee of
//! a delivery task. The event's deliveries are read from the store first (one batched read):
//! one recorded already — the event leased again after a crash, or published twice — runs
//! from its stored state, and one already final is not sent again. One not recorded yet is
//! written once, with its first attempt, in its state after it
//! ([`Store::record_first_attempts`](crate::Store::record_first_attempts)): not inserted
//! pending and then updated. The event's lease is settled only after every attempt is
//! recorded: acked when all were delivered; otherwise replaced, in one atomic step
//! ([`Settlement::replaced_by`]), by each undelivered delivery's task — due after its retry
//! delay, or kept as a dead letter when final. A worker that crashes mid-way leaves the
//! event's lease to expire, and whoever leases it next fans it out again and finds recorded
//! what was attempted and recorded; what was not runs again (at least once).
//!
//! **Concurrency.** The first delivery runs on the event's own task permit; each further one
//! that may start takes another of the worker's task permits if one is free (never waiting for
//! one: a worker whose every task permit holds an event still makes progress on each), so an
//! event's deliveries run in parallel when the worker has room, and the worker never runs more
//! than `tasks_in_flight` of them; their requests wait for the worker's request permits, so no
//! more than `concurrency` are in flight. Deliveries still waiting for a task permit a second
//! after the fan-out are recorded and queued as tasks of their own, so an endpoint that is slow
//! to answer on the event's permit does not hold back the event's other deliveries. Once
//! shutdown is asked for, deliveries not started yet are not started: their tasks replace the
//! event's, due at once, for whoever leases them next (carrying the event when the delivery is
//! not recorded).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::OwnedSemaphorePermit;

use super::deliver::{Known, attempt, light};
use super::report::Stats;
use super::task::{Ctx, Running};
use crate::backend::{DeliverTask, Queue, Receipt, Replacement, Settlement, Task};
use crate::delivery::Delivery;
use crate::engine::DeliveryEngine;
use crate::error::Result;
use crate::event::Event;
use crate::id::DeliveryId;
use crate::subscription::Subscription;

/// Attempts the event's deliveries on its lease (see the [module docs](self)) and settles the
/// lease with what must run again. A store that is down delays the event; it never drops it.
pub(super) async fn fan_out<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    receipt: &Receipt,
    event: Event,
    failures: u32,
) -> Result<bool> {
    let planned = match plan(engine, &event).await {
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
    let next = attempt_all(ctx, engine, planned).await;
    let settled = ctx
        .settle(Settlement::replaced_by(receipt.clone(), next))
        .await?;
    if settled {
        Stats::bump(&ctx.stats.fanned_out);
    }
    Ok(settled)
}

/// The event's deliveries, each with its subscription and what the store holds of it (`None`:
/// not recorded yet), read in one batch.
async fn plan(engine: &DeliveryEngine, event: &Event) -> Result<VecDeque<Waiting>> {
    let planned = engine.fan_out_unrecorded(event).await?;
    if planned.is_empty() {
        return Ok(VecDeque::new());
    }
    let ids: Vec<DeliveryId> = planned.iter().map(|(d, _)| d.id.clone()).collect();
    let mut stored: HashMap<DeliveryId, Delivery> = engine
        .store()
        .get_deliveries(&ids)
        .await?
        .into_iter()
        .map(|d| (d.id.clone(), d))
        .collect();
    Ok(planned
        .into_iter()
        .map(|(delivery, subscription)| {
            let found = stored.remove(&delivery.id);
            (delivery, subscription, found)
        })
        .collect())
}

/// How long an event's deliveries may wait for a permit on its lease before those not started
/// are handed to the queue as tasks of their own.
const HAND_OFF_AFTER: Duration = Duration::from_secs(1);

/// A delivery waiting to start: as planned, its subscription, and as the store holds it
/// (`None`: not recorded yet).
type Waiting = (Delivery, Arc<Subscription>, Option<Delivery>);

/// Attempts every planned delivery, as many at once as the worker's free permits allow (one at
/// least: the event's own). Returns what must take the event's place.
async fn attempt_all<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    mut waiting: VecDeque<Waiting>,
) -> Vec<Replacement> {
    // An event of one delivery (one subscriber: the common case) runs it right here, on the
    // event's permit, as the loop below would — without a set of futures to poll it through or
    // a hand-off deadline, which nothing else waits for.
    if waiting.len() == 1
        && !ctx.stopping.is_cancelled()
        && let Some((planned, subscription, stored)) = waiting.pop_front()
    {
        let task = DeliverTask::of(planned);
        let (replacement, _) = attempt_one(ctx, engine, task, subscription, stored, None).await;
        return replacement.into_iter().collect();
    }
    let mut next = Vec::new();
    let mut running = FuturesUnordered::new();
    let mut own_permit_free = true;
    let mut hand_off_at = tokio::time::Instant::now() + HAND_OFF_AFTER;
    loop {
        // Start what may start: on the event's permit when it is free, else on a free one.
        while !waiting.is_empty() && !ctx.stopping.is_cancelled() {
            let permit = if own_permit_free {
                own_permit_free = false;
                None
            } else {
                match ctx.permits.tasks.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => break,
                }
            };
            if let Some((planned, subscription, stored)) = waiting.pop_front() {
                let task = DeliverTask::of(planned);
                running.push(attempt_one(ctx, engine, task, subscription, stored, permit));
            }
        }
        let ended = if waiting.is_empty() {
            running.next().await
        } else {
            match tokio::time::timeout_at(hand_off_at, running.next()).await {
                Ok(ended) => ended,
                Err(_) => {
                    hand_off(ctx, engine, &mut waiting).await;
                    // Kept on the lease (the store or the queue is down): not tried again at
                    // once.
                    hand_off_at = tokio::time::Instant::now() + HAND_OFF_AFTER;
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
    // Shutdown was asked for: what never started runs from the queue — with its event when
    // the store holds neither the delivery nor, perhaps, the event.
    let keeps_events = engine.store().keeps_events();
    next.extend(waiting.into_iter().map(|(planned, _, stored)| {
        let task = DeliverTask::of(planned);
        let task = light(task, keeps_events && stored.is_some());
        Replacement::Due(task.into())
    }));
    next
}

/// Queues the deliveries still waiting for a permit as tasks of their own, due at once, so an
/// endpoint slow to answer on the event's permit does not hold back the event's other
/// deliveries; they are then leased like any task, whichever permit frees first. Those not
/// recorded yet are recorded first (pending), so their tasks travel with the event's id only.
/// Done before the event's lease is settled (at least once: a crash in between fans the event
/// out again, and each delivery's stored state keeps a final one from being sent twice). When
/// the store or the queue cannot take them, they stay on the event's lease.
async fn hand_off<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    waiting: &mut VecDeque<Waiting>,
) {
    let unrecorded: Vec<Delivery> = waiting
        .iter()
        .filter(|(_, _, stored)| stored.is_none())
        .map(|(planned, _, _)| planned.clone())
        .collect();
    if !unrecorded.is_empty()
        && let Err(e) = engine.store().record_deliveries(&unrecorded).await
    {
        tracing::warn!(error = %e, waiting = waiting.len(), "could not record deliveries waiting on their event's lease; they stay on it");
        return;
    }
    let keeps_events = engine.store().keeps_events();
    let tasks: Vec<Task> = waiting
        .iter()
        .map(|(planned, _, _)| Task::from(light(DeliverTask::of(planned.clone()), keeps_events)))
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
            // Recorded now: they run from their stored state.
            for (planned, _, stored) in waiting.iter_mut() {
                if stored.is_none() {
                    *stored = Some(planned.clone());
                }
            }
        }
    }
}

/// One delivery's attempt, holding `permit` (`None`: the event's own) until it ends.
async fn attempt_one<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    task: DeliverTask,
    subscription: Arc<Subscription>,
    stored: Option<Delivery>,
    permit: Option<OwnedSemaphorePermit>,
) -> (Option<Replacement>, Option<OwnedSemaphorePermit>) {
    let Some(_running) = Running::claim(ctx, task.delivery_id().as_str().to_owned()) else {
        // A replay of this very delivery runs in this worker: queued instead.
        let keeps_events = engine.store().keeps_events();
        let task = light(task, keeps_events && stored.is_some());
        return (Some(Replacement::Due(task.into())), permit);
    };
    let known = Known::Read(&subscription, stored.map(Box::new));
    (attempt(ctx, engine, task, known).await, permit)
}

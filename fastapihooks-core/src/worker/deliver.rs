//! One attempt of one delivery ([`Task::Deliver`]) — unless the store says it is already final
//! — and what takes its task's place after it. A delivery task's lease is settled with that;
//! an event's deliveries attempted on the event's lease during its fan-out settle the event's
//! lease with all of theirs at once.

use super::report::Stats;
use super::task::Ctx;
use crate::backend::{DeliverTask, Queue, Receipt, Replacement, Settlement, Task};
use crate::delivery::{Delivery, DeliveryStatus};
use crate::engine::{Attempted, DeliveryEngine, NextStep, Recording};
use crate::error::Result;
use crate::subscription::Subscription;

/// What a delivery's run knows before it starts.
pub(super) enum Known<'a> {
    /// Nothing: a delivery task reads its delivery and its subscription.
    Nothing,
    /// What the event's fan-out has just read: the subscription, and the delivery as the store
    /// holds it (`None`: not recorded yet, so it is recorded with its first attempt).
    Read(&'a Subscription, Option<Box<Delivery>>),
}

/// One attempt of one delivery, and its lease settled by what comes next (see [`attempt`]).
pub(super) async fn deliver<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    receipt: &Receipt,
    task: DeliverTask,
    known: Known<'_>,
) -> Result<bool> {
    let next = attempt(ctx, engine, task, known).await;
    ctx.settle(Settlement::replaced_by(
        receipt.clone(),
        next.into_iter().collect(),
    ))
    .await
}

/// One attempt of one delivery — unless the store says it is already final, which is how a
/// redelivered task never re-sends to a subscription that already got it. What the caller
/// already `known` is not read again. Returns what takes the task's place: nothing when the
/// delivery is done (delivered, already final, or of an earlier run); the task due again after
/// the retry delay (or the store's outage delay); the task as a dead letter when final.
pub(super) async fn attempt<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    task: DeliverTask,
    known: Known<'_>,
) -> Option<Replacement> {
    let store = engine.store();
    let (known, looked_up) = match known {
        Known::Read(subscription, stored) => (Some(subscription), Ok((stored.map(|d| *d), None))),
        // Both reads at once: each joins its own group commit.
        Known::Nothing => (
            None,
            futures_util::future::try_join(
                store.get_delivery(task.delivery_id()),
                engine.subscription(task.subscription_id()),
            )
            .await,
        ),
    };
    let (stored, read) = match looked_up {
        Ok(found) => found,
        Err(e) => {
            let delay = engine.outage_delay(1);
            tracing::warn!(delivery = %task.delivery_id(), error = %e, ?delay, "store unreachable before an attempt; trying later");
            return Some(Replacement::DueIn(task.into(), delay));
        }
    };
    let subscription = known.or(read.as_ref());
    if let Some(newer) = stored.as_ref().filter(|d| d.replays > task.replay()) {
        tracing::debug!(delivery = %newer.id, task_run = task.replay(), run = newer.replays, "a task of an earlier run: the delivery was replayed since; not sent");
        Stats::bump(&ctx.stats.skipped);
        return None;
    }
    if let Some(done) = stored.as_ref().filter(|d| d.status.is_final()) {
        tracing::debug!(delivery = %done.id, status = %done.status, "already final: not sent again");
        Stats::bump(&ctx.stats.skipped);
        return None;
    }
    // A task that travels by the event's id takes the payload from the store's copy.
    let event = match (task.event(), &stored) {
        (Some(event), _) => event.clone(),
        // The store keeps no trace context: the task's goes with it.
        (None, Some(stored)) => match task.trace() {
            Some(trace) => stored.event.clone().with_trace(*trace),
            None => stored.event.clone(),
        },
        (None, None) => {
            let reason = format!(
                "nothing to send: delivery {} and its event {} are not in the store",
                task.delivery_id(),
                task.event_id()
            );
            tracing::error!(delivery = %task.delivery_id(), event = %task.event_id(), "a delivery task names a delivery the store does not hold; dead-lettered");
            Stats::bump(&ctx.stats.dead_lettered);
            return Some(Replacement::Dead {
                task: task.into(),
                reason,
            });
        }
    };
    let mut delivery = Delivery::pending(
        task.delivery_id().clone(),
        event,
        task.subscription_id().clone(),
    );
    delivery.attempts = task.attempts();
    delivery.replays = task.replay();
    if let Some(stored) = &stored {
        delivery.attempts = delivery.attempts.max(stored.attempts);
        delivery.created_at = stored.created_at;
        delivery.attempts_before_replay = stored.attempts_before_replay;
    }
    // Not in the store yet (the fan-out records each delivery with its first attempt, or a task
    // handed back unrecorded with its event): written with the attempt, in its state after it.
    let recording = if stored.is_some() {
        Recording::Existing
    } else {
        Recording::New
    };
    // A disabled or removed subscription's delivery is kept as failed (not sent), replayable.
    let tried = match subscription {
        Some(subscription) => {
            let Some(slot) = ctx.request_slot().await else {
                // Stopping: not sent; due at once for whoever leases it next — with its event
                // unless the store holds the delivery.
                tracing::debug!(delivery = %delivery.id, "stopping before its request: given back to the queue");
                let keeps_events = engine.store().keeps_events();
                let task = light(task, keeps_events && stored.is_some());
                return Some(Replacement::Due(task.into()));
            };
            engine
                .attempt_recording(&mut delivery, subscription, recording, Some(slot))
                .await
        }
        None => {
            let why = "not sent: the subscription was removed";
            engine
                .not_sent_recording(&mut delivery, why, recording)
                .await
        }
    };
    after_attempt(ctx, engine, &delivery, tried, task)
}

/// What takes the task's place after `delivery` was attempted: nothing when delivered;
/// `task` (the delivery's task as it was before the attempt) due again after the retry delay;
/// a dead letter when final — with the event's id only, not the event, when the store keeps
/// it ([`light`]). An attempt the store did not record is never taken as done: the task runs
/// again after the store's outage delay, sends again under the same delivery id, and records
/// then; it keeps its event, since the store may hold neither the delivery nor its event.
fn after_attempt<Q: Queue>(
    ctx: &Ctx<Q>,
    engine: &DeliveryEngine,
    delivery: &Delivery,
    tried: Attempted,
    task: DeliverTask,
) -> Option<Replacement> {
    if !tried.recorded {
        Stats::bump(&ctx.stats.errors);
        let delay = engine.outage_delay(1);
        tracing::warn!(delivery = %delivery.id, ?delay, "attempt not recorded: the delivery runs again later");
        return Some(Replacement::DueIn(task.into(), delay));
    }
    let task = light(task, engine.store().keeps_events());
    let attempts = delivery.attempts;
    match tried.next {
        NextStep::Done(DeliveryStatus::Delivered) => {
            Stats::bump(&ctx.stats.delivered);
            None
        }
        NextStep::RetryIn(delay) => {
            Stats::bump(&ctx.stats.retried);
            Some(Replacement::DueIn(
                Task::from(task.with_attempts(attempts)),
                delay,
            ))
        }
        NextStep::Done(status) => {
            Stats::bump(&ctx.stats.dead_lettered);
            let reason = match status {
                DeliveryStatus::Dead => format!("out of retries after {attempts} attempts"),
                _ => format!("refused for good after {attempts} attempts"),
            };
            Some(Replacement::Dead {
                task: Task::from(task.with_attempts(attempts)),
                reason,
            })
        }
    }
}

/// A recorded delivery's task as it goes back into the queue: without its event when the store
/// keeps it (the payload is then read back with the delivery), so it is stored once per event.
pub(super) fn light(task: DeliverTask, keeps_events: bool) -> DeliverTask {
    if keeps_events {
        task.without_event()
    } else {
        task
    }
}

//! [`DeliveryPool`]: what runs the in-process backend's deliveries — its event workers, the
//! delivery tasks, and the bounds they share.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::background::BackgroundConfig;
use super::event_line::{EventLine, Refused};
use super::event_workers::Workers;
use super::{Backend, ShutdownReport};
use crate::delivery::Delivery;
use crate::engine::{DeliveryEngine, NextStep};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::id::DeliveryId;
use crate::subscription::Subscription;

/// Everything the in-process backend's tasks share: the event line and its workers, the bounds
/// (attempt permits, room for pending deliveries), the task tracker and the abort.
pub(super) struct DeliveryPool {
    pub(super) engine: DeliveryEngine,
    /// The accepted events, waiting for a worker.
    pub(super) events: EventLine,
    /// The event workers, started as events need them, up to `concurrency`.
    pub(super) workers: Workers,
    /// Permits for HTTP attempts in flight.
    pub(super) concurrency: Arc<Semaphore>,
    /// Room for deliveries held in memory (in flight, waiting for a permit or a retry).
    pub(super) pending: Arc<Semaphore>,
    pub(super) tracker: TaskTracker,
    pub(super) abort: CancellationToken,
    pub(super) abandoned: Arc<Abandoned>,
    /// Deliveries of one event admitted together, at most: a tenth of the attempt permits (and
    /// of the room), at least one. A group waits for all its permits at once, so up to one
    /// group's worth of permits can be idle while it gathers them.
    pub(super) group_size: u32,
    /// Replayed runs (delivery, run) queued or under way: a run is queued once.
    replaying: Mutex<HashSet<(DeliveryId, u32)>>,
}

impl DeliveryPool {
    /// A pool for `config`, on the current tokio runtime, with one event worker started: more
    /// start as events need them.
    pub(super) fn start(engine: DeliveryEngine, config: &BackgroundConfig) -> Arc<Self> {
        // The engine's operational events come back through the pool's line: its sink holds
        // the pool weakly, which holds the engine.
        let pool = Arc::new_cyclic(|pool| DeliveryPool {
            engine: engine.with_ops_events(Arc::new(OpsSink { pool: pool.clone() })),
            events: EventLine::new(config.capacity),
            workers: Workers::new(config.concurrency),
            concurrency: Arc::new(Semaphore::new(config.concurrency)),
            pending: Arc::new(Semaphore::new(config.max_pending_deliveries)),
            tracker: TaskTracker::new(),
            abort: CancellationToken::new(),
            abandoned: Arc::default(),
            group_size: u32::try_from(config.concurrency.min(config.max_pending_deliveries) / 10)
                .unwrap_or(u32::MAX)
                .max(1),
            replaying: Mutex::default(),
        });
        // One from the start: `shutdown` waits for it, so an event pushed just as the line
        // closes is drained, even if the worker started for it comes too late.
        pool.start_worker_if_none_waits();
        pool
    }

    /// Runs a replayed run on a task of its own, once an attempt permit is free: `pending` is
    /// its room in memory, `run` its entry among the replaying runs, removed when it ends.
    pub(super) fn spawn_replay(
        self: &Arc<Self>,
        delivery: Delivery,
        subscription: Arc<Subscription>,
        pending: OwnedSemaphorePermit,
        run: (DeliveryId, u32),
    ) {
        let pool = self.clone();
        self.tracker.spawn(async move {
            deliver(&pool, delivery, subscription, None).await;
            pool.replaying().remove(&run);
            drop(pending);
        });
    }

    /// Queues `event` (waiting up to `wait` for room), then starts a worker for it if none is
    /// waiting for one.
    pub(super) async fn push(
        self: &Arc<Self>,
        event: Event,
        wait: Duration,
    ) -> Result<(), Refused> {
        self.events.push(event, wait).await?;
        self.start_worker_if_none_waits();
        Ok(())
    }

    /// Starts an event worker if none is waiting for an event and fewer than `concurrency` run.
    fn start_worker_if_none_waits(self: &Arc<Self>) {
        if self.workers.claim_start() {
            self.tracker.spawn(event_worker(self.clone()));
        }
    }

    /// What a worker does once it stops waiting (it took an event, or it stops): an event still
    /// queued may have counted on it, so one is started for it if none is waiting.
    fn start_worker_if_events_wait(self: &Arc<Self>) {
        if !self.events.is_empty() {
            self.start_worker_if_none_waits();
        }
    }

    pub(super) fn replaying(&self) -> MutexGuard<'_, HashSet<(DeliveryId, u32)>> {
        // Every update is one insert or remove: a poisoned set is still consistent.
        self.replaying
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for DeliveryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryPool").finish_non_exhaustive()
    }
}

/// What the abort left unfinished, counted where it happens.
#[derive(Debug, Default)]
pub(super) struct Abandoned {
    deliveries: AtomicUsize,
    events: AtomicUsize,
}

impl Abandoned {
    pub(super) fn deliveries(&self, n: usize) {
        self.deliveries.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn events(&self, n: usize) {
        self.events.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn report(&self) -> ShutdownReport {
        ShutdownReport {
            abandoned: self.deliveries.load(Ordering::Relaxed),
            abandoned_events: self.events.load(Ordering::Relaxed),
        }
    }
}

/// Where the engine's [operational events](crate::ops_events) enter this backend: the same
/// channel as published events. It never waits (a delivery task publishes through it): a full
/// channel fails the publish, which the engine logs and counts.
struct OpsSink {
    pool: Weak<DeliveryPool>,
}

#[async_trait]
impl Backend for OpsSink {
    async fn publish(&self, event: Event) -> Result<()> {
        let pool = self.pool.upgrade().ok_or(Error::ShutDown)?;
        pool.push(event, Duration::ZERO)
            .await
            .map_err(|refused| match refused {
                Refused::Full(_) => Error::QueueFull {
                    waited: Duration::ZERO,
                },
                Refused::ShutDown => Error::ShutDown,
            })
    }
}

/// How long an event worker waits for an event before it stops (the last one never does).
pub(super) const IDLE_WORKER_STOPS_AFTER: Duration = Duration::from_secs(60);

/// Takes events until the channel is closed and empty (shutdown) or the abort, and fans each
/// one out. While every worker is busy, events wait in the channel and `publish` pushes back.
/// A worker that waited [`IDLE_WORKER_STOPS_AFTER`] for an event stops, unless it is the last.
async fn event_worker(pool: Arc<DeliveryPool>) {
    let mut first = Some(pool.workers.first_wait());
    loop {
        let waiting = first.take().unwrap_or_else(|| pool.workers.waiting());
        let event = tokio::select! {
            biased;
            // What is still queued is counted by `shutdown`, once every worker has ended.
            _ = pool.abort.cancelled() => return,
            event = pool.events.take() => match event {
                Some(event) => event,
                None => return, // closed and empty
            },
            // Not registered with the timer unless the line was empty.
            _ = tokio::time::sleep(IDLE_WORKER_STOPS_AFTER) => {
                if pool.workers.stop(waiting) {
                    return pool.start_worker_if_events_wait();
                }
                continue;
            }
        };
        drop(waiting);
        pool.start_worker_if_events_wait();
        process_event(&pool, event).await;
    }
}

async fn process_event(pool: &Arc<DeliveryPool>, event: Event) {
    let Some(planned) = fan_out_through_outages(pool, &event).await else {
        pool.abandoned.events(1);
        return;
    };
    let total = planned.len();
    let mut planned = planned.into_iter();
    let mut started = 0;
    while planned.len() > 0 {
        let Some(group) = admit(pool, planned.len()).await else {
            return pool.abandoned.deliveries(total - started);
        };
        // The group first: it ends the turn without taking a delivery it has no permits for.
        for ((pending, first_attempt), (delivery, subscription)) in group.zip(planned.by_ref()) {
            started += 1;
            if total == 1 {
                return attempt_only_delivery(pool, delivery, subscription, first_attempt, pending)
                    .await;
            }
            let task_pool = pool.clone();
            pool.tracker.spawn(async move {
                deliver(&task_pool, delivery, subscription, Some(first_attempt)).await;
                drop(pending);
            });
        }
    }
}

/// Room in memory and a first-attempt permit for each delivery of a group, granted together;
/// yields one delivery's pair at a time.
pub(super) struct Admitted {
    pending: OwnedSemaphorePermit,
    attempts: OwnedSemaphorePermit,
}

impl Iterator for Admitted {
    type Item = (OwnedSemaphorePermit, OwnedSemaphorePermit);

    fn next(&mut self) -> Option<Self::Item> {
        Some((self.pending.split(1)?, self.attempts.split(1)?))
    }
}

/// Waits for room and first-attempt permits for the next group of an event's `remaining`
/// deliveries (a group size of them, or fewer), all at once; `None` on abort. A delivery task is spawned only once
/// its first attempt may start: a backlog waits as plain data, not as thousands of parked tasks,
/// each the size of a whole HTTP attempt's future.
///
/// A group's permits are granted in one turn: waiters are served in order, so the events being
/// fanned out take their groups one after the other. Granted one by one instead, the permits
/// freed by finished attempts went round every worker in turn, each event advanced a step per
/// round, and the events of a backlog all finished fan-out in the same few milliseconds: the
/// channel made room in bursts, and `publish` waited for the next one (a hooked route's p99
/// doubled under load).
pub(super) async fn admit(pool: &DeliveryPool, remaining: usize) -> Option<Admitted> {
    let size = pool
        .group_size
        .min(u32::try_from(remaining).unwrap_or(u32::MAX));
    tokio::select! {
        admitted = async {
            let pending = pool.pending.clone().acquire_many_owned(size).await.ok()?;
            let attempts = pool.concurrency.clone().acquire_many_owned(size).await.ok()?;
            Some(Admitted { pending, attempts })
        } => admitted,
        _ = pool.abort.cancelled() => None,
    }
}

/// An event's only delivery makes its first attempt on the worker that fanned it out; a retry
/// waits on a task of its own, and the worker goes on to the next event.
async fn attempt_only_delivery(
    pool: &Arc<DeliveryPool>,
    mut delivery: Delivery,
    subscription: Arc<Subscription>,
    permit: OwnedSemaphorePermit,
    pending: OwnedSemaphorePermit,
) {
    let step = attempt_once(pool, &mut delivery, &subscription, Some(permit)).await;
    if matches!(step, Some(NextStep::RetryIn(_))) {
        let task_pool = pool.clone();
        pool.tracker.spawn(async move {
            follow(&task_pool, delivery, subscription, step).await;
            drop(pending);
        });
    } else {
        follow(pool, delivery, subscription, step).await;
    }
}

/// Fan-out needs the store. A store that is down delays the event, it never drops it: fan-out
/// is tried again after [`DeliveryEngine::outage_delay`] — the policy the sidecar worker follows
/// too — for as long as the outage lasts. The event keeps its fan-out permit meanwhile, so a
/// long outage fills the channel and `publish` pushes back instead of piling events up in
/// memory. Only shutdown ends the wait: past its deadline the event is abandoned, loudly
/// (this backend is not durable).
async fn fan_out_through_outages(
    pool: &DeliveryPool,
    event: &Event,
) -> Option<Vec<(Delivery, Arc<Subscription>)>> {
    let mut failures = 0u32;
    loop {
        match pool.engine.fan_out(event).await {
            Ok(planned) => return Some(planned),
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = pool.engine.outage_delay(failures);
                tracing::warn!(event = %event.id(), error = %e, failures, ?delay, "fan-out failed (store unreachable?); the event will be fanned out later");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = pool.abort.cancelled() => {
                        metrics::counter!(crate::metrics::FANOUT_ABANDONED_TOTAL).increment(1);
                        tracing::error!(event = %event.id(), name = %event.name(), failures, "shutdown deadline passed while the store was unreachable: event abandoned before fan-out");
                        return None;
                    }
                }
            }
        }
    }
}

/// Attempts `delivery` until it is done; `first_attempt` is the permit its first attempt runs
/// under (if it has one already), retries wait for one of their own.
async fn deliver(
    pool: &DeliveryPool,
    mut delivery: Delivery,
    subscription: Arc<Subscription>,
    first_attempt: Option<OwnedSemaphorePermit>,
) {
    let step = attempt_once(pool, &mut delivery, &subscription, first_attempt).await;
    follow(pool, delivery, subscription, step).await;
}

/// Goes on from `step`, what the delivery's last attempt came to (`None`: the abort came
/// first), until the delivery is done: each retry waits for its delay, then for a permit.
async fn follow(
    pool: &DeliveryPool,
    mut delivery: Delivery,
    subscription: Arc<Subscription>,
    mut step: Option<NextStep>,
) {
    loop {
        match step {
            Some(NextStep::Done(_)) => return,
            None => return pool.abandoned.deliveries(1),
            Some(NextStep::RetryIn(delay)) => {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = pool.abort.cancelled() => return pool.abandoned.deliveries(1),
                }
                step = attempt_once(pool, &mut delivery, &subscription, None).await;
            }
        }
    }
}

/// One attempt under `permit`, or under one it waits for; `None` when the abort came first
/// (the delivery is abandoned).
async fn attempt_once(
    pool: &DeliveryPool,
    delivery: &mut Delivery,
    subscription: &Subscription,
    permit: Option<OwnedSemaphorePermit>,
) -> Option<NextStep> {
    let _permit = match permit {
        Some(p) => p,
        None => tokio::select! {
            p = pool.concurrency.clone().acquire_owned() => p.ok()?,
            _ = pool.abort.cancelled() => return None,
        },
    };
    if pool.abort.is_cancelled() {
        return None;
    }
    let _counted = crate::metrics::InFlight::new(crate::metrics::ATTEMPTS_IN_FLIGHT);
    // Raced against the abort: past the shutdown deadline an attempt in flight is dropped (its
    // request with it) rather than outliving `shutdown`. In memory there is nothing to settle:
    // an unrecorded attempt (logged and counted by the engine) only misses its history entry.
    tokio::select! {
        step = pool.engine.attempt(delivery, subscription) => Some(step.next),
        _ = pool.abort.cancelled() => None,
    }
}

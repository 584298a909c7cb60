//! [`Worker`]: the sidecar's engine — lease, fan out or deliver, settle — over any [`Queue`].
//!
//! ```text
//! leaser: Queue::lease (a batch, whenever the prefetch buffer has room) ─▶ buffer
//! loop: buffer ─▶ task permit ─▶ per task (one tokio task each, holding its task permit; a
//!   request slot besides while an HTTP request or an inbox processing runs):
//!   Fanout  ─▶ the event's deliveries planned and read from the Store ─▶ each delivery's
//!           first attempt right here, on the event's lease (more permits taken while free),
//!           recorded with it (Store::record_first_attempts) ─▶ ack, or the event replaced by
//!           the tasks of what must run again (Queue::replace_each)
//!   Deliver ─▶ already final in the Store? ack : one attempt ─▶ ack / retry_in / dead_letter
//! shutdown: stop leasing ─▶ tasks still waiting for a request slot given back, unsent ─▶
//!   drain in-flight tasks within the deadline
//! ```
//!
//! Requests to subscribers in flight never exceed the configured concurrency (a request slot
//! held for the HTTP attempt only), and running tasks never exceed `tasks_in_flight` (a task
//! permit held from the buffer to the settle: attempting, or waiting for the store and the
//! queue to commit its outcome); at most one lease batch waits in the buffer (its leases
//! renewed before they run if they waited long). The store's hot calls (`BatchedStore`) and
//! the settles (`Queue::settle_many`) of concurrent tasks are group-committed: a busy worker
//! makes a round trip per batch, not per delivery.

mod deliver;
mod fan_out;
mod prefetch;
mod process;
mod report;
mod status;
mod task;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;

pub use report::WorkerReport;
pub use status::WorkerStatus;
/// What stops a running [`Worker`]: cancel it (on SIGTERM, say) and `run` drains and returns.
pub use tokio_util::sync::CancellationToken;

use crate::backend::{Queue, Settlement};
use crate::engine::DeliveryEngine;
use crate::error::{Error, Result};
use crate::inbox::InboxProcessing;
use crate::metrics::InFlight;
use crate::store::BatchedStore;

/// Limits of a [`Worker`].
///
/// Two bounds: `concurrency` counts the requests to subscribers (and, in an inbox worker, the
/// processings) in flight at once; `tasks_in_flight` counts the leased tasks running at once —
/// those attempting, and those writing what came of their attempt (the store's record, the
/// queue's settle), which wait for a group commit, not for a subscriber. A permit for the
/// request is held only while the request runs, so a slow commit does not leave subscribers
/// with fewer requests than `concurrency` says.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// HTTP attempts (in an inbox worker: processings) in flight at once. Default 100.
    pub concurrency: usize,
    /// Leased tasks running at once, attempting or writing their outcome; at least
    /// `concurrency`. `None` (the default): 4 × `concurrency`.
    pub tasks_in_flight: Option<usize>,
    /// At most this many tasks leased per queue call, and leased ahead while every task slot
    /// is busy (never more than the tasks in flight). Default 64: a queue call per 32 tasks
    /// took the sidecar 4–9 % more CPU per delivery of a one-subscriber event (BENCHMARKS.md,
    /// session 27).
    pub lease_batch: usize,
    /// How long shutdown waits for in-flight tasks before abandoning them (their leases expire
    /// and another worker takes them over). Default 30 s.
    pub drain_deadline: Duration,
    /// A task leased this many times without being settled — it crashed or stalled every worker
    /// that took it (a poison task) — is dead-lettered with the reason instead of leased again
    /// for ever. Default 10.
    pub max_leases: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 100,
            tasks_in_flight: None,
            lease_batch: 64,
            drain_deadline: Duration::from_secs(30),
            max_leases: 10,
        }
    }
}

/// Tasks in flight per attempt in flight when [`WorkerConfig::tasks_in_flight`] is not set: a
/// delivery's record and settle wait on group commits several times as long as a fast
/// subscriber takes to answer (BENCHMARKS.md, session 17).
const TASKS_PER_ATTEMPT: usize = 4;

impl WorkerConfig {
    /// The leased tasks that may run at once: [`tasks_in_flight`](Self::tasks_in_flight), or
    /// 4 × [`concurrency`](Self::concurrency).
    pub fn tasks_in_flight(&self) -> usize {
        self.tasks_in_flight.unwrap_or_else(|| {
            self.concurrency
                .saturating_mul(TASKS_PER_ATTEMPT)
                .min(Semaphore::MAX_PERMITS)
        })
    }

    fn validate(&self) -> Result<()> {
        if self.max_leases == 0 {
            return Err(Error::InvalidConfig {
                field: "worker.max_leases",
                reason: "must be at least 1".into(),
            });
        }
        for (field, value) in [
            ("worker.concurrency", self.concurrency),
            ("worker.lease_batch", self.lease_batch),
            ("worker.tasks_in_flight", self.tasks_in_flight()),
        ] {
            if value == 0 || value > Semaphore::MAX_PERMITS {
                return Err(Error::InvalidConfig {
                    field,
                    reason: format!("must be between 1 and {}", Semaphore::MAX_PERMITS),
                });
            }
        }
        if self.tasks_in_flight() < self.concurrency {
            return Err(Error::InvalidConfig {
                field: "worker.tasks_in_flight",
                reason: format!(
                    "{} is below the concurrency {}: every attempt runs in a task, so at most {} attempts could ever be in flight; raise it, or leave it unset for 4 × the concurrency",
                    self.tasks_in_flight(),
                    self.concurrency,
                    self.tasks_in_flight()
                ),
            });
        }
        Ok(())
    }
}

/// Drains a [`Queue`]: the engine of `fastapihooks start`, usable from a user's own `main`.
///
/// ```no_run
/// # async fn sidecar<Q: fastapihooks_core::Queue>(queue: std::sync::Arc<Q>) -> Result<(), fastapihooks_core::Error> {
/// use fastapihooks_core::worker::{CancellationToken, Worker, WorkerConfig};
/// use fastapihooks_core::{Emitter, Secret};
///
/// let engine = Emitter::builder().secret(Secret::new("change-me")?).build_engine()?;
/// let shutdown = CancellationToken::new(); // cancel it on SIGTERM
/// let report = Worker::new(queue, engine, WorkerConfig::default())?.run(shutdown).await;
/// println!("delivered {}", report.delivered);
/// # Ok(()) }
/// ```
///
/// Generic over `Q: Queue`, so only a backend that can be drained is accepted:
///
/// ```compile_fail
/// use std::sync::Arc;
/// use fastapihooks_core::BackgroundTaskBackend;
/// use fastapihooks_core::engine::DeliveryEngine;
/// use fastapihooks_core::worker::{Worker, WorkerConfig};
/// fn sidecar(backend: Arc<BackgroundTaskBackend>, engine: DeliveryEngine) {
///     // error: `BackgroundTaskBackend` is not a `Queue`
///     let _ = Worker::new(backend, engine, WorkerConfig::default());
/// }
/// ```
pub struct Worker<Q: Queue> {
    queue: Arc<Q>,
    engine: Option<DeliveryEngine>,
    inbox: Option<InboxProcessing>,
    config: WorkerConfig,
    status: WorkerStatus,
}

impl<Q: Queue> std::fmt::Debug for Worker<Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .field("delivers", &self.engine.is_some())
            .field("inbox", &self.inbox)
            .finish_non_exhaustive()
    }
}

impl<Q: Queue> Worker<Q> {
    /// A worker draining `queue` through `engine`. Fails if the queue's visibility timeout does
    /// not exceed the HTTP timeout: a lease could then expire while its attempt is still running
    /// and the delivery be sent twice.
    pub fn new(queue: Arc<Q>, engine: DeliveryEngine, config: WorkerConfig) -> Result<Self> {
        config.validate()?;
        check_visibility(&*queue, engine.attempt_timeout(), "the HTTP timeout")?;
        // The engine's operational events go onto the queue it drains, like any event.
        let sink: Arc<dyn crate::Backend> = queue.clone();
        Ok(Self {
            engine: Some(engine.with_ops_events(sink)),
            inbox: None,
            queue,
            config,
            status: WorkerStatus::new(),
        })
    }

    /// A worker that only processes received webhooks: the [`Task::Process`](crate::Task::Process)
    /// tasks the inbox route queued on `queue` — a queue of the inbox's own (another Redis key
    /// prefix, or the SQL outbox's `OutboxTable::Inbox`), drained in the application, since
    /// processing re-enters it. It also queues, when it starts and every
    /// [`stranded_after`](InboxProcessing::stranded_after), the entries stored without their
    /// task. Fails if the visibility timeout does not exceed the processing timeout.
    ///
    /// ```no_run
    /// # async fn app(queue: std::sync::Arc<fastapihooks_core::SqlBackend>, processing: fastapihooks_core::inbox::InboxProcessing) -> fastapihooks_core::Result<()> {
    /// use fastapihooks_core::worker::{CancellationToken, Worker, WorkerConfig};
    /// let shutdown = CancellationToken::new();
    /// let worker = Worker::for_inbox(queue, processing, WorkerConfig::default())?;
    /// tokio::spawn(worker.run(shutdown.clone()));
    /// # Ok(()) }
    /// ```
    pub fn for_inbox(
        queue: Arc<Q>,
        processing: InboxProcessing,
        config: WorkerConfig,
    ) -> Result<Self> {
        config.validate()?;
        processing.validate()?;
        check_visibility(&*queue, processing.timeout, "the processing timeout")?;
        Ok(Self {
            queue,
            engine: None,
            inbox: Some(processing),
            config,
            status: WorkerStatus::new(),
        })
    }

    /// A handle that reads this worker's counts and progress while it runs (for a readiness
    /// probe, a periodic log line).
    pub fn status(&self) -> WorkerStatus {
        self.status.clone()
    }

    /// Runs until `shutdown` is cancelled, then stops leasing and drains in-flight tasks within
    /// the drain deadline. Queue errors (Redis down) are logged and retried with a backoff;
    /// they never end the loop.
    pub async fn run(self, shutdown: CancellationToken) -> WorkerReport {
        // The store's hot calls and the queue's settles are group-committed from here on.
        let engine = self.engine.map(|engine| {
            let store: Arc<dyn crate::Store> = Arc::new(BatchedStore::new(engine.store().clone()));
            engine.with_store(store)
        });
        if let Some(processing) = &self.inbox {
            tokio::spawn(process::sweep_stranded(
                self.queue.clone(),
                processing.clone(),
                shutdown.clone(),
            ));
        }
        let tasks_in_flight = self.config.tasks_in_flight();
        let permits = task::Permits {
            tasks: Arc::new(Semaphore::new(tasks_in_flight)),
            requests: Arc::new(Semaphore::new(self.config.concurrency)),
        };
        let ctx = Arc::new(task::Ctx::new(
            self.queue,
            engine,
            self.inbox,
            self.config.max_leases,
            self.status.clone(),
            permits.clone(),
            shutdown.clone(),
        ));
        let permits = permits.tasks;
        self.status.progress.tick();
        let tracker = TaskTracker::new();
        let abort = CancellationToken::new();
        // The drain deadline runs from the moment shutdown is asked for, whatever the loop is
        // doing then (a lease call in progress included).
        let deadline_passed = CancellationToken::new();
        let drain_deadline = self.config.drain_deadline;
        let stop_at = Arc::new(std::sync::OnceLock::new());
        {
            let (shutdown, deadline_passed, stop_at) =
                (shutdown.clone(), deadline_passed.clone(), stop_at.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                let at = tokio::time::Instant::now() + drain_deadline;
                let _ = stop_at.set(at);
                tokio::time::sleep_until(at).await;
                deadline_passed.cancel();
            });
        }
        let capacity = self.config.lease_batch.min(tasks_in_flight);
        let (buffer, mut prefetched) = mpsc::channel(capacity);
        let leaser = tokio::spawn(prefetch::lease_ahead(
            ctx.queue.clone(),
            capacity,
            buffer,
            self.status.progress.clone(),
            shutdown.clone(),
            deadline_passed.clone(),
        ));
        // Every leased task gets a task permit before it runs, and a permit is taken before a
        // task leaves the buffer: leased tasks never exceed `tasks_in_flight` running plus one
        // buffer. (Its HTTP attempt takes an attempt permit besides, in the engine.)
        // Nothing starts after shutdown is asked for.
        loop {
            let permit = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break, // never closed
                },
            };
            let next = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                next = prefetched.recv() => next,
            };
            let Some(next) = next else { break };
            let ctx = ctx.clone();
            let abort = abort.clone();
            let in_flight = Arc::clone(&self.status.in_flight);
            tracker.spawn(async move {
                in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let counted = InFlight::new(crate::metrics::WORKER_TASKS_IN_FLIGHT);
                // On the heap: a task's future is as large as the largest of its kinds (an
                // HTTP attempt with its store writes, a fan-out, a received webhook's
                // processing), and the runtime would copy it as the task is spawned, stored and
                // finished — moves that took 2–3 % of the sidecar's CPU (BENCHMARKS.md,
                // session 24).
                let run = Box::pin(task::run(&ctx, next));
                tokio::select! {
                    _ = abort.cancelled() => {}
                    _ = run => {}
                }
                drop(counted);
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                drop(permit);
            });
        }
        // Leased but not started: given back to the queue, due at once, for whoever leases
        // next — once the leaser has stopped (after the lease call in progress, if any).
        let _ = leaser.await;
        let mut unstarted = Vec::new();
        while let Ok(next) = prefetched.try_recv() {
            unstarted.push(next.leased);
        }
        let not_given_back = give_back(&ctx, unstarted).await;
        tracker.close();
        let in_flight = tasks_in_flight - permits.available_permits();
        tracing::info!(in_flight, deadline = ?self.config.drain_deadline, "stopped leasing; draining");
        let stop_at = stop_at
            .get()
            .copied()
            .unwrap_or_else(|| tokio::time::Instant::now() + drain_deadline);
        let abandoned = if tokio::time::timeout_at(stop_at, tracker.wait())
            .await
            .is_ok()
        {
            0
        } else {
            let abandoned = tasks_in_flight - permits.available_permits();
            tracing::warn!(
                abandoned,
                "drain deadline passed: abandoning in-flight tasks; their leases expire and another worker takes them over"
            );
            abort.cancel();
            tracker.wait().await;
            abandoned
        };
        ctx.stats.report(abandoned + not_given_back)
    }
}

/// Settles leased tasks that never started as due again at once (a retry after no delay,
/// attempts unchanged), so they wait for no lease to expire. Returns how many could not be
/// given back: their leases expire and they come back then.
async fn give_back<Q: Queue>(ctx: &task::Ctx<Q>, unstarted: Vec<crate::backend::Leased>) -> usize {
    if unstarted.is_empty() {
        return 0;
    }
    let settlements: Vec<Settlement> = unstarted
        .into_iter()
        .map(|leased| Settlement::RetryIn {
            receipt: leased.receipt,
            task: leased.task,
            delay: std::time::Duration::ZERO,
        })
        .collect();
    let given = ctx.queue.settle_many(&settlements).await;
    let kept = given.iter().filter(|r| !matches!(r, Ok(true))).count();
    tracing::info!(
        given_back = settlements.len() - kept,
        kept,
        "leased tasks not started before the stop given back to the queue"
    );
    kept
}

/// A lease must outlast the longest task by [`VISIBILITY_MARGIN`], or a task still running
/// could be taken over and run twice.
fn check_visibility<Q: Queue>(queue: &Q, longest: Duration, what: &str) -> Result<()> {
    let visibility = queue.visibility_timeout();
    if visibility <= longest + VISIBILITY_MARGIN {
        return Err(Error::InvalidConfig {
            field: "queue.visibility_timeout",
            reason: format!(
                "{visibility:?} must exceed {what} {longest:?} by more than {VISIBILITY_MARGIN:?}, or a task still in flight could be taken over and run twice"
            ),
        });
    }
    Ok(())
}

/// Slack between the HTTP timeout and the visibility timeout, for the store writes around an
/// attempt.
pub const VISIBILITY_MARGIN: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_concurrency_is_rejected_with_its_field_named() {
        let config = WorkerConfig {
            concurrency: 0,
            ..WorkerConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("worker.concurrency"), "{err}");
    }

    #[test]
    fn tasks_in_flight_default_to_four_times_the_concurrency() {
        let config = WorkerConfig {
            concurrency: 25,
            ..WorkerConfig::default()
        };
        assert_eq!(config.tasks_in_flight(), 100);
        config.validate().unwrap();
    }

    #[test]
    fn tasks_in_flight_below_the_concurrency_are_rejected_naming_both() {
        let config = WorkerConfig {
            concurrency: 10,
            tasks_in_flight: Some(9),
            ..WorkerConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("worker.tasks_in_flight"), "{err}");
        assert!(err.contains("below the concurrency 10"), "{err}");
    }
}

//! Running one leased task and settling its lease exactly one way.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::prefetch::Prefetched;
use super::report::Stats;
use crate::backend::{Leased, Queue, Receipt, Settlement, Task};
use crate::engine::DeliveryEngine;
use crate::error::Result;
use crate::group_commit::{Flush, GroupCommit};
use crate::inbox::InboxProcessing;

/// Settlements per `settle_many` call, and such calls in flight at once: one, so the next
/// batch fills while it runs (as the store's group commits; on the PostgreSQL outbox, one
/// settle call in flight took 10 % less sidecar CPU per delivery than two — BENCHMARKS.md,
/// session 9). 256 per call, as the store's batches: under load they fill (BENCHMARKS.md,
/// session 27).
const SETTLE_BATCH: usize = 256;
const SETTLE_PARALLEL: usize = 1;

/// The worker's two bounds ([`WorkerConfig`](super::WorkerConfig)).
#[derive(Clone)]
pub(super) struct Permits {
    /// One per leased task running, taken before a task leaves the buffer and held until it
    /// is settled; an event's deliveries attempted on its lease take more while some are free.
    pub(super) tasks: Arc<Semaphore>,
    /// One per HTTP request (taken right before it, given back by the engine once the
    /// response is in) or inbox processing in flight: the worker's `concurrency`.
    pub(super) requests: Arc<Semaphore>,
}

/// What every task of one worker shares.
pub(super) struct Ctx<Q> {
    pub(super) queue: Arc<Q>,
    /// Delivers events: `None` in a worker that only processes received webhooks.
    pub(super) engine: Option<DeliveryEngine>,
    /// Processes received webhooks: `None` in the sidecar.
    pub(super) inbox: Option<InboxProcessing>,
    pub(super) stats: Arc<Stats>,
    /// The worker's permits (see [`Permits`]).
    pub(super) permits: Permits,
    /// Cancelled when shutdown is asked for: nothing new starts after it.
    pub(super) stopping: CancellationToken,
    progress: Arc<super::status::Progress>,
    max_leases: u32,
    /// The settles of concurrent tasks, group-committed through `Queue::settle_many`.
    settles: GroupCommit<Settlement, bool>,
    /// The work running in this worker (a delivery, or an event's fan-out), so a task leased
    /// again while this worker still runs it is not run twice here.
    running: Mutex<HashSet<String>>,
}

impl<Q: Queue> Ctx<Q> {
    /// Needs a tokio runtime: the settles are written by a task of their own.
    pub(super) fn new(
        queue: Arc<Q>,
        engine: Option<DeliveryEngine>,
        inbox: Option<InboxProcessing>,
        max_leases: u32,
        status: super::WorkerStatus,
        permits: Permits,
        stopping: CancellationToken,
    ) -> Self {
        let settle_many: Flush<Settlement, bool> = {
            let queue = queue.clone();
            Arc::new(move |batch: Vec<Settlement>| {
                let queue = queue.clone();
                Box::pin(async move { queue.settle_many(&batch).await })
            })
        };
        Self {
            settles: GroupCommit::start("queue.settle", SETTLE_BATCH, SETTLE_PARALLEL, settle_many),
            queue,
            engine,
            inbox,
            max_leases,
            stats: status.stats,
            permits,
            stopping,
            progress: status.progress,
            running: Mutex::default(),
        }
    }

    /// One of the worker's request slots (`concurrency`), or `None` once the worker is
    /// stopping: a request not started by then is not started. A slot freed as the stop comes
    /// goes to no one.
    pub(super) async fn request_slot(&self) -> Option<OwnedSemaphorePermit> {
        tokio::select! {
            biased;
            _ = self.stopping.cancelled() => None,
            // Never closed.
            slot = self.permits.requests.clone().acquire_owned() => slot.ok(),
        }
    }

    /// Settles one lease, in the next group commit of settles.
    pub(super) async fn settle(&self, settlement: Settlement) -> Result<bool> {
        self.settles.call(settlement).await
    }

    fn running(&self) -> MutexGuard<'_, HashSet<String>> {
        // One insert or remove per update: a poisoned set is still consistent.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The work a task does, for [`Ctx::running`]: the delivery it attempts, the event it fans
/// out, the inbox entry it processes.
fn work(task: &Task) -> String {
    task.subject().to_owned()
}

/// Runs `leased` and settles it, renewing its lease while it runs. An error leaves the lease as
/// it is: it expires and the task runs again (on this worker or another), which the store's
/// delivery status makes safe. A task whose work already runs in this worker (leased again,
/// under a new lease, while the first run is still going) is left alone: its lease expires
/// after the first run has settled, and the store's status then makes it a no-op.
///
/// A task that waited for a permit longer than a third of the visibility timeout has its lease
/// renewed first; one whose lease is already gone is left to whoever took it over.
pub(super) async fn run<Q: Queue>(ctx: &Ctx<Q>, prefetched: Prefetched) {
    let Prefetched { leased, at } = prefetched;
    let Leased {
        receipt,
        task,
        leases,
    } = leased;
    let kind = task.kind();
    if leases > ctx.max_leases {
        return poison(ctx, &receipt, &task, leases).await;
    }
    if at.elapsed() > ctx.queue.visibility_timeout() / 3 {
        match ctx.queue.extend(&receipt).await {
            Ok(true) => {}
            Ok(false) => {
                Stats::bump(&ctx.stats.leases_lost);
                tracing::warn!(%receipt, kind, waited = ?at.elapsed(), "lease expired while the task waited for a permit; left to whoever took it over");
                return;
            }
            // The renewals while it runs try again.
            Err(e) => {
                tracing::warn!(%receipt, kind, error = %e, "could not renew a lease that waited for a permit")
            }
        }
    }
    let Some(_running) = Running::claim(ctx, work(&task)) else {
        Stats::bump(&ctx.stats.skipped);
        tracing::warn!(%receipt, kind, "leased again while this worker still runs it; left to its lease");
        return;
    };
    let settling = async {
        match (task, &ctx.engine, &ctx.inbox) {
            (Task::Fanout { event, failures }, Some(engine), _) => {
                super::fan_out::fan_out(ctx, engine, &receipt, event, failures).await
            }
            (Task::Deliver(task), Some(engine), _) => {
                super::deliver::deliver(ctx, engine, &receipt, task, super::deliver::Known::Nothing)
                    .await
            }
            (Task::Process(task), _, Some(processing)) => {
                super::process::process(ctx, processing, &receipt, task).await
            }
            (task, _, _) => cannot_run(ctx, &receipt, task).await,
        }
    };
    let settled = tokio::select! {
        settled = settling => settled,
        never = renew(ctx, &receipt, kind) => match never {},
    };
    ctx.progress.tick();
    match settled {
        Ok(true) => {}
        Ok(false) => {
            Stats::bump(&ctx.stats.leases_lost);
            tracing::warn!(%receipt, kind, "lease was taken over by another worker before it was settled; left to it");
        }
        Err(e) => {
            Stats::bump(&ctx.stats.errors);
            metrics::counter!(crate::metrics::QUEUE_ERRORS_TOTAL).increment(1);
            tracing::error!(%receipt, kind, error = %e, "task failed; it runs again when its lease expires");
        }
    }
}

/// Dead-letters a task leased more often than allowed without ever being settled: whatever it
/// does crashes or stalls every worker that takes it, and leasing it again would do the same.
async fn poison<Q: Queue>(ctx: &Ctx<Q>, receipt: &Receipt, task: &Task, leases: u32) {
    let reason = format!(
        "leased {leases} times without being settled (limit {}): it crashes or stalls every worker that runs it",
        ctx.max_leases
    );
    Stats::bump(&ctx.stats.dead_lettered);
    metrics::counter!(crate::metrics::POISON_TASKS_TOTAL, "kind" => task.kind()).increment(1);
    tracing::error!(%receipt, kind = task.kind(), subject = task.subject(), leases, "poison task dead-lettered");
    let dead = Settlement::DeadLetter {
        receipt: receipt.clone(),
        task: task.clone(),
        reason,
    };
    if let Err(e) = ctx.settle(dead).await {
        Stats::bump(&ctx.stats.errors);
        tracing::error!(%receipt, error = %e, "could not dead-letter a poison task; it comes back when its lease expires");
    }
}

/// Dead-letters a task this worker was not built to run: a received webhook's processing
/// leased by a sidecar (which cannot re-enter the application), or an event leased by a worker
/// that only processes received webhooks — the two share a queue by mistake. Nothing is lost:
/// the dead letter keeps the task, and an inbox entry stays in the inbox, replayable.
async fn cannot_run<Q: Queue>(ctx: &Ctx<Q>, receipt: &Receipt, task: Task) -> Result<bool> {
    let reason = match task {
        Task::Process(_) => {
            "a received webhook's processing reached a worker without an inbox processor (the sidecar?): the inbox's tasks belong on a queue of their own (another Redis key prefix, the SQL outbox's `OutboxTable::Inbox`), drained by the application's worker; `fastapihooks inbox replay` processes the entry"
        }
        _ => {
            "an event reached a worker that only processes received webhooks: events belong on the sidecar's queue"
        }
    };
    tracing::error!(%receipt, kind = task.kind(), subject = task.subject(), reason, "task dead-lettered");
    Stats::bump(&ctx.stats.dead_lettered);
    ctx.settle(Settlement::DeadLetter {
        receipt: receipt.clone(),
        task,
        reason: reason.to_owned(),
    })
    .await
}

/// A work's place in [`Ctx::running`], given back when the run ends however it ends.
pub(super) struct Running<'a> {
    set: &'a Mutex<HashSet<String>>,
    work: String,
}

impl<'a> Running<'a> {
    /// `None` when the work already runs in this worker.
    pub(super) fn claim<Q: Queue>(ctx: &'a Ctx<Q>, work: String) -> Option<Self> {
        // The set's lock is released before a `Running` exists: its drop takes the lock.
        let claimed = ctx.running().insert(work.clone());
        claimed.then(|| Self {
            set: &ctx.running,
            work,
        })
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.work);
    }
}

/// Renews the lease every third of the visibility timeout for as long as the task runs, so a
/// slow store or receiver never lets it expire under a running task. Never returns.
async fn renew<Q: Queue>(ctx: &Ctx<Q>, receipt: &Receipt, kind: &'static str) -> Infallible {
    let every = (ctx.queue.visibility_timeout() / 3).max(Duration::from_millis(10));
    let mut held = true;
    loop {
        tokio::time::sleep(every).await;
        if !held {
            continue;
        }
        match ctx.queue.extend(receipt).await {
            Ok(true) => {}
            Ok(false) => {
                held = false;
                Stats::bump(&ctx.stats.leases_lost);
                metrics::counter!(crate::metrics::LEASES_LOST_TOTAL).increment(1);
                tracing::warn!(%receipt, kind, "lease lost while its task runs (the queue was unreachable for longer than the visibility timeout?); another worker may run it too");
            }
            Err(e) => {
                metrics::counter!(crate::metrics::QUEUE_ERRORS_TOTAL).increment(1);
                tracing::warn!(%receipt, kind, error = %e, "could not renew a lease; trying again");
            }
        }
    }
}

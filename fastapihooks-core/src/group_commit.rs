//! [`GroupCommit`]: concurrent calls of one operation coalesced into one batched call.
//!
//! The sidecar runs up to `--tasks-in-flight` tasks at once, and each makes the same few store
//! and queue calls. Made one by one, each call is a round trip (and, for a write, a commit);
//! here a call joins a queue, and one flusher takes everything queued — up to a batch size —
//! and makes one batched call for all of it. There is no timer: a call waits only for the flush
//! in progress and for a few turns of the scheduler (each runs the tasks ready at that moment,
//! which may be callers too, then polls the runtime's I/O without blocking), so an idle system
//! pays one hop and a busy one fills its batches by itself (the classic group commit).
//!
//! How many turns a batch stays open is the caller's choice: one ([`GroupCommit::start`]) takes
//! the callers made ready by the same event (one socket readiness, one finished flush); more
//! ([`GroupCommit::start_open_for`]) also take those whose own I/O completes meanwhile — on a
//! route, the requests whose database answers arrive a moment later. On an idle runtime a turn
//! is one non-blocking poll: eight cost a lone Redis publish ~2.5 µs of CPU (BENCHMARKS.md,
//! session 22). On a busy runtime turns are longer; a batch that fills up (`max_batch`) closes
//! without waiting out the rest of them.
//!
//! ```text
//! caller ─┐                         ┌─ flush([a, b, c]) ─▶ one statement / one pipeline
//! caller ─┼─▶ bounded queue ─▶ flusher (≤ `parallel` flushes at once)
//! caller ─┘                         └─ each caller gets its own result back
//! ```
//!
//! A caller that gives up (its task is aborted) does not cancel the flush its request is part
//! of: a write that started completes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::error::{Error, Result};

/// A batched call: every request of the batch in, one result per request out, in order.
pub(crate) type Flush<Req, Out> =
    Arc<dyn Fn(Vec<Req>) -> Pin<Box<dyn Future<Output = Vec<Result<Out>>> + Send>> + Send + Sync>;

/// Coalesces concurrent calls of one operation (see the [module docs](self)).
pub(crate) struct GroupCommit<Req, Out> {
    what: &'static str,
    queue: mpsc::Sender<(Req, oneshot::Sender<Result<Out>>)>,
}

impl<Req, Out> std::fmt::Debug for GroupCommit<Req, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

impl<Req: Send + 'static, Out: Send + 'static> GroupCommit<Req, Out> {
    /// Starts the flusher (on the current tokio runtime): at most `max_batch` requests per
    /// flush, at most `parallel` flushes at once. It stops once this `GroupCommit` is dropped
    /// and the queued requests are flushed.
    pub(crate) fn start(
        what: &'static str,
        max_batch: usize,
        parallel: usize,
        flush: Flush<Req, Out>,
    ) -> Self {
        Self::start_open_for(what, max_batch, parallel, 1, flush)
    }

    /// As [`start`](Self::start), with each batch open for `turns` turns of the scheduler after
    /// its first request (at least one; see the [module docs](self)): fewer, fuller batches,
    /// each request waiting those turns longer.
    pub(crate) fn start_open_for(
        what: &'static str,
        max_batch: usize,
        parallel: usize,
        turns: usize,
        flush: Flush<Req, Out>,
    ) -> Self {
        let max_batch = max_batch.max(1);
        let (queue, requests) = mpsc::channel(max_batch * parallel.max(1) * 2);
        let batching = Batching {
            max_batch,
            turns: turns.max(1),
        };
        tokio::spawn(flusher(
            what,
            requests,
            batching,
            Arc::new(Semaphore::new(parallel.max(1))),
            flush,
        ));
        Self { what, queue }
    }

    /// Makes the call as part of the next batch and waits for its own result.
    pub(crate) async fn call(&self, request: Req) -> Result<Out> {
        let (reply, result) = oneshot::channel();
        if self.queue.send((request, reply)).await.is_err() {
            return Err(self.gone());
        }
        result.await.unwrap_or_else(|_| Err(self.gone()))
    }

    fn gone(&self) -> Error {
        Error::storage(
            self.what,
            std::io::Error::other("the batched call was abandoned (the runtime is shutting down)"),
        )
    }
}

/// When a batch closes: at `max_batch` requests, or after `turns` turns of the scheduler.
#[derive(Clone, Copy)]
struct Batching {
    max_batch: usize,
    turns: usize,
}

async fn flusher<Req: Send + 'static, Out: Send + 'static>(
    what: &'static str,
    mut requests: mpsc::Receiver<(Req, oneshot::Sender<Result<Out>>)>,
    Batching { max_batch, turns }: Batching,
    flushes: Arc<Semaphore>,
    flush: Flush<Req, Out>,
) {
    loop {
        // A free flush slot first: while every slot is busy, requests pile up into the next
        // batch instead of each starting its own.
        let Ok(slot) = flushes.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = requests.recv().await else {
            return;
        };
        // The callers that are ready to run go first. The first request woke this task, and
        // tokio runs a task woken by the running one next (its LIFO slot): taken now, the batch
        // would close before the callers made ready in the same tick (by one socket readiness,
        // one finished flush) had queued theirs, and each would pay a round trip of its own.
        // No timer: the wait is the run queue of this moment, `turns` times over. (tokio runs a
        // yielding task once the tasks ready now have run and the I/O driver has been polled.)
        let mut batch = vec![first];
        for _ in 0..turns {
            tokio::task::yield_now().await;
            while batch.len() < max_batch {
                match requests.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            if batch.len() == max_batch {
                break;
            }
        }
        let flush = flush.clone();
        tokio::spawn(async move {
            let (inputs, replies): (Vec<Req>, Vec<_>) = batch.into_iter().unzip();
            let asked = inputs.len();
            let started = std::time::Instant::now();
            let mut outputs = flush(inputs).await;
            tracing::trace!(op = what, batch = asked, took = ?started.elapsed(), "group commit");
            if outputs.len() != asked {
                // A flush breaking its contract fails the whole batch rather than mismatch
                // results with callers.
                outputs = (0..asked)
                    .map(|_| {
                        Err(Error::storage(
                            what,
                            std::io::Error::other(format!(
                                "a batched call returned {} results for {asked} requests",
                                outputs.len()
                            )),
                        ))
                    })
                    .collect();
            }
            metrics::histogram!(crate::metrics::GROUP_COMMIT_BATCH_REQUESTS, "op" => what)
                .record(asked as f64);
            for (reply, output) in replies.into_iter().zip(outputs) {
                // A caller that gave up is not waiting; its write still happened.
                let _ = reply.send(output);
            }
            drop(slot);
        });
    }
}

/// The same error for every request of a failed batch: each caller gets it under the
/// operation's name, the cause's text kept.
pub(crate) fn fail_all<Out>(what: &'static str, n: usize, error: &Error) -> Vec<Result<Out>> {
    let shared = error.to_string();
    (0..n)
        .map(|_| Err(Error::storage(what, std::io::Error::other(shared.clone()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn recording(sizes: Arc<Mutex<Vec<usize>>>) -> Flush<u32, u32> {
        Arc::new(move |batch: Vec<u32>| {
            let sizes = sizes.clone();
            Box::pin(async move {
                sizes.lock().unwrap().push(batch.len());
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                batch.into_iter().map(|n| Ok(n * 2)).collect()
            })
        })
    }

    /// Calls `commit` with 0..n from as many tasks at once; their results, in call order.
    async fn call_concurrently(commit: &Arc<GroupCommit<u32, u32>>, n: u32) -> Vec<u32> {
        let calls: Vec<_> = (0..n)
            .map(|n| {
                let commit = commit.clone();
                tokio::spawn(async move { commit.call(n).await })
            })
            .collect();
        let mut results = Vec::new();
        for call in calls {
            results.push(call.await.unwrap().unwrap());
        }
        results
    }

    #[tokio::test]
    async fn each_caller_gets_its_own_result() {
        let commit = GroupCommit::start("test", 8, 1, recording(Arc::default()));
        let (a, b) = tokio::join!(commit.call(1), commit.call(21));
        assert_eq!((a.unwrap(), b.unwrap()), (2, 42));
    }

    #[tokio::test]
    async fn calls_made_while_a_flush_runs_share_the_next_batch() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let commit = Arc::new(GroupCommit::start("test", 100, 1, recording(sizes.clone())));
        for (n, result) in call_concurrently(&commit, 50).await.into_iter().enumerate() {
            assert_eq!(result, 2 * n as u32);
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 50);
        assert!(
            sizes.len() < 50,
            "no call was batched with another: {sizes:?}"
        );
    }

    /// tokio runs a task woken by the running one next: the flusher, woken by the first call,
    /// still lets the other callers that are ready to run queue theirs before it takes a batch,
    /// though a flush slot is free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn calls_ready_in_the_same_tick_share_one_batch() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let recorded = sizes.clone();
        // Spawned from the worker, so the flusher and the callers run there in spawn order.
        tokio::spawn(async move {
            let commit = Arc::new(GroupCommit::start("test", 100, 4, recording(recorded)));
            call_concurrently(&commit, 8).await;
        })
        .await
        .unwrap();
        assert_eq!(*sizes.lock().unwrap(), vec![8]);
    }

    /// The batch sizes of four callers of one runtime turn apart: the `n`th calls after
    /// yielding `n` times.
    async fn batches_of_callers_a_turn_apart(turns: usize) -> Vec<usize> {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let recorded = sizes.clone();
        // Spawned from the worker, so the flusher and the callers run there in spawn order.
        tokio::spawn(async move {
            let commit = Arc::new(GroupCommit::start_open_for(
                "test",
                100,
                4,
                turns,
                recording(recorded),
            ));
            let calls: Vec<_> = (0..4)
                .map(|n| {
                    let commit = commit.clone();
                    tokio::spawn(async move {
                        for _ in 0..n {
                            tokio::task::yield_now().await;
                        }
                        commit.call(n).await
                    })
                })
                .collect();
            for call in calls {
                call.await.unwrap().unwrap();
            }
        })
        .await
        .unwrap();
        sizes.lock().unwrap().clone()
    }

    /// Requests whose callers become ready a few turns later (their own I/O done) share the
    /// batch while it is open that long.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_batch_open_for_several_turns_takes_the_callers_of_later_turns() {
        assert_eq!(batches_of_callers_a_turn_apart(8).await, vec![4]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_batch_open_for_one_turn_leaves_later_callers_to_the_next_batches() {
        let sizes = batches_of_callers_a_turn_apart(1).await;
        assert!(sizes.len() > 1, "one batch: {sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 4);
    }

    #[tokio::test]
    async fn a_batch_never_exceeds_its_size() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let commit = Arc::new(GroupCommit::start("test", 4, 1, recording(sizes.clone())));
        call_concurrently(&commit, 30).await;
        assert!(sizes.lock().unwrap().iter().all(|&n| n <= 4));
    }

    #[tokio::test]
    async fn a_flush_that_miscounts_fails_its_caller_with_the_operation_named() {
        let flush: Flush<u32, u32> = Arc::new(|_batch| Box::pin(async { Vec::new() }));
        let commit = GroupCommit::start("test.op", 8, 1, flush);
        let err = commit.call(1).await.unwrap_err();
        assert!(err.to_string().contains("test.op"), "{err}");
    }
}

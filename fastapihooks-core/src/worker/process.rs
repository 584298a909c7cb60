//! Processing one received webhook ([`Task::Process`]): start the attempt in the inbox, run the
//! processor, record how it ended, settle the lease — and, beside the tasks, the sweep that
//! queues entries stored without their task.

use std::time::Duration;

use super::report::Stats;
use super::task::Ctx;
use crate::backend::{ProcessTask, Queue, Receipt, Settlement, Task};
use crate::error::Result;
use crate::inbox::{InboxOutcome, InboxProcessing, ProcessError};

/// How long a task waits when the inbox cannot be read or written.
const INBOX_OUTAGE_DELAY: Duration = Duration::from_secs(5);

/// One processing attempt of the entry `task` names. Every failure is logged with the inbox id
/// and the reason, so a processing route that fails is never a silent no-op.
pub(super) async fn process<Q: Queue>(
    ctx: &Ctx<Q>,
    processing: &InboxProcessing,
    receipt: &Receipt,
    task: ProcessTask,
) -> Result<bool> {
    let inbox = &processing.inbox;
    let id = task.inbox_id().clone();
    let Some(slot) = ctx.request_slot().await else {
        // Stopping: not started; due at once for whoever leases it next.
        return ctx.settle(retry(receipt, task, Duration::ZERO)).await;
    };
    let entry = match inbox.start_processing(&id).await {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            let reason = format!("inbox entry {id} is not in the inbox: nothing to process");
            tracing::error!(inbox = %id, "a process task names an entry the inbox does not hold; dead-lettered");
            return dead(ctx, receipt, task, reason).await;
        }
        Err(e) => {
            tracing::warn!(inbox = %id, error = %e, delay = ?INBOX_OUTAGE_DELAY, "inbox unreachable before processing; trying later");
            return ctx.settle(retry(receipt, task, INBOX_OUTAGE_DELAY)).await;
        }
    };
    if entry.status.is_final() {
        tracing::debug!(inbox = %id, status = %entry.status, "already final: not processed again");
        Stats::bump(&ctx.stats.skipped);
        return ctx.settle(Settlement::ack(receipt.clone())).await;
    }
    let outcome = {
        // One of the worker's `concurrency` slots, from the entry's read to the processor's end.
        let _slot = slot;
        match tokio::time::timeout(processing.timeout, processing.processor.process(&entry)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ProcessError::new(format!(
                "processing took longer than {:?}",
                processing.timeout
            ))),
        }
    };
    let attempts = task.attempts() + 1;
    let task = task.with_attempts(attempts);
    let (recorded, settlement) = match outcome {
        Ok(()) => {
            tracing::info!(inbox = %id, source = %entry.source, external_id = %entry.external_id, attempts, "received webhook processed");
            Stats::bump(&ctx.stats.processed);
            (InboxOutcome::Processed, Settlement::ack(receipt.clone()))
        }
        Err(failure) => match processing.retry.delay(attempts, failure.retry_after) {
            Some(delay) => {
                tracing::warn!(inbox = %id, source = %entry.source, processor = ?processing.processor, attempts, ?delay, reason = %failure, "processing a received webhook failed; retrying");
                Stats::bump(&ctx.stats.retried);
                let error = failure.reason;
                (InboxOutcome::Failed { error }, retry(receipt, task, delay))
            }
            None => {
                tracing::error!(inbox = %id, source = %entry.source, processor = ?processing.processor, attempts, reason = %failure, "processing a received webhook failed for the last time: a dead letter (`fastapihooks inbox replay` processes it again)");
                Stats::bump(&ctx.stats.dead_lettered);
                let reason = format!("processing failed {attempts} times: {}", failure.reason);
                let settlement = Settlement::DeadLetter {
                    receipt: receipt.clone(),
                    task: task.into(),
                    reason,
                };
                (
                    InboxOutcome::Dead {
                        error: failure.reason,
                    },
                    settlement,
                )
            }
        },
    };
    if let Err(e) = inbox.finish_processing(&id, &recorded).await {
        // Never settle what the inbox does not show: the lease expires and the attempt runs
        // again (processing is at least once).
        tracing::error!(inbox = %id, error = %e, "could not record how processing ended; it runs again when its lease expires");
        return Err(e);
    }
    ctx.settle(settlement).await
}

async fn dead<Q: Queue>(
    ctx: &Ctx<Q>,
    receipt: &Receipt,
    task: ProcessTask,
    reason: String,
) -> Result<bool> {
    Stats::bump(&ctx.stats.dead_lettered);
    ctx.settle(Settlement::DeadLetter {
        receipt: receipt.clone(),
        task: task.into(),
        reason,
    })
    .await
}

fn retry(receipt: &Receipt, task: ProcessTask, delay: Duration) -> Settlement {
    Settlement::RetryIn {
        receipt: receipt.clone(),
        task: task.into(),
        delay,
    }
}

/// Queues the processing of entries stored but never queued (the process stopped between the
/// two), at once and then every `stranded_after`, until `stop`.
pub(super) async fn sweep_stranded<Q: Queue>(
    queue: std::sync::Arc<Q>,
    processing: InboxProcessing,
    stop: tokio_util::sync::CancellationToken,
) {
    const BATCH: usize = 100;
    let every = processing.stranded_after;
    loop {
        let before =
            chrono::Utc::now() - chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
        match processing.inbox.stranded(before, BATCH).await {
            Ok(stranded) if !stranded.is_empty() => {
                let tasks: Vec<Task> = stranded
                    .iter()
                    .map(|entry| ProcessTask::new(entry.id.clone()).into())
                    .collect();
                match queue.enqueue(&tasks).await {
                    Ok(()) => {
                        tracing::warn!(
                            queued = tasks.len(),
                            "received webhooks stored without their processing task queued them again"
                        );
                        // More may be waiting: look again at once.
                        if tasks.len() == BATCH {
                            continue;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not queue stranded inbox entries; trying later")
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not look for stranded inbox entries; trying later")
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

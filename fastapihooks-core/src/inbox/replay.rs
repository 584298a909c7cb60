//! Replaying a received webhook: a dead letter (or, when asked, a processed one) is processed
//! again through the inbox's queue.

use super::{Inbox, InboxEntry};
use crate::backend::{ProcessTask, Queue, Task};
use crate::error::Result;
use crate::id::InboxId;

/// What [`replay_entry`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum InboxReplay {
    /// Reopened and queued: it will be processed again, its attempts counted afresh.
    Queued(InboxEntry),
    /// Left as it is, as stored: not dead (received, processing or failed: already on its
    /// way), or processed without `processed_too`.
    Skipped(InboxEntry),
}

/// Processes entry `id` again: reopens it ([`Inbox::reopen`]) and queues its processing on
/// `queue` (the queue the application's inbox worker drains). Should the queue fail after the
/// reopen, the entry stays `received` and the worker's sweep of stranded entries queues it:
/// nothing is lost. `InboxEntryNotFound` when there is no such entry.
pub async fn replay_entry<Q: Queue + ?Sized>(
    inbox: &dyn Inbox,
    queue: &Q,
    id: &InboxId,
    processed_too: bool,
) -> Result<InboxReplay> {
    match inbox.reopen(id, processed_too).await? {
        Some(entry) => {
            queue
                .enqueue(&[Task::from(ProcessTask::new(entry.id.clone()))])
                .await?;
            tracing::info!(inbox = %entry.id, source = %entry.source, "inbox entry replayed");
            Ok(InboxReplay::Queued(entry))
        }
        None => {
            let entry = inbox
                .get_inbox_entry(id)
                .await?
                .ok_or_else(|| crate::Error::InboxEntryNotFound { id: id.to_string() })?;
            Ok(InboxReplay::Skipped(entry))
        }
    }
}

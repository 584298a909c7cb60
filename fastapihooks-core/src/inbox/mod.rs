//! The [`Inbox`]: received webhooks, stored once (unique on source and the sender's id),
//! acknowledged at once, processed through the same [`Queue`](crate::Queue) and
//! [`Worker`](crate::Worker) as deliveries — with retries and dead letters — and replayable.
//!
//! ```text
//! POST /webhooks/github ─▶ verify ─▶ InboxKey ─▶ Inbox::receive ─┬─ New ─▶ Queue: Task::Process ─▶ 200
//!                                                                └─ Duplicate ─▶ 200 (not processed again)
//! Worker: Task::Process ─▶ Inbox::start_processing ─▶ InboxProcessor ─▶ processed / failed (retry) / dead
//! ```
//!
//! [`MemoryStore`](crate::MemoryStore) and the SQL store implement [`Inbox`]; the axum crate has
//! the public route and the processor that re-dispatches into the application's router.

mod entry;
pub mod key;
mod memory;
mod processing;
mod processor;
mod query;
mod replay;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use entry::{InboxEntry, InboxOutcome, InboxStatus, NewInboxEntry, OrderingKey, Received};
pub(crate) use memory::MemoryInbox;
pub use processing::InboxProcessing;
pub use processor::{InboxProcessor, ProcessError};
pub use query::InboxQuery;
pub use replay::{InboxReplay, replay_entry};

use crate::error::Result;
use crate::id::InboxId;

/// Received webhooks and their processing state: what must outlive the process between the
/// acknowledgement and the end of processing.
///
/// Every implementation passes the inbox behaviours of the store contract
/// (`fastapihooks_testkit::inbox_contract!`).
#[async_trait]
pub trait Inbox: Send + Sync + 'static {
    /// Stores a received webhook, in one atomic step: [`Received::New`] when (source,
    /// external id) is new, [`Received::Duplicate`] with the stored entry, unchanged, when the
    /// source sent that id before — however many copies arrive at once, one is new.
    async fn receive(&self, entry: NewInboxEntry) -> Result<Received>;

    /// Stores a received webhook as [`receive`](Self::receive) does and, when it is new,
    /// queues its processing on `queue` ([`ProcessTask`](crate::ProcessTask)). The SQL store
    /// does both in one transaction when `queue` is its own outbox
    /// (`SqlBackend::for_store(store)`): the entry and its task are committed together or not
    /// at all. Otherwise, one after the other ([`receive_then_queue`]): an entry stored whose
    /// task could not be queued is answered with the queue's error beside it, and the inbox
    /// worker's sweep of stranded entries queues it later.
    async fn receive_and_queue(
        &self,
        entry: NewInboxEntry,
        queue: &dyn crate::Queue,
    ) -> Result<Intake> {
        receive_then_queue(self, entry, queue).await
    }

    /// The entry with this id, if any.
    async fn get_inbox_entry(&self, id: &InboxId) -> Result<Option<InboxEntry>>;

    /// A page of the entries passing every filter of `query` and older than its cursor, newest
    /// first (by id): the entries [`InboxQuery::matches`] accepts.
    async fn list_inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>>;

    /// Starts a processing attempt: an entry received, failed, or processing (an attempt whose
    /// worker crashed) becomes processing with one more attempt, and is returned so. A
    /// processed or dead entry is returned unchanged: its status says not to process it. `None`
    /// when there is no such entry.
    async fn start_processing(&self, id: &InboxId) -> Result<Option<InboxEntry>>;

    /// Records how the attempt ended: a processing entry becomes processed (with the time),
    /// failed or dead (with the error). Returns `false`, changing nothing, when the entry is
    /// not processing (a late attempt after a replay took it over); `InboxEntryNotFound` when
    /// there is none.
    async fn finish_processing(&self, id: &InboxId, outcome: &InboxOutcome) -> Result<bool>;

    /// Replay, in one atomic step: a dead entry — or, with `processed_too`, a processed one —
    /// becomes received again (its attempts and last error stay, for the record) and is
    /// returned so. Any other entry is left as it is (`None`: one that is received,
    /// processing or failed is already on its way). `InboxEntryNotFound` when there is none.
    async fn reopen(&self, id: &InboxId, processed_too: bool) -> Result<Option<InboxEntry>>;

    /// Whether an entry of `source` about the same object with a **later** position than
    /// `ordering` has been processed: the processor of an out-of-order event can then skip it
    /// (or merge it into what it already has).
    async fn newer_processed(&self, source: &str, ordering: &OrderingKey) -> Result<bool>;

    /// Entries still `received` that were received before `before`, oldest first (by time
    /// received, then id), at most
    /// `limit`: webhooks stored whose processing task was never queued (the process stopped
    /// between the two). The inbox's worker queues them again.
    async fn stranded(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<InboxEntry>>;
}

/// What [`Inbox::receive_and_queue`] did: the entry as stored, and the error of queueing its
/// processing if that failed after the entry was stored.
#[derive(Debug)]
pub struct Intake {
    /// New or duplicate, with the stored entry.
    pub received: Received,
    /// Why the processing of a new entry was not queued (it is stored: the stranded sweep
    /// queues it); `None` when it was queued, or when the entry was a duplicate.
    pub not_queued: Option<crate::Error>,
}

/// [`Inbox::receive_and_queue`] in two steps: store, then queue the processing of a new entry.
pub async fn receive_then_queue<I: Inbox + ?Sized>(
    inbox: &I,
    entry: NewInboxEntry,
    queue: &dyn crate::Queue,
) -> Result<Intake> {
    let received = inbox.receive(entry).await?;
    let not_queued = match &received {
        Received::New(entry) => {
            let task = crate::backend::Task::from(crate::ProcessTask::new(entry.id.clone()));
            queue.enqueue(&[task]).await.err()
        }
        Received::Duplicate(_) => None,
    };
    Ok(Intake {
        received,
        not_queued,
    })
}

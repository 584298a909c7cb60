//! [`Settlement`]: how one lease is settled, for [`Queue::settle_many`] — the worker's group
//! commit of the acks, retries and dead letters that end at about the same time.

use std::time::Duration;

use futures_util::future::join_all;

use super::queue::{Queue, Receipt, Task};
use crate::error::Result;

/// One lease settled one way: the single settling methods of [`Queue`] as data.
///
/// ```
/// use fastapihooks_core::backend::{Receipt, Settlement};
/// let done = Settlement::ack(Receipt::new("1-0"));
/// assert_eq!(done.receipt().as_str(), "1-0");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Settlement {
    /// [`Queue::replace`]: the task is done, and `next` (often nothing: an ack) is enqueued in
    /// its place in the same atomic step.
    Replace {
        /// The lease.
        receipt: Receipt,
        /// What replaces the task (a fan-out's delivery tasks), or nothing.
        next: Vec<Task>,
    },
    /// [`Queue::retry_in`]: `task` comes back after `delay`.
    RetryIn {
        /// The lease.
        receipt: Receipt,
        /// The task as it comes back: the leased task with its attempts updated, or, for an
        /// event whose only delivery was attempted on the event's lease, that delivery's task.
        task: Task,
        /// How long until it is due, on the queue's clock.
        delay: Duration,
    },
    /// [`Queue::dead_letter`]: `task` is kept as a dead letter, with the reason.
    DeadLetter {
        /// The lease.
        receipt: Receipt,
        /// The task as it is kept (for an event whose only delivery was attempted on the
        /// event's lease, that delivery's task).
        task: Task,
        /// Why, for a human.
        reason: String,
    },
}

impl Settlement {
    /// The task is done: nothing replaces it.
    pub fn ack(receipt: Receipt) -> Self {
        Settlement::Replace {
            receipt,
            next: Vec::new(),
        }
    }

    /// The lease this settles.
    pub fn receipt(&self) -> &Receipt {
        match self {
            Settlement::Replace { receipt, .. }
            | Settlement::RetryIn { receipt, .. }
            | Settlement::DeadLetter { receipt, .. } => receipt,
        }
    }

    /// Whether this is a plain ack (a `Replace` with nothing in the task's place).
    pub fn is_ack(&self) -> bool {
        matches!(self, Settlement::Replace { next, .. } if next.is_empty())
    }

    /// Settles through the queue's single method for this kind.
    pub async fn apply<Q: Queue + ?Sized>(&self, queue: &Q) -> Result<bool> {
        match self {
            Settlement::Replace { receipt, next } => queue.replace(receipt, next).await,
            Settlement::RetryIn {
                receipt,
                task,
                delay,
            } => queue.retry_in(receipt, task, *delay).await,
            Settlement::DeadLetter {
                receipt,
                task,
                reason,
            } => queue.dead_letter(receipt, task, reason).await,
        }
    }
}

/// Every settlement through its single method, all at once (concurrently, not one after the
/// other): [`Queue::settle_many`]'s default.
pub(crate) async fn each<Q: Queue + ?Sized>(
    queue: &Q,
    settlements: &[Settlement],
) -> Vec<Result<bool>> {
    join_all(settlements.iter().map(|s| s.apply(queue))).await
}

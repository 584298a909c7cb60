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
    /// [`Queue::replace_each`]: the task is done, and each of `next` takes its place as it
    /// says — due at once, due after a delay, or kept as a dead letter — in one atomic step.
    /// How an event whose deliveries were attempted on its own lease is settled when some of
    /// them must be tried again.
    ReplaceEach {
        /// The lease.
        receipt: Receipt,
        /// What takes the task's place.
        next: Vec<Replacement>,
    },
}

/// One task taking a settled task's place ([`Settlement::ReplaceEach`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Replacement {
    /// Due at once, in line where the settled task was.
    Due(Task),
    /// Due after `delay`, on the queue's own clock.
    DueIn(Task, Duration),
    /// Kept as a dead letter, with the reason for a human.
    Dead {
        /// The task as it is kept.
        task: Task,
        /// Why.
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

    /// The lease settled with `next` in the task's place, through the cheapest way there is:
    /// an ack when `next` is empty, [`Replace`](Self::Replace) when every task is due at once,
    /// [`RetryIn`](Self::RetryIn) or [`DeadLetter`](Self::DeadLetter) for one task alone, and
    /// [`ReplaceEach`](Self::ReplaceEach) otherwise.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastapihooks_core::backend::{Receipt, Replacement, Settlement, Task};
    /// use fastapihooks_core::Event;
    /// let task = Task::fanout(Event::new("order.created", &1).unwrap());
    /// let receipt = Receipt::new("1-0");
    /// assert!(Settlement::replaced_by(receipt.clone(), Vec::new()).is_ack());
    /// let later = Replacement::DueIn(task.clone(), Duration::from_secs(5));
    /// assert!(matches!(
    ///     Settlement::replaced_by(receipt.clone(), vec![later.clone()]),
    ///     Settlement::RetryIn { .. }
    /// ));
    /// assert!(matches!(
    ///     Settlement::replaced_by(receipt, vec![later, Replacement::Due(task)]),
    ///     Settlement::ReplaceEach { .. }
    /// ));
    /// ```
    pub fn replaced_by(receipt: Receipt, mut next: Vec<Replacement>) -> Self {
        if next.len() == 1
            && let Some(only) = next.pop()
        {
            return match only {
                Replacement::Due(task) => Settlement::Replace {
                    receipt,
                    next: vec![task],
                },
                Replacement::DueIn(task, delay) => Settlement::RetryIn {
                    receipt,
                    task,
                    delay,
                },
                Replacement::Dead { task, reason } => Settlement::DeadLetter {
                    receipt,
                    task,
                    reason,
                },
            };
        }
        if next.iter().all(|r| matches!(r, Replacement::Due(_))) {
            let next = next
                .into_iter()
                .filter_map(|r| match r {
                    Replacement::Due(task) => Some(task),
                    _ => None,
                })
                .collect();
            return Settlement::Replace { receipt, next };
        }
        Settlement::ReplaceEach { receipt, next }
    }

    /// The lease this settles.
    pub fn receipt(&self) -> &Receipt {
        match self {
            Settlement::Replace { receipt, .. }
            | Settlement::RetryIn { receipt, .. }
            | Settlement::DeadLetter { receipt, .. }
            | Settlement::ReplaceEach { receipt, .. } => receipt,
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
            Settlement::ReplaceEach { receipt, next } => queue.replace_each(receipt, next).await,
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

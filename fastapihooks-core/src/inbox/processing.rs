//! [`InboxProcessing`]: what a [`Worker`](crate::Worker) needs to process received webhooks —
//! the inbox, the processor, the retry policy.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Inbox, InboxProcessor};
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// How a [`Worker`](crate::Worker) processes the [`Task::Process`](crate::Task::Process) tasks
/// of its queue: the inbox that holds the entries, the processor, the retries.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use fastapihooks_core::{MemoryStore, RetryPolicy};
/// use fastapihooks_core::inbox::{InboxEntry, InboxProcessing, InboxProcessor, ProcessError};
///
/// #[derive(Debug)]
/// struct Print;
/// #[async_trait::async_trait]
/// impl InboxProcessor for Print {
///     async fn process(&self, entry: &InboxEntry) -> Result<(), ProcessError> {
///         println!("{}", String::from_utf8_lossy(&entry.body));
///         Ok(())
///     }
/// }
///
/// let processing = InboxProcessing::new(Arc::new(MemoryStore::new()), Arc::new(Print))
///     .retry(RetryPolicy::exponential(5, Duration::from_secs(2)))
///     .timeout(Duration::from_secs(10));
/// # let _ = processing;
/// ```
#[derive(Clone)]
pub struct InboxProcessing {
    pub(crate) inbox: Arc<dyn Inbox>,
    pub(crate) processor: Arc<dyn InboxProcessor>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
    pub(crate) stranded_after: Duration,
}

impl fmt::Debug for InboxProcessing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxProcessing")
            .field("processor", &self.processor)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("stranded_after", &self.stranded_after)
            .finish_non_exhaustive()
    }
}

impl InboxProcessing {
    /// Processes the entries of `inbox` with `processor`, retrying under the
    /// [`standard-webhooks`](RetryPolicy::standard_webhooks) schedule (about a day and a half),
    /// 30 s per attempt.
    pub fn new(inbox: Arc<dyn Inbox>, processor: Arc<dyn InboxProcessor>) -> Self {
        Self {
            inbox,
            processor,
            retry: RetryPolicy::standard_webhooks(),
            timeout: Duration::from_secs(30),
            stranded_after: Duration::from_secs(300),
        }
    }

    /// The retries after a failed attempt; past them the entry is a dead letter.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The longest one attempt may run; past it, it counts as failed. Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// An entry still `received` this long after it arrived was stored without its task being
    /// queued (the process stopped in between): the worker queues it again. It looks when it
    /// starts and then as often. Default 5 minutes: long enough that an entry whose task is
    /// merely waiting in a backlog is rarely queued twice (were it, the second task finds it
    /// processed and does nothing — unless two workers run both at the same moment: processing
    /// is at least once, like any webhook's).
    pub fn stranded_after(mut self, after: Duration) -> Self {
        self.stranded_after = after;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.timeout.is_zero() || self.stranded_after.is_zero() {
            return Err(Error::InvalidConfig {
                field: "inbox.processing",
                reason: "the attempt timeout and the stranded delay must be above zero".into(),
            });
        }
        Ok(())
    }
}

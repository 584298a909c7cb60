//! [`InboxProcessor`]: what processes a received webhook — in an axum app, a fresh internal
//! request re-dispatched into its router (`fastapihooks_axum::receive::Redispatch`).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::InboxEntry;

/// Processes one received webhook. Called by the [`Worker`](crate::Worker) that drains the
/// inbox's queue, once per attempt; an error schedules the next attempt under the retry policy
/// or, past it, makes the entry a dead letter.
///
/// ```
/// use async_trait::async_trait;
/// use fastapihooks_core::inbox::{InboxEntry, InboxProcessor, ProcessError};
///
/// #[derive(Debug)]
/// struct CountPushes;
///
/// #[async_trait]
/// impl InboxProcessor for CountPushes {
///     async fn process(&self, entry: &InboxEntry) -> Result<(), ProcessError> {
///         let push: serde_json::Value = serde_json::from_slice(&entry.body)
///             .map_err(|e| ProcessError::new(format!("not JSON: {e}")))?;
///         println!("{} pushed", push["pusher"]["name"]);
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait InboxProcessor: fmt::Debug + Send + Sync + 'static {
    /// Processes `entry`; `Err` is a failed attempt.
    async fn process(&self, entry: &InboxEntry) -> Result<(), ProcessError>;
}

/// Why a processing attempt failed, and when at the earliest to try again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessError {
    /// Why, for a human (logged with the inbox id, and kept with the entry).
    pub reason: String,
    /// Wait at least this long before the next attempt (a `Retry-After`), capped by the
    /// policy's maximum delay.
    pub retry_after: Option<Duration>,
}

impl ProcessError {
    /// A failed attempt, for `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// Asks for the next attempt no sooner than `after`.
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ProcessError {}

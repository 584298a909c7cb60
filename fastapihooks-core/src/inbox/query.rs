//! [`InboxQuery`]: which received webhooks to list, newest first, one page at a time — keyset
//! pagination on the id, as [`DeliveryQuery`](crate::DeliveryQuery) does.

use chrono::{DateTime, Utc};

use super::{InboxEntry, InboxStatus};
use crate::id::InboxId;
use crate::query::DEFAULT_LIMIT;

/// Which inbox entries to list, newest first (by id), one page at a time.
///
/// ```
/// use fastapihooks_core::inbox::{InboxQuery, InboxStatus};
/// let dead_from_github = InboxQuery::default()
///     .source("github")
///     .status(InboxStatus::Dead)
///     .limit(20);
/// assert_eq!(dead_from_github.limit, 20);
/// ```
#[derive(Clone, Debug)]
pub struct InboxQuery {
    /// Only entries of this source.
    pub source: Option<String>,
    /// Only entries in this status.
    pub status: Option<InboxStatus>,
    /// Only the entry with this external id (with `source`, at most one).
    pub external_id: Option<String>,
    /// Only entries received at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries received before this time.
    pub until: Option<DateTime<Utc>>,
    /// Keyset pagination: only entries older than this one (the last id of the previous page).
    pub before: Option<InboxId>,
    /// Page size.
    pub limit: usize,
}

impl Default for InboxQuery {
    fn default() -> Self {
        Self {
            source: None,
            status: None,
            external_id: None,
            since: None,
            until: None,
            before: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl InboxQuery {
    /// Only entries of `source`.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Only entries in `status`.
    pub fn status(mut self, status: InboxStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only the entry with this external id.
    pub fn external_id(mut self, id: impl Into<String>) -> Self {
        self.external_id = Some(id.into());
        self
    }

    /// Only entries received at or after `time`.
    pub fn since(mut self, time: DateTime<Utc>) -> Self {
        self.since = Some(time);
        self
    }

    /// Only entries received before `time`.
    pub fn until(mut self, time: DateTime<Utc>) -> Self {
        self.until = Some(time);
        self
    }

    /// The next page: entries older than `last`.
    pub fn before(mut self, last: InboxId) -> Self {
        self.before = Some(last);
        self
    }

    /// At most `limit` entries.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Whether `entry` passes every filter and the cursor.
    pub fn matches(&self, entry: &InboxEntry) -> bool {
        self.source.as_ref().is_none_or(|s| *s == entry.source)
            && self.status.is_none_or(|s| s == entry.status)
            && self
                .external_id
                .as_ref()
                .is_none_or(|id| *id == entry.external_id)
            && self.since.is_none_or(|t| entry.received_at >= t)
            && self.until.is_none_or(|t| entry.received_at < t)
            && self.before.as_ref().is_none_or(|b| entry.id < *b)
    }
}

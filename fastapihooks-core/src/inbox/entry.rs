//! [`InboxEntry`]: one received webhook as the inbox keeps it, and its [`InboxStatus`].

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::InboxId;

/// Where a received webhook is in its processing.
///
/// ```text
/// received ─▶ processing ─▶ processed
///                 │  ▲
///                 ▼  │ (retry)
///               failed ─▶ dead ─(inbox replay)─▶ received
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxStatus {
    /// Stored and acknowledged; not taken up yet.
    Received,
    /// An attempt is running (or a worker crashed during one: its task comes back).
    Processing,
    /// Processed: final.
    Processed,
    /// The last attempt failed; another one is scheduled.
    Failed,
    /// Every attempt the retry policy allows failed: a dead letter, until replayed.
    Dead,
}

impl InboxStatus {
    /// Every status, in the order of the lifecycle.
    pub const ALL: [InboxStatus; 5] = [
        InboxStatus::Received,
        InboxStatus::Processing,
        InboxStatus::Processed,
        InboxStatus::Failed,
        InboxStatus::Dead,
    ];

    /// The status as stored and printed: `received`, `processing`, …
    pub fn as_str(self) -> &'static str {
        match self {
            InboxStatus::Received => "received",
            InboxStatus::Processing => "processing",
            InboxStatus::Processed => "processed",
            InboxStatus::Failed => "failed",
            InboxStatus::Dead => "dead",
        }
    }

    /// Whether no attempt will follow without a replay: processed or dead.
    pub fn is_final(self) -> bool {
        matches!(self, InboxStatus::Processed | InboxStatus::Dead)
    }
}

impl fmt::Display for InboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InboxStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        InboxStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| Error::InvalidConfig {
                field: "inbox.status",
                reason: format!(
                    "`{s}` is not an inbox status; expected one of received, processing, processed, failed, dead"
                ),
            })
    }
}

/// Where an event stands among the events about the same object, for providers that say so
/// (an object id and a timestamp or sequence number): lets a processor skip an event older than
/// one already processed ([`Inbox::newer_processed`](super::Inbox::newer_processed)).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderingKey {
    /// The object the event is about, e.g. `cus_123` or `repo/issue#7`.
    pub object: String,
    /// Its place among the object's events: a timestamp or a sequence number, larger is newer.
    pub position: i64,
}

impl OrderingKey {
    /// The `position`-th event about `object`.
    pub fn new(object: impl Into<String>, position: i64) -> Self {
        Self {
            object: object.into(),
            position,
        }
    }
}

/// A webhook to store: what [`Inbox::receive`](super::Inbox::receive) takes.
#[derive(Clone, Debug, PartialEq)]
pub struct NewInboxEntry {
    /// Who sent it (`github`, `stripe`, a partner's name): duplicates are found per source.
    pub source: String,
    /// The sender's id of the webhook (`X-GitHub-Delivery`, `webhook-id`, Stripe's `id`): unique
    /// per source.
    pub external_id: String,
    /// The headers kept for audit and processing (names lower-case), in the order received.
    pub headers: Vec<(String, String)>,
    /// The raw body, exactly as received and verified.
    pub body: Bytes,
    /// Its place among the events about the same object, when the provider gives one.
    pub ordering: Option<OrderingKey>,
}

/// A received webhook as the inbox keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// The inbox's id of it.
    pub id: InboxId,
    /// Who sent it.
    pub source: String,
    /// The sender's id of it, unique per source.
    pub external_id: String,
    /// The headers kept (names lower-case).
    pub headers: Vec<(String, String)>,
    /// The raw body, exactly as received.
    #[serde(with = "body_text")]
    pub body: Bytes,
    /// Its place among the events about the same object, if the provider gave one.
    pub ordering: Option<OrderingKey>,
    /// Where it is in its processing.
    pub status: InboxStatus,
    /// Processing attempts made, over every run (replays included).
    pub attempts: u32,
    /// Why the last attempt failed, while it is failed or dead.
    pub last_error: Option<String>,
    /// When it was received (and acknowledged).
    pub received_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was processed, once it is.
    pub processed_at: Option<DateTime<Utc>>,
}

impl InboxEntry {
    /// A freshly received entry of `new`, at `now`.
    pub fn received(new: NewInboxEntry, now: DateTime<Utc>) -> Self {
        Self {
            id: InboxId::new(),
            source: new.source,
            external_id: new.external_id,
            headers: new.headers,
            body: new.body,
            ordering: new.ordering,
            status: InboxStatus::Received,
            attempts: 0,
            last_error: None,
            received_at: now,
            updated_at: now,
            processed_at: None,
        }
    }

    /// The first value of header `name` (any case) kept with it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What [`Inbox::receive`](super::Inbox::receive) did.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// Stored: the webhook is new and is to be processed.
    New(InboxEntry),
    /// The source sent this id before: the stored entry, unchanged. Acknowledge it, do not
    /// process it again.
    Duplicate(InboxEntry),
}

impl Received {
    /// The stored entry, new or not.
    pub fn entry(&self) -> &InboxEntry {
        match self {
            Received::New(entry) | Received::Duplicate(entry) => entry,
        }
    }
}

/// How one processing attempt ended: what [`Inbox::finish_processing`](super::Inbox::finish_processing) records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboxOutcome {
    /// Processed: final.
    Processed,
    /// Failed; another attempt is scheduled.
    Failed {
        /// Why, for a human.
        error: String,
    },
    /// Failed, and no attempt is left: a dead letter.
    Dead {
        /// Why, for a human.
        error: String,
    },
}

/// The body as text in JSON (webhook bodies are text), or base64 prefixed `base64:` when it is
/// not UTF-8.
mod body_text {
    use base64::Engine;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    const BINARY: &str = "base64:";

    pub(super) fn serialize<S: Serializer>(body: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(body) {
            Ok(text) if !text.starts_with(BINARY) => s.serialize_str(text),
            _ => s.serialize_str(&format!(
                "{BINARY}{}",
                base64::engine::general_purpose::STANDARD.encode(body)
            )),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = String::deserialize(d)?;
        match text.strip_prefix(BINARY) {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map(Bytes::from)
                .map_err(serde::de::Error::custom),
            None => Ok(Bytes::from(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_name() {
        for status in InboxStatus::ALL {
            assert_eq!(status.as_str().parse::<InboxStatus>().unwrap(), status);
        }
        let err = "done".parse::<InboxStatus>().unwrap_err();
        assert!(err.to_string().contains("received, processing"), "{err}");
    }

    #[test]
    fn a_binary_body_round_trips_through_json() {
        let mut entry = InboxEntry::received(
            NewInboxEntry {
                source: "s".into(),
                external_id: "1".into(),
                headers: vec![],
                body: Bytes::from_static(&[0xff, 0x00, 0x01]),
                ordering: None,
            },
            Utc::now(),
        );
        let json = serde_json::to_string(&entry).unwrap();
        assert!(json.contains("base64:"), "{json}");
        assert_eq!(serde_json::from_str::<InboxEntry>(&json).unwrap(), entry);
        entry.body = Bytes::from_static(b"{\"a\":1}");
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["body"], "{\"a\":1}");
    }
}

//! [`Delivery`] (one event for one subscription) and [`Attempt`] (one HTTP try of it).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::event::Event;
use crate::id::{AttemptId, DeliveryId, SubscriptionId};

/// Where a delivery stands.
///
/// `Failed` and `Dead` are both dead letters (kept, replayable): `Failed` was refused for good by
/// the receiver or the guard (a 4xx, a 3xx, a blocked address), `Dead` ran out of retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// A 2xx was received.
    Delivered,
    /// Refused for good; will not be retried.
    Failed,
    /// Every retry the policy allows failed.
    Dead,
}

impl DeliveryStatus {
    /// All statuses, in lifecycle order.
    pub const ALL: [DeliveryStatus; 4] = [Self::Pending, Self::Delivered, Self::Failed, Self::Dead];

    /// The lower-case name used in storage, metrics and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    /// Whether no further attempt will be made.
    pub fn is_final(self) -> bool {
        self != Self::Pending
    }

    /// Whether this is a dead letter (failed for good or out of retries).
    pub fn is_dead_letter(self) -> bool {
        matches!(self, Self::Failed | Self::Dead)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::InvalidConfig {
                field: "status",
                reason: format!("{s:?} is not one of pending, delivered, failed, dead"),
            })
    }
}

/// One event on its way to one subscription. Its id is fixed when fan-out records it and is the
/// idempotency key receivers see on every retry.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// `dlv_…`.
    pub id: DeliveryId,
    /// The event (its payload bytes are shared, not copied).
    pub event: Event,
    /// The subscription it goes to.
    pub subscription_id: SubscriptionId,
    /// Attempts made so far.
    pub attempts: u32,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When fan-out made it.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// How many times it was replayed (0: never). A replay starts a new run under the same id;
    /// a queued task of an earlier run no longer sends or changes the status.
    pub replays: u32,
    /// Attempts made before the latest replay: a replayed delivery's retry schedule starts
    /// again from its first delay, counting attempts from here.
    pub attempts_before_replay: u32,
}

impl Delivery {
    /// A pending delivery of `event` to `subscription_id`, due now. Its id is
    /// [`DeliveryId::for_event`]: making it twice gives the same delivery.
    pub fn new(event: Event, subscription_id: SubscriptionId) -> Self {
        let id = DeliveryId::for_event(event.id(), &subscription_id);
        Self::pending(id, event, subscription_id)
    }

    /// A pending delivery under an id already made (a queued task's), due now: what
    /// [`new`](Self::new) makes, without deriving the id again (a SHA-256 of both ids).
    pub(crate) fn pending(id: DeliveryId, event: Event, subscription_id: SubscriptionId) -> Self {
        let now = Utc::now();
        Self {
            id,
            event,
            subscription_id,
            attempts: 0,
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(now),
            created_at: now,
            updated_at: now,
            replays: 0,
            attempts_before_replay: 0,
        }
    }

    /// Attempts made in the current run (since the latest replay, or since fan-out): what
    /// the retry schedule counts.
    pub fn attempts_in_run(&self) -> u32 {
        self.attempts.saturating_sub(self.attempts_before_replay)
    }
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The receiver answered.
    Response {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body (capped), lossy UTF-8.
        body_excerpt: String,
    },
    /// No answer was read.
    Error {
        /// What kind of failure.
        kind: AttemptErrorKind,
        /// What happened, for a human.
        message: String,
    },
}

/// Why an attempt got no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptErrorKind {
    /// The connection could not be made (refused, DNS, TLS).
    Connect,
    /// The connect or total timeout expired.
    Timeout,
    /// The target address was refused by the SSRF guard.
    Blocked,
    /// Any other transport failure (connection reset mid-request, ...).
    Transport,
    /// No request was made: the subscription was disabled or removed. The delivery is kept as
    /// `failed`, replayable once the subscription is enabled again.
    NotSent,
}

impl AttemptErrorKind {
    /// The lower-case name used in storage and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Blocked => "blocked",
            Self::Transport => "transport",
            Self::NotSent => "not_sent",
        }
    }
}

/// One HTTP try of a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// `att_…`.
    pub id: AttemptId,
    /// The delivery tried.
    pub delivery_id: DeliveryId,
    /// 1 for the first try, 2 for the first retry, ...
    pub number: u32,
    /// When the request started.
    pub started_at: DateTime<Utc>,
    /// How long until the response was read or the try failed.
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    /// What it came to.
    pub outcome: AttemptOutcome,
}

impl Attempt {
    /// The HTTP status, when there was a response.
    pub fn status_code(&self) -> Option<u16> {
        match self.outcome {
            AttemptOutcome::Response { status, .. } => Some(status),
            AttemptOutcome::Error { .. } => None,
        }
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for st in DeliveryStatus::ALL {
            assert_eq!(st.as_str().parse::<DeliveryStatus>().unwrap(), st);
        }
        assert!("lost".parse::<DeliveryStatus>().is_err());
    }

    #[test]
    fn only_failed_and_dead_are_dead_letters() {
        let dead: Vec<_> = DeliveryStatus::ALL
            .into_iter()
            .filter(|s| s.is_dead_letter())
            .collect();
        assert_eq!(dead, [DeliveryStatus::Failed, DeliveryStatus::Dead]);
    }
}

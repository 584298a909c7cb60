//! Model values to rows and back. Reading a row that does not parse gives
//! [`Error::CorruptRecord`] naming the table, id and column.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;

use super::entity::{attempt, delivery, event, subscription};
use crate::delivery::{Attempt, AttemptErrorKind, AttemptOutcome, Delivery};
use crate::error::{Error, Result};
use crate::event::{Event, EventName};
use crate::health::{Disabled, EndpointHealth};
use crate::secret::Secret;
use crate::subscription::{Auth, Subscription, WebhookUrl};

/// A time as stored: microseconds since the unix epoch.
pub(super) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// Builds the error for an unreadable column of a row.
struct Column {
    table: &'static str,
    id: String,
}

impl Column {
    fn corrupt(&self, column: &'static str, reason: impl ToString) -> Error {
        Error::CorruptRecord {
            table: self.table,
            id: self.id.clone(),
            column,
            reason: reason.to_string(),
        }
    }

    fn time(&self, column: &'static str, us: i64) -> Result<DateTime<Utc>> {
        DateTime::from_timestamp_micros(us)
            .ok_or_else(|| self.corrupt(column, format!("{us} is not a representable time")))
    }

    fn unsigned(&self, column: &'static str, value: i64) -> Result<u32> {
        u32::try_from(value).map_err(|_| self.corrupt(column, format!("{value} is out of range")))
    }

    fn parse<T>(&self, column: &'static str, value: &str) -> Result<T>
    where
        T: std::str::FromStr<Err = Error>,
    {
        value.parse().map_err(|e: Error| self.corrupt(column, e))
    }
}

/// The width of the subscriptions' indexed `owner` column (first migration), in characters.
pub(super) const MAX_OWNER_CHARS: usize = 255;

pub(super) fn subscription_row(sub: &Subscription) -> Result<subscription::ActiveModel> {
    if let Some(owner) = &sub.owner {
        let len = owner.chars().count();
        if len > MAX_OWNER_CHARS {
            return Err(Error::TooLong {
                field: "subscription.owner",
                len,
                limit: MAX_OWNER_CHARS,
            });
        }
    }
    Ok(subscription::ActiveModel {
        id: Set(sub.id.to_string()),
        event_filter: Set(sub.filter.to_string()),
        url: Set(sub.url.to_string()),
        auth: Set(encode("subscription.auth", &sub.auth)?),
        secret: Set(sub.secret.as_ref().map(|s| s.expose().to_owned())),
        previous_secrets: Set(encode(
            "subscription.previous_secrets",
            &sub.previous_secrets,
        )?),
        signature_scheme: Set(sub.signature_scheme.map(|s| s.as_str().to_owned())),
        owner: Set(sub.owner.clone()),
        retry_policy: Set(sub
            .retry
            .as_ref()
            .map(|policy| encode("subscription.retry", policy))
            .transpose()?),
        metadata: Set(encode("subscription.metadata", &sub.metadata)?),
        enabled: Set(sub.enabled),
        created_at_us: Set(micros(sub.created_at)),
        disabled_reason: Set(sub.disabled.as_ref().map(|d| d.reason.clone())),
        disabled_at_us: Set(sub.disabled.as_ref().map(|d| micros(d.at))),
        failing_since_us: Set(sub.health.failing_since.map(micros)),
        failures: Set(i64::from(sub.health.failures)),
    })
}

pub(super) fn subscription_from_row(row: subscription::Model) -> Result<Subscription> {
    let col = Column {
        table: "subscription",
        id: row.id.clone(),
    };
    Ok(Subscription {
        id: col.parse("id", &row.id)?,
        filter: col.parse("event_filter", &row.event_filter)?,
        url: WebhookUrl::parse(&row.url).map_err(|e| col.corrupt("url", e))?,
        // serde_json messages may quote the value read: say only where it went wrong, so no
        // credential reaches an error message.
        auth: serde_json::from_str::<Auth>(&row.auth).map_err(|e| {
            col.corrupt(
                "auth",
                format!(
                    "not a valid auth object (JSON line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?,
        secret: row
            .secret
            .map(Secret::new)
            .transpose()
            .map_err(|e| col.corrupt("secret", e))?,
        // As for auth: never quote the value, it holds secrets.
        previous_secrets: serde_json::from_str(&row.previous_secrets).map_err(|e| {
            col.corrupt(
                "previous_secrets",
                format!(
                    "not a valid list (JSON line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?,
        signature_scheme: row
            .signature_scheme
            .map(|s| col.parse("signature_scheme", &s))
            .transpose()?,
        retry: row
            .retry_policy
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| col.corrupt("retry_policy", e))?,
        owner: row.owner,
        metadata: serde_json::from_str(&row.metadata).map_err(|e| col.corrupt("metadata", e))?,
        enabled: row.enabled,
        created_at: col.time("created_at_us", row.created_at_us)?,
        disabled: match (row.disabled_reason, row.disabled_at_us) {
            (Some(reason), Some(at)) => Some(Box::new(Disabled {
                reason,
                at: col.time("disabled_at_us", at)?,
            })),
            _ => None,
        },
        health: EndpointHealth {
            failing_since: row
                .failing_since_us
                .map(|us| col.time("failing_since_us", us))
                .transpose()?,
            failures: col.unsigned("failures", row.failures)?,
        },
    })
}

pub(super) fn event_row(event: &Event) -> event::ActiveModel {
    event::ActiveModel {
        id: Set(event.id().to_string()),
        name: Set(event.name().to_string()),
        owner: Set(event.owner().map(str::to_owned)),
        payload: Set(event.payload().to_vec()),
        created_at_us: Set(micros(event.created_at())),
    }
}

pub(super) fn event_from_row(row: event::Model) -> Result<Event> {
    let col = Column {
        table: "event",
        id: row.id.clone(),
    };
    Ok(Event::restore(
        col.parse("id", &row.id)?,
        EventName::new(&row.name).map_err(|e| col.corrupt("name", e))?,
        row.owner,
        Bytes::from(row.payload),
        col.time("created_at_us", row.created_at_us)?,
    ))
}

pub(super) fn delivery_row(delivery: &Delivery) -> delivery::ActiveModel {
    delivery::ActiveModel {
        id: Set(delivery.id.to_string()),
        event_id: Set(delivery.event.id().to_string()),
        subscription_id: Set(delivery.subscription_id.to_string()),
        status: Set(delivery.status.as_str().to_owned()),
        attempts: Set(i64::from(delivery.attempts)),
        next_attempt_at_us: Set(delivery.next_attempt_at.map(micros)),
        created_at_us: Set(micros(delivery.created_at)),
        updated_at_us: Set(micros(delivery.updated_at)),
        replays: Set(i64::from(delivery.replays)),
        attempts_before_replay: Set(i64::from(delivery.attempts_before_replay)),
    }
}

pub(super) fn delivery_from_row(row: delivery::Model, event: Event) -> Result<Delivery> {
    let col = Column {
        table: "delivery",
        id: row.id.clone(),
    };
    Ok(Delivery {
        id: col.parse("id", &row.id)?,
        event,
        subscription_id: col.parse("subscription_id", &row.subscription_id)?,
        attempts: col.unsigned("attempts", row.attempts)?,
        status: col.parse("status", &row.status)?,
        next_attempt_at: row
            .next_attempt_at_us
            .map(|us| col.time("next_attempt_at_us", us))
            .transpose()?,
        created_at: col.time("created_at_us", row.created_at_us)?,
        updated_at: col.time("updated_at_us", row.updated_at_us)?,
        replays: col.unsigned("replays", row.replays)?,
        attempts_before_replay: col
            .unsigned("attempts_before_replay", row.attempts_before_replay)?,
    })
}

const RESPONSE: &str = "response";
const ERROR: &str = "error";

/// An attempt's outcome as its columns: `outcome`, `status_code`, `error_kind`, `detail`.
pub(super) fn outcome_columns(
    outcome: &AttemptOutcome,
) -> (&'static str, Option<i32>, Option<&'static str>, &str) {
    match outcome {
        AttemptOutcome::Response {
            status,
            body_excerpt,
        } => (RESPONSE, Some(i32::from(*status)), None, body_excerpt),
        AttemptOutcome::Error { kind, message } => (ERROR, None, Some(kind.as_str()), message),
    }
}

/// An attempt's duration as stored, in microseconds.
pub(super) fn duration_us(attempt: &Attempt) -> i64 {
    i64::try_from(attempt.duration.as_micros()).unwrap_or(i64::MAX)
}

pub(super) fn attempt_row(attempt: &Attempt) -> attempt::ActiveModel {
    let (outcome, status_code, error_kind, detail) = outcome_columns(&attempt.outcome);
    attempt::ActiveModel {
        id: Set(attempt.id.to_string()),
        delivery_id: Set(attempt.delivery_id.to_string()),
        number: Set(i64::from(attempt.number)),
        started_at_us: Set(micros(attempt.started_at)),
        duration_us: Set(duration_us(attempt)),
        outcome: Set(outcome.to_owned()),
        status_code: Set(status_code),
        error_kind: Set(error_kind.map(str::to_owned)),
        detail: Set(detail.to_owned()),
    }
}

pub(super) fn attempt_from_row(row: attempt::Model) -> Result<Attempt> {
    let col = Column {
        table: "attempt",
        id: row.id.clone(),
    };
    let outcome = match row.outcome.as_str() {
        RESPONSE => AttemptOutcome::Response {
            status: row
                .status_code
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| col.corrupt("status_code", "missing or out of range"))?,
            body_excerpt: row.detail,
        },
        ERROR => AttemptOutcome::Error {
            kind: error_kind(row.error_kind.as_deref())
                .ok_or_else(|| col.corrupt("error_kind", "missing or unknown"))?,
            message: row.detail,
        },
        other => return Err(col.corrupt("outcome", format!("{other:?} is unknown"))),
    };
    let duration_us = u64::try_from(row.duration_us)
        .map_err(|_| col.corrupt("duration_us", format!("{} is negative", row.duration_us)))?;
    Ok(Attempt {
        id: col.parse("id", &row.id)?,
        delivery_id: col.parse("delivery_id", &row.delivery_id)?,
        number: col.unsigned("number", row.number)?,
        started_at: col.time("started_at_us", row.started_at_us)?,
        duration: Duration::from_micros(duration_us),
        outcome,
    })
}

fn error_kind(stored: Option<&str>) -> Option<AttemptErrorKind> {
    [
        AttemptErrorKind::Connect,
        AttemptErrorKind::Timeout,
        AttemptErrorKind::Blocked,
        AttemptErrorKind::Transport,
        AttemptErrorKind::NotSent,
    ]
    .into_iter()
    .find(|k| Some(k.as_str()) == stored)
}

/// A column's JSON, or an error naming the column.
fn encode(what: &'static str, value: &impl serde::Serialize) -> crate::Result<String> {
    serde_json::to_string(value).map_err(|source| crate::Error::Encode { what, source })
}

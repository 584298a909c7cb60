//! Deliveries as printed: a table for `deliveries list`, `key: value` lines and the attempts
//! for `deliveries show`, or JSON. Statuses are coloured on a terminal: delivered green,
//! pending yellow, failed and dead red.

use std::io::Write;

use fastapihooks_core::{Attempt, AttemptOutcome, Delivery, DeliveryStatus};
use serde::Serialize;

use super::table::{Cell, Colour, Table, excerpt};
use super::time::{duration, timestamp};

/// The longest response excerpt shown in a table (JSON has it whole).
const EXCERPT_CHARS: usize = 60;

/// A delivery as printed.
#[derive(Debug, Serialize)]
pub struct DeliveryView {
    id: String,
    status: DeliveryStatus,
    event: String,
    event_id: String,
    owner: Option<String>,
    subscription_id: String,
    /// Attempts made so far.
    attempts: u32,
    next_attempt_at: Option<String>,
    created_at: String,
    updated_at: String,
}

impl DeliveryView {
    /// The view of `delivery`.
    pub fn new(d: &Delivery) -> Self {
        Self {
            id: d.id.to_string(),
            status: d.status,
            event: d.event.name().as_str().to_owned(),
            event_id: d.event.id().to_string(),
            owner: d.event.owner().map(str::to_owned),
            subscription_id: d.subscription_id.to_string(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(timestamp),
            created_at: timestamp(d.created_at),
            updated_at: timestamp(d.updated_at),
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// An attempt as printed: a status code or an error kind, never both.
#[derive(Debug, Serialize)]
pub struct AttemptView {
    number: u32,
    started_at: String,
    duration_ms: u64,
    /// The HTTP status, when the receiver answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    /// The start of the response body, when the receiver answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    response_excerpt: Option<String>,
    /// `connect`, `timeout`, `blocked` or `transport`, when there was no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_kind: Option<&'static str>,
    /// What went wrong, when there was no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip)]
    duration: std::time::Duration,
}

impl AttemptView {
    /// The view of `attempt`.
    pub fn new(a: &Attempt) -> Self {
        let (status_code, response_excerpt, error_kind, error) = match &a.outcome {
            AttemptOutcome::Response {
                status,
                body_excerpt,
            } => (Some(*status), Some(body_excerpt.clone()), None, None),
            AttemptOutcome::Error { kind, message } => {
                (None, None, Some(kind.as_str()), Some(message.clone()))
            }
        };
        Self {
            number: a.number,
            started_at: timestamp(a.started_at),
            duration_ms: u64::try_from(a.duration.as_millis()).unwrap_or(u64::MAX),
            status_code,
            response_excerpt,
            error_kind,
            error,
            duration: a.duration,
        }
    }

    fn result(&self) -> Cell {
        match (self.status_code, self.error_kind) {
            (Some(code), _) if (200..300).contains(&code) => {
                Cell::coloured(code.to_string(), Colour::Green)
            }
            (Some(code), _) => Cell::coloured(code.to_string(), Colour::Red),
            (None, kind) => Cell::coloured(kind.unwrap_or("error"), Colour::Red),
        }
    }

    fn detail(&self) -> String {
        let text = self
            .response_excerpt
            .as_deref()
            .or(self.error.as_deref())
            .unwrap_or("");
        excerpt(text, EXCERPT_CHARS)
    }
}

/// A delivery and its attempts, as `deliveries show` prints them.
#[derive(Debug, Serialize)]
pub struct DeliveryDetails {
    /// The delivery.
    pub delivery: DeliveryView,
    /// Its attempts, in order.
    pub attempts: Vec<AttemptView>,
}

fn status_cell(status: DeliveryStatus) -> Cell {
    let colour = match status {
        DeliveryStatus::Delivered => Colour::Green,
        DeliveryStatus::Pending => Colour::Yellow,
        DeliveryStatus::Failed | DeliveryStatus::Dead => Colour::Red,
    };
    Cell::coloured(status.as_str(), colour)
}

/// Writes deliveries as a table (ID, STATUS, EVENT, SUBSCRIPTION, ATTEMPTS, NEXT, UPDATED); an
/// empty list says so.
pub fn table(out: &mut dyn Write, views: &[DeliveryView], colour: bool) -> anyhow::Result<()> {
    if views.is_empty() {
        writeln!(out, "no deliveries")?;
        return Ok(());
    }
    let mut table = Table::new(&[
        "ID",
        "STATUS",
        "EVENT",
        "SUBSCRIPTION",
        "ATTEMPTS",
        "NEXT",
        "UPDATED",
    ]);
    for v in views {
        table.row(vec![
            v.id.as_str().into(),
            status_cell(v.status),
            v.event.as_str().into(),
            v.subscription_id.as_str().into(),
            v.attempts.to_string().into(),
            v.next_attempt_at.as_deref().unwrap_or("-").into(),
            v.updated_at.as_str().into(),
        ]);
    }
    table.write(out, colour)?;
    Ok(())
}

/// Writes one delivery as `key: value` lines, then, after a blank line, its attempts as a
/// table in order.
pub fn details(out: &mut dyn Write, details: &DeliveryDetails, colour: bool) -> anyhow::Result<()> {
    let d = &details.delivery;
    let none = || "-".to_owned();
    let rows: [(&str, Cell); 10] = [
        ("id", d.id.as_str().into()),
        ("status", status_cell(d.status)),
        ("event", d.event.as_str().into()),
        ("event_id", d.event_id.as_str().into()),
        ("owner", d.owner.clone().unwrap_or_else(none).into()),
        ("subscription", d.subscription_id.as_str().into()),
        ("attempts", d.attempts.to_string().into()),
        (
            "next",
            d.next_attempt_at.clone().unwrap_or_else(none).into(),
        ),
        ("created_at", d.created_at.as_str().into()),
        ("updated_at", d.updated_at.as_str().into()),
    ];
    for (key, value) in rows {
        writeln!(out, "{:<14}{}", format!("{key}:"), value.render(colour))?;
    }
    if details.attempts.is_empty() {
        writeln!(out, "no attempts yet")?;
        return Ok(());
    }
    writeln!(out)?;
    let mut table = Table::new(&["#", "STARTED", "DURATION", "RESULT", "RESPONSE"]);
    for a in &details.attempts {
        table.row(vec![
            a.number.to_string().into(),
            a.started_at.as_str().into(),
            duration(a.duration).into(),
            a.result(),
            a.detail().into(),
        ]);
    }
    table.write(out, colour)?;
    Ok(())
}

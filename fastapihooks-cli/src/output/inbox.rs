//! Received webhooks as printed: a table for `inbox list`, `key: value` lines, the headers and
//! the body for `inbox show`, what `inbox replay` did with each entry, or JSON. Statuses are
//! coloured on a terminal: processed green; received, processing and failed (a retry is
//! scheduled) yellow; dead red.
//!
//! What a sender controls (its id of the webhook, header values, the body) is printed with its
//! control characters escaped, as `listen` prints it.

use std::io::Write;

use base64::Engine as _;
use fastapihooks_core::InboxId;
use fastapihooks_core::inbox::{InboxEntry, InboxStatus, OrderingKey};
use serde::Serialize;

use super::request::{body as body_text, clean};
use super::table::{Cell, Colour, Table, excerpt};
use super::time::{size, timestamp};

/// The longest last error shown in a table (`show` and JSON have it whole).
const ERROR_CHARS: usize = 60;

/// A received webhook as printed: its state, and with [`full`](InboxEntryView::full) its
/// headers and body.
#[derive(Debug, Serialize)]
pub struct InboxEntryView {
    id: String,
    source: String,
    external_id: String,
    status: InboxStatus,
    /// Processing attempts made, over every run (replays included).
    attempts: u32,
    last_error: Option<String>,
    /// Its place among the events about the same object, if the sender gave one.
    ordering: Option<OrderingKey>,
    received_at: String,
    updated_at: String,
    processed_at: Option<String>,
    /// The body's size in bytes.
    size: usize,
    /// The headers kept, names lower-case, in the order received (`inbox show` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Vec<(String, String)>>,
    /// The body: as it is when it is UTF-8, else base64 (`inbox show` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    /// `utf-8` or `base64`: how `body` is written (`inbox show` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    body_encoding: Option<&'static str>,
    /// The body's bytes, for the text output.
    #[serde(skip)]
    raw_body: Vec<u8>,
}

impl InboxEntryView {
    /// The view of `entry`, without its headers and body (for lists).
    pub fn summary(entry: &InboxEntry) -> Self {
        Self {
            id: entry.id.to_string(),
            source: entry.source.clone(),
            external_id: entry.external_id.clone(),
            status: entry.status,
            attempts: entry.attempts,
            last_error: entry.last_error.clone(),
            ordering: entry.ordering.clone(),
            received_at: timestamp(entry.received_at),
            updated_at: timestamp(entry.updated_at),
            processed_at: entry.processed_at.map(timestamp),
            size: entry.body.len(),
            headers: None,
            body: None,
            body_encoding: None,
            raw_body: Vec::new(),
        }
    }

    /// The view of `entry` with its headers and body.
    pub fn full(entry: &InboxEntry) -> Self {
        let (body, encoding) = match std::str::from_utf8(&entry.body) {
            Ok(text) => (text.to_owned(), "utf-8"),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(&entry.body),
                "base64",
            ),
        };
        Self {
            headers: Some(entry.headers.clone()),
            body: Some(body),
            body_encoding: Some(encoding),
            raw_body: entry.body.to_vec(),
            ..Self::summary(entry)
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A status as a cell: processed green; received, processing and failed yellow; dead red.
fn status_cell(status: InboxStatus) -> Cell {
    let colour = match status {
        InboxStatus::Processed => Colour::Green,
        InboxStatus::Received | InboxStatus::Processing | InboxStatus::Failed => Colour::Yellow,
        InboxStatus::Dead => Colour::Red,
    };
    Cell::coloured(status.as_str(), colour)
}

/// Writes received webhooks as a table (ID, SOURCE, EXTERNAL ID, STATUS, ATTEMPTS, RECEIVED,
/// LAST ERROR); an empty list says so.
pub fn table(out: &mut dyn Write, views: &[InboxEntryView], colour: bool) -> anyhow::Result<()> {
    if views.is_empty() {
        writeln!(out, "no inbox entries")?;
        return Ok(());
    }
    let mut table = Table::new(&[
        "ID",
        "SOURCE",
        "EXTERNAL ID",
        "STATUS",
        "ATTEMPTS",
        "RECEIVED",
        "LAST ERROR",
    ]);
    for v in views {
        table.row(vec![
            v.id.as_str().into(),
            v.source.as_str().into(),
            excerpt(&v.external_id, ERROR_CHARS).into(),
            status_cell(v.status),
            v.attempts.to_string().into(),
            v.received_at.as_str().into(),
            v.last_error
                .as_deref()
                .map_or_else(|| "-".to_owned(), |e| excerpt(e, ERROR_CHARS))
                .into(),
        ]);
    }
    table.write(out, colour)?;
    Ok(())
}

/// Writes one received webhook as `key: value` lines, then its headers and its body (JSON
/// re-indented, text as it is, else its size and a hex dump).
pub fn details(out: &mut dyn Write, view: &InboxEntryView, colour: bool) -> anyhow::Result<()> {
    let none = || "-".to_owned();
    let ordering = view
        .ordering
        .as_ref()
        .map_or_else(none, |o| format!("{} at {}", clean(&o.object), o.position));
    let rows: [(&str, Cell); 12] = [
        ("id", view.id.as_str().into()),
        ("source", view.source.as_str().into()),
        ("external_id", clean(&view.external_id).into()),
        ("status", status_cell(view.status)),
        ("attempts", view.attempts.to_string().into()),
        (
            "last_error",
            view.last_error.as_deref().map_or_else(none, clean).into(),
        ),
        ("ordering", ordering.into()),
        ("received_at", view.received_at.as_str().into()),
        ("updated_at", view.updated_at.as_str().into()),
        (
            "processed_at",
            view.processed_at.clone().unwrap_or_else(none).into(),
        ),
        ("size", size(view.size).into()),
        (
            "headers",
            view.headers.as_ref().map_or(0, Vec::len).to_string().into(),
        ),
    ];
    for (key, value) in rows {
        writeln!(out, "{:<14}{}", format!("{key}:"), value.render(colour))?;
    }
    for (name, value) in view.headers.iter().flatten() {
        writeln!(out, "  {}: {}", clean(name), clean(value))?;
    }
    writeln!(out, "body:")?;
    for line in body_text(&view.raw_body).lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// What replaying an entry came to (or, in a dry run, would come to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryOutcome {
    /// Reopened (received again) and its processing queued.
    Queued,
    /// Left as it is: not dead (already on its way), or processed without `--processed-too`.
    Skipped,
    /// No entry has the id.
    NotFound,
}

impl EntryOutcome {
    /// `queued`, `skipped`, `not_found`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Skipped => "skipped",
            Self::NotFound => "not_found",
        }
    }

    fn colour(self) -> Colour {
        match self {
            Self::Queued => Colour::Green,
            Self::Skipped => Colour::Yellow,
            Self::NotFound => Colour::Red,
        }
    }
}

/// An entry and what its replay came to.
#[derive(Debug, Serialize)]
pub struct EntryReplayView {
    id: String,
    /// `queued`, `skipped` or `not_found` (in a dry run: what a replay would come to).
    outcome: EntryOutcome,
    /// Its status: `received` once queued; when skipped, the status that made it skip; in a
    /// dry run, its status now; `null` when no entry has the id.
    status: Option<InboxStatus>,
}

impl EntryReplayView {
    /// The view of entry `id`, now in `status` (`None`: not found), whose replay came (or would
    /// come) to `outcome`.
    pub fn new(id: &InboxId, outcome: EntryOutcome, status: Option<InboxStatus>) -> Self {
        Self {
            id: id.to_string(),
            outcome,
            status,
        }
    }

    /// What its replay came to.
    pub fn outcome(&self) -> EntryOutcome {
        self.outcome
    }
}

/// How many entries a replay queued, skipped and did not find.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InboxReplaySummary {
    /// Reopened and queued (in a dry run: would be).
    pub queued: u64,
    /// Left as they are.
    pub skipped: u64,
    /// Ids that named no entry.
    pub not_found: u64,
}

impl InboxReplaySummary {
    /// Counts one more entry that came to `outcome`.
    pub fn add(&mut self, outcome: EntryOutcome) {
        match outcome {
            EntryOutcome::Queued => self.queued += 1,
            EntryOutcome::Skipped => self.skipped += 1,
            EntryOutcome::NotFound => self.not_found += 1,
        }
    }

    /// Entries counted.
    pub fn total(&self) -> u64 {
        self.queued + self.skipped + self.not_found
    }
}

/// `inbox replay --json`.
#[derive(Debug, Serialize)]
pub struct InboxReplayReport<'a> {
    /// Whether nothing was changed: the outcomes are what a replay would come to.
    pub dry_run: bool,
    /// Each entry, in the order replayed.
    pub entries: &'a [EntryReplayView],
    /// The counts.
    pub summary: InboxReplaySummary,
}

/// Why an entry in `status` is skipped.
fn skip_reason(status: InboxStatus) -> &'static str {
    match status {
        InboxStatus::Received | InboxStatus::Processing | InboxStatus::Failed => {
            "already on its way"
        }
        InboxStatus::Processed => "--processed-too processes it again",
        InboxStatus::Dead => "changed meanwhile",
    }
}

/// The summary line: `queued 3; skipped 1; not found 0`.
pub fn summary_line(s: &InboxReplaySummary) -> String {
    format!(
        "queued {}; skipped {}; not found {}",
        s.queued, s.skipped, s.not_found
    )
}

/// One line per entry — `inb_…  queued`, `inb_…  skipped: processed (--processed-too processes
/// it again)`, `inb_…  not found` — then the summary line; with `dry_run`, each entry's status
/// and what a replay would do, then how many it would queue.
pub fn outcomes(
    out: &mut dyn Write,
    views: &[EntryReplayView],
    summary: &InboxReplaySummary,
    dry_run: bool,
    colour: bool,
) -> std::io::Result<()> {
    for v in views {
        let what = match (v.outcome, v.status) {
            (EntryOutcome::NotFound, _) | (_, None) => "not found".to_owned(),
            (EntryOutcome::Queued, Some(_)) if dry_run => "would queue".to_owned(),
            (EntryOutcome::Queued, Some(_)) => "queued".to_owned(),
            (EntryOutcome::Skipped, Some(status)) => {
                let skip = if dry_run { "would skip" } else { "skipped" };
                format!("{skip}: {status} ({})", skip_reason(status))
            }
        };
        let what = Cell::coloured(what, v.outcome.colour()).render(colour);
        if dry_run {
            let status = v.status.map_or("-", InboxStatus::as_str);
            writeln!(out, "{}  {status}  {what}", v.id)?;
        } else {
            writeln!(out, "{}  {what}", v.id)?;
        }
    }
    if dry_run {
        writeln!(
            out,
            "would queue {} of {} (dry run: nothing changed)",
            summary.queued,
            views.len()
        )
    } else {
        writeln!(out, "{}", summary_line(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastapihooks_core::inbox::NewInboxEntry;

    fn entry(body: &'static [u8]) -> InboxEntry {
        let mut entry = InboxEntry::received(
            NewInboxEntry {
                source: "github".into(),
                external_id: "d-1".into(),
                headers: vec![("x-github-event".into(), "push\x1b[31m".into())],
                body: body.into(),
                ordering: None,
            },
            chrono::Utc::now(),
        );
        entry.status = InboxStatus::Dead;
        entry.attempts = 3;
        entry.last_error = Some("route answered 500:\nboom".into());
        entry
    }

    fn text(write: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn show_prints_headers_escaped_and_a_json_body_indented() {
        let view = InboxEntryView::full(&entry(br#"{"a":1}"#));
        let shown = text(|out| details(out, &view, false));
        assert!(shown.contains("status:       dead\n"), "{shown}");
        assert!(
            shown.contains("  x-github-event: push\\u{1b}[31m\n"),
            "{shown}"
        );
        assert!(
            shown.ends_with("body:\n  {\n    \"a\": 1\n  }\n"),
            "{shown}"
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["body"], r#"{"a":1}"#);
        assert_eq!(json["body_encoding"], "utf-8");
    }

    #[test]
    fn a_binary_body_is_base64_in_json_and_a_hex_dump_in_text() {
        let view = InboxEntryView::full(&entry(&[0xff, 0x00]));
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(
            (json["body"].as_str(), json["size"].as_u64()),
            (Some("/wA="), Some(2))
        );
        assert_eq!(json["body_encoding"], "base64");
        let shown = text(|out| details(out, &view, false));
        assert!(shown.contains("(2 B, not text)\n  0000  ff 00"), "{shown}");
    }

    #[test]
    fn a_list_has_no_bodies_and_its_errors_on_one_line() {
        let view = InboxEntryView::summary(&entry(b"{}"));
        let json = serde_json::to_value(&view).unwrap();
        assert!(
            json.get("body").is_none() && json.get("headers").is_none(),
            "{json}"
        );
        let listed = text(|out| table(out, &[view], true));
        assert!(listed.contains("\x1b[31mdead\x1b[0m"), "{listed}");
        assert!(listed.contains("route answered 500: boom"), "{listed}");
    }
}

//! Events as printed: a table for `events list`, `key: value` lines and the payload for
//! `events show`, or JSON.

use std::io::Write;

use fastapihooks_core::Event;
use serde::Serialize;

use super::table::Table;
use super::time::{size, timestamp};

/// An event as printed.
#[derive(Debug, Serialize)]
pub struct EventView {
    id: String,
    event: String,
    owner: Option<String>,
    created_at: String,
    /// The payload's size in bytes.
    size: usize,
    /// The payload (`events show` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<serde_json::Value>,
}

impl EventView {
    /// The view of `event`, without its payload (for lists).
    pub fn summary(event: &Event) -> Self {
        Self {
            id: event.id().to_string(),
            event: event.name().as_str().to_owned(),
            owner: event.owner().map(str::to_owned),
            created_at: timestamp(event.created_at()),
            size: event.payload().len(),
            payload: None,
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The view of `event` with its payload.
    pub fn full(event: &Event) -> Self {
        // Payloads are checked to be JSON when made; a store edited by hand may hold anything.
        let payload = serde_json::from_slice(event.payload()).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(event.payload()).into_owned())
        });
        Self {
            payload: Some(payload),
            ..Self::summary(event)
        }
    }
}

/// Writes events as a table (ID, EVENT, OWNER, CREATED, SIZE); an empty list says so.
pub fn table(out: &mut dyn Write, views: &[EventView], colour: bool) -> anyhow::Result<()> {
    if views.is_empty() {
        writeln!(out, "no events")?;
        return Ok(());
    }
    let mut table = Table::new(&["ID", "EVENT", "OWNER", "CREATED", "SIZE"]);
    for v in views {
        table.row(vec![
            v.id.as_str().into(),
            v.event.as_str().into(),
            v.owner.as_deref().unwrap_or("-").into(),
            v.created_at.as_str().into(),
            size(v.size).into(),
        ]);
    }
    table.write(out, colour)?;
    Ok(())
}

/// Writes one event as `key: value` lines, then its payload as pretty JSON.
pub fn details(out: &mut dyn Write, view: &EventView) -> anyhow::Result<()> {
    let rows = [
        ("id", view.id.clone()),
        ("event", view.event.clone()),
        ("owner", view.owner.clone().unwrap_or_else(|| "-".into())),
        ("created_at", view.created_at.clone()),
        ("size", size(view.size)),
    ];
    for (key, value) in rows {
        writeln!(out, "{:<12}{value}", format!("{key}:"))?;
    }
    if let Some(payload) = &view.payload {
        writeln!(out, "payload:")?;
        serde_json::to_writer_pretty(&mut *out, payload)?;
        writeln!(out)?;
    }
    Ok(())
}

//! How results are printed: a table or key/value lines for people, JSON (`--json`) for scripts.
//! Secrets and credentials are shown as `***` unless asked for (`--show-secrets`).
//!
//! Subscriptions are printed here; the delivery history in [`events`] and [`deliveries`], with
//! the table and formats they share in [`table`](mod@table) and [`time`].

pub mod deliveries;
pub mod events;
pub mod replay;
pub mod table;
pub mod time;

use std::io::Write;

use fastapihooks_core::{Auth, Subscription};
use serde::Serialize;

/// The shown value of a secret that is not revealed.
const HIDDEN: &str = "***";

/// A subscription as printed: every field, secrets hidden unless `reveal`.
#[derive(Debug, Serialize)]
pub struct SubscriptionView {
    id: String,
    event: String,
    url: String,
    auth: AuthView,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    metadata: serde_json::Value,
    /// Its own retry schedule (`standard-webhooks`, `1s, 10s ±20%`, …), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_schedule: Option<String>,
    enabled: bool,
    created_at: String,
}

/// Auth as printed: its kind and non-secret parts, credentials hidden unless revealed.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AuthView {
    None,
    Bearer { token: String },
    Basic { username: String, password: String },
    Header { name: String, value: String },
}

impl SubscriptionView {
    /// The view of `sub`, with secrets in clear only if `reveal`.
    pub fn new(sub: &Subscription, reveal: bool) -> Self {
        let shown = |s: &fastapihooks_core::Secret| {
            if reveal {
                s.expose().to_owned()
            } else {
                HIDDEN.to_owned()
            }
        };
        let auth = match &sub.auth {
            Auth::Bearer { token } => AuthView::Bearer {
                token: shown(token),
            },
            Auth::Basic { username, password } => AuthView::Basic {
                username: username.clone(),
                password: shown(password),
            },
            Auth::Header(custom) => AuthView::Header {
                name: custom.name().to_owned(),
                value: shown(custom.value()),
            },
            Auth::None => AuthView::None,
        };
        Self {
            id: sub.id.to_string(),
            event: sub.filter.to_string(),
            url: sub.url.to_string(),
            auth,
            secret: sub.secret.as_ref().map(shown),
            owner: sub.owner.clone(),
            metadata: sub.metadata.clone(),
            retry_schedule: sub.retry.as_ref().map(ToString::to_string),
            enabled: sub.enabled,
            created_at: sub
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    /// Shows the subscription's own signing secret in clear (once, right after generating it).
    pub fn reveal_secret(mut self, sub: &Subscription) -> Self {
        self.secret = sub.secret.as_ref().map(|s| s.expose().to_owned());
        self
    }

    fn auth_summary(&self) -> String {
        match &self.auth {
            AuthView::None => "none".into(),
            AuthView::Bearer { token } => format!("bearer {token}"),
            AuthView::Basic { username, password } => format!("basic {username}:{password}"),
            AuthView::Header { name, value } => format!("header {name}: {value}"),
        }
    }
}

/// Writes `value` as pretty JSON and a newline.
pub fn json(out: &mut dyn Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Writes one subscription as `key: value` lines.
pub fn details(out: &mut dyn Write, view: &SubscriptionView) -> anyhow::Result<()> {
    let none = || "-".to_owned();
    let rows = [
        ("id", view.id.clone()),
        ("event", view.event.clone()),
        ("url", view.url.clone()),
        ("auth", view.auth_summary()),
        ("secret", view.secret.clone().unwrap_or_else(none)),
        ("owner", view.owner.clone().unwrap_or_else(none)),
        ("metadata", view.metadata.to_string()),
        (
            "retry",
            view.retry_schedule
                .clone()
                .unwrap_or_else(|| "the sidecar's".to_owned()),
        ),
        ("enabled", view.enabled.to_string()),
        ("created_at", view.created_at.clone()),
    ];
    for (key, value) in rows {
        writeln!(out, "{:<12}{value}", format!("{key}:"))?;
    }
    Ok(())
}

/// Writes subscriptions as a table with a header row; an empty list says so.
pub fn table(out: &mut dyn Write, views: &[SubscriptionView]) -> anyhow::Result<()> {
    if views.is_empty() {
        writeln!(out, "no subscriptions")?;
        return Ok(());
    }
    let header = ["ID", "EVENT", "URL", "OWNER", "ENABLED", "CREATED"];
    let rows: Vec<[String; 6]> = views
        .iter()
        .map(|v| {
            [
                v.id.clone(),
                v.event.clone(),
                v.url.clone(),
                v.owner.clone().unwrap_or_else(|| "-".into()),
                if v.enabled { "yes" } else { "no" }.into(),
                v.created_at.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(header))?;
    for row in &rows {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    Ok(())
}

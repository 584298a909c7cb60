//! How results are printed: a table or key/value lines for people, JSON (`--json`) for scripts.
//! Secrets and credentials are shown as `***` unless asked for (`--show-secrets`).
//!
//! Subscriptions are printed here; the delivery history in [`events`] and [`deliveries`], with
//! the table and formats they share in [`table`](mod@table) and [`time`].

pub mod deliveries;
pub mod events;
pub mod inbox;
pub mod replay;
pub mod request;
pub mod table;
pub mod time;

use std::io::Write;

use fastapihooks_core::{Auth, Subscription};
use serde::Serialize;

use self::time::timestamp;

/// The shown value of a secret that is not revealed.
const HIDDEN: &str = "***";

/// The longest disabling reason shown in a table (`show` and JSON have it whole).
const REASON_CHARS: usize = 60;

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
    /// Why and when the engine disabled it (a failure streak, a 410 Gone); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled: Option<DisabledView>,
    /// Its failure streak; absent when its last attempt delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<HealthView>,
}

/// Why and when a subscription was disabled.
#[derive(Debug, Serialize)]
struct DisabledView {
    reason: String,
    at: String,
}

/// A failure streak: failed attempts since the first failure after the last success.
#[derive(Debug, Serialize)]
struct HealthView {
    failures: u32,
    failing_since: Option<String>,
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
            created_at: timestamp(sub.created_at),
            disabled: sub.disabled.as_ref().map(|d| DisabledView {
                reason: d.reason.clone(),
                at: timestamp(d.at),
            }),
            health: (!sub.health.is_healthy()).then(|| HealthView {
                failures: sub.health.failures,
                failing_since: sub.health.failing_since.map(timestamp),
            }),
        }
    }

    /// Shows the subscription's own signing secret in clear (once, right after generating it).
    pub fn reveal_secret(mut self, sub: &Subscription) -> Self {
        self.secret = sub.secret.as_ref().map(|s| s.expose().to_owned());
        self
    }

    /// `disabled 2026-12-02T09:00:00.000Z: <reason>`, or `-` when the engine did not disable it.
    fn disabled_summary(&self) -> String {
        match &self.disabled {
            Some(d) => format!("{}: {}", d.at, d.reason),
            None => "-".into(),
        }
    }

    /// `12 failed attempts since 2026-12-02T09:00:00.000Z`, or `ok`.
    fn health_summary(&self) -> String {
        match &self.health {
            Some(h) => match &h.failing_since {
                Some(since) => format!("{} failed attempt(s) since {since}", h.failures),
                None => format!("{} failed attempt(s)", h.failures),
            },
            None => "ok".into(),
        }
    }

    /// The table's HEALTH cell: why it was disabled, else its failure streak, else `ok`.
    fn health_cell(&self) -> String {
        match &self.disabled {
            Some(d) => format!(
                "disabled {}: {}",
                d.at,
                table::excerpt(&d.reason, REASON_CHARS)
            ),
            None if self.health.is_some() => format!("failing: {}", self.health_summary()),
            None => "ok".into(),
        }
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
        ("disabled", view.disabled_summary()),
        ("health", view.health_summary()),
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
    let header = [
        "ID", "EVENT", "URL", "OWNER", "ENABLED", "CREATED", "HEALTH",
    ];
    let rows: Vec<[String; 7]> = views
        .iter()
        .map(|v| {
            [
                v.id.clone(),
                v.event.clone(),
                v.url.clone(),
                v.owner.clone().unwrap_or_else(|| "-".into()),
                if v.enabled { "yes" } else { "no" }.into(),
                v.created_at.clone(),
                v.health_cell(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7]| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use fastapihooks_core::health::{Disabled, EndpointHealth};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A subscription the engine disabled after a failure streak.
    fn disabled() -> Subscription {
        let mut sub = Subscription::new("*", "https://example.com/h").unwrap();
        sub.enabled = false;
        sub.health = EndpointHealth {
            failing_since: Some(at("2026-12-01T09:00:00Z")),
            failures: 12,
        };
        sub.disabled = Some(Box::new(Disabled {
            reason: "endpoint failing since 2026-12-01T09:00:00Z: 12 failed attempts".into(),
            at: at("2026-12-02T09:00:00Z"),
        }));
        sub
    }

    fn text(write: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_disabled_subscription_shows_why_when_and_its_streak() {
        let view = SubscriptionView::new(&disabled(), false);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(
            json["disabled"],
            serde_json::json!({
                "reason": "endpoint failing since 2026-12-01T09:00:00Z: 12 failed attempts",
                "at": "2026-12-02T09:00:00.000Z",
            })
        );
        assert_eq!(
            json["health"],
            serde_json::json!({"failures": 12, "failing_since": "2026-12-01T09:00:00.000Z"})
        );
        let details = text(|out| details(out, &view));
        assert!(
            details.contains(
                "disabled:   2026-12-02T09:00:00.000Z: endpoint failing since 2026-12-01T09:00:00Z"
            ),
            "{details}"
        );
        assert!(
            details.contains("health:     12 failed attempt(s) since 2026-12-01T09:00:00.000Z"),
            "{details}"
        );
        let listed = text(|out| table(out, &[view]));
        assert!(
            listed.lines().next().unwrap().ends_with("HEALTH"),
            "{listed}"
        );
        assert!(
            listed.contains("disabled 2026-12-02T09:00:00.000Z: endpoint failing since"),
            "{listed}"
        );
    }

    #[test]
    fn a_failing_subscription_shows_its_streak_and_a_healthy_one_neither() {
        let mut failing = disabled();
        failing.enabled = true;
        failing.disabled = None;
        let view = SubscriptionView::new(&failing, false);
        let json = serde_json::to_value(&view).unwrap();
        assert!(json.get("disabled").is_none(), "{json}");
        assert_eq!(json["health"]["failures"], 12);
        let listed = text(|out| table(out, &[view]));
        assert!(
            listed.contains("failing: 12 failed attempt(s) since 2026-12-01T09:00:00.000Z"),
            "{listed}"
        );

        let healthy =
            SubscriptionView::new(&Subscription::new("*", "https://e.com/h").unwrap(), false);
        let json = serde_json::to_value(&healthy).unwrap();
        assert!(
            json.get("disabled").is_none() && json.get("health").is_none(),
            "{json}"
        );
        let details = text(|out| details(out, &healthy));
        assert!(details.contains("disabled:   -\n"), "{details}");
        assert!(details.contains("health:     ok\n"), "{details}");
    }
}

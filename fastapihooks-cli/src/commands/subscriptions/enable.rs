//! `fastapihooks subscriptions enable`: enable a subscription — clearing why the engine disabled
//! it and its failure streak — and, with `--replay`, send again the dead letters of its outage
//! through the queue the sidecar drains.
//!
//! ```text
//! fastapihooks subscriptions enable sub_01JE6Y0V3K8Q2M4N6P8R0T2V4W
//! fastapihooks subscriptions enable sub_01JE6Y0V3K8Q2M4N6P8R0T2V4W --replay --queue "$FASTAPIHOOKS_DATABASE_URL"
//! ```

use std::io::Write;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Args;
use fastapihooks_core::{DeliveryQuery, ReplaySummary, Store, Subscription, SubscriptionId};
use serde::Serialize;

use super::fields;
use crate::commands::database::DatabaseArgs;
use crate::commands::queue::QueueArgs;
use crate::commands::replaying::{self, Partial};
use crate::output::replay::summary_line;
use crate::output::time::timestamp;
use crate::output::{self, SubscriptionView};

/// The exit codes, for `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  enabled (and, with --replay, every dead letter of the outage queued again)
  1  failed: the subscription is not found, the store or the queue cannot be reached (nothing
     changed), or the replay stopped part way (the subscription is enabled; the error says how
     to resume the replay)
  2  the command line is wrong (--replay without --queue, a bad id)
  3  enabled, and the replay partly done: some deliveries were left alone because the
     subscription was disabled again meanwhile";

/// `subscriptions enable` arguments.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct EnableArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The subscription, `sub_…`.
    #[arg(value_name = "ID", value_parser = fields::subscription_id)]
    id: SubscriptionId,
    /// Then send again, through --queue, its dead letters (failed and dead) that failed since
    /// its failure streak began — or since it was disabled when no streak is known, or all of
    /// them when neither is. Deliveries keep their ids; nothing is queued twice.
    #[arg(long, requires = "queue")]
    replay: bool,
    /// With --replay: the queue to put the replays on (as `deliveries replay --queue`).
    #[command(flatten)]
    queue: QueueArgs,
    /// Print JSON instead of text: the subscription, or with --replay
    /// `{"subscription": …, "replay": {"changed_since": …, "summary": …}}`.
    #[arg(long)]
    json: bool,
}

/// `subscriptions enable --replay --json`.
#[derive(Debug, Serialize)]
struct EnabledReport {
    subscription: SubscriptionView,
    replay: ReplayReport,
}

/// What the replay of an enabled subscription's dead letters came to.
#[derive(Debug, Serialize)]
struct ReplayReport {
    /// The dead letters replayed are those that failed at or after this time; `null`: all.
    changed_since: Option<String>,
    summary: ReplaySummary,
}

/// Since when the dead letters of `sub`'s outage failed: the start of its failure streak, else
/// the time the engine disabled it, else unknown. Read before enabling, which clears both.
fn outage_start(sub: &Subscription) -> Option<DateTime<Utc>> {
    sub.health
        .failing_since
        .or_else(|| sub.disabled.as_ref().map(|d| d.at))
}

/// Enables the subscription, replays its dead letters with `--replay`, and prints the result.
pub async fn run(args: EnableArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    // The queue is opened before anything changes: a queue that cannot be reached leaves the
    // subscription as it was.
    let (store, replay) = if args.replay {
        let (store, replay) = replaying::open(&args.database, &args.queue).await?;
        (store, Some(replay))
    } else {
        let store = args
            .database
            .options(1)
            .connect("--database", &args.database.url)
            .await?;
        (store, None)
    };
    let before = store
        .get_subscription(&args.id)
        .await?
        .with_context(|| format!("subscription {} not found", args.id))?;
    let since = outage_start(&before);
    store.set_enabled(&args.id, true).await?;
    let sub = store
        .get_subscription(&args.id)
        .await?
        .with_context(|| format!("subscription {} not found", args.id))?;
    let view = SubscriptionView::new(&sub, false);
    let Some(replay) = replay else {
        return if args.json {
            output::json(out, &view)
        } else {
            output::details(out, &view)
        };
    };
    // Failed and dead (the default of a query without a status) whose last attempt was made
    // during the outage, however long before it they were made.
    let mut query = DeliveryQuery::default().subscription(args.id.clone());
    query.changed_since = since;
    let resume = match since {
        Some(t) => format!(
            "resume it with `fastapihooks deliveries replay \
             --subscription {} --changed-since {}` and the same --queue: nothing is replayed twice",
            args.id,
            // To the microsecond, as stored: the same deliveries as this replay.
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
        None => format!(
            "resume it with `fastapihooks deliveries replay \
             --subscription {}` and the same --queue: nothing is replayed twice",
            args.id
        ),
    };
    let summary = replaying::replay_matching(
        &replay,
        &query,
        replaying::progress_shown(args.json),
        &resume,
    )
    .await
    .with_context(|| format!("subscription {} enabled", args.id))?;
    if args.json {
        output::json(
            out,
            &EnabledReport {
                subscription: view,
                replay: ReplayReport {
                    changed_since: since.map(timestamp),
                    summary,
                },
            },
        )?;
    } else {
        output::details(out, &view)?;
        let window = match since {
            Some(t) => format!("the dead letters that failed since {}", timestamp(t)),
            None => "every dead letter (no failure streak or disabling time was known)".into(),
        };
        writeln!(out, "replayed {window}: {}", summary_line(&summary))?;
    }
    match Partial::of(&summary, false) {
        Some(partial) => Err(partial.into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use fastapihooks_core::health::{Disabled, EndpointHealth};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_outage_starts_with_the_streak_else_the_disabling_else_is_unknown() {
        let mut sub = Subscription::new("*", "https://example.com/h").unwrap();
        assert_eq!(outage_start(&sub), None);
        sub.disabled = Some(Box::new(Disabled {
            reason: "410 Gone".into(),
            at: at("2026-12-02T09:00:00Z"),
        }));
        assert_eq!(outage_start(&sub), Some(at("2026-12-02T09:00:00Z")));
        sub.health = EndpointHealth {
            failing_since: Some(at("2026-12-01T09:00:00Z")),
            failures: 12,
        };
        assert_eq!(outage_start(&sub), Some(at("2026-12-01T09:00:00Z")));
    }

    #[test]
    fn replay_without_a_queue_is_a_usage_error_naming_it() {
        let id = SubscriptionId::new();
        let parse = |extra: &[&str]| {
            crate::Cli::try_parse_from(
                [
                    "fastapihooks",
                    "subscriptions",
                    "enable",
                    id.as_str(),
                    "--database",
                    "sqlite://x.db",
                ]
                .iter()
                .chain(extra),
            )
        };
        let err = parse(&["--replay"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--queue"), "{err}");
        assert!(parse(&[]).is_ok());
        assert!(parse(&["--replay", "--queue", "sqlite://x.db"]).is_ok());
    }
}

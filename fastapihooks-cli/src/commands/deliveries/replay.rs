//! `fastapihooks deliveries replay`: send deliveries again — named ones, or every one matching
//! filters — through the queue the sidecar drains (Redis, or the SQL outbox).
//!
//! A replay keeps each delivery's id (receivers deduplicate on it) and appends new attempts to
//! its history. It is safe to repeat: an interrupted replay (Ctrl-C, a crash) is resumed by
//! running it again, and nothing is queued twice (see `fastapihooks_core::replay`).
//!
//! ```text
//! fastapihooks deliveries replay --queue redis://127.0.0.1:6379 dlv_01JE6Y0V3K8Q2M4N6P8R0T2V4W
//! fastapihooks deliveries replay --queue "$FASTAPIHOOKS_DATABASE_URL" --status dead --event 'order.*' --since 2h
//! fastapihooks deliveries replay --queue redis://127.0.0.1:6379 --all --dry-run
//! ```

use std::collections::HashSet;
use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use fastapihooks_core::{
    DeliveryId, DeliveryQuery, DeliveryStatus, Replay, ReplayOutcome, ReplaySummary, SqlStore,
    Store,
};

use crate::commands::database::DatabaseArgs;
use crate::commands::history_flags::{self, DELIVERY_FILTER_IDS, DeliveryFilters};
use crate::commands::queue::QueueArgs;
pub use crate::commands::replaying::Partial;
use crate::commands::replaying::{advance, open, progress_bar, progress_shown, replay_matching};
use crate::output::replay::{
    self as view, BulkPlan, BulkReport, IdsPlan, IdsReport, OutcomeView, PlanView,
};
use crate::output::{self, table};

/// The exit codes, for `-h`.
const EXIT_CODES_SHORT: &str =
    "Exit codes: 0 done, 1 failed, 2 bad command line, 3 partly done (see --help).";

/// The exit codes, for `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  everything asked was replayed, or had nothing to do (already pending; delivered, without
     --force)
  1  the replay failed: the store or the queue cannot be reached, or nothing to replay was named
     (no id, no filter, no --all). A bulk replay that stopped part way is resumed by running it
     again: nothing is replayed twice
  2  the command line is wrong (an unknown flag, a bad id or --since)
  3  partly done: some ids named no delivery, or some deliveries were left alone because their
     subscription is disabled (enable it with `fastapihooks subscriptions enable ID`, then
     replay again); the rest was replayed";

/// `deliveries replay` arguments.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_SHORT, after_long_help = EXIT_CODES)]
#[command(mut_arg("queue", |a| a.required(true)))]
pub struct ReplayArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    queue: QueueArgs,
    /// The deliveries to replay, `dlv_…`. Without ids, those matching the filters are (without
    /// --status, the dead letters: failed and dead, and delivered too with --force).
    #[arg(
        value_name = "ID",
        value_parser = history_flags::delivery_id,
        conflicts_with_all = DELIVERY_FILTER_IDS,
        conflicts_with = "all"
    )]
    ids: Vec<DeliveryId>,
    #[command(flatten)]
    filters: DeliveryFilters,
    /// Replay every dead letter (failed and dead; delivered too with --force): needed when
    /// neither an id nor a filter is given, so that it is never done by accident.
    #[arg(long)]
    all: bool,
    /// Resend delivered deliveries too. Without it a delivered one is left alone and reported
    /// `delivered`.
    #[arg(long)]
    force: bool,
    /// Change nothing: print how many would be replayed (with ids: each one's status and
    /// whether it would be).
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object instead of text (and never a progress bar).
    #[arg(long)]
    json: bool,
}

impl ReplayArgs {
    /// The query of the filters, or `None` when no filter is given.
    fn query(&self) -> Option<DeliveryQuery> {
        self.filters.any().then(|| {
            self.filters
                .query(None, fastapihooks_core::query::DEFAULT_LIMIT)
        })
    }
}

/// Replays the named deliveries, or every one matching the filters, and prints what each came
/// to (or, with `--dry-run`, what it would come to).
pub async fn run(args: ReplayArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let query = args.query();
    if args.ids.is_empty() && query.is_none() && !args.all {
        anyhow::bail!(
            "nothing to replay was named: give delivery ids (dlv_…), a filter (--status, \
             --subscription, --event, --event-id, --owner, --since, --until, --changed-since), or \
             --all to replay every dead letter"
        );
    }
    let (store, replay) = open(&args.database, &args.queue).await?;
    let replay = replay.resend_delivered(args.force);
    let bar = progress_shown(args.json);
    let left = if args.ids.is_empty() {
        let query = query.unwrap_or_default();
        bulk(&args, &replay, &query, bar, out).await?
    } else {
        let ids = distinct(&args.ids);
        if args.dry_run {
            plan_ids(&args, &store, &ids, out).await?
        } else {
            replay_ids(&args, &replay, &ids, bar, out).await?
        }
    };
    match left {
        Some(partial) => Err(partial.into()),
        None => Ok(()),
    }
}

/// `ids` without repeats, in their order.
fn distinct(ids: &[DeliveryId]) -> Vec<DeliveryId> {
    let mut seen = HashSet::new();
    ids.iter().filter(|id| seen.insert(*id)).cloned().collect()
}

/// Replays every delivery matching `query` (or counts them for a dry run).
async fn bulk(
    args: &ReplayArgs,
    replay: &Replay,
    query: &DeliveryQuery,
    bar: bool,
    out: &mut dyn Write,
) -> anyhow::Result<Option<Partial>> {
    if args.dry_run {
        let would_replay = replay
            .count(query)
            .await
            .context("counting the deliveries to replay")?;
        if args.json {
            output::json(
                out,
                &BulkPlan {
                    dry_run: true,
                    would_replay,
                },
            )?;
        } else {
            view::bulk_plan(out, would_replay)?;
        }
        return Ok(None);
    }
    let summary = replay_matching(
        replay,
        query,
        bar,
        "run the same command again to resume it: nothing is replayed twice",
    )
    .await?;
    if args.json {
        output::json(
            out,
            &BulkReport {
                dry_run: false,
                summary,
            },
        )?;
    } else {
        writeln!(out, "{}", view::summary_line(&summary))?;
    }
    Ok(Partial::of(&summary, false))
}

/// Replays each of `ids` and prints what each came to.
async fn replay_ids(
    args: &ReplayArgs,
    replay: &Replay,
    ids: &[DeliveryId],
    bar: bool,
    out: &mut dyn Write,
) -> anyhow::Result<Option<Partial>> {
    let bar = bar.then(|| progress_bar(ids.len() as u64));
    let mut summary = ReplaySummary::default();
    let mut done: Vec<(&DeliveryId, ReplayOutcome)> = Vec::with_capacity(ids.len());
    for id in ids {
        match replay.delivery(id).await {
            Ok(outcome) => {
                summary.add(outcome);
                done.push((id, outcome));
                if let Some(bar) = &bar {
                    advance(bar, &summary);
                }
            }
            Err(e) => {
                if let Some(bar) = &bar {
                    bar.finish_and_clear();
                }
                // What was done before, so that it is not lost with the error.
                let before: Vec<String> = done
                    .iter()
                    .map(|(id, outcome)| format!("{id} {}", outcome.as_str()))
                    .collect();
                let before = if before.is_empty() {
                    String::new()
                } else {
                    format!(" (before it: {})", before.join(", "))
                };
                return Err(anyhow::Error::new(e).context(format!(
                    "replaying delivery {id}{before}; run the same command again to go on: \
                     nothing is replayed twice"
                )));
            }
        }
    }
    let views: Vec<OutcomeView> = done
        .iter()
        .map(|(id, outcome)| OutcomeView::new(id, *outcome))
        .collect();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if args.json {
        output::json(
            out,
            &IdsReport {
                dry_run: false,
                deliveries: &views,
                summary,
            },
        )?;
    } else {
        view::outcomes(out, &views, &summary, table::colour_enabled())?;
    }
    Ok(Partial::of(&summary, false))
}

/// Prints, for each of `ids`, its status and whether a replay would send it again; changes
/// nothing.
async fn plan_ids(
    args: &ReplayArgs,
    store: &SqlStore,
    ids: &[DeliveryId],
    out: &mut dyn Write,
) -> anyhow::Result<Option<Partial>> {
    let mut views = Vec::with_capacity(ids.len());
    let mut left = ReplaySummary::default();
    for id in ids {
        let delivery = store
            .get_delivery(id)
            .await
            .with_context(|| format!("reading delivery {id}"))?;
        let expected = match &delivery {
            None => ReplayOutcome::NotFound,
            Some(d) if d.status == DeliveryStatus::Pending => ReplayOutcome::AlreadyPending,
            Some(d) if d.status == DeliveryStatus::Delivered && !args.force => {
                ReplayOutcome::Delivered
            }
            Some(d) => {
                // As the replay decides: a subscription the store does not know (one kept in
                // code) counts as enabled.
                let enabled = store
                    .get_subscription(&d.subscription_id)
                    .await
                    .with_context(|| format!("reading subscription {}", d.subscription_id))?
                    .is_none_or(|s| s.enabled);
                if enabled {
                    ReplayOutcome::Queued
                } else {
                    ReplayOutcome::SubscriptionDisabled
                }
            }
        };
        left.add(expected);
        views.push(PlanView::new(id, delivery.map(|d| d.status), expected));
    }
    if args.json {
        let would_replay = views.iter().filter(|v| v.would_replay()).count() as u64;
        output::json(
            out,
            &IdsPlan {
                dry_run: true,
                deliveries: &views,
                would_replay,
            },
        )?;
    } else {
        view::plan(out, &views, table::colour_enabled())?;
    }
    Ok(Partial::of(&left, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<ReplayArgs, clap::Error> {
        let cli = crate::Cli::try_parse_from(
            [
                "fastapihooks",
                "deliveries",
                "replay",
                "--database",
                "sqlite://x.db",
                "--queue",
                "sqlite://x.db",
            ]
            .iter()
            .chain(args),
        )?;
        match cli.command {
            crate::Command::Deliveries(super::super::DeliveriesCommand::Replay(args)) => Ok(args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_filter_is_no_query() {
        assert!(parse(&[]).unwrap().query().is_none());
        assert!(parse(&["--all"]).unwrap().query().is_none());
        let query = parse(&["--status", "dead", "--event", "order.*"])
            .unwrap()
            .query()
            .unwrap();
        assert_eq!(query.status, Some(DeliveryStatus::Dead));
        let query = parse(&["--changed-since", "2026-12-02T09:00:00Z"])
            .unwrap()
            .query()
            .unwrap();
        assert_eq!(
            query.changed_since.map(|t| t.to_rfc3339()),
            Some("2026-12-02T09:00:00+00:00".to_owned())
        );
        assert_eq!((query.status, query.since), (None, None));
    }

    #[test]
    fn ids_and_filters_together_are_a_usage_error() {
        let id = DeliveryId::new();
        let err = parse(&[id.as_str(), "--status", "dead"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(parse(&[id.as_str(), "--all"]).is_err());
        assert!(parse(&[id.as_str(), "--changed-since", "2h"]).is_err());
    }

    #[test]
    fn repeated_ids_are_replayed_once() {
        let (a, b) = (DeliveryId::new(), DeliveryId::new());
        assert_eq!(
            distinct(&[a.clone(), b.clone(), a.clone()]),
            [a.clone(), b.clone()]
        );
    }
}

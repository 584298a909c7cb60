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
use std::io::{IsTerminal as _, Write};
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Args;
use fastapihooks_core::{
    Backend, DeliveryId, DeliveryQuery, DeliveryStatus, EventFilter, EventId, Replay,
    ReplayOutcome, ReplaySummary, SqlBackend, SqlStore, SqlStoreOptions, Store, SubscriptionId,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::commands::database::{DatabaseArgs, redacted};
use crate::commands::history_flags;
use crate::commands::subscriptions::fields;
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
     subscription is disabled (enable it with `fastapihooks subscriptions update ID --enable`,
     then replay again); the rest was replayed";

/// Deliveries a bulk replay works on at once.
const CONCURRENCY: usize = 4;
/// Database connections: one per delivery being replayed, and one more for the subscription
/// look-ups the replay makes meanwhile. With fewer, a bulk replay over several subscriptions
/// can wait on itself until the pool times out (the deliveries under way hold every
/// connection, and are not driven on while a subscription is looked up).
const CONNECTIONS: u32 = 5;
const _: () = assert!(CONNECTIONS as usize > CONCURRENCY);

/// `deliveries replay` arguments.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_SHORT, after_long_help = EXIT_CODES)]
pub struct ReplayArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The queue the sidecar drains: redis://host:6379 (rediss:// with TLS), or the SQL outbox
    /// in postgres://…, mysql://…, sqlite://… (usually the --database URL itself).
    #[arg(long, value_name = "URL", env = "FASTAPIHOOKS_QUEUE_URL")]
    queue: String,
    /// Redis only: the queue's key prefix (as `start --key-prefix`).
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "fastapihooks",
        env = "FASTAPIHOOKS_REDIS_KEY_PREFIX"
    )]
    key_prefix: String,
    /// PostgreSQL only: the schema the tables live in (its `search_path`), for the store and
    /// the outbox alike.
    #[arg(long, value_name = "SCHEMA", env = "FASTAPIHOOKS_POSTGRES_SCHEMA")]
    postgres_schema: Option<String>,
    /// The deliveries to replay, `dlv_…`. Without ids, those matching the filters are.
    #[arg(
        value_name = "ID",
        value_parser = history_flags::delivery_id,
        conflicts_with_all = ["status", "subscription", "event", "event_id", "owner", "since", "until", "all"]
    )]
    ids: Vec<DeliveryId>,
    /// Only deliveries in this status: pending, delivered, failed or dead. Default: the dead
    /// letters (failed and dead), and delivered ones too with --force.
    #[arg(long, value_name = "STATUS", value_parser = history_flags::status)]
    status: Option<DeliveryStatus>,
    /// Only deliveries to this subscription, `sub_…`.
    #[arg(long, value_name = "ID", value_parser = fields::subscription_id)]
    subscription: Option<SubscriptionId>,
    /// Only deliveries of events whose name passes this filter: `order.created`, `order.*`.
    #[arg(long, value_name = "FILTER", value_parser = fields::event_filter)]
    event: Option<EventFilter>,
    /// Only deliveries of this event, `evt_…`.
    #[arg(long, value_name = "ID", value_parser = history_flags::event_id)]
    event_id: Option<EventId>,
    /// Only deliveries of this owner's events.
    #[arg(long)]
    owner: Option<String>,
    /// Only deliveries made at or after this time: a duration ago (`2h`, `30m`) or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = history_flags::time)]
    since: Option<DateTime<Utc>>,
    /// Only deliveries made before this time: a duration ago (`2h`, `30m`) or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = history_flags::time)]
    until: Option<DateTime<Utc>>,
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
        let query = DeliveryQuery {
            status: self.status,
            subscription_id: self.subscription.clone(),
            event: self.event.clone(),
            event_id: self.event_id.clone(),
            owner: self.owner.clone(),
            since: self.since,
            until: self.until,
            ..DeliveryQuery::default()
        };
        let filtered = query.status.is_some()
            || query.subscription_id.is_some()
            || query.event.is_some()
            || query.event_id.is_some()
            || query.owner.is_some()
            || query.since.is_some()
            || query.until.is_some();
        filtered.then_some(query)
    }

    /// Connects to the SQL database at `url` (named by `flag` in messages) and insists that
    /// every migration is applied.
    async fn connect_sql(&self, flag: &str, url: &str) -> anyhow::Result<SqlStore> {
        let mut options = SqlStoreOptions::new(url)
            .connect_timeout(std::time::Duration::from_secs(
                self.database.connect_timeout,
            ))
            .max_connections(CONNECTIONS)
            .run_migrations(false);
        if let Some(schema) = &self.postgres_schema {
            options = options.postgres_schema(schema);
        }
        let store = options
            .connect()
            .await
            .with_context(|| format!("{flag} {}: cannot connect", redacted(url)))?;
        let pending = store.pending_migrations().await?;
        if !pending.is_empty() {
            anyhow::bail!(
                "{flag} {}: {} migration(s) not applied yet; run `fastapihooks migrate` first",
                redacted(url),
                pending.len()
            );
        }
        Ok(store)
    }

    /// The queue `--queue` names: Redis, or the SQL outbox (sharing the store's connections
    /// when it is the store's database).
    async fn open_queue(&self, store: &SqlStore) -> anyhow::Result<Arc<dyn Backend>> {
        let scheme = self
            .queue
            .split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
            .unwrap_or_default();
        match scheme.as_str() {
            "redis" | "rediss" => self.open_redis().await,
            "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite" => {
                if self.queue == self.database.url {
                    return Ok(Arc::new(SqlBackend::for_store(store)));
                }
                let outbox = self.connect_sql("--queue", &self.queue).await?;
                Ok(Arc::new(SqlBackend::new(outbox.connection().clone())))
            }
            _ => anyhow::bail!(
                "--queue {}: unsupported scheme {scheme:?}; expected redis://, rediss://, postgres://, mysql:// or sqlite://",
                redacted(&self.queue)
            ),
        }
    }

    #[cfg(feature = "redis")]
    async fn open_redis(&self) -> anyhow::Result<Arc<dyn Backend>> {
        use fastapihooks_core::{RedisBackend, RedisConfig};
        let queue =
            RedisBackend::connect(RedisConfig::new(&self.queue).key_prefix(&self.key_prefix))
                .await
                .with_context(|| format!("--queue {}: cannot connect", redacted(&self.queue)))?;
        Ok(Arc::new(queue))
    }

    #[cfg(not(feature = "redis"))]
    async fn open_redis(&self) -> anyhow::Result<Arc<dyn Backend>> {
        anyhow::bail!("this build of fastapihooks has no Redis support (cargo feature `redis`)")
    }
}

/// A replay that left part of what it was asked: ids that name no delivery, or deliveries
/// whose subscription is disabled. What was replayed is printed; the process exits with
/// [`Partial::EXIT_CODE`].
#[derive(Debug)]
pub struct Partial {
    /// Ids that named no delivery.
    pub not_found: u64,
    /// Deliveries left alone because their subscription is disabled.
    pub subscription_disabled: u64,
    /// Whether this was a dry run (which would have been partial).
    pub dry_run: bool,
}

impl Partial {
    /// The process exit code of a partial replay.
    pub const EXIT_CODE: u8 = 3;

    /// The error for `summary`, if it left anything.
    fn of(summary: &ReplaySummary, dry_run: bool) -> Option<Self> {
        (summary.not_found > 0 || summary.subscription_disabled > 0).then_some(Self {
            not_found: summary.not_found,
            subscription_disabled: summary.subscription_disabled,
            dry_run,
        })
    }
}

impl std::fmt::Display for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.not_found > 0 {
            parts.push(format!("{} id(s) named no delivery", self.not_found));
        }
        if self.subscription_disabled > 0 {
            parts.push(format!(
                "{} delivery(ies) left alone because their subscription is disabled (enable it \
                 with `fastapihooks subscriptions update ID --enable`, then replay again)",
                self.subscription_disabled
            ));
        }
        let what = if self.dry_run {
            "a replay would be partial (dry run: nothing changed)"
        } else {
            "partly replayed"
        };
        write!(f, "{what}: {}", parts.join("; "))
    }
}

impl std::error::Error for Partial {}

/// Replays the named deliveries, or every one matching the filters, and prints what each came
/// to (or, with `--dry-run`, what it would come to).
pub async fn run(args: ReplayArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let query = args.query();
    if args.ids.is_empty() && query.is_none() && !args.all {
        anyhow::bail!(
            "nothing to replay was named: give delivery ids (dlv_…), a filter (--status, \
             --subscription, --event, --event-id, --owner, --since, --until), or --all to replay \
             every dead letter"
        );
    }
    let store = args.connect_sql("--database", &args.database.url).await?;
    // A dry run opens the queue too: it then tells whether the replay itself could run.
    let backend = args.open_queue(&store).await?;
    let replay = Replay::new(Arc::new(store.clone()), backend)
        .resend_delivered(args.force)
        .concurrency(CONCURRENCY);
    let bar = !args.json && std::io::stderr().is_terminal();
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
    let bar = if bar {
        let total = replay
            .count(query)
            .await
            .context("counting the deliveries to replay")?;
        Some(progress_bar(total))
    } else {
        None
    };
    let mut so_far = ReplaySummary::default();
    let result = replay
        .matching(query, |summary| {
            so_far = *summary;
            if let Some(bar) = &bar {
                advance(bar, summary);
            }
        })
        .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let summary = result.with_context(|| {
        format!(
            "the replay stopped part way ({}); run the same command again to resume it: nothing \
             is replayed twice",
            view::summary_line(&so_far)
        )
    })?;
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
                add(&mut summary, outcome);
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
        add(&mut left, expected);
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

/// Counts `outcome` in `summary`.
fn add(summary: &mut ReplaySummary, outcome: ReplayOutcome) {
    let slot = match outcome {
        ReplayOutcome::Queued => &mut summary.queued,
        ReplayOutcome::Resumed => &mut summary.resumed,
        ReplayOutcome::AlreadyPending => &mut summary.already_pending,
        ReplayOutcome::Delivered => &mut summary.delivered,
        ReplayOutcome::SubscriptionDisabled => &mut summary.subscription_disabled,
        ReplayOutcome::NotFound => &mut summary.not_found,
        // An outcome added to the core later has no count here until the summary has one.
        _ => return,
    };
    *slot += 1;
}

/// A progress bar on stderr out of `total`.
fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "replaying [{bar:30}] {pos}/{len} {msg} ({elapsed}, about {eta} left)",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Moves the bar to `summary` (the total grows when a resumed replay finds more than counted).
fn advance(bar: &ProgressBar, summary: &ReplaySummary) {
    let done = summary.total();
    if bar.length().is_some_and(|len| done > len) {
        bar.set_length(done);
    }
    bar.set_position(done);
    bar.set_message(format!(
        "queued {}, resumed {}",
        summary.queued, summary.resumed
    ));
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
    }

    #[test]
    fn ids_and_filters_together_are_a_usage_error() {
        let id = DeliveryId::new();
        let err = parse(&[id.as_str(), "--status", "dead"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(parse(&[id.as_str(), "--all"]).is_err());
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

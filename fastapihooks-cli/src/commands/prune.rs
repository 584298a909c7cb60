//! `fastapihooks prune`: retention of the delivery history. Removes the delivered deliveries
//! whose state last changed longer ago than `--older-than`, their attempts, and the events left
//! with no delivery; with `--queue` naming the SQL outbox, its dead rows that died that long ago
//! too. In short batches (`--batch`) with a pause between them, so the application's and the
//! sidecar's writes get in. Failed, dead and pending deliveries are kept however old.
//!
//! ```text
//! fastapihooks prune --database "$FASTAPIHOOKS_DATABASE_URL" --older-than 30d
//! fastapihooks prune --database "$FASTAPIHOOKS_DATABASE_URL" --older-than 30d --queue "$FASTAPIHOOKS_DATABASE_URL"
//! fastapihooks prune --database "$FASTAPIHOOKS_DATABASE_URL" --older-than 12h --dry-run --json
//! ```
//!
//! `start --retain 30d` does the same in the sidecar, every hour.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Args;
use fastapihooks_core::{
    DeliveryQuery, DeliveryStatus, Pruned, SqlBackend, SqlStore, Store, prune_history,
    store::MAX_PRUNE_BATCHES,
};
use serde::Serialize;

use crate::commands::database::DatabaseArgs;
use crate::commands::queue::{QueueArgs, QueueKind};
use crate::output::{self, time::timestamp};

/// The pause between two batches: long enough for other writers to get the lock in between.
const PAUSE: Duration = Duration::from_millis(20);

/// Deliveries listed per page when a dry run counts them.
const DRY_RUN_PAGE: usize = 500;

/// What the Redis queue's dead letters come to: nothing to prune.
const REDIS_DEAD_LETTERS: &str = "the Redis dead-letter stream is capped by its own length \
     (RedisConfig::dead_letter_max_len, 100,000 by default): nothing to prune";

/// `prune` arguments.
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Prune delivered deliveries whose state last changed longer ago than this: `30d`, `12h`,
    /// `1week`.
    #[arg(long, value_name = "DURATION", value_parser = retention_period)]
    older_than: Duration,
    /// The queue the sidecar drains: with the SQL outbox (the --database itself, or another SQL
    /// URL), its dead rows that died longer ago than --older-than are pruned too. A Redis
    /// queue's dead letters are capped by the stream's own length: nothing is pruned there.
    #[command(flatten)]
    queue: QueueArgs,
    /// Deliveries (or outbox rows) removed per step; each step is one short transaction.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = batch)]
    batch: usize,
    /// Change nothing: print how many delivered deliveries would be pruned (their attempts and
    /// events, and the outbox's dead rows, are not counted).
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object instead of text: {"dry_run", "older_than" (the cut-off time),
    /// "pruned": {"deliveries", "attempts", "events"}, "dead_letters"}; a count not computed
    /// (in a dry run, or without a SQL outbox) is null.
    #[arg(long)]
    json: bool,
}

/// `--older-than`, `start --retain`: a duration (`30d`, `12h`, `1week`) longer than zero, and
/// not so long that the cut-off would precede every representable time.
pub fn retention_period(text: &str) -> Result<Duration, String> {
    let period = humantime::parse_duration(text)
        .map_err(|e| format!("expected a duration such as 30d, 12h or 1week: {e}"))?;
    if period.is_zero() {
        return Err(format!(
            "{text} would remove every delivered delivery, however recent: give how long to keep \
             them, such as 30d or 12h"
        ));
    }
    cut_off(period).ok_or_else(|| format!("{text} ago is before any representable time"))?;
    Ok(period)
}

/// `now` minus `period`, if representable.
pub(crate) fn cut_off(period: Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(period)
        .ok()
        .and_then(|period| Utc::now().checked_sub_signed(period))
}

/// `--batch`: at least 1.
fn batch(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Where the outbox's dead letters are, if anywhere.
enum DeadLetters {
    /// No `--queue`.
    NotAsked,
    /// A Redis queue: capped, nothing to prune.
    Redis,
    /// The SQL outbox.
    Outbox(SqlBackend),
}

/// What `prune --json` prints.
#[derive(Debug, Serialize)]
struct Report {
    dry_run: bool,
    /// The cut-off: what last changed before it is pruned.
    older_than: String,
    pruned: PrunedView,
    /// Outbox rows removed; `null` without a SQL outbox, or in a dry run.
    dead_letters: Option<u64>,
}

/// Counts of what was (or would be) removed; `null` when not computed (a dry run).
#[derive(Debug, Serialize)]
struct PrunedView {
    deliveries: u64,
    attempts: Option<u64>,
    events: Option<u64>,
}

impl From<Pruned> for PrunedView {
    fn from(p: Pruned) -> Self {
        Self {
            deliveries: p.deliveries,
            attempts: Some(p.attempts),
            events: Some(p.events),
        }
    }
}

/// Prunes (or, with `--dry-run`, counts) the old delivered history, and the outbox's old dead
/// rows with `--queue`, and prints what went.
pub async fn run(args: PruneArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let cut_off = cut_off(args.older_than).context("--older-than: the cut-off is out of range")?;
    let sql = args.database.options(1);
    let store = sql.connect("--database", &args.database.url).await?;
    let dead_letters = match args.queue.queue.as_deref() {
        None => DeadLetters::NotAsked,
        Some(url) => match args.queue.kind()? {
            QueueKind::Redis => DeadLetters::Redis,
            QueueKind::Sql if url == args.database.url => {
                DeadLetters::Outbox(SqlBackend::for_store(&store))
            }
            QueueKind::Sql => {
                let outbox = sql.connect("--queue", url).await?;
                DeadLetters::Outbox(SqlBackend::new(outbox.connection().clone()))
            }
        },
    };
    let (pruned, dead) = if args.dry_run {
        let deliveries = count_delivered_before(&store, cut_off).await?;
        let pruned = PrunedView {
            deliveries,
            attempts: None,
            events: None,
        };
        (pruned, None)
    } else {
        let pruned = prune_history(&store, cut_off, args.batch, PAUSE)
            .await
            .context("pruning the delivery history")?;
        let dead = match &dead_letters {
            DeadLetters::Outbox(outbox) => Some(
                prune_dead_letters(outbox, cut_off, args.batch, PAUSE)
                    .await
                    .context("pruning the outbox's dead letters")?,
            ),
            _ => None,
        };
        (PrunedView::from(pruned), dead)
    };
    if args.json {
        return output::json(
            out,
            &Report {
                dry_run: args.dry_run,
                older_than: timestamp(cut_off),
                pruned,
                dead_letters: dead,
            },
        );
    }
    let older_than = humantime::format_duration(args.older_than);
    let before = format!(
        "last changed before {} (older than {older_than})",
        timestamp(cut_off)
    );
    if args.dry_run {
        writeln!(
            out,
            "dry run: would prune {} delivered deliveries {before}; nothing was changed",
            pruned.deliveries
        )?;
        writeln!(
            out,
            "their attempts and events, and the outbox's dead letters, are not counted in a dry run"
        )?;
    } else {
        writeln!(
            out,
            "pruned {} delivered deliveries, {} attempts, {} events {before}",
            pruned.deliveries,
            pruned.attempts.unwrap_or_default(),
            pruned.events.unwrap_or_default()
        )?;
    }
    match (dead_letters, dead) {
        (DeadLetters::Outbox(_), Some(dead)) => {
            writeln!(out, "pruned {dead} dead letters from the SQL outbox")?;
        }
        (DeadLetters::Outbox(_), None) => {}
        (DeadLetters::Redis, _) => writeln!(out, "dead letters: {REDIS_DEAD_LETTERS}")?,
        (DeadLetters::NotAsked, _) => writeln!(
            out,
            "the SQL outbox's dead letters were not pruned: pass --queue URL to prune them too"
        )?,
    }
    writeln!(
        out,
        "failed and dead deliveries are kept, however old, until they are replayed"
    )?;
    Ok(())
}

/// Delivered deliveries whose state last changed before `cut_off`: those a prune would remove.
/// They were made before the cut-off too, so only those pages are listed.
async fn count_delivered_before(store: &SqlStore, cut_off: DateTime<Utc>) -> anyhow::Result<u64> {
    let mut query = DeliveryQuery::status(DeliveryStatus::Delivered)
        .until(cut_off)
        .limit(DRY_RUN_PAGE);
    let mut count = 0u64;
    loop {
        let page = store
            .list_deliveries(&query)
            .await
            .context("counting the deliveries to prune")?;
        let Some(last) = page.last() else {
            return Ok(count);
        };
        count += page.iter().filter(|d| d.updated_at < cut_off).count() as u64;
        query.before = Some(last.id.clone());
    }
}

/// Deletes the outbox's dead rows that died before `cut_off`, `batch` at a time with `pause`
/// between, until none is left (at most [`MAX_PRUNE_BATCHES`] batches); returns how many.
pub(crate) async fn prune_dead_letters(
    outbox: &SqlBackend,
    cut_off: DateTime<Utc>,
    batch: usize,
    pause: Duration,
) -> fastapihooks_core::Result<u64> {
    let mut total = 0;
    for n in 0..MAX_PRUNE_BATCHES {
        if n > 0 {
            tokio::time::sleep(pause).await;
        }
        let removed = outbox.prune_dead_letters(cut_off, batch).await?;
        if removed == 0 {
            break;
        }
        total += removed;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_periods_are_durations_longer_than_zero() {
        assert_eq!(
            retention_period("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            retention_period("12h").unwrap(),
            Duration::from_secs(12 * 3600)
        );
        let zero = retention_period("0s").unwrap_err();
        assert!(zero.contains("every delivered delivery"), "{zero}");
        assert!(retention_period("soon").unwrap_err().contains("30d"));
        assert!(retention_period("1000000000years").is_err());
        assert_eq!(batch("1"), Ok(1));
        assert!(batch("0").is_err());
    }
}

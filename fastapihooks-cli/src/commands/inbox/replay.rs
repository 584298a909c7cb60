//! `fastapihooks inbox replay`: process received webhooks again — named ones, or every one
//! matching filters — through the inbox's own queue, the one the application's inbox worker
//! drains (`Worker::for_inbox`): by default the outbox table of the inbox
//! (`OutboxTable::Inbox`, `fastapihooks_inbox_queue`) in the store's database, or a Redis queue
//! under the inbox's key prefix. Never the queue `fastapihooks start` drains.
//!
//! Each entry goes through `fastapihooks_core::inbox::replay_entry`: a dead entry (or, with
//! `--processed-too`, a processed one) becomes received again and its processing is queued; any
//! other is left as it is. It is safe to repeat: a replayed entry is received, and a second
//! replay skips it.
//!
//! ```text
//! fastapihooks inbox replay inb_01JE6Y0V3K8Q2M4N6P8R0T2V4W
//! fastapihooks inbox replay --status dead --source github --since 2h
//! fastapihooks inbox replay --all --queue redis://127.0.0.1:6379 --queue-prefix shop-inbox --dry-run
//! ```

use std::collections::HashSet;
use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use fastapihooks_core::inbox::{Inbox as _, InboxReplay, InboxStatus, replay_entry};
use fastapihooks_core::{InboxId, OutboxTable, Queue, SqlBackend, SqlStore};

use super::{INBOX_FILTER_IDS, InboxFilters};
use crate::commands::database::{DatabaseArgs, SqlConnect};
use crate::commands::queue::{QueueArgs, QueueKind};
use crate::commands::replaying::{Partial, progress_bar, progress_shown};
use crate::output::inbox::{self as view, EntryOutcome, EntryReplayView, InboxReplaySummary};
use crate::output::{self, table};

/// The exit codes, for `-h`.
const EXIT_CODES_SHORT: &str =
    "Exit codes: 0 done, 1 failed, 2 bad command line, 3 partly done (see --help).";

/// The exit codes, for `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  everything asked was replayed, or had nothing to do (skipped: received, processing or
     failed — already on its way —, or processed without --processed-too)
  1  the replay failed: the store or the queue cannot be reached, or nothing to replay was named
     (no id, no filter, no --all). Running the same command again goes on where it stopped: a
     replayed entry is received, and is not replayed twice
  2  the command line is wrong (an unknown flag, a bad id or --since)
  3  partly done: some ids named no inbox entry; the rest was replayed";

/// Database connections: the entries are replayed one after another, each reopened in the
/// store, then queued (on the same database by default).
const CONNECTIONS: u32 = 2;

/// Entries read per page while collecting those matching the filters.
const PAGE: usize = 500;

/// Where the inbox's queue is.
#[derive(Debug, Clone, Args)]
pub struct InboxQueueArgs {
    /// The inbox's queue, the one the application's inbox worker drains. Default: the inbox
    /// queue table (`fastapihooks_inbox_queue`) in --database. Else that table in another
    /// database (postgres://…, mysql://…, sqlite://…), or redis://host:6379 (rediss:// with TLS)
    /// under --queue-prefix. Never the queue `fastapihooks start` drains.
    #[arg(long, value_name = "URL", env = "FASTAPIHOOKS_INBOX_QUEUE_URL")]
    pub queue: Option<String>,
    /// Redis only: the inbox queue's key prefix (the `RedisConfig::key_prefix` of the
    /// application's inbox queue; not the sidecar's).
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "fastapihooks-inbox",
        env = "FASTAPIHOOKS_INBOX_QUEUE_PREFIX"
    )]
    pub queue_prefix: String,
}

impl InboxQueueArgs {
    /// Opens the inbox's queue: the `Inbox` outbox table of `store` (no `--queue`, or `--queue`
    /// the store's own URL `store_url`) or of the database `--queue` names (connected as `sql`
    /// says), or Redis under `--queue-prefix`.
    async fn open(
        &self,
        store: &SqlStore,
        store_url: &str,
        sql: &SqlConnect,
    ) -> anyhow::Result<Box<dyn Queue>> {
        let Some(url) = self.queue.as_deref() else {
            return Ok(Box::new(
                SqlBackend::for_store(store).on_table(OutboxTable::Inbox),
            ));
        };
        // `start`'s and `deliveries replay`'s flags, with the inbox's prefix: the same scheme
        // check and the same Redis connection.
        let queue = QueueArgs {
            queue: Some(url.to_owned()),
            key_prefix: self.queue_prefix.clone(),
        };
        match queue.kind()? {
            QueueKind::Redis => open_redis(&queue).await,
            QueueKind::Sql if url == store_url => Ok(Box::new(
                SqlBackend::for_store(store).on_table(OutboxTable::Inbox),
            )),
            QueueKind::Sql => {
                let db = sql.connect("--queue", url).await?;
                Ok(Box::new(
                    SqlBackend::new(db.connection().clone()).on_table(OutboxTable::Inbox),
                ))
            }
        }
    }
}

#[cfg(feature = "redis")]
async fn open_redis(queue: &QueueArgs) -> anyhow::Result<Box<dyn Queue>> {
    Ok(Box::new(queue.redis(None).await?))
}

#[cfg(not(feature = "redis"))]
async fn open_redis(_: &QueueArgs) -> anyhow::Result<Box<dyn Queue>> {
    anyhow::bail!(crate::commands::queue::NO_REDIS)
}

/// `inbox replay` arguments.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_SHORT, after_long_help = EXIT_CODES)]
pub struct ReplayArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    queue: InboxQueueArgs,
    /// The received webhooks to replay, `inb_…`. Without ids, those matching the filters are
    /// (without --status, the dead ones, and the processed ones too with --processed-too),
    /// oldest first.
    #[arg(
        value_name = "ID",
        value_parser = super::inbox_id,
        conflicts_with_all = INBOX_FILTER_IDS,
        conflicts_with = "all"
    )]
    ids: Vec<InboxId>,
    #[command(flatten)]
    filters: InboxFilters,
    /// Replay every dead entry (and every processed one with --processed-too): needed when
    /// neither an id nor a filter is given, so that it is never done by accident.
    #[arg(long)]
    all: bool,
    /// Process processed entries again too. Without it a processed entry is skipped.
    #[arg(long)]
    processed_too: bool,
    /// Change nothing: print each entry's status and whether it would be queued.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object instead of text (and never a progress bar).
    #[arg(long)]
    json: bool,
}

/// Replays the named entries, or every one matching the filters, and prints what each came to
/// (or, with `--dry-run`, would come to).
pub async fn run(args: ReplayArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.ids.is_empty() && !args.filters.any() && !args.all {
        anyhow::bail!(
            "nothing to replay was named: give inbox entry ids (inb_…), a filter (--status, \
             --source, --external-id, --since, --until), or --all to replay every dead entry"
        );
    }
    let sql = args.database.options(CONNECTIONS);
    let store = sql.connect("--database", &args.database.url).await?;
    // Opened for a dry run too: it then tells whether the replay itself could run.
    let queue = args.queue.open(&store, &args.database.url, &sql).await?;
    let ids = if args.ids.is_empty() {
        matching(&args, &store).await?
    } else {
        distinct(&args.ids)
    };

    let bar = progress_shown(args.json).then(|| progress_bar(ids.len() as u64));
    let mut summary = InboxReplaySummary::default();
    let mut views = Vec::with_capacity(ids.len());
    for id in &ids {
        let result = if args.dry_run {
            plan(&store, id, args.processed_too).await
        } else {
            replay(&store, &*queue, id, args.processed_too).await
        };
        let (outcome, status) = match result {
            Ok(done) => done,
            Err(e) => {
                if let Some(bar) = &bar {
                    bar.finish_and_clear();
                }
                return Err(e.context(format!(
                    "replaying inbox entry {id} (before it: {}); run the same command again to \
                     go on: a replayed entry is received, and is not replayed twice",
                    view::summary_line(&summary)
                )));
            }
        };
        summary.add(outcome);
        views.push(EntryReplayView::new(id, outcome, status));
        if let Some(bar) = &bar {
            bar.set_message(format!(
                "queued {}, skipped {}",
                summary.queued, summary.skipped
            ));
            bar.inc(1);
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    if args.json {
        output::json(
            out,
            &view::InboxReplayReport {
                dry_run: args.dry_run,
                entries: &views,
                summary,
            },
        )?;
    } else {
        view::outcomes(out, &views, &summary, args.dry_run, table::colour_enabled())?;
    }
    match Partial::not_found("inbox entry", summary.not_found, args.dry_run) {
        Some(partial) => Err(partial.into()),
        None => Ok(()),
    }
}

/// Replays entry `id`: what it came to, and its status after.
async fn replay(
    store: &SqlStore,
    queue: &dyn Queue,
    id: &InboxId,
    processed_too: bool,
) -> anyhow::Result<(EntryOutcome, Option<InboxStatus>)> {
    match replay_entry(store, queue, id, processed_too).await {
        Ok(InboxReplay::Queued(entry)) => Ok((EntryOutcome::Queued, Some(entry.status))),
        Ok(InboxReplay::Skipped(entry)) => Ok((EntryOutcome::Skipped, Some(entry.status))),
        Err(fastapihooks_core::Error::InboxEntryNotFound { .. }) => {
            Ok((EntryOutcome::NotFound, None))
        }
        Err(e) => Err(e.into()),
    }
}

/// What replaying entry `id` would come to, as `Inbox::reopen` decides, and its status now;
/// changes nothing.
async fn plan(
    store: &SqlStore,
    id: &InboxId,
    processed_too: bool,
) -> anyhow::Result<(EntryOutcome, Option<InboxStatus>)> {
    let Some(entry) = store.get_inbox_entry(id).await? else {
        return Ok((EntryOutcome::NotFound, None));
    };
    let reopened = match entry.status {
        InboxStatus::Dead => true,
        InboxStatus::Processed => processed_too,
        InboxStatus::Received | InboxStatus::Processing | InboxStatus::Failed => false,
    };
    let outcome = if reopened {
        EntryOutcome::Queued
    } else {
        EntryOutcome::Skipped
    };
    Ok((outcome, Some(entry.status)))
}

/// The ids of the entries matching the filters, oldest first: with `--status`, those in it;
/// without, the dead ones, and the processed ones too with `--processed-too`. Collected before
/// any is replayed, so that the replay neither misses nor repeats one as statuses change.
async fn matching(args: &ReplayArgs, store: &SqlStore) -> anyhow::Result<Vec<InboxId>> {
    let statuses = match args.filters.status {
        Some(status) => vec![status],
        None if args.processed_too => vec![InboxStatus::Dead, InboxStatus::Processed],
        None => vec![InboxStatus::Dead],
    };
    let mut ids = Vec::new();
    for status in statuses {
        let mut query = args.filters.query(None, PAGE);
        query.status = Some(status);
        loop {
            let page = store
                .list_inbox(&query)
                .await
                .context("listing the inbox entries to replay")?;
            let full = page.len() == PAGE;
            query.before = page.last().map(|e| e.id.clone());
            ids.extend(page.into_iter().map(|e| e.id));
            if !full {
                break;
            }
        }
    }
    ids.sort();
    Ok(ids)
}

/// `ids` without repeats, in their order.
fn distinct(ids: &[InboxId]) -> Vec<InboxId> {
    let mut seen = HashSet::new();
    ids.iter().filter(|id| seen.insert(*id)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<ReplayArgs, clap::Error> {
        let cli = crate::Cli::try_parse_from(
            [
                "fastapihooks",
                "inbox",
                "replay",
                "--database",
                "sqlite://x.db",
            ]
            .iter()
            .chain(args),
        )?;
        match cli.command {
            crate::Command::Inbox(super::super::InboxCommand::Replay(args)) => Ok(args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ids_with_filters_or_all_are_a_usage_error() {
        let id = InboxId::new();
        let err = parse(&[id.as_str(), "--status", "dead"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(parse(&[id.as_str(), "--all"]).is_err());
        assert!(parse(&[id.as_str(), "--source", "github"]).is_err());
        assert!(parse(&["--status", "done"]).is_err());
        assert!(parse(&["dlv_01JE6Y0V3K8Q2M4N6P8R0T2V4W"]).is_err());
    }

    #[test]
    fn the_redis_prefix_is_the_inbox_s_own_by_default() {
        let args = parse(&["--all"]).unwrap();
        assert_eq!(args.queue.queue_prefix, "fastapihooks-inbox");
        assert_eq!(args.queue.queue, None);
    }

    #[test]
    fn repeated_ids_are_replayed_once() {
        let (a, b) = (InboxId::new(), InboxId::new());
        assert_eq!(
            distinct(&[a.clone(), b.clone(), a.clone()]),
            [a.clone(), b.clone()]
        );
    }
}

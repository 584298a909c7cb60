//! The receive route's cost: webhooks acknowledged per second by `InboxRoute` on one core
//! (verify the Standard Webhooks signature over the raw body, store the webhook once in the
//! inbox, queue its processing on the inbox's queue, 200), the inbox in SQLite and in
//! PostgreSQL, beside the same endpoint only verifying.
//!
//! The `inbox-app` part runs on core 0, the load generator on core 1, sending webhooks each
//! signed as it is sent under a `webhook-id` of its own, so every request is a new row. No
//! inbox worker runs: the figure is the acknowledgement. After the window the conductor counts
//! the inbox's rows and its queue's: each must equal the 200s the load generator counted.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use fastapihooks_core::{SqlStore, SqlStoreOptions};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::Serialize;

use super::part::{LOAD_CORE, Part, Pinning, SERVER_CORE};
use super::{Sizes, median_by};
use crate::durable::env::DurableEnv;
use crate::durable::{QueueKind, Services};
use crate::wire::{INBOX_PATH, INBOX_SECRET, InboxAppDone, Listening, LoadDone};

/// Where the endpoint stores what it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Storage {
    /// Nowhere: the verify-only baseline.
    VerifyOnly,
    /// The inbox and its queue in an SQLite file of the run (WAL, `SqlStore`'s defaults).
    Sqlite,
    /// The inbox and its queue in the run's PostgreSQL schema.
    Postgres,
}

/// One row of the receiving table.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Row {
    /// Where webhooks are stored.
    pub storage: Storage,
    /// Every request under the same `webhook-id`: one new webhook, then duplicates.
    pub same_id: bool,
}

impl Row {
    /// Verify only, the inbox in SQLite (new webhooks, then duplicates); with `postgres`, the
    /// inbox in PostgreSQL. (No duplicate row on PostgreSQL: each duplicate is a unique
    /// violation, which the server logs as an error.)
    pub fn all(postgres: bool) -> Vec<Row> {
        let row = |storage, same_id| Row { storage, same_id };
        let mut rows = vec![
            row(Storage::VerifyOnly, false),
            row(Storage::Sqlite, false),
            row(Storage::Sqlite, true),
        ];
        if postgres {
            rows.push(row(Storage::Postgres, false));
        }
        rows
    }

    /// `verify only (Verified<Value>)`, `InboxRoute · inbox in SQLite`, …
    pub fn label(&self) -> String {
        let route = match self.storage {
            Storage::VerifyOnly => "verify only (Verified<Value>, nothing stored)",
            Storage::Sqlite => "InboxRoute · inbox in SQLite (WAL, file)",
            Storage::Postgres => "InboxRoute · inbox in PostgreSQL",
        };
        if self.same_id {
            format!("{route} · every request the same id (duplicates)")
        } else {
            route.to_owned()
        }
    }

    /// The rows the inbox (and its queue) must hold after `acknowledged` 200s: one per webhook
    /// acknowledged, or the one webhook when every request had the same id. `None` without an
    /// inbox.
    pub fn expected_rows(&self, acknowledged: u64) -> Option<u64> {
        match (self.storage, self.same_id) {
            (Storage::VerifyOnly, _) => None,
            (_, true) => Some(acknowledged.min(1)),
            (_, false) => Some(acknowledged),
        }
    }
}

/// One run of one row.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// Requests answered 200 per second in the measured window.
    pub requests_per_s: f64,
    /// Latency percentiles (µs) in the measured window.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Slowest answer (µs).
    pub max_us: u64,
    /// Requests not answered 2xx (must be 0).
    pub failed: u64,
    /// Requests answered 2xx, warm-up included: every one a webhook the inbox must hold.
    pub acknowledged: u64,
    /// CPU of the endpoint's process while it served (from listening to shutdown) per
    /// acknowledged request (µs); the database server's own CPU (PostgreSQL) is not in it,
    /// SQLite's is.
    pub app_cpu_us_per_request: f64,
    /// CPU of the endpoint's process before it listened (ms): not in the figure above.
    pub app_startup_cpu_ms: f64,
    /// Peak RSS of the endpoint's process (KiB).
    pub app_peak_rss_kib: u64,
    /// CPU of the load generator per request (µs), the signing included.
    pub load_cpu_us_per_request: f64,
    /// How busy the load core was during the window (the load generator), 0–1.
    pub load_core_busy: f64,
    /// Rows in the inbox after the window (`None`: no inbox).
    pub inbox_rows: Option<u64>,
    /// Rows in the inbox's queue after the window (no worker leased or removed any).
    pub queue_rows: Option<u64>,
    /// What both must be.
    pub expected_rows: Option<u64>,
}

impl Run {
    /// Whether every request was acknowledged and the inbox and its queue hold exactly one row
    /// per webhook acknowledged.
    pub fn exact(&self) -> bool {
        self.failed == 0
            && self.acknowledged > 0
            && self.inbox_rows == self.expected_rows
            && self.queue_rows == self.expected_rows
    }
}

/// The runs of a row and their median (by requests/s).
#[derive(Clone, Debug, Serialize)]
pub struct RowResult {
    /// The row.
    pub row: Row,
    /// Its label.
    pub label: String,
    /// The median run.
    pub median: Run,
    /// Every run.
    pub runs: Vec<Run>,
}

/// Measures every row `sizes.repeat` times, interleaved as the route-cost rows are. Without
/// `services`, no PostgreSQL row. SQLite files go in `scratch`.
pub async fn measure(
    pinning: Pinning,
    sizes: &Sizes,
    services: Option<&Services>,
    scratch: &Path,
) -> anyhow::Result<Vec<RowResult>> {
    let rows = Row::all(services.is_some());
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); rows.len()];
    for round in 0..sizes.repeat {
        for (row, runs) in rows.iter().zip(runs.iter_mut()) {
            eprintln!(
                "receive: {} (run {}/{})",
                row.label(),
                round + 1,
                sizes.repeat
            );
            let run = measure_once(pinning, sizes, services, scratch, row).await?;
            if !run.exact() {
                eprintln!(
                    "receive: COUNT MISMATCH, {}: {} acknowledged, {} failed, inbox rows {:?}, \
                     queue rows {:?}, expected {:?}",
                    row.label(),
                    run.acknowledged,
                    run.failed,
                    run.inbox_rows,
                    run.queue_rows,
                    run.expected_rows
                );
            }
            runs.push(run);
        }
    }
    Ok(rows
        .into_iter()
        .zip(runs)
        .filter_map(|(row, runs)| {
            let median = median_by(&runs, |r| r.requests_per_s)?;
            Some(RowResult {
                label: row.label(),
                row,
                median,
                runs,
            })
        })
        .collect())
}

/// One run of `row` in a database of its own: a fresh SQLite file, or a fresh PostgreSQL
/// schema; migrated before the part starts, counted after it stops, removed.
async fn measure_once(
    pinning: Pinning,
    sizes: &Sizes,
    services: Option<&Services>,
    scratch: &Path,
    row: &Row,
) -> anyhow::Result<Run> {
    match row.storage {
        Storage::VerifyOnly => {
            let args = ["--mode".to_owned(), "verify-only".to_owned()];
            measure_in(pinning, sizes, row, &args, None).await
        }
        Storage::Sqlite => {
            let file = scratch.join(format!(
                "inbox-{}.db",
                ulid::Ulid::new().to_string().to_lowercase()
            ));
            let url = format!("sqlite://{}?mode=rwc", file.display());
            let run = async {
                // Migrated here, so the part's CPU is the route's alone.
                let store = SqlStore::connect(&url)
                    .await
                    .with_context(|| format!("migrating {url}"))?;
                close(store).await;
                let args = inbox_args(["--sqlite".to_owned(), url.clone()]);
                // Counted once the part has exited: through a connection of its own.
                measure_in(pinning, sizes, row, &args, Some(&url)).await
            }
            .await;
            for suffix in ["", "-wal", "-shm"] {
                let mut path = file.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
            run
        }
        Storage::Postgres => {
            let services = services.context("the PostgreSQL row needs the services")?;
            // The outbox environment: the schema, migrated, and no Redis key.
            let env = DurableEnv::create(QueueKind::Outbox, services).await?;
            let args = inbox_args(env.place().to_args());
            let run = async {
                let mut run = measure_in(pinning, sizes, row, &args, None).await?;
                count_rows(env.store().connection(), &mut run).await?;
                Ok(run)
            }
            .await;
            env.remove().await;
            run
        }
    }
}

fn inbox_args(place: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut args = vec!["--mode".to_owned(), "inbox".to_owned()];
    args.extend(place);
    args
}

/// Starts the part with `args`, loads it from the load core, stops it; with `sqlite`, counts
/// the rows of that database once the part has exited.
async fn measure_in(
    pinning: Pinning,
    sizes: &Sizes,
    row: &Row,
    args: &[String],
    sqlite: Option<&str>,
) -> anyhow::Result<Run> {
    let mut app_args = vec!["inbox-app".to_owned()];
    app_args.extend_from_slice(args);
    let mut app = Part::start("inbox-app", pinning, SERVER_CORE, &app_args)?;
    let listening: Listening = app.next(Duration::from_secs(30)).await?;
    let mut load_args = vec![
        "load".to_owned(),
        "--addr".to_owned(),
        listening.addr,
        "--path".to_owned(),
        INBOX_PATH.to_owned(),
        "--webhooks".to_owned(),
        INBOX_SECRET.to_owned(),
        "--connections".to_owned(),
        sizes.connections.to_string(),
        "--warmup-ms".to_owned(),
        sizes.warmup_ms.to_string(),
        "--duration-ms".to_owned(),
        sizes.duration_ms.to_string(),
    ];
    if row.same_id {
        load_args.push("--same-id".to_owned());
    }
    let mut load = Part::start("load", pinning, LOAD_CORE, &load_args)?;
    let window = Duration::from_millis(sizes.warmup_ms + sizes.duration_ms);
    let done: LoadDone = load.next(window + Duration::from_secs(60)).await?;
    let app_done: InboxAppDone = app.finish(Duration::from_secs(60)).await?;
    load.stop().await;
    let acknowledged = done.total_ok;
    let mut run = Run {
        requests_per_s: done.measured_ok as f64 / done.measured_secs,
        p50_us: done.p50_us,
        p99_us: done.p99_us,
        max_us: done.max_us,
        failed: done.failed,
        acknowledged,
        app_cpu_us_per_request: (app_done.cpu_ms - app_done.startup_cpu_ms) * 1e3
            / acknowledged.max(1) as f64,
        app_startup_cpu_ms: app_done.startup_cpu_ms,
        app_peak_rss_kib: app_done.peak_rss_kib,
        load_cpu_us_per_request: done.cpu_ms * 1e3 / (acknowledged + done.failed).max(1) as f64,
        load_core_busy: done.cpu_ms / window.as_secs_f64() / 1e3,
        inbox_rows: None,
        queue_rows: None,
        expected_rows: row.expected_rows(acknowledged),
    };
    if let Some(url) = sqlite {
        let store = SqlStoreOptions::new(url)
            .run_migrations(false)
            .max_connections(1)
            .connect()
            .await
            .with_context(|| format!("counting the rows of {url}"))?;
        let counted = count_rows(store.connection(), &mut run).await;
        close(store).await;
        counted?;
    }
    Ok(run)
}

/// Counts the inbox's rows and its queue's into `run`.
async fn count_rows(db: &DatabaseConnection, run: &mut Run) -> anyhow::Result<()> {
    run.inbox_rows = Some(count(db, "fastapihooks_inbox").await?);
    run.queue_rows = Some(count(db, fastapihooks::OutboxTable::Inbox.name()).await?);
    Ok(())
}

/// `SELECT COUNT(*) FROM <table>` (a fixed name of the store's, never input).
async fn count(db: &DatabaseConnection, table: &str) -> anyhow::Result<u64> {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .with_context(|| format!("counting {table}"))?
        .with_context(|| format!("counting {table}: no row"))?;
    let n: i64 = row.try_get("", "n")?;
    Ok(u64::try_from(n)?)
}

async fn close(store: SqlStore) {
    let _ = store.connection().clone().close().await;
}

//! What the replaying commands (`deliveries replay`, `subscriptions enable --replay`, `inbox
//! replay`) share: opening the store and the queue, a bulk replay with its progress bar, and the
//! error of a replay that was partly done (exit code 3).

use std::io::IsTerminal as _;
use std::sync::Arc;

use anyhow::Context as _;
use fastapihooks_core::{DeliveryQuery, Replay, ReplaySummary, SqlStore};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::commands::database::DatabaseArgs;
use crate::commands::queue::QueueArgs;
use crate::output::replay as view;

/// Deliveries a bulk replay works on at once.
const CONCURRENCY: usize = 4;
/// Database connections: one per delivery being replayed, and one more for the subscription
/// look-ups the replay makes meanwhile. With fewer, a bulk replay over several subscriptions
/// can wait on itself until the pool times out (the deliveries under way hold every
/// connection, and are not driven on while a subscription is looked up).
const CONNECTIONS: u32 = 5;
const _: () = assert!(CONNECTIONS as usize > CONCURRENCY);

/// The store (`--database`, in `--postgres-schema` if one is given) and the queue (`--queue`)
/// a replay works on, and a [`Replay`] through them. Both are opened even for a dry run: it
/// then tells whether the replay itself could run.
pub(crate) async fn open(
    database: &DatabaseArgs,
    queue: &QueueArgs,
) -> anyhow::Result<(SqlStore, Replay)> {
    let sql = database.options(CONNECTIONS);
    let store = sql.connect("--database", &database.url).await?;
    let backend = queue.open(&store, &database.url, &sql).await?;
    let replay = Replay::new(Arc::new(store.clone()), backend).concurrency(CONCURRENCY);
    Ok((store, replay))
}

/// Whether a progress bar is drawn: on a terminal, and never with `--json`.
pub(crate) fn progress_shown(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// Replays every delivery matching `query`, with a progress bar on stderr if `bar`. When it
/// stops part way, the error says what was done so far, then `resume` (how to go on).
pub(crate) async fn replay_matching(
    replay: &Replay,
    query: &DeliveryQuery,
    bar: bool,
    resume: &str,
) -> anyhow::Result<ReplaySummary> {
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
    result.with_context(|| {
        format!(
            "the replay stopped part way ({}); {resume}",
            view::summary_line(&so_far)
        )
    })
}

/// A replay that left part of what it was asked: ids that name no delivery (or no inbox
/// entry), or deliveries whose subscription is disabled. What was replayed is printed; the
/// process exits with [`Partial::EXIT_CODE`].
#[derive(Debug)]
pub struct Partial {
    /// Ids that named nothing.
    pub not_found: u64,
    /// Deliveries left alone because their subscription is disabled.
    pub subscription_disabled: u64,
    /// Whether this was a dry run (which would have been partial).
    pub dry_run: bool,
    /// What the ids name: `delivery`, `inbox entry`.
    pub named: &'static str,
}

impl Partial {
    /// The process exit code of a partial replay.
    pub const EXIT_CODE: u8 = 3;

    /// The error for `summary`, if it left anything.
    pub(crate) fn of(summary: &ReplaySummary, dry_run: bool) -> Option<Self> {
        (summary.not_found > 0 || summary.subscription_disabled > 0).then_some(Self {
            not_found: summary.not_found,
            subscription_disabled: summary.subscription_disabled,
            dry_run,
            named: "delivery",
        })
    }

    /// The error of a replay of ids of what `named` names (`inbox entry`) when `not_found` of
    /// them named nothing, if any did.
    pub(crate) fn not_found(named: &'static str, not_found: u64, dry_run: bool) -> Option<Self> {
        (not_found > 0).then_some(Self {
            not_found,
            subscription_disabled: 0,
            dry_run,
            named,
        })
    }
}

impl std::fmt::Display for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.not_found > 0 {
            parts.push(format!("{} id(s) named no {}", self.not_found, self.named));
        }
        if self.subscription_disabled > 0 {
            parts.push(format!(
                "{} delivery(ies) left alone because their subscription is disabled (enable it \
                 with `fastapihooks subscriptions enable ID`, then replay again)",
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

/// A progress bar on stderr out of `total`.
pub(crate) fn progress_bar(total: u64) -> ProgressBar {
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
pub(crate) fn advance(bar: &ProgressBar, summary: &ReplaySummary) {
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

//! `fastapihooks inbox …`: the received webhooks the application's inbox keeps (read-only), and
//! replaying them — processing a dead letter again — through the inbox's own queue.

pub mod list;
pub mod replay;
pub mod show;

use std::io::Write;
use std::str::FromStr as _;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use fastapihooks_core::InboxId;
use fastapihooks_core::inbox::{InboxQuery, InboxStatus};

use crate::commands::history_flags::time;

/// The `inbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// List received webhooks, newest first, one page at a time.
    List(list::ListArgs),
    /// Show one received webhook: its state, headers and body.
    Show(show::ShowArgs),
    /// Process received webhooks again through the inbox's own queue.
    ///
    /// The queue the application's inbox worker drains, not the sidecar's. Named ones (`inb_…`),
    /// or every one matching filters. A dead entry (or, with --processed-too, a processed one)
    /// becomes received again and its processing is queued; any other is skipped. Safe to
    /// repeat: an entry replayed is received, and is not replayed twice.
    Replay(replay::ReplayArgs),
}

/// Runs an `inbox` subcommand.
pub async fn run(command: InboxCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        InboxCommand::List(args) => list::run(args, out).await,
        InboxCommand::Show(args) => show::run(args, out).await,
        InboxCommand::Replay(args) => replay::run(args, out).await,
    }
}

/// The filters of `inbox list` and `inbox replay`.
#[derive(Debug, Args)]
pub struct InboxFilters {
    /// Only webhooks of this source (`github`, `stripe`, the name the application's route gives).
    #[arg(long)]
    pub source: Option<String>,
    /// Only webhooks in this status: received, processing, processed, failed or dead.
    #[arg(long, value_name = "STATUS", value_parser = InboxStatus::from_str)]
    pub status: Option<InboxStatus>,
    /// Only the webhook with this id of its sender's (`X-GitHub-Delivery`, `webhook-id`, …).
    #[arg(long, value_name = "ID")]
    pub external_id: Option<String>,
    /// Only webhooks received at or after this time: a duration ago (`2h`, `30m`) or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub since: Option<DateTime<Utc>>,
    /// Only webhooks received before this time: a duration ago (`2h`, `30m`) or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub until: Option<DateTime<Utc>>,
}

/// The ids of [`InboxFilters`], for `conflicts_with_all`.
pub const INBOX_FILTER_IDS: [&str; 5] = ["source", "status", "external_id", "since", "until"];

impl InboxFilters {
    /// Whether any filter is given.
    pub fn any(&self) -> bool {
        self.source.is_some()
            || self.status.is_some()
            || self.external_id.is_some()
            || self.since.is_some()
            || self.until.is_some()
    }

    /// The query of these filters, its page of `limit` older than `before`.
    pub fn query(&self, before: Option<InboxId>, limit: usize) -> InboxQuery {
        InboxQuery {
            source: self.source.clone(),
            status: self.status,
            external_id: self.external_id.clone(),
            since: self.since,
            until: self.until,
            before,
            limit,
        }
    }
}

/// An inbox entry id, `inb_…`.
pub fn inbox_id(s: &str) -> Result<InboxId, fastapihooks_core::Error> {
    s.parse()
}

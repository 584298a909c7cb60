//! `fastapihooks inbox list`.

use std::io::Write;

use clap::Args;
use fastapihooks_core::InboxId;
use fastapihooks_core::inbox::Inbox as _;

use super::InboxFilters;
use crate::commands::database::DatabaseArgs;
use crate::commands::history_flags::{self, Page};
use crate::output::inbox::{self, InboxEntryView};
use crate::output::{self, table};

/// `inbox list` arguments.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    filters: InboxFilters,
    #[command(flatten)]
    page: Page<InboxId>,
    /// Print JSON (an array, without headers and bodies: see `inbox show`) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists one page of received webhooks, newest first.
pub async fn run(args: ListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    let limit = args.page.limit;
    let query = args.filters.query(args.page.before, limit);
    let views: Vec<_> = store
        .list_inbox(&query)
        .await?
        .iter()
        .map(InboxEntryView::summary)
        .collect();
    if args.json {
        return output::json(out, &views);
    }
    inbox::table(out, &views, table::colour_enabled())?;
    let last = views.last().map(InboxEntryView::id);
    Ok(history_flags::more(out, views.len(), limit, last)?)
}

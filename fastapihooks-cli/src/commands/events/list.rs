//! `fastapihooks events list`.

use std::io::Write;

use clap::Args;
use fastapihooks_core::{EventId, EventQuery, Store};

use crate::commands::database::DatabaseArgs;
use crate::commands::history_flags::{self, HistoryFilters, Page};
use crate::output::events::{self, EventView};
use crate::output::{self, table};

/// `events list` arguments.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    filters: HistoryFilters,
    #[command(flatten)]
    page: Page<EventId>,
    /// Print JSON (an array) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists one page of events, newest first.
pub async fn run(args: ListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    let limit = args.page.limit;
    let query = EventQuery {
        name: args.filters.event,
        owner: args.filters.owner,
        since: args.filters.since,
        until: args.filters.until,
        id: None,
        before: args.page.before,
        limit,
    };
    let views: Vec<_> = store
        .list_events(&query)
        .await?
        .iter()
        .map(EventView::summary)
        .collect();
    if args.json {
        return output::json(out, &views);
    }
    events::table(out, &views, table::colour_enabled())?;
    let last = views.last().map(EventView::id);
    Ok(history_flags::more(out, views.len(), limit, last)?)
}

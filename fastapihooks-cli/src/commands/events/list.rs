//! `fastapihooks events list`.

use std::io::Write;

use chrono::{DateTime, Utc};
use clap::Args;
use fastapihooks_core::{EventFilter, EventId, EventQuery, Store};

use crate::commands::database::DatabaseArgs;
use crate::commands::history_flags;
use crate::commands::subscriptions::fields;
use crate::output::events::{self, EventView};
use crate::output::{self, table};

/// `events list` arguments.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Only events whose name passes this filter: `order.created`, `order.*` or `*`.
    #[arg(long, value_name = "FILTER", value_parser = fields::event_filter)]
    event: Option<EventFilter>,
    /// Only this owner's events.
    #[arg(long)]
    owner: Option<String>,
    /// Only events made at or after this time: a duration ago (`2h`, `30m`) or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = history_flags::time)]
    since: Option<DateTime<Utc>>,
    /// Only events made before this time: a duration ago (`2h`, `30m`) or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = history_flags::time)]
    until: Option<DateTime<Utc>>,
    /// At most this many.
    #[arg(long, default_value_t = fastapihooks_core::query::DEFAULT_LIMIT)]
    limit: usize,
    /// Only events older than this one (the last id of the previous page).
    #[arg(long, value_name = "ID", value_parser = history_flags::event_id)]
    before: Option<EventId>,
    /// Print JSON (an array) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists one page of events, newest first.
pub async fn run(args: ListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    let query = EventQuery {
        name: args.event,
        owner: args.owner,
        since: args.since,
        until: args.until,
        id: None,
        before: args.before,
        limit: args.limit,
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
    if views.len() == args.limit
        && let Some(last) = views.last()
    {
        writeln!(out, "more: --before {}", last.id())?;
    }
    Ok(())
}

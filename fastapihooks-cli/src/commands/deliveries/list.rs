//! `fastapihooks deliveries list`.

use std::io::Write;

use clap::Args;
use fastapihooks_core::{DeliveryId, Store};

use crate::commands::database::DatabaseArgs;
use crate::commands::history_flags::{self, DeliveryFilters, Page};
use crate::output::deliveries::{self, DeliveryView};
use crate::output::{self, table};

/// `deliveries list` arguments.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    filters: DeliveryFilters,
    #[command(flatten)]
    page: Page<DeliveryId>,
    /// Print JSON (an array) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists one page of deliveries, newest first.
pub async fn run(args: ListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    let limit = args.page.limit;
    let query = args.filters.query(args.page.before, limit);
    let views: Vec<_> = store
        .list_deliveries(&query)
        .await?
        .iter()
        .map(DeliveryView::new)
        .collect();
    if args.json {
        return output::json(out, &views);
    }
    deliveries::table(out, &views, table::colour_enabled())?;
    let last = views.last().map(DeliveryView::id);
    Ok(history_flags::more(out, views.len(), limit, last)?)
}

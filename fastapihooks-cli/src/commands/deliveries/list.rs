//! `fastapihooks deliveries list`.

use std::io::Write;

use clap::Args;
use fastapihooks_core::{
    DeliveryId, DeliveryQuery, DeliveryStatus, EventId, Store, SubscriptionId,
};

use crate::commands::database::DatabaseArgs;
use crate::commands::history_flags::{self, HistoryFilters};
use crate::commands::subscriptions::fields;
use crate::output::deliveries::{self, DeliveryView};
use crate::output::{self, table};

/// `deliveries list` arguments.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Only deliveries in this status: pending, delivered, failed or dead (dead letters are
    /// failed and dead).
    #[arg(long, value_name = "STATUS", value_parser = history_flags::status)]
    status: Option<DeliveryStatus>,
    /// Only deliveries to this subscription, `sub_…`.
    #[arg(long, value_name = "ID", value_parser = fields::subscription_id)]
    subscription: Option<SubscriptionId>,
    #[command(flatten)]
    filters: HistoryFilters,
    /// Only deliveries of this event, `evt_…`.
    #[arg(long, value_name = "ID", value_parser = history_flags::event_id)]
    event_id: Option<EventId>,
    /// Only deliveries older than this one (the last id of the previous page).
    #[arg(long, value_name = "ID", value_parser = history_flags::delivery_id)]
    before: Option<DeliveryId>,
    /// Print JSON (an array) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists one page of deliveries, newest first.
pub async fn run(args: ListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    let limit = args.filters.limit;
    let query = DeliveryQuery {
        status: args.status,
        subscription_id: args.subscription,
        event: args.filters.event,
        event_id: args.event_id,
        owner: args.filters.owner,
        since: args.filters.since,
        until: args.filters.until,
        before: args.before,
        limit: args.filters.limit,
    };
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

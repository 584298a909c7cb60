//! `fastapihooks deliveries list`.

use std::io::Write;

use chrono::{DateTime, Utc};
use clap::Args;
use fastapihooks_core::{
    DeliveryId, DeliveryQuery, DeliveryStatus, EventFilter, EventId, Store, SubscriptionId,
};

use crate::commands::database::DatabaseArgs;
use crate::commands::history_flags;
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
    /// Only deliveries of events whose name passes this filter: `order.created`, `order.*`.
    #[arg(long, value_name = "FILTER", value_parser = fields::event_filter)]
    event: Option<EventFilter>,
    /// Only deliveries of this owner's events.
    #[arg(long)]
    owner: Option<String>,
    /// Only deliveries of this event, `evt_…`.
    #[arg(long, value_name = "ID", value_parser = history_flags::event_id)]
    event_id: Option<EventId>,
    /// Only deliveries made at or after this time: a duration ago (`2h`, `30m`) or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = history_flags::time)]
    since: Option<DateTime<Utc>>,
    /// Only deliveries made before this time: a duration ago (`2h`, `30m`) or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = history_flags::time)]
    until: Option<DateTime<Utc>>,
    /// At most this many.
    #[arg(long, default_value_t = fastapihooks_core::query::DEFAULT_LIMIT)]
    limit: usize,
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
    let query = DeliveryQuery {
        status: args.status,
        subscription_id: args.subscription,
        event: args.event,
        event_id: args.event_id,
        owner: args.owner,
        since: args.since,
        until: args.until,
        before: args.before,
        limit: args.limit,
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
    if views.len() == args.limit
        && let Some(last) = views.last()
    {
        writeln!(out, "more: --before {}", last.id())?;
    }
    Ok(())
}

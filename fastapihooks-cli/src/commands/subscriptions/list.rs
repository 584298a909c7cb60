//! `fastapihooks subscriptions list`.

use std::io::Write;

use clap::Args;
use fastapihooks_core::{Store, SubscriptionId, SubscriptionQuery};

use super::fields;
use crate::commands::database::DatabaseArgs;
use crate::output::{self, SubscriptionView};

/// `subscriptions list` arguments.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Only this owner's subscriptions.
    #[arg(long)]
    owner: Option<String>,
    /// Start after this subscription (the last id of the previous page).
    #[arg(long, value_name = "ID", value_parser = fields::subscription_id)]
    after: Option<SubscriptionId>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Print JSON (an array) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists one page of subscriptions, oldest first.
pub async fn run(args: ListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    let query = SubscriptionQuery {
        owner: args.owner,
        after: args.after,
        limit: args.limit,
    };
    let views: Vec<_> = store
        .list_subscriptions(&query)
        .await?
        .iter()
        .map(|s| SubscriptionView::new(s, false))
        .collect();
    if args.json {
        output::json(out, &views)
    } else {
        output::table(out, &views)
    }
}

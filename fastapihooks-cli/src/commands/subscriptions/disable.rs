//! `fastapihooks subscriptions disable`: stop delivering to a subscription by hand. Its queued
//! deliveries are kept as failed without being sent, and new events are not fanned out to it,
//! until `fastapihooks subscriptions enable ID --replay` brings it back with them.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use fastapihooks_core::{Store, SubscriptionId};

use super::fields;
use crate::commands::database::DatabaseArgs;
use crate::output::{self, SubscriptionView};

/// `subscriptions disable` arguments.
#[derive(Debug, Args)]
pub struct DisableArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The subscription, `sub_…`.
    #[arg(value_name = "ID", value_parser = fields::subscription_id)]
    id: SubscriptionId,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Disables the subscription and prints it.
pub async fn run(args: DisableArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    store.set_enabled(&args.id, false).await?;
    let sub = store
        .get_subscription(&args.id)
        .await?
        .with_context(|| format!("subscription {} not found", args.id))?;
    let view = SubscriptionView::new(&sub, false);
    if args.json {
        output::json(out, &view)
    } else {
        output::details(out, &view)
    }
}

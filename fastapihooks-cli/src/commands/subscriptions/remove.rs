//! `fastapihooks subscriptions remove`.

use std::io::Write;

use clap::Args;
use fastapihooks_core::{Store, SubscriptionId};

use super::fields;
use crate::commands::database::DatabaseArgs;

/// `subscriptions remove` arguments.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The subscription, `sub_…`.
    #[arg(value_name = "ID", value_parser = fields::subscription_id)]
    id: SubscriptionId,
}

/// Removes the subscription.
pub async fn run(args: RemoveArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    store.remove_subscription(&args.id).await?;
    writeln!(out, "removed {}", args.id)?;
    Ok(())
}

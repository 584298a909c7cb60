//! `fastapihooks subscriptions show`.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use fastapihooks_core::{Store, SubscriptionId};

use super::fields;
use crate::commands::database::DatabaseArgs;
use crate::output::{self, SubscriptionView};

/// `subscriptions show` arguments.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The subscription, `sub_…`.
    #[arg(value_name = "ID", value_parser = fields::subscription_id)]
    id: SubscriptionId,
    /// Print the secret and credentials in clear.
    #[arg(long)]
    show_secrets: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Prints one subscription.
pub async fn run(args: ShowArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    let sub = store
        .get_subscription(&args.id)
        .await?
        .with_context(|| format!("subscription {} not found", args.id))?;
    let view = SubscriptionView::new(&sub, args.show_secrets);
    if args.json {
        output::json(out, &view)
    } else {
        output::details(out, &view)
    }
}

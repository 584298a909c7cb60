//! `fastapihooks deliveries show`.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use fastapihooks_core::{DeliveryId, Store};

use crate::commands::database::DatabaseArgs;
use crate::commands::history_flags;
use crate::output::deliveries::{self, AttemptView, DeliveryDetails, DeliveryView};
use crate::output::{self, table};

/// `deliveries show` arguments.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The delivery, `dlv_…`.
    #[arg(value_name = "ID", value_parser = history_flags::delivery_id)]
    id: DeliveryId,
    /// Print JSON (`{"delivery": …, "attempts": […]}`) instead of text.
    #[arg(long)]
    json: bool,
}

/// Prints one delivery and its attempts, in order.
pub async fn run(args: ShowArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    let delivery = store
        .get_delivery(&args.id)
        .await?
        .with_context(|| format!("delivery {} not found", args.id))?;
    let attempts = store.list_attempts(&args.id).await?;
    let details = DeliveryDetails {
        delivery: DeliveryView::new(&delivery),
        attempts: attempts.iter().map(AttemptView::new).collect(),
    };
    if args.json {
        output::json(out, &details)
    } else {
        deliveries::details(out, &details, table::colour_enabled())
    }
}

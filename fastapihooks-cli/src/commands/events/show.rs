//! `fastapihooks events show`.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use fastapihooks_core::{EventId, Store};

use crate::commands::database::DatabaseArgs;
use crate::commands::history_flags;
use crate::output::{self, events::EventView};

/// `events show` arguments.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The event, `evt_…`.
    #[arg(value_name = "ID", value_parser = history_flags::event_id)]
    id: EventId,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Prints one event and its payload.
pub async fn run(args: ShowArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    let event = store
        .get_event(&args.id)
        .await?
        .with_context(|| format!("event {} not found", args.id))?;
    let view = EventView::full(&event);
    if args.json {
        output::json(out, &view)
    } else {
        output::events::details(out, &view)
    }
}

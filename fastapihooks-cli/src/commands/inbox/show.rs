//! `fastapihooks inbox show`.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use fastapihooks_core::InboxId;
use fastapihooks_core::inbox::Inbox as _;

use crate::commands::database::DatabaseArgs;
use crate::output::inbox::{self, InboxEntryView};
use crate::output::{self, table};

/// `inbox show` arguments.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The received webhook, `inb_…`.
    #[arg(value_name = "ID", value_parser = super::inbox_id)]
    id: InboxId,
    /// Print JSON (every field; the body as text, or base64 with `"body_encoding": "base64"`
    /// when it is not UTF-8) instead of text.
    #[arg(long)]
    json: bool,
}

/// Prints one received webhook: every field, its headers and its body.
pub async fn run(args: ShowArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect_migrated().await?;
    let entry = store
        .get_inbox_entry(&args.id)
        .await?
        .with_context(|| format!("inbox entry {} not found", args.id))?;
    let view = InboxEntryView::full(&entry);
    if args.json {
        output::json(out, &view)
    } else {
        inbox::details(out, &view, table::colour_enabled())
    }
}

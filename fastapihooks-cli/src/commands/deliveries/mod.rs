//! `fastapihooks deliveries …`: the delivery history, read-only.

pub mod list;
pub mod show;

use std::io::Write;

use clap::Subcommand;

/// The `deliveries` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries, newest first, one page at a time.
    List(list::ListArgs),
    /// Show one delivery and its attempts.
    Show(show::ShowArgs),
}

/// Runs a `deliveries` subcommand.
pub async fn run(command: DeliveriesCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        DeliveriesCommand::List(args) => list::run(args, out).await,
        DeliveriesCommand::Show(args) => show::run(args, out).await,
    }
}

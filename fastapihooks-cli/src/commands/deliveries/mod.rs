//! `fastapihooks deliveries …`: the delivery history (read-only), and replaying deliveries.

pub mod list;
pub mod replay;
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
    /// Send deliveries again through the queue the sidecar drains.
    ///
    /// Named ones (`dlv_…`), or every one matching filters. Safe to repeat: an interrupted
    /// replay is resumed by running it again, and nothing is queued twice.
    Replay(replay::ReplayArgs),
}

/// Runs a `deliveries` subcommand.
pub async fn run(command: DeliveriesCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        DeliveriesCommand::List(args) => list::run(args, out).await,
        DeliveriesCommand::Show(args) => show::run(args, out).await,
        DeliveriesCommand::Replay(args) => replay::run(args, out).await,
    }
}

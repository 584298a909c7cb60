//! `fastapihooks events …`: the events kept with their deliveries, read-only.

pub mod list;
pub mod show;

use std::io::Write;

use clap::Subcommand;

/// The `events` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List events, newest first, one page at a time.
    List(list::ListArgs),
    /// Show one event with its payload.
    Show(show::ShowArgs),
}

/// Runs an `events` subcommand.
pub async fn run(command: EventsCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        EventsCommand::List(args) => list::run(args, out).await,
        EventsCommand::Show(args) => show::run(args, out).await,
    }
}

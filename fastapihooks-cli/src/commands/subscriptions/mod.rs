//! `fastapihooks subscriptions …`: one file per subcommand, shared flags in `fields.rs`.

pub mod add;
pub mod disable;
pub mod enable;
pub mod fields;
pub mod list;
pub mod reachability;
pub mod remove;
pub mod show;
pub mod update;

use std::io::Write;

use clap::Subcommand;

/// The `subscriptions` subcommands.
#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only obscure the clap definitions"
)]
pub enum SubscriptionsCommand {
    /// Add a subscription and print it (with its secret, when one was generated).
    Add(add::AddArgs),
    /// List subscriptions, oldest first.
    List(list::ListArgs),
    /// Show one subscription.
    Show(show::ShowArgs),
    /// Change some fields of a subscription; the others stay as they are.
    Update(update::UpdateArgs),
    /// Remove a subscription (its delivery history is kept).
    Remove(remove::RemoveArgs),
    /// Enable a subscription, clearing why it was disabled and its failure streak; with
    /// --replay, send its dead letters since the outage began again.
    Enable(enable::EnableArgs),
    /// Disable a subscription: nothing is sent to it until it is enabled again.
    Disable(disable::DisableArgs),
}

/// Runs a `subscriptions` subcommand.
pub async fn run(command: SubscriptionsCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        SubscriptionsCommand::Add(args) => add::run(args, out).await,
        SubscriptionsCommand::List(args) => list::run(args, out).await,
        SubscriptionsCommand::Show(args) => show::run(args, out).await,
        SubscriptionsCommand::Update(args) => update::run(args, out).await,
        SubscriptionsCommand::Remove(args) => remove::run(args, out).await,
        SubscriptionsCommand::Enable(args) => enable::run(args, out).await,
        SubscriptionsCommand::Disable(args) => disable::run(args, out).await,
    }
}

//! # fastapihooks-cli
//!
//! The `fastapihooks` command: `start` the sidecar that drains a durable queue (Redis, or the SQL
//! outbox), `migrate` the SQL store's schema, and manage `subscriptions` (`add`, `list`, `show`,
//! `update`, `enable` — with `--replay`, its dead letters are sent again —, `disable`, `remove`)
//! in it, and read the delivery history: `events list|show`, `deliveries list|show` (show prints
//! the attempts). The store commands take `--database URL`, or read it
//! from `FASTAPIHOOKS_DATABASE_URL`; listing commands print a table (coloured on a terminal,
//! unless `NO_COLOR` is set), or JSON with `--json` for scripts. History lists are newest first,
//! filtered by flags (`--status dead --event 'order.*' --since 2h`), and page with `--before`
//! the last id of the previous page. `prune --older-than 30d` (or `start --retain 30d`) removes
//! old delivered history. `inbox list|show|replay` reads the application's received webhooks
//! and processes dead ones again through the inbox's own queue.
//!
//! Exit codes: 0 success; 1 the command failed (the store cannot be reached, an id is not
//! found: `delivery dlv_… not found`); 2 the command line is wrong (an unknown flag, a bad
//! `--since`); 3 `deliveries replay` (or `subscriptions enable --replay`, `inbox replay`) was
//! partly done (an id not found, a subscription disabled); 130 a second signal aborted the
//! sidecar's drain.
//!
//! ```text
//! fastapihooks migrate --database sqlite://fastapihooks.db?mode=rwc
//! fastapihooks subscriptions add --event 'order.*' --url https://example.com/hooks --generate-secret
//! fastapihooks subscriptions list --json
//! fastapihooks deliveries list --status dead --event 'order.*' --since 2h
//! fastapihooks deliveries show dlv_01JE6Y0V3K8Q2M4N6P8R0T2V4W
//! fastapihooks start --queue redis://127.0.0.1:6379 --store postgres://app@db/app --signing-secret "$SECRET"
//! ```
//!
//! [`sidecar::run_sidecar`] is the same sidecar for a `Queue` or `Store` of one's own.
//!
//! Each command is one file under `commands/`: a clap `Args` struct and its `run`. A new command
//! is a new file, a variant of [`Command`] and one arm in [`run`].
#![warn(missing_docs)]

pub mod admin;
pub mod commands;
mod http;
pub mod logging;
pub mod otlp;
pub mod output;
pub mod retention;
pub mod sidecar;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "fastapihooks",
    version,
    about = "Signed, retried, logged outbound webhooks: run the sidecar, manage the store."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only obscure the clap definitions"
)]
pub enum Command {
    /// Run the sidecar: drain a durable queue (Redis or the SQL outbox) and deliver, until
    /// SIGTERM or SIGINT.
    Start(commands::start::StartArgs),
    /// Apply the SQL store's pending migrations (safe to run again: it then changes nothing).
    Migrate(commands::migrate::MigrateArgs),
    /// Add, list, show, update, enable, disable and remove subscriptions.
    #[command(subcommand)]
    Subscriptions(commands::subscriptions::SubscriptionsCommand),
    /// List and show the events kept with their deliveries.
    #[command(subcommand)]
    Events(commands::events::EventsCommand),
    /// List and show deliveries and their attempts.
    #[command(subcommand)]
    Deliveries(commands::deliveries::DeliveriesCommand),
    /// List and show received webhooks (the application's inbox), and process them again.
    #[command(subcommand)]
    Inbox(commands::inbox::InboxCommand),
    /// Remove delivered deliveries older than --older-than, their attempts and orphaned events
    /// (and the SQL outbox's old dead rows with --queue); failed and dead ones are kept.
    Prune(commands::prune::PruneArgs),
    /// Check the signature of a saved webhook request (headers and body): exit code 0 when it
    /// verifies, 1 when it does not (and why).
    Verify(commands::verify::VerifyArgs),
    /// A local webhook receiver for development: verify, print and answer (or forward) every
    /// POST, until SIGTERM or SIGINT.
    Listen(commands::listen::ListenArgs),
}

/// Runs a parsed command, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Start(args) => commands::start::run(args, out).await,
        Command::Migrate(args) => commands::migrate::run(args, out).await,
        Command::Subscriptions(command) => commands::subscriptions::run(command, out).await,
        Command::Events(command) => commands::events::run(command, out).await,
        Command::Deliveries(command) => commands::deliveries::run(command, out).await,
        Command::Inbox(command) => commands::inbox::run(command, out).await,
        Command::Prune(args) => commands::prune::run(args, out).await,
        Command::Verify(args) => commands::verify::run(args, out).await,
        Command::Listen(args) => commands::listen::run(args, out).await,
    }
}

/// Parses `args` (program name first), runs the command on a Tokio runtime, prints its output
/// to stdout and any error to stderr, and returns the process exit code: 0 on success, 1 when
/// the command failed, 2 when the command line is wrong, 3 when a replay was partly done
/// ([`commands::replaying::Partial`]), 130 when a second signal aborted the sidecar's
/// drain ([`sidecar::DrainAborted`]).
pub fn run_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version requests are not errors; clap knows which is which.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    // The sidecar delivers concurrently on every core; the store commands need one thread.
    let runtime = match &cli.command {
        Command::Start(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = runtime.block_on(run(cli, &mut out));
    let _ = out.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<sidecar::DrainAborted>().is_some() => {
            // The signal handler has logged why. Deliveries still in flight are abandoned, not
            // waited for: their leases expire and another sidecar takes them over.
            runtime.shutdown_background();
            ExitCode::from(130)
        }
        Err(e) if e.is::<commands::replaying::Partial>() => {
            // What was replayed is printed already; this says what was left.
            logging::print_error(&message(&e));
            ExitCode::from(commands::replaying::Partial::EXIT_CODE)
        }
        Err(e) => {
            logging::print_error(&message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause only once: core errors already include their source in
/// their own message.
fn message(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

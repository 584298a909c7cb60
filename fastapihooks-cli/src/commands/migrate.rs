//! `fastapihooks migrate`: apply the store's pending migrations.

use std::io::Write;

use clap::Args;

use super::database::DatabaseArgs;

/// `migrate` arguments.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Applies pending migrations and says which.
pub async fn run(args: MigrateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = args.database.connect().await?;
    let pending = store.pending_migrations().await?;
    store.migrate().await?;
    if pending.is_empty() {
        writeln!(out, "database is up to date: no pending migrations")?;
    } else {
        for name in &pending {
            writeln!(out, "applied {name}")?;
        }
        writeln!(out, "applied {} migration(s)", pending.len())?;
    }
    Ok(())
}

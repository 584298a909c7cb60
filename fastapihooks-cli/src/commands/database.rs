//! `--database URL` (or `FASTAPIHOOKS_DATABASE_URL`), shared by every command, and opening the
//! store it names.

use anyhow::Context as _;
use clap::Args;
use fastapihooks_core::{SqlStore, SqlStoreOptions};

/// Where the store is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// The store's database: sqlite://fastapihooks.db?mode=rwc, postgres://user@host/db,
    /// mysql://user@host/db.
    #[arg(
        id = "database",
        long = "database",
        value_name = "URL",
        env = "FASTAPIHOOKS_DATABASE_URL"
    )]
    pub url: String,
    /// Seconds to wait for the database to answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub connect_timeout: u64,
}

impl DatabaseArgs {
    /// Connects without migrating.
    pub async fn connect(&self) -> anyhow::Result<SqlStore> {
        SqlStoreOptions::new(&self.url)
            .connect_timeout(std::time::Duration::from_secs(self.connect_timeout))
            .max_connections(1)
            .run_migrations(false)
            .connect()
            .await
            .with_context(|| format!("--database {}: cannot connect", redacted(&self.url)))
    }

    /// Connects, and fails unless every migration is applied (the tables exist and are
    /// current).
    pub async fn connect_migrated(&self) -> anyhow::Result<SqlStore> {
        let store = self.connect().await?;
        let pending = store.pending_migrations().await?;
        if !pending.is_empty() {
            anyhow::bail!(
                "--database {}: {} migration(s) not applied yet; run `fastapihooks migrate` first",
                redacted(&self.url),
                pending.len()
            );
        }
        Ok(store)
    }
}

/// The URL with its password, if any, replaced by `***`, for messages.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_not_printed() {
        assert_eq!(
            redacted("postgres://app:hunter2@db.example/app"),
            "postgres://app:***@db.example/app"
        );
        assert_eq!(
            redacted("sqlite://fastapihooks.db?mode=rwc"),
            "sqlite://fastapihooks.db?mode=rwc"
        );
    }
}

//! The machine's database services: their URLs (env var, else the default of SERVICES.md), and
//! what to do when one is not there — skip with a note, or fail under `CI=true`.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection};

/// The service URL from `var`, else `default`.
pub fn url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// A fresh, lower-case name for a schema or database of one test.
pub fn unique_name() -> String {
    format!("fh_test_{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// A small administrative connection to `url`, or `None` (after saying why) when the service
/// does not answer. Under `CI=true` a missing service fails the test instead.
pub async fn admin(service: &str, url: &str) -> Option<DatabaseConnection> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(3))
        .sqlx_logging(false);
    match Database::connect(options).await {
        Ok(db) => Some(db),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{service} at {url} is required under CI=true: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {service} at {url} does not answer ({e})");
            None
        }
    }
}

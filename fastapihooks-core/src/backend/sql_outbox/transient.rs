//! Transaction conflicts that a retry resolves: a deadlock or serialization failure rolls the
//! whole transaction back, so running it again is safe.

use std::time::Duration;

use sea_orm::DbErr;

use crate::error::{Error, Result};

/// How many times a conflicting step is tried in all.
const TRIES: u32 = 5;

/// Runs `step`, again (after a short random pause) while it fails with a conflict.
pub(super) async fn retry_conflicts<T, F, Fut>(mut step: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match step().await {
            Err(e) if tries < TRIES && is_conflict(&e) => {
                tracing::debug!(error = %e, tries, "transaction conflict; trying again");
                metrics::counter!(crate::metrics::QUEUE_CONFLICTS_TOTAL).increment(1);
                tries += 1;
                tokio::time::sleep(Duration::from_millis(fastrand::u64(1..=20))).await;
            }
            other => return other,
        }
    }
}

/// Whether `e` is a deadlock or serialization failure reported by the database (SQLSTATE
/// `40001`, or PostgreSQL's `40P01`).
pub(super) fn is_conflict(e: &Error) -> bool {
    match e {
        Error::Storage { source, .. } => source
            .downcast_ref::<DbErr>()
            .and_then(sqlstate)
            .is_some_and(|code| code == "40001" || code == "40P01"),
        _ => false,
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn sqlstate(e: &DbErr) -> Option<String> {
    use sea_orm::RuntimeErr;
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(err)) | DbErr::Query(RuntimeErr::SqlxError(err)) => err
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned()),
        _ => None,
    }
}

/// Without a database driver nothing reaches a database.
#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
fn sqlstate(_: &DbErr) -> Option<String> {
    None
}

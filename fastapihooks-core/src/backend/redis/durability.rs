//! Whether the Redis server keeps the queue across a restart: its persistence settings.
//!
//! A Redis without the append-only file (AOF) keeps the queue in memory only: a restart loses
//! every queued event, and an RDB snapshot brings back at best the state of minutes ago. So
//! [`RedisBackend::connect`] warns when AOF is off, and [`RedisBackend::persistence`] lets a
//! caller (the sidecar) refuse to run on such a server.
//!
//! The settings are read with `CONFIG GET`; managed services often disable or rename `CONFIG`,
//! so `INFO persistence` is the fallback.

use std::collections::HashMap;
use std::fmt;

use redis::aio::ConnectionManager;

use super::{RedisBackend, RedisConfig};
use crate::error::{Error, Result};

/// What the Redis server says about its persistence. `None` where it could not be read.
///
/// ```
/// # async fn demo(queue: fastapihooks_core::RedisBackend) -> fastapihooks_core::Result<()> {
/// let persistence = queue.persistence().await?;
/// if !persistence.is_durable() {
///     eprintln!("Redis may lose queued events on a restart: {persistence}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisPersistence {
    /// Whether the append-only file is on (`appendonly yes`, or `aof_enabled:1` in `INFO`).
    pub aof: Option<bool>,
    /// The AOF fsync policy (`always`, `everysec` or `no`), when `CONFIG GET` answers.
    pub aof_fsync: Option<String>,
    /// Whether RDB snapshots are configured (`save` not empty). From `INFO` only a snapshot
    /// taken since the server started tells (then `Some(true)`).
    pub rdb_snapshots: Option<bool>,
    /// Why nothing could be read, when nothing could.
    pub unreadable: Option<String>,
}

impl RedisPersistence {
    /// Whether queued events survive a restart of Redis: the append-only file is on.
    pub fn is_durable(&self) -> bool {
        self.aof == Some(true)
    }

    /// Whether the server says AOF is off: a restart loses what is queued.
    pub fn is_volatile(&self) -> bool {
        self.aof == Some(false)
    }

    /// Reads the answers to `CONFIG GET appendonly`, `appendfsync` and `save` (name → value).
    /// `None` when `appendonly` is not among them (an empty answer: the parameter is unknown or
    /// hidden).
    pub(crate) fn from_config(answers: &HashMap<String, String>) -> Option<Self> {
        let aof = match answers.get("appendonly")?.trim() {
            v if v.eq_ignore_ascii_case("yes") => true,
            v if v.eq_ignore_ascii_case("no") => false,
            _ => return None,
        };
        Some(Self {
            aof: Some(aof),
            aof_fsync: answers
                .get("appendfsync")
                .map(|v| v.trim().to_ascii_lowercase())
                .filter(|v| !v.is_empty()),
            rdb_snapshots: answers.get("save").map(|v| !v.trim().is_empty()),
            unreadable: None,
        })
    }

    /// Reads the text of `INFO persistence`. `None` when it has no `aof_enabled` field.
    pub(crate) fn from_info(info: &str) -> Option<Self> {
        let fields: HashMap<&str, &str> = info
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.trim().split_once(':'))
            .collect();
        let aof = match *fields.get("aof_enabled")? {
            "1" => true,
            "0" => false,
            _ => return None,
        };
        let snapshotting = fields.get("rdb_bgsave_in_progress") == Some(&"1")
            || fields
                .get("rdb_saves")
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n > 0);
        Some(Self {
            aof: Some(aof),
            aof_fsync: None,
            rdb_snapshots: snapshotting.then_some(true),
            unreadable: None,
        })
    }

    fn unreadable(why: String) -> Self {
        Self {
            aof: None,
            aof_fsync: None,
            rdb_snapshots: None,
            unreadable: Some(why),
        }
    }
}

impl fmt::Display for RedisPersistence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(why) = &self.unreadable {
            return write!(f, "persistence settings unreadable ({why})");
        }
        match (self.aof, &self.aof_fsync) {
            (Some(true), Some(fsync)) => write!(f, "AOF on (appendfsync {fsync})")?,
            (Some(true), None) => f.write_str("AOF on")?,
            (Some(false), _) => f.write_str("AOF off")?,
            (None, _) => f.write_str("AOF unknown")?,
        }
        match self.rdb_snapshots {
            Some(true) => f.write_str(", RDB snapshots on"),
            Some(false) => f.write_str(", RDB snapshots off"),
            None => f.write_str(", RDB snapshots unknown"),
        }
    }
}

/// The answer to one `CONFIG GET`: parameter name → value.
type Answer = HashMap<String, String>;

/// A server that answered with an error (command unknown, renamed, disabled, not permitted),
/// as opposed to a connection that failed.
fn refused_by_server(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
    )
}

/// Reads the server's persistence settings: `CONFIG GET`, else `INFO persistence`. Fails only
/// when the connection does; a server that answers neither gives
/// [`unreadable`](RedisPersistence::unreadable).
async fn read(mut conn: ConnectionManager) -> Result<RedisPersistence> {
    let fail = |e| Error::storage("redis.persistence", e);
    // One parameter per CONFIG GET: several in one call need Redis 7.
    let config: redis::RedisResult<(Answer, Answer, Answer)> = redis::pipe()
        .cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .cmd("CONFIG")
        .arg("GET")
        .arg("appendfsync")
        .cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query_async(&mut conn)
        .await;
    let config_failure = match config {
        Ok((mut answers, fsync, save)) => {
            answers.extend(fsync);
            answers.extend(save);
            if let Some(found) = RedisPersistence::from_config(&answers) {
                return Ok(found);
            }
            "CONFIG GET appendonly gave no answer".to_owned()
        }
        Err(e) if refused_by_server(&e) => format!("CONFIG GET refused: {e}"),
        Err(e) => return Err(fail(e)),
    };
    let info: redis::RedisResult<String> = redis::cmd("INFO")
        .arg("persistence")
        .query_async(&mut conn)
        .await;
    match info {
        Ok(text) => Ok(RedisPersistence::from_info(&text).unwrap_or_else(|| {
            RedisPersistence::unreadable(format!(
                "{config_failure}; INFO persistence has no aof_enabled field"
            ))
        })),
        Err(e) if refused_by_server(&e) => Ok(RedisPersistence::unreadable(format!(
            "{config_failure}; INFO persistence refused: {e}"
        ))),
        Err(e) => Err(fail(e)),
    }
}

impl RedisBackend {
    /// The server's persistence settings, read now (`CONFIG GET appendonly`, `appendfsync`,
    /// `save`; `INFO persistence` where `CONFIG` is disabled). Queued events survive a restart
    /// of Redis only with the append-only file on ([`RedisPersistence::is_durable`]):
    /// `appendonly yes`, with `appendfsync everysec` (at most a second lost on a crash of the
    /// machine) or `always`.
    ///
    /// Fails only when Redis cannot be reached; settings the server will not show come back as
    /// `None` fields, with `unreadable` saying why.
    pub async fn persistence(&self) -> Result<RedisPersistence> {
        read(self.conn.clone()).await
    }
}

/// Logs a warning when the server does not persist the queue (or will not say). Never fails:
/// an application that only publishes still connects.
pub(super) async fn warn_if_volatile(conn: &ConnectionManager, config: &RedisConfig) {
    const FIX: &str = "a restart of Redis loses every queued event; \
                       set `appendonly yes` and `appendfsync everysec` (or `always`) on the server";
    match read(conn.clone()).await {
        Ok(p) if p.is_durable() => {
            tracing::debug!(redis = %config.redacted_url(), persistence = %p, "Redis persists the queue");
        }
        Ok(p) if p.is_volatile() => {
            tracing::warn!(redis = %config.redacted_url(), persistence = %p, "Redis runs without the append-only file: {FIX}");
        }
        Ok(p) => {
            tracing::warn!(redis = %config.redacted_url(), persistence = %p, "cannot tell whether Redis persists the queue: without the append-only file {FIX}");
        }
        Err(e) => {
            tracing::warn!(redis = %config.redacted_url(), error = %e, "cannot read Redis persistence settings: without the append-only file {FIX}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn config_with_aof_on_is_durable_and_keeps_the_fsync_policy() {
        let p = RedisPersistence::from_config(&answers(&[
            ("appendonly", "yes"),
            ("appendfsync", "everysec"),
            ("save", "3600 1 300 100 60 10000"),
        ]))
        .unwrap();
        assert!(p.is_durable());
        assert_eq!(p.aof_fsync.as_deref(), Some("everysec"));
        assert_eq!(p.rdb_snapshots, Some(true));
        assert_eq!(
            p.to_string(),
            "AOF on (appendfsync everysec), RDB snapshots on"
        );
    }

    #[test]
    fn config_with_aof_off_and_an_empty_save_is_volatile_without_snapshots() {
        let p = RedisPersistence::from_config(&answers(&[
            ("appendonly", "no"),
            ("appendfsync", "everysec"),
            ("save", ""),
        ]))
        .unwrap();
        assert!(p.is_volatile() && !p.is_durable());
        assert_eq!(p.rdb_snapshots, Some(false));
        assert_eq!(p.to_string(), "AOF off, RDB snapshots off");
    }

    #[test]
    fn a_config_answer_without_appendonly_is_no_answer() {
        assert_eq!(RedisPersistence::from_config(&answers(&[])), None);
        assert_eq!(
            RedisPersistence::from_config(&answers(&[("appendonly", "maybe")])),
            None
        );
    }

    #[test]
    fn info_persistence_gives_the_aof_flag_and_snapshots_taken() {
        let info = "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:0\r\n\
                    rdb_bgsave_in_progress:0\r\nrdb_saves:3\r\naof_enabled:1\r\n\
                    aof_rewrite_in_progress:0\r\n";
        let p = RedisPersistence::from_info(info).unwrap();
        assert!(p.is_durable());
        assert_eq!(p.aof_fsync, None);
        assert_eq!(p.rdb_snapshots, Some(true));

        let off =
            RedisPersistence::from_info("# Persistence\nrdb_saves:0\naof_enabled:0\n").unwrap();
        assert!(off.is_volatile());
        assert_eq!(
            off.rdb_snapshots, None,
            "no snapshot yet says nothing of the config"
        );
    }

    #[test]
    fn info_without_aof_enabled_is_no_answer() {
        assert_eq!(
            RedisPersistence::from_info("# Persistence\nloading:0\n"),
            None
        );
        assert_eq!(RedisPersistence::from_info(""), None);
    }

    #[test]
    fn unreadable_settings_are_neither_durable_nor_volatile_and_say_why() {
        let p = RedisPersistence::unreadable("CONFIG GET refused: unknown command".into());
        assert!(!p.is_durable() && !p.is_volatile());
        assert!(p.to_string().contains("unknown command"), "{p}");
    }
}

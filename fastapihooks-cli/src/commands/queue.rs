//! `--queue URL` and the flags that go with it (`--key-prefix`, `--postgres-schema`), shared by
//! `start` (which drains the queue), `deliveries replay` and `subscriptions enable --replay`
//! (which put replays on it), and opening what they name: Redis, or the SQL outbox.

use std::sync::Arc;
#[cfg(feature = "redis")]
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use fastapihooks_core::{Backend, SqlBackend, SqlStore};

use super::database::{SqlConnect, redacted};

/// Where the queue the sidecar drains is.
///
/// `--queue` is optional here so that a command may ask for it only with another flag
/// (`subscriptions enable --replay`); a command that always needs it makes it required with
/// `#[command(mut_arg("queue", |a| a.required(true)))]`.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// The queue the sidecar drains: redis://host:6379 (rediss:// with TLS), or the SQL outbox
    /// in postgres://…, mysql://…, sqlite://… (the database the application publishes into).
    #[arg(long, value_name = "URL", env = "FASTAPIHOOKS_QUEUE_URL")]
    pub queue: Option<String>,
    /// Redis only: the queue's key prefix (as the application's `RedisConfig::key_prefix`).
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "fastapihooks",
        env = "FASTAPIHOOKS_REDIS_KEY_PREFIX"
    )]
    pub key_prefix: String,
}

/// What kind of queue a `--queue` URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueKind {
    /// Redis Streams: `redis://`, `rediss://`.
    Redis,
    /// The SQL outbox: `postgres://`, `mysql://`, `mariadb://`, `sqlite://`.
    Sql,
}

impl QueueArgs {
    /// The `--queue` URL.
    pub fn url(&self) -> anyhow::Result<&str> {
        self.queue
            .as_deref()
            .context("--queue URL is required: the queue the sidecar drains")
    }

    /// The kind of queue `--queue` names, or an error naming the schemes accepted.
    pub fn kind(&self) -> anyhow::Result<QueueKind> {
        let url = self.url()?;
        let scheme = url
            .split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
            .unwrap_or_default();
        match scheme.as_str() {
            "redis" | "rediss" => Ok(QueueKind::Redis),
            "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite" => Ok(QueueKind::Sql),
            _ => anyhow::bail!(
                "--queue {}: unsupported scheme {scheme:?}; expected redis://, rediss://, postgres://, mysql:// or sqlite://",
                redacted(url)
            ),
        }
    }

    /// Opens the queue to put work on (replays): Redis, or the SQL outbox — sharing `store`'s
    /// connections when `--queue` is the store's own URL (`store_url`), else connecting to it
    /// as `sql` says.
    pub async fn open(
        &self,
        store: &SqlStore,
        store_url: &str,
        sql: &SqlConnect,
    ) -> anyhow::Result<Arc<dyn Backend>> {
        let url = self.url()?;
        match self.kind()? {
            QueueKind::Redis => self.open_redis().await,
            QueueKind::Sql if url == store_url => Ok(Arc::new(SqlBackend::for_store(store))),
            QueueKind::Sql => {
                let outbox = sql.connect("--queue", url).await?;
                Ok(Arc::new(SqlBackend::new(outbox.connection().clone())))
            }
        }
    }

    /// Connects to the Redis queue under `--key-prefix`, with this visibility timeout (the
    /// backend's default if `None`).
    #[cfg(feature = "redis")]
    pub async fn redis(
        &self,
        visibility_timeout: Option<Duration>,
    ) -> anyhow::Result<fastapihooks_core::RedisBackend> {
        use fastapihooks_core::{RedisBackend, RedisConfig};
        let url = self.url()?;
        let mut config = RedisConfig::new(url).key_prefix(&self.key_prefix);
        if let Some(timeout) = visibility_timeout {
            config = config.visibility_timeout(timeout);
        }
        RedisBackend::connect(config)
            .await
            .with_context(|| format!("--queue {}: cannot connect", redacted(url)))
    }

    #[cfg(feature = "redis")]
    async fn open_redis(&self) -> anyhow::Result<Arc<dyn Backend>> {
        Ok(Arc::new(self.redis(None).await?))
    }

    #[cfg(not(feature = "redis"))]
    async fn open_redis(&self) -> anyhow::Result<Arc<dyn Backend>> {
        anyhow::bail!(NO_REDIS)
    }
}

/// Why a Redis queue is refused by a build without Redis support.
pub const NO_REDIS: &str =
    "this build of fastapihooks has no Redis support (cargo feature `redis`)";

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(url: &str) -> QueueArgs {
        QueueArgs {
            queue: Some(url.into()),
            key_prefix: "fastapihooks".into(),
        }
    }

    #[test]
    fn the_scheme_tells_the_kind_of_queue() {
        assert_eq!(queue("rediss://h:6380").kind().unwrap(), QueueKind::Redis);
        assert_eq!(queue("PostgreSQL://h/db").kind().unwrap(), QueueKind::Sql);
        assert_eq!(queue("sqlite://x.db").kind().unwrap(), QueueKind::Sql);
        let err = queue("amqp://user:hunter2@h")
            .kind()
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported scheme \"amqp\""), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn without_a_queue_the_flag_is_named() {
        let mut args = queue("sqlite://x.db");
        args.queue = None;
        assert!(args.url().unwrap_err().to_string().contains("--queue"));
    }
}

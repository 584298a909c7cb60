//! `fastapihooks start`: the sidecar. Leases events and deliveries from a durable queue, fans
//! out, delivers, retries and dead-letters, until SIGTERM or SIGINT; then stops leasing and
//! drains what is in flight within `--drain-deadline`.
//!
//! ```text
//! fastapihooks start --queue redis://127.0.0.1:6379 --store postgres://app@db/app
//! fastapihooks start --queue postgres://app@db/app          # the SQL outbox; the store is the same database
//! ```

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use fastapihooks_core::{
    HttpConfig, RetryPolicy, Secret, SqlBackend, SqlOutboxConfig, SqlStore, SqlStoreOptions,
    WorkerConfig, WorkerReport,
};

use super::database::redacted;
use crate::sidecar::{SidecarConfig, run_sidecar};

/// `start` arguments. Every flag can also come from its `FASTAPIHOOKS_*` environment variable.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The queue to drain: redis://host:6379, or the SQL outbox in postgres://…, mysql://…,
    /// sqlite://… (the database the application publishes into).
    #[arg(long, value_name = "URL", env = "FASTAPIHOOKS_QUEUE_URL")]
    pub queue: String,
    /// The store (subscriptions and delivery history): a SQL database URL. Default: the queue's
    /// database for a SQL queue; required with Redis.
    #[arg(long, value_name = "URL", env = "FASTAPIHOOKS_STORE_URL")]
    pub store: Option<String>,
    /// Apply the store's pending migrations before starting (otherwise they must be applied,
    /// e.g. by `fastapihooks migrate`).
    #[arg(long, env = "FASTAPIHOOKS_MIGRATE")]
    pub migrate: bool,
    /// Signs deliveries to subscriptions without a secret of their own.
    #[arg(
        long,
        value_name = "SECRET",
        env = "FASTAPIHOOKS_SIGNING_SECRET",
        hide_env_values = true
    )]
    pub signing_secret: Option<String>,
    /// Deliveries (and fan-outs) in flight at once. Work is leased only with a free slot, so
    /// this is never exceeded.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100,
        env = "FASTAPIHOOKS_CONCURRENCY"
    )]
    pub concurrency: usize,
    /// At most this many tasks leased per queue call.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 32,
        env = "FASTAPIHOOKS_LEASE_BATCH"
    )]
    pub lease_batch: usize,
    /// How long a lease lasts before another sidecar may take the task over (after a crash).
    /// Must exceed the HTTP timeout.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration, env = "FASTAPIHOOKS_VISIBILITY_TIMEOUT")]
    pub visibility_timeout: Duration,
    /// On SIGTERM/SIGINT, how long in-flight deliveries may take to finish; what is still
    /// running then is abandoned and comes back when its lease expires.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration, env = "FASTAPIHOOKS_DRAIN_DEADLINE")]
    pub drain_deadline: Duration,
    /// Time allowed for one delivery request and its response.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration, env = "FASTAPIHOOKS_HTTP_TIMEOUT")]
    pub http_timeout: Duration,
    /// Retry delays, one per retry, e.g. `1s,10s,1m` (no jitter). Default: 3 retries after
    /// 1 s, 2 s, 4 s with ±25 % jitter.
    #[arg(long, value_name = "DURATIONS", value_delimiter = ',', value_parser = duration, env = "FASTAPIHOOKS_RETRY_SCHEDULE")]
    pub retry_schedule: Option<Vec<Duration>>,
    /// Let deliveries reach loopback addresses (127.0.0.0/8, ::1): development and tests only.
    #[arg(long, env = "FASTAPIHOOKS_ALLOW_LOOPBACK")]
    pub allow_loopback: bool,
    /// Let deliveries reach a network the SSRF guard refuses (private, link-local, …), in CIDR
    /// form; repeat or separate with commas.
    #[arg(
        long,
        value_name = "CIDR",
        value_delimiter = ',',
        env = "FASTAPIHOOKS_ALLOW_NETWORK"
    )]
    pub allow_network: Vec<String>,
    /// Redis only: the queue's key prefix (as the application's `RedisConfig::key_prefix`).
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "fastapihooks",
        env = "FASTAPIHOOKS_REDIS_KEY_PREFIX"
    )]
    pub key_prefix: String,
    /// SQL outbox only: how often an empty outbox is looked at again.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = duration, env = "FASTAPIHOOKS_POLL_INTERVAL")]
    pub poll_interval: Duration,
    /// PostgreSQL only: the schema the tables live in (its `search_path`), for the queue and the
    /// store alike.
    #[arg(long, value_name = "SCHEMA", env = "FASTAPIHOOKS_POSTGRES_SCHEMA")]
    pub postgres_schema: Option<String>,
    /// Database connections in each pool (the store's, and the outbox's when it is elsewhere).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        env = "FASTAPIHOOKS_STORE_CONNECTIONS"
    )]
    pub store_connections: u32,
    /// Log filter, e.g. `info` or `fastapihooks_core=debug`. Default: `RUST_LOG`, else `info`.
    #[arg(long, value_name = "FILTER", env = "FASTAPIHOOKS_LOG_LEVEL")]
    pub log_level: Option<String>,
}

/// Parses `500ms`, `10s`, `1m`, `1h 30m`.
fn duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text)
}

impl StartArgs {
    fn sidecar_config(&self) -> anyhow::Result<SidecarConfig> {
        let mut http = HttpConfig::default();
        http.timeout = self.http_timeout;
        http.connect_timeout = http.connect_timeout.min(self.http_timeout);
        if self.allow_loopback {
            http = http.allow_loopback();
        }
        for cidr in &self.allow_network {
            http = http
                .allow_network(cidr)
                .with_context(|| format!("--allow-network {cidr}"))?;
        }
        let retry = match &self.retry_schedule {
            Some(delays) => RetryPolicy::schedule(delays.iter().copied()),
            None => RetryPolicy::default(),
        };
        let secret = self
            .signing_secret
            .as_deref()
            .map(Secret::new)
            .transpose()
            .context("--signing-secret")?;
        Ok(SidecarConfig {
            secret,
            http,
            retry,
            worker: WorkerConfig {
                concurrency: self.concurrency,
                lease_batch: self.lease_batch,
                drain_deadline: self.drain_deadline,
            },
        })
    }

    /// Connects to the SQL database at `url` (named by `flag` in messages), applying pending
    /// migrations with `--migrate` and otherwise insisting that there are none.
    async fn connect_sql(&self, flag: &str, url: &str) -> anyhow::Result<SqlStore> {
        let mut options = SqlStoreOptions::new(url)
            .max_connections(self.store_connections)
            .run_migrations(false);
        if let Some(schema) = &self.postgres_schema {
            options = options.postgres_schema(schema);
        }
        let store = options
            .connect()
            .await
            .with_context(|| format!("{flag} {}: cannot connect", redacted(url)))?;
        if self.migrate {
            store.migrate().await?;
        }
        let pending = store.pending_migrations().await?;
        if !pending.is_empty() {
            anyhow::bail!(
                "{flag} {}: {} migration(s) not applied yet; run `fastapihooks migrate` or pass --migrate",
                redacted(url),
                pending.len()
            );
        }
        Ok(store)
    }
}

/// Runs the sidecar until SIGTERM or SIGINT, then prints what it did.
pub async fn run(args: StartArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    init_logging(args.log_level.as_deref());
    let config = args.sidecar_config()?;
    let scheme = args
        .queue
        .split_once(':')
        .map(|(scheme, _)| scheme.to_ascii_lowercase())
        .unwrap_or_default();
    let report = match scheme.as_str() {
        "redis" | "rediss" => run_redis(&args, config).await?,
        "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite" => {
            run_outbox(&args, config).await?
        }
        _ => anyhow::bail!(
            "--queue {}: unsupported scheme {scheme:?}; expected redis://, rediss://, postgres://, mysql:// or sqlite://",
            redacted(&args.queue)
        ),
    };
    writeln!(out, "stopped: {}", summary(&report))?;
    Ok(())
}

#[cfg(feature = "redis")]
async fn run_redis(args: &StartArgs, config: SidecarConfig) -> anyhow::Result<WorkerReport> {
    use fastapihooks_core::{RedisBackend, RedisConfig};
    let Some(store_url) = &args.store else {
        anyhow::bail!("--store is required with a Redis queue: the SQL database of the store");
    };
    let store = args.connect_sql("--store", store_url).await?;
    let queue = RedisBackend::connect(
        RedisConfig::new(&args.queue)
            .key_prefix(&args.key_prefix)
            .visibility_timeout(args.visibility_timeout),
    )
    .await
    .with_context(|| format!("--queue {}", redacted(&args.queue)))?;
    tracing::info!(queue = %redacted(&args.queue), prefix = %args.key_prefix, "draining Redis");
    run_sidecar(Arc::new(queue), Arc::new(store), config).await
}

#[cfg(not(feature = "redis"))]
async fn run_redis(_: &StartArgs, _: SidecarConfig) -> anyhow::Result<WorkerReport> {
    anyhow::bail!("this build of fastapihooks has no Redis support (cargo feature `redis`)")
}

/// Drains the SQL outbox; the store is the same database unless `--store` says otherwise.
async fn run_outbox(args: &StartArgs, config: SidecarConfig) -> anyhow::Result<WorkerReport> {
    let outbox_config = SqlOutboxConfig {
        visibility_timeout: args.visibility_timeout,
        poll_interval: args.poll_interval,
        block: SqlOutboxConfig::default().block.max(args.poll_interval),
    };
    let queue_db = args.connect_sql("--queue", &args.queue).await?;
    let store = match &args.store {
        Some(url) if url != &args.queue => args.connect_sql("--store", url).await?,
        _ => queue_db.clone(),
    };
    let queue = SqlBackend::with_config(queue_db.connection().clone(), outbox_config)?;
    tracing::info!(queue = %redacted(&args.queue), "draining the SQL outbox");
    run_sidecar(Arc::new(queue), Arc::new(store), config).await
}

/// One line for the operator and for scripts.
fn summary(r: &WorkerReport) -> String {
    format!(
        "fanned out {}, delivered {}, retried {}, dead-lettered {}, skipped {}, leases lost {}, errors {}, abandoned {}",
        r.fanned_out,
        r.delivered,
        r.retried,
        r.dead_lettered,
        r.skipped,
        r.leases_lost,
        r.errors,
        r.abandoned
    )
}

/// Logs to stderr, filtered by `--log-level`, else `RUST_LOG`, else `info`.
fn init_logging(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> StartArgs {
        let cli = crate::Cli::try_parse_from(
            ["fastapihooks", "start", "--queue", "redis://127.0.0.1:6379"]
                .iter()
                .chain(args),
        )
        .unwrap();
        match cli.command {
            crate::Command::Start(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn durations_read_as_humans_write_them() {
        let args = parse(&[
            "--visibility-timeout",
            "1m 30s",
            "--retry-schedule",
            "100ms,2s",
        ]);
        assert_eq!(args.visibility_timeout, Duration::from_secs(90));
        assert_eq!(
            args.retry_schedule,
            Some(vec![Duration::from_millis(100), Duration::from_secs(2)])
        );
    }

    #[test]
    fn the_ssrf_guard_stays_on_unless_loopback_is_allowed() {
        let loopback = url::Url::parse("http://127.0.0.1:9/hook").unwrap();
        let guarded = parse(&[]).sidecar_config().unwrap();
        assert!(guarded.http.check_url(&loopback).is_err());
        let open = parse(&["--allow-loopback"]).sidecar_config().unwrap();
        assert!(open.http.check_url(&loopback).is_ok());
    }

    #[test]
    fn a_bad_cidr_is_refused_with_the_flag_named() {
        let err = parse(&["--allow-network", "10.0.0.0/33"])
            .sidecar_config()
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("--allow-network 10.0.0.0/33"),
            "{err:#}"
        );
    }

    #[test]
    fn worker_limits_come_from_the_flags() {
        let config = parse(&["--concurrency", "7", "--drain-deadline", "3s"])
            .sidecar_config()
            .unwrap();
        assert_eq!(config.worker.concurrency, 7);
        assert_eq!(config.worker.drain_deadline, Duration::from_secs(3));
    }
}

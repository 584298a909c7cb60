//! `fastapihooks start`: the sidecar. Leases events and deliveries from a durable queue, fans
//! out, delivers, retries and dead-letters, until SIGTERM or SIGINT; then stops leasing and
//! drains what is in flight within `--drain-deadline`.
//!
//! Deliveries are signed unless `--unsigned` says otherwise; a Redis queue must persist
//! (append-only file on) unless `--allow-volatile-redis` says otherwise.
//!
//! ```text
//! fastapihooks start --queue redis://127.0.0.1:6379 --store postgres://app@db/app --signing-secret "$SECRET"
//! fastapihooks start --queue postgres://app@db/app --signing-secret "$SECRET"   # the SQL outbox; the store is the same database
//! fastapihooks start --queue postgres://app@db/app --signing-secret "$WHSEC" --signature-scheme standard-webhooks
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use fastapihooks_core::dispatch::AllowHint;
use fastapihooks_core::health::HealthPolicy;
use fastapihooks_core::{
    HttpConfig, RetryPolicy, Secret, SqlBackend, SqlOutboxConfig, WorkerConfig, WorkerReport,
};

mod signing;

pub use self::signing::SignatureSchemeArg;
use super::database::{Migrations, SqlConnect, redacted};
use super::queue::{QueueArgs, QueueKind};
use super::retry::retry_policy;
use crate::admin::AdminPort;
use crate::logging::{self, LogFormat};
use crate::otlp::{OtlpArgs, TraceExport};
use crate::sidecar::{Retention, SidecarConfig, run_sidecar};

/// `--disable-after`: how long an endpoint may fail before its subscription is disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisableAfter {
    /// Never (a 410 Gone still disables).
    Never,
    /// After failing this long without a success.
    After(Duration),
}

/// `start` arguments. Every flag can also come from its `FASTAPIHOOKS_*` environment variable.
#[derive(Debug, Args)]
#[command(mut_arg("queue", |a| a.required(true)))]
pub struct StartArgs {
    /// The queue to drain (`--queue`, required), and its `--key-prefix` and `--postgres-schema`.
    #[command(flatten)]
    pub queue: QueueArgs,
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
    /// Deliver to subscriptions without a secret of their own unsigned. Without this or
    /// `--signing-secret`, the sidecar refuses to start.
    #[arg(long, env = "FASTAPIHOOKS_UNSIGNED", conflicts_with = "signing_secret")]
    pub unsigned: bool,
    /// How deliveries are signed.
    #[arg(
        long,
        value_enum,
        value_name = "SCHEME",
        default_value_t = SignatureSchemeArg::Sha256,
        env = "FASTAPIHOOKS_SIGNATURE_SCHEME"
    )]
    pub signature_scheme: SignatureSchemeArg,
    /// sha256 scheme: the signature header, e.g. `X-Hub-Signature-256`. Default
    /// `X-Fastapihooks-Signature`.
    #[arg(long, value_name = "NAME", env = "FASTAPIHOOKS_SIGNATURE_HEADER")]
    pub signature_header: Option<String>,
    /// sha256 scheme: the event-name header. Default `X-Fastapihooks-Event`.
    #[arg(long, value_name = "NAME", env = "FASTAPIHOOKS_EVENT_HEADER")]
    pub event_header: Option<String>,
    /// sha256 scheme: the delivery-id header (the same on every retry). Default
    /// `X-Fastapihooks-Id`.
    #[arg(long, value_name = "NAME", env = "FASTAPIHOOKS_ID_HEADER")]
    pub id_header: Option<String>,
    /// sha256 scheme: the timestamp header. Default `X-Fastapihooks-Timestamp`.
    #[arg(long, value_name = "NAME", env = "FASTAPIHOOKS_TIMESTAMP_HEADER")]
    pub timestamp_header: Option<String>,
    /// Requests to subscribers in flight at once (each held for its HTTP exchange only):
    /// never exceeded.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100,
        env = "FASTAPIHOOKS_CONCURRENCY"
    )]
    pub concurrency: usize,
    /// Leased tasks running at once: attempting, or waiting for the store and the queue to
    /// commit their outcome. Work is leased only with a free slot. At least --concurrency;
    /// default 4 × --concurrency.
    #[arg(long, value_name = "N", env = "FASTAPIHOOKS_TASKS_IN_FLIGHT")]
    pub tasks_in_flight: Option<usize>,
    /// At most this many tasks leased per queue call.
    #[arg(
        long,
        value_name = "N",
        default_value_t = WorkerConfig::default().lease_batch,
        env = "FASTAPIHOOKS_LEASE_BATCH"
    )]
    pub lease_batch: usize,
    /// A task leased this many times without being settled (it crashes or stalls every
    /// sidecar that takes it) is dead-lettered with the reason instead of leased again.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..),
        env = "FASTAPIHOOKS_MAX_LEASES"
    )]
    pub max_leases: u32,
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
    /// When failed deliveries are tried again, unless a subscription has its own schedule: a
    /// preset (`standard-webhooks`: 5s, 5m, 30m, 2h, 5h, 10h, 10h ±20 %, about 28 hours;
    /// `fastapihooks`: 1s, 2s, 4s ±25 %; `none`) or delays such as `1s,10s,1m` (±20 % jitter
    /// unless given, e.g. `1s,10s ±0%`). `Retry-After` is honoured up to the longest delay.
    #[arg(long, value_name = "SCHEDULE", default_value = "standard-webhooks", value_parser = retry_policy, env = "FASTAPIHOOKS_RETRY_SCHEDULE")]
    pub retry_schedule: RetryPolicy,
    /// Disable a subscription whose endpoint has failed for this long without a single success
    /// (and at least --disable-min-failures times): `1d`, `12h`, or `never`. Its deliveries are
    /// then kept as failed without being sent, and new events are not fanned out to it, until
    /// `fastapihooks subscriptions enable ID --replay` enables it and sends them again. A
    /// `410 Gone` answer disables a subscription at once whatever this says.
    #[arg(long, value_name = "DURATION|never", default_value = "1d", value_parser = disable_after, env = "FASTAPIHOOKS_DISABLE_AFTER")]
    pub disable_after: DisableAfter,
    /// How many failed attempts the streak must count too before --disable-after disables, so
    /// an endpoint that receives one event a day is not disabled for a single failure.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        env = "FASTAPIHOOKS_DISABLE_MIN_FAILURES"
    )]
    pub disable_min_failures: u32,
    /// Keep delivered history this long (`30d`, `12h`): delivered deliveries whose state last
    /// changed longer ago, their attempts and the events left with none are pruned in the
    /// background — and, with the SQL outbox, its dead rows that died that long ago —, at start
    /// and then every retention/24 (between a minute and an hour). Failed and dead deliveries
    /// are kept. Default: off, history is kept for ever (`fastapihooks prune` prunes by hand).
    #[arg(long, value_name = "DURATION", value_parser = super::prune::retention_period, env = "FASTAPIHOOKS_RETAIN")]
    pub retain: Option<Duration>,
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
    /// Redis only: start even when Redis is not known to persist the queue (append-only file
    /// off, or its settings unreadable). Such a Redis loses every queued event on a restart.
    #[arg(long, env = "FASTAPIHOOKS_ALLOW_VOLATILE_REDIS")]
    pub allow_volatile_redis: bool,
    /// SQL outbox only: how often an empty outbox is looked at again.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = duration, env = "FASTAPIHOOKS_POLL_INTERVAL")]
    pub poll_interval: Duration,
    /// Database connections in each pool (the store's, and the outbox's when it is elsewhere).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        env = "FASTAPIHOOKS_STORE_CONNECTIONS"
    )]
    pub store_connections: u32,
    /// Serve the operator port on this address: `/metrics` (Prometheus text), `/healthz` (200
    /// while the process is up) and `/readyz` (200 when the queue and the store answer and the
    /// worker makes progress, else 503 naming what does not). It serves no secret and changes
    /// nothing, so it may listen where Prometheus scrapes it from another host (`0.0.0.0:9464`);
    /// port 0 picks a free port, logged as `operator port listening on http://ADDR`. Default:
    /// off.
    #[arg(long, value_name = "ADDR", env = "FASTAPIHOOKS_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Serve the management API on this address (subscriptions, events, deliveries, replay and
    /// `/openapi.json`, as JSON): every request must bear `--admin-token`. Refused on an
    /// address other than a loopback one without a token. Default: off.
    #[arg(long, value_name = "ADDR", env = "FASTAPIHOOKS_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// The bearer token of the management API (`Authorization: Bearer <token>`), at least 16
    /// characters.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FASTAPIHOOKS_ADMIN_TOKEN",
        hide_env_values = true,
        requires = "admin_addr"
    )]
    pub admin_token: Option<String>,
    /// While deliveries happen, log one info line this often: delivered, retried and
    /// dead-lettered since the last line and per second, the tasks in flight and the queue
    /// depth. An idle sidecar (nothing done, nothing in flight)
    /// logs `idle` once and then nothing. `0` turns it off.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration, env = "FASTAPIHOOKS_PROGRESS_EVERY")]
    pub progress_every: Duration,
    /// Label the delivery and attempt metrics with the subscription's id (`subscription`).
    /// Off by default: every subscription becomes time series of its own; turn it on when
    /// subscriptions are tens, not thousands.
    #[arg(long, env = "FASTAPIHOOKS_METRICS_PER_SUBSCRIPTION")]
    pub metrics_per_subscription: bool,
    /// Log filter, e.g. `info` or `fastapihooks_core=debug`. Default: `RUST_LOG`, else `info`.
    #[arg(long, value_name = "FILTER", env = "FASTAPIHOOKS_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log lines as text (coloured only on a terminal) or as JSON objects, one per line.
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Text,
        env = "FASTAPIHOOKS_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// PostgreSQL only: the schema the tables live in (its `search_path`), for the queue and the
    /// store alike.
    #[arg(long, value_name = "SCHEMA", env = "FASTAPIHOOKS_POSTGRES_SCHEMA")]
    pub postgres_schema: Option<String>,
    /// Trace export over OTLP.
    #[command(flatten)]
    pub otlp: OtlpArgs,
}

/// Parses `500ms`, `10s`, `1m`, `1h 30m`.
fn duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text)
}

/// `--disable-after`: a duration (`1d`, `12h`, `30m`) or `never`.
fn disable_after(text: &str) -> Result<DisableAfter, String> {
    if text.trim().eq_ignore_ascii_case("never") {
        return Ok(DisableAfter::Never);
    }
    humantime::parse_duration(text)
        .map(DisableAfter::After)
        .map_err(|e| format!("expected a duration (1d, 12h, 30m) or `never`: {e}"))
}

impl StartArgs {
    /// The endpoint health policy of `--disable-after` and `--disable-min-failures`.
    fn health_policy(&self) -> HealthPolicy {
        match self.disable_after {
            DisableAfter::Never => HealthPolicy::never(),
            DisableAfter::After(after) => {
                HealthPolicy::disable_after(after, self.disable_min_failures)
            }
        }
    }

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
        let retry = self.retry_schedule.clone();
        let secret = self
            .signing_secret
            .as_deref()
            .map(Secret::new)
            .transpose()
            .context("--signing-secret")?;
        if secret.is_none() && !self.unsigned {
            anyhow::bail!(
                "no signing secret: deliveries to subscriptions without a secret of their own \
                 would go out unsigned; pass --signing-secret SECRET (env \
                 FASTAPIHOOKS_SIGNING_SECRET), or --unsigned (env FASTAPIHOOKS_UNSIGNED=true) to \
                 deliver them unsigned on purpose"
            );
        }
        let signer = self.signer(secret.as_ref())?;
        // Refusals of the SSRF guard are read in the sidecar's log and delivery history: they
        // name its flags, not the Rust API.
        http = http.allow_hint(AllowHint::CliFlags);
        Ok(SidecarConfig {
            secret,
            unsigned: self.unsigned,
            signer: Some(signer),
            http,
            retry,
            worker: WorkerConfig {
                concurrency: self.concurrency,
                tasks_in_flight: self.tasks_in_flight,
                lease_batch: self.lease_batch,
                drain_deadline: self.drain_deadline,
                max_leases: self.max_leases,
            },
            health: self.health_policy(),
            retention: self.retain.map(Retention::new),
            metrics_addr: self.metrics_addr,
            // Installed by `run` (the binary's start path), not here.
            prometheus: None,
            progress_every: Some(self.progress_every).filter(|every| !every.is_zero()),
            metrics_per_subscription: self.metrics_per_subscription,
            // Set by `run` when it exports traces.
            trace_context: None,
            admin: self.admin_port()?,
        })
    }

    /// The management port of `--admin-addr` and `--admin-token`, checked.
    fn admin_port(&self) -> anyhow::Result<Option<AdminPort>> {
        let Some(addr) = self.admin_addr else {
            return Ok(None);
        };
        let token = match &self.admin_token {
            Some(token) => Some(Secret::new(token.clone()).context("--admin-token")?),
            None => None,
        };
        AdminPort::new(addr, token).map(Some)
    }

    /// How the store and the outbox are connected: `--store-connections`, `--postgres-schema`,
    /// and pending migrations applied with `--migrate`, otherwise refused.
    fn sql(&self) -> SqlConnect {
        SqlConnect::new(self.store_connections)
            .postgres_schema(self.postgres_schema.clone())
            .migrations(if self.migrate {
                Migrations::Apply
            } else {
                Migrations::RefuseOrFlag
            })
    }
}

/// Runs the sidecar until SIGTERM or SIGINT, then prints what it did.
pub async fn run(args: StartArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let export = TraceExport::start(&args.otlp)?;
    logging::init(
        args.log_level.as_deref(),
        args.log_format,
        export.as_ref().map(TraceExport::layer),
    );
    let mut config = args.sidecar_config()?;
    config.trace_context = export.as_ref().map(TraceExport::trace_context);
    if args.metrics_addr.is_some() {
        // The one global recorder (with the metrics' descriptions), installed by the binary
        // only: the library crates never install one.
        config.prometheus = Some(crate::http::install_prometheus()?);
    }
    let report = match args.queue.kind()? {
        QueueKind::Redis => run_redis(&args, config).await,
        QueueKind::Sql => run_outbox(&args, config).await,
    };
    // The spans still batched leave before the process does, whatever the sidecar ended with.
    if let Some(export) = export {
        export.shutdown().await;
    }
    writeln!(out, "stopped: {}", summary(&report?))?;
    Ok(())
}

#[cfg(feature = "redis")]
async fn run_redis(args: &StartArgs, config: SidecarConfig) -> anyhow::Result<WorkerReport> {
    let Some(store_url) = &args.store else {
        anyhow::bail!("--store is required with a Redis queue: the SQL database of the store");
    };
    let store = args.sql().connect("--store", store_url).await?;
    let queue = args.queue.redis(Some(args.visibility_timeout)).await?;
    let url = redacted(args.queue.url()?);
    let persistence = queue
        .persistence()
        .await
        .with_context(|| format!("--queue {url}"))?;
    if !persistence.is_durable() {
        let what = if persistence.is_volatile() {
            "runs without the append-only file"
        } else {
            "may run without the append-only file (its settings cannot be read)"
        };
        if !args.allow_volatile_redis {
            anyhow::bail!(
                "--queue {url}: Redis {what} ({persistence}), so it will lose every queued event on \
                 a restart. Set `appendonly yes` and `appendfsync everysec` (or `always`) in its \
                 configuration (at run time: CONFIG SET appendonly yes, then CONFIG REWRITE), or \
                 pass --allow-volatile-redis (env FASTAPIHOOKS_ALLOW_VOLATILE_REDIS=true) to \
                 start anyway"
            );
        }
        tracing::warn!(queue = %url, %persistence, "Redis {what}: a restart loses every queued event (started with --allow-volatile-redis)");
    }
    tracing::info!(queue = %url, prefix = %args.queue.key_prefix, "draining Redis");
    run_sidecar(Arc::new(queue), Arc::new(store), config).await
}

#[cfg(not(feature = "redis"))]
async fn run_redis(_: &StartArgs, _: SidecarConfig) -> anyhow::Result<WorkerReport> {
    anyhow::bail!(super::queue::NO_REDIS)
}

/// Drains the SQL outbox; the store is the same database unless `--store` says otherwise.
async fn run_outbox(args: &StartArgs, mut config: SidecarConfig) -> anyhow::Result<WorkerReport> {
    let outbox_config = SqlOutboxConfig {
        visibility_timeout: args.visibility_timeout,
        poll_interval: args.poll_interval,
        block: SqlOutboxConfig::default().block.max(args.poll_interval),
    };
    let queue_url = args.queue.url()?;
    let sql = args.sql();
    let queue_db = sql.connect("--queue", queue_url).await?;
    let store = match &args.store {
        Some(url) if url != queue_url => sql.connect("--store", url).await?,
        _ => queue_db.clone(),
    };
    let queue = SqlBackend::with_config(queue_db.connection().clone(), outbox_config)?;
    // Retention prunes the outbox's old dead rows too.
    config.retention = config
        .retention
        .map(|r| r.outbox(Arc::new(SqlBackend::new(queue_db.connection().clone()))));
    tracing::info!(queue = %redacted(queue_url), "draining the SQL outbox");
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
            RetryPolicy::schedule([Duration::from_millis(100), Duration::from_secs(2)])
                .jitter(0.2)
                .unwrap()
        );
    }

    #[test]
    fn endpoint_health_flags_make_the_policy_and_never_turns_it_off() {
        assert_eq!(parse(&[]).health_policy(), HealthPolicy::default());
        assert_eq!(
            parse(&["--disable-after", "never"]).health_policy(),
            HealthPolicy::never()
        );
        assert_eq!(
            parse(&["--disable-after", "2h 30m", "--disable-min-failures", "3"]).health_policy(),
            HealthPolicy::disable_after(Duration::from_secs(9000), 3)
        );
        let config = parse(&["--unsigned", "--disable-after", "never"])
            .sidecar_config()
            .unwrap();
        assert_eq!(config.health, HealthPolicy::never());
        let err = crate::Cli::try_parse_from([
            "fastapihooks",
            "start",
            "--queue",
            "redis://127.0.0.1:6379",
            "--disable-after",
            "soon",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("never"), "{err}");
    }

    #[test]
    fn retention_is_off_unless_retain_says_how_long() {
        assert!(
            parse(&["--unsigned"])
                .sidecar_config()
                .unwrap()
                .retention
                .is_none()
        );
        let config = parse(&["--unsigned", "--retain", "30d"])
            .sidecar_config()
            .unwrap();
        let retention = config.retention.unwrap();
        assert_eq!(retention.retain, Duration::from_secs(30 * 86_400));
        assert_eq!(retention.period(), Duration::from_secs(3600));
        let err = crate::Cli::try_parse_from([
            "fastapihooks",
            "start",
            "--queue",
            "redis://127.0.0.1:6379",
            "--retain",
            "0s",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn the_operator_port_is_off_and_progress_lines_every_minute_unless_asked() {
        let config = parse(&["--unsigned"]).sidecar_config().unwrap();
        assert_eq!(config.metrics_addr, None);
        assert_eq!(config.progress_every, Some(Duration::from_secs(60)));
        let config = parse(&[
            "--unsigned",
            "--metrics-addr",
            "0.0.0.0:9464",
            "--progress-every",
            "0",
        ])
        .sidecar_config()
        .unwrap();
        assert_eq!(config.metrics_addr, Some("0.0.0.0:9464".parse().unwrap()));
        assert_eq!(config.progress_every, None);
        let err = crate::Cli::try_parse_from([
            "fastapihooks",
            "start",
            "--queue",
            "redis://127.0.0.1:6379",
            "--metrics-addr",
            "9464",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn the_default_schedule_is_the_standard_webhooks_one() {
        assert_eq!(parse(&[]).retry_schedule, RetryPolicy::standard_webhooks());
    }

    #[test]
    fn the_ssrf_guard_stays_on_unless_loopback_is_allowed() {
        let loopback = url::Url::parse("http://127.0.0.1:9/hook").unwrap();
        let guarded = parse(&["--unsigned"]).sidecar_config().unwrap();
        assert!(guarded.http.check_url(&loopback).is_err());
        let open = parse(&["--unsigned", "--allow-loopback"])
            .sidecar_config()
            .unwrap();
        assert!(open.http.check_url(&loopback).is_ok());
    }

    #[test]
    fn a_bad_cidr_is_refused_with_the_flag_named() {
        let err = parse(&["--unsigned", "--allow-network", "10.0.0.0/33"])
            .sidecar_config()
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("--allow-network 10.0.0.0/33"),
            "{err:#}"
        );
    }

    #[test]
    fn worker_limits_come_from_the_flags() {
        let config = parse(&["--unsigned", "--concurrency", "7", "--drain-deadline", "3s"])
            .sidecar_config()
            .unwrap();
        assert_eq!(config.worker.concurrency, 7);
        assert_eq!(config.worker.tasks_in_flight(), 28, "4 × the concurrency");
        assert_eq!(config.worker.drain_deadline, Duration::from_secs(3));
        let config = parse(&["--unsigned", "--concurrency", "7", "--tasks-in-flight", "9"])
            .sidecar_config()
            .unwrap();
        assert_eq!(config.worker.tasks_in_flight(), 9);
    }

    fn refusal(args: &[&str]) -> String {
        format!("{:#}", parse(args).sidecar_config().unwrap_err())
    }

    #[test]
    fn without_a_secret_or_unsigned_the_sidecar_is_refused_naming_both_flags() {
        let message = refusal(&[]);
        assert!(message.contains("--signing-secret"), "{message}");
        assert!(message.contains("--unsigned"), "{message}");
        assert!(
            parse(&["--signing-secret", "s3cret"])
                .sidecar_config()
                .is_ok()
        );
    }

    #[test]
    fn unsigned_and_a_secret_together_are_a_contradiction() {
        let cli = crate::Cli::try_parse_from([
            "fastapihooks",
            "start",
            "--queue",
            "redis://127.0.0.1:6379",
            "--unsigned",
            "--signing-secret",
            "s3cret",
        ]);
        assert!(cli.is_err());
    }

    #[test]
    fn the_sidecar_explains_ssrf_refusals_with_its_flags() {
        let config = parse(&["--unsigned"]).sidecar_config().unwrap();
        let url = url::Url::parse("http://127.0.0.1:9/hook").unwrap();
        let message = config.http.check_url(&url).unwrap_err().to_string();
        assert!(message.contains("--allow-loopback"), "{message}");
        assert!(!message.contains("HttpConfig"), "{message}");
    }

    #[test]
    fn header_flags_with_the_standard_webhooks_scheme_are_refused_saying_why() {
        let message = refusal(&[
            "--unsigned",
            "--signature-scheme",
            "standard-webhooks",
            "--id-header",
            "X-Delivery",
        ]);
        assert!(message.contains("--id-header"), "{message}");
        assert!(message.contains("webhook-id"), "{message}");
        assert!(message.contains("--signature-scheme sha256"), "{message}");
    }

    #[test]
    fn the_standard_webhooks_scheme_needs_a_whsec_base64_secret() {
        let scheme = ["--signature-scheme", "standard-webhooks"];
        let plain = refusal(&[&scheme[..], &["--signing-secret", "plain-secret"]].concat());
        assert!(plain.contains("whsec_"), "{plain}");
        assert!(
            !plain.contains("plain-secret"),
            "the secret leaked: {plain}"
        );
        let broken = refusal(&[&scheme[..], &["--signing-secret", "whsec_not*base64"]].concat());
        assert!(broken.contains("base64"), "{broken}");
        let good = Secret::generate().unwrap();
        let config = parse(&[&scheme[..], &["--signing-secret", good.expose()]].concat())
            .sidecar_config()
            .unwrap();
        assert!(format!("{:?}", config.signer).contains("StandardWebhooks"));
    }

    #[test]
    fn two_signature_headers_with_one_name_are_refused() {
        let message = refusal(&["--unsigned", "--signature-header", "X-Fastapihooks-Id"]);
        assert!(message.contains("--id-header"), "{message}");
        let reserved = refusal(&["--unsigned", "--event-header", "Content-Type"]);
        assert!(reserved.contains("Content-Type"), "{reserved}");
    }

    #[test]
    fn a_bad_header_name_is_refused_naming_the_flag() {
        let message = refusal(&["--unsigned", "--signature-header", "X Bad"]);
        assert!(message.contains("--signature-header X Bad"), "{message}");
    }
}

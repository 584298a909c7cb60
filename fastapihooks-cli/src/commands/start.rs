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
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Args, ValueEnum};
use fastapihooks_core::dispatch::AllowHint;
use fastapihooks_core::signing::{Sha256Hex, Signer, StandardWebhooks};
use fastapihooks_core::{
    HttpConfig, RetryPolicy, Secret, SqlBackend, SqlOutboxConfig, SqlStore, SqlStoreOptions,
    WorkerConfig, WorkerReport,
};

use super::database::redacted;
use super::retry::retry_policy;
use crate::logging::{self, LogFormat};
use crate::sidecar::{SidecarConfig, run_sidecar};

/// `--signature-scheme`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SignatureSchemeArg {
    /// `X-Fastapihooks-Signature: sha256=<hex HMAC-SHA256 of the body>` (fastapihooks- and
    /// GitHub-compatible); header names set with `--signature-header` and the like.
    #[default]
    Sha256,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`;
    /// the secret must be a `whsec_<base64>` key.
    StandardWebhooks,
}

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
    /// When failed deliveries are tried again, unless a subscription has its own schedule: a
    /// preset (`standard-webhooks`: 5s, 5m, 30m, 2h, 5h, 10h, 10h ±20 %, about 28 hours;
    /// `fastapihooks`: 1s, 2s, 4s ±25 %; `none`) or delays such as `1s,10s,1m` (±20 % jitter
    /// unless given, e.g. `1s,10s ±0%`). `Retry-After` is honoured up to the longest delay.
    #[arg(long, value_name = "SCHEDULE", default_value = "standard-webhooks", value_parser = retry_policy, env = "FASTAPIHOOKS_RETRY_SCHEDULE")]
    pub retry_schedule: RetryPolicy,
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
    /// Log lines as text (coloured only on a terminal) or as JSON objects, one per line.
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Text,
        env = "FASTAPIHOOKS_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// Header names the delivery itself needs: a signature header may not take one.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "host",
    "transfer-encoding",
    "user-agent",
];

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
                lease_batch: self.lease_batch,
                drain_deadline: self.drain_deadline,
            },
        })
    }

    /// The signer `--signature-scheme` and the header flags describe.
    fn signer(&self, secret: Option<&Secret>) -> anyhow::Result<Arc<dyn Signer>> {
        let headers = [
            (
                "--signature-header",
                &self.signature_header,
                "x-fastapihooks-signature",
            ),
            ("--event-header", &self.event_header, "x-fastapihooks-event"),
            ("--id-header", &self.id_header, "x-fastapihooks-id"),
            (
                "--timestamp-header",
                &self.timestamp_header,
                "x-fastapihooks-timestamp",
            ),
        ];
        match self.signature_scheme {
            SignatureSchemeArg::StandardWebhooks => {
                if let Some((flag, _, _)) = headers.iter().find(|(_, name, _)| name.is_some()) {
                    anyhow::bail!(
                        "{flag} cannot be used with --signature-scheme standard-webhooks: that \
                         scheme's header names are fixed by its specification (webhook-id, \
                         webhook-timestamp, webhook-signature), and receivers look for exactly \
                         those; header names can be chosen with --signature-scheme sha256"
                    );
                }
                if let Some(secret) = secret {
                    check_standard_webhooks_secret(secret)?;
                }
                Ok(Arc::new(StandardWebhooks))
            }
            SignatureSchemeArg::Sha256 => {
                let mut taken: Vec<(&str, String)> = Vec::new();
                for (flag, name, default) in &headers {
                    let name = name.as_deref().unwrap_or(default);
                    let lower = name.to_ascii_lowercase();
                    if RESERVED_HEADERS.contains(&lower.as_str()) {
                        anyhow::bail!(
                            "{flag} {name}: the delivery needs that header for itself; choose \
                             another name"
                        );
                    }
                    if let Some((other, _)) = taken.iter().find(|(_, n)| *n == lower) {
                        anyhow::bail!(
                            "{flag} {name}: {other} already names that header; each header \
                             needs a name of its own"
                        );
                    }
                    taken.push((flag, lower));
                }
                let mut signer = Sha256Hex::new();
                if let Some(name) = &self.signature_header {
                    signer = signer
                        .signature_header(name)
                        .with_context(|| format!("--signature-header {name}"))?;
                }
                if let Some(name) = &self.event_header {
                    signer = signer
                        .event_header(name)
                        .with_context(|| format!("--event-header {name}"))?;
                }
                if let Some(name) = &self.id_header {
                    signer = signer
                        .id_header(name)
                        .with_context(|| format!("--id-header {name}"))?;
                }
                if let Some(name) = &self.timestamp_header {
                    signer = signer
                        .timestamp_header(name)
                        .with_context(|| format!("--timestamp-header {name}"))?;
                }
                Ok(Arc::new(signer))
            }
        }
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

/// Standard Webhooks receivers take the key from a `whsec_<base64>` secret: any other secret
/// would sign with a key no receiver derives. (The core signs a secret without the prefix with
/// its raw bytes, and one whose base64 is broken likewise, which no receiver reproduces.)
fn check_standard_webhooks_secret(secret: &Secret) -> anyhow::Result<()> {
    const HOW: &str = "make one with e.g. `echo whsec_$(openssl rand -base64 32)`";
    let Some(encoded) = secret.expose().strip_prefix("whsec_") else {
        anyhow::bail!(
            "--signing-secret: --signature-scheme standard-webhooks needs a `whsec_<base64>` \
             secret (Standard Webhooks receivers base64-decode what follows `whsec_` to get the \
             key, so another secret would not verify); {HOW}"
        );
    };
    match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(()),
        _ => anyhow::bail!(
            "--signing-secret: what follows `whsec_` is not a base64 key, so Standard Webhooks \
             receivers could not verify the signatures; {HOW}"
        ),
    }
}

/// Runs the sidecar until SIGTERM or SIGINT, then prints what it did.
pub async fn run(args: StartArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    logging::init(args.log_level.as_deref(), args.log_format);
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
    let persistence = queue
        .persistence()
        .await
        .with_context(|| format!("--queue {}", redacted(&args.queue)))?;
    if !persistence.is_durable() {
        let what = if persistence.is_volatile() {
            "runs without the append-only file"
        } else {
            "may run without the append-only file (its settings cannot be read)"
        };
        if !args.allow_volatile_redis {
            anyhow::bail!(
                "--queue {}: Redis {what} ({persistence}), so it will lose every queued event on \
                 a restart. Set `appendonly yes` and `appendfsync everysec` (or `always`) in its \
                 configuration (at run time: CONFIG SET appendonly yes, then CONFIG REWRITE), or \
                 pass --allow-volatile-redis (env FASTAPIHOOKS_ALLOW_VOLATILE_REDIS=true) to \
                 start anyway",
                redacted(&args.queue)
            );
        }
        tracing::warn!(queue = %redacted(&args.queue), %persistence, "Redis {what}: a restart loses every queued event (started with --allow-volatile-redis)");
    }
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
        assert_eq!(config.worker.drain_deadline, Duration::from_secs(3));
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

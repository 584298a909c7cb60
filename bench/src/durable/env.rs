//! [`DurableEnv`]: one sidecar run's world — a PostgreSQL schema of its own holding the store
//! (and, for the outbox, the queue), a Redis key prefix of its own, the subscriptions, and the
//! publishing side (the conductor plays the application). [`DurableEnv::remove`] drops the
//! schema and deletes the keys under the prefix, and nothing else.

use std::time::Duration;

use anyhow::Context;
use fastapihooks_core::{
    Backend, Event, Queue, RedisBackend, RedisConfig, SqlBackend, SqlStore, SqlStoreOptions, Store,
    SubscriptionId,
};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, TransactionTrait};

use super::place::Place;
use super::{QueueKind, Services};
use crate::backends::subscriptions;
use crate::proc_stats::unix_ns;

/// Events per publish call when the backlog is queued (one pipeline, or one transaction).
const PUBLISH_BATCH: usize = 1_000;

/// The publishing side of the queue.
enum Publisher {
    Redis(Box<RedisBackend>),
    Outbox(SqlBackend),
}

/// One run's schema, store, key prefix and queue.
pub struct DurableEnv {
    kind: QueueKind,
    services: Services,
    schema: String,
    prefix: String,
    store: SqlStore,
    publisher: Publisher,
}

impl DurableEnv {
    /// Creates a fresh schema (`fh_bench_<ulid>`), migrates the store into it, and connects to
    /// the queue (Redis under the prefix `fh-bench-<ulid>`, or the outbox in the schema).
    pub async fn create(kind: QueueKind, services: &Services) -> anyhow::Result<Self> {
        let run = ulid::Ulid::new().to_string().to_lowercase();
        let schema = format!("fh_bench_{run}");
        let prefix = format!("fh-bench-{run}");
        admin(
            &services.postgres,
            &[format!(r#"CREATE SCHEMA "{schema}""#)],
        )
        .await
        .with_context(|| format!("creating schema {schema} on {}", services.postgres))?;
        match open(kind, services, &schema, &prefix).await {
            Ok((store, publisher)) => Ok(Self {
                kind,
                services: services.clone(),
                schema,
                prefix,
                store,
                publisher,
            }),
            Err(e) => {
                drop_schema(&services.postgres, &schema).await;
                Err(e)
            }
        }
    }

    /// The queue.
    pub fn kind(&self) -> QueueKind {
        self.kind
    }

    /// The store (the conductor reads the history through it).
    pub fn store(&self) -> &SqlStore {
        &self.store
    }

    /// The WAL records the PostgreSQL server has written so far (`pg_stat_wal`, PostgreSQL 14
    /// or later; the whole server, not this run's schema alone): the count of its writes, which
    /// does not move with the machine's speed. `None` when the server does not say.
    pub async fn wal_records(&self) -> Option<i64> {
        let row = self
            .store
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT wal_records FROM pg_stat_wal",
            ))
            .await
            .ok()??;
        row.try_get("", "wal_records").ok()
    }

    /// Stores `count` subscriptions of the benchmark's event at `url` (concurrently, as many
    /// at once as the pool has connections); returns their ids.
    pub async fn subscribe(&self, count: usize, url: &str) -> anyhow::Result<Vec<SubscriptionId>> {
        let mut ids = Vec::with_capacity(count);
        let mut adding = tokio::task::JoinSet::new();
        for subscription in subscriptions(count, url)? {
            ids.push(subscription.id.clone());
            let store = self.store.clone();
            adding.spawn(async move { store.add_subscription(subscription).await });
        }
        while let Some(added) = adding.join_next().await {
            added??;
        }
        Ok(ids)
    }

    /// Queues a backlog before any sidecar runs: `publish_many` in batches (a pipeline of
    /// `XADD`s, or one outbox transaction per batch).
    pub async fn publish_backlog(&self, events: &[Event]) -> anyhow::Result<()> {
        for batch in events.chunks(PUBLISH_BATCH) {
            match &self.publisher {
                Publisher::Redis(queue) => queue.publish_many(batch).await?,
                Publisher::Outbox(outbox) => outbox.publish_many(batch).await?,
            }
        }
        Ok(())
    }

    /// Publishes one event as an application would and returns the unix ns at which it was
    /// committed: when `XADD` returned, or when the transaction holding the outbox row
    /// committed.
    pub async fn publish_one(&self, event: Event) -> anyhow::Result<u64> {
        match &self.publisher {
            Publisher::Redis(queue) => queue.publish(event).await?,
            Publisher::Outbox(outbox) => {
                let txn = self.store.connection().begin().await?;
                outbox.publish_in(&txn, &event).await?;
                txn.commit().await?;
            }
        }
        Ok(unix_ns())
    }

    /// Tasks in the queue, ready, leased or waiting for a retry (`Queue::depth`): before any
    /// sidecar runs, what was published.
    pub async fn queued(&self) -> anyhow::Result<u64> {
        Ok(match &self.publisher {
            Publisher::Redis(queue) => queue.depth().await?,
            Publisher::Outbox(outbox) => outbox.depth().await?,
        })
    }

    /// Where the parts find this run: its schema, and its Redis prefix when the queue is
    /// Redis.
    pub fn place(&self) -> Place {
        let redis = self.kind == QueueKind::Redis;
        Place {
            postgres: Some(self.services.postgres.clone()),
            schema: Some(self.schema.clone()),
            redis: redis.then(|| self.services.redis.clone()),
            key_prefix: redis.then(|| self.prefix.clone()),
        }
    }

    /// Holds the wake gate of this run's outbox, as an idle sidecar would.
    pub async fn hold_wake_gate(&self) -> anyhow::Result<super::wake_gate::HeldWakeGate> {
        super::wake_gate::HeldWakeGate::take(&self.services.postgres, &self.schema).await
    }

    /// The sidecar part's arguments for this run.
    pub fn sidecar_args(&self, concurrency: usize) -> Vec<String> {
        let mut args = vec![
            "sidecar".to_owned(),
            "--queue".to_owned(),
            self.kind.name().to_owned(),
        ];
        args.extend(self.place().to_args());
        args.extend(["--concurrency".to_owned(), concurrency.to_string()]);
        args
    }

    /// Makes the table the route's database forms write their orders to.
    pub async fn create_orders_table(&self) -> anyhow::Result<()> {
        self.store
            .connection()
            .execute_unprepared(crate::roles::orders::CREATE_TABLE)
            .await?;
        Ok(())
    }

    /// Closes the store, drops the schema and deletes the keys under the prefix. Failures are
    /// reported on stderr, not returned: a leftover must not hide the run's own outcome.
    pub async fn remove(self) {
        let Self {
            kind,
            services,
            schema,
            prefix,
            store,
            publisher,
        } = self;
        drop(publisher);
        let _ = store.connection().clone().close().await;
        drop_schema(&services.postgres, &schema).await;
        if kind == QueueKind::Redis
            && let Err(e) = delete_keys(&services.redis, &prefix).await
        {
            eprintln!("warning: Redis keys under {{{prefix}}}: were left behind: {e:#}");
        }
    }
}

/// The store in `schema` (migrated) and the publishing side of the queue.
async fn open(
    kind: QueueKind,
    services: &Services,
    schema: &str,
    prefix: &str,
) -> anyhow::Result<(SqlStore, Publisher)> {
    let store = SqlStoreOptions::new(&services.postgres)
        .postgres_schema(schema)
        .max_connections(4)
        .connect()
        .await
        .with_context(|| format!("the store in schema {schema}"))?;
    let publisher = match kind {
        QueueKind::Redis => Publisher::Redis(Box::new(
            RedisBackend::connect(RedisConfig::new(&services.redis).key_prefix(prefix))
                .await
                .with_context(|| format!("Redis at {}", services.redis))?,
        )),
        QueueKind::Outbox => Publisher::Outbox(SqlBackend::for_store(&store)),
    };
    Ok((store, publisher))
}

/// Runs `statements` through a fresh one-connection pool to `url`.
async fn admin(url: &str, statements: &[String]) -> anyhow::Result<()> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    let mut outcome = Ok(());
    for statement in statements {
        if let Err(e) = db.execute_unprepared(statement).await {
            outcome = Err(anyhow::anyhow!("{statement}: {e}"));
            break;
        }
    }
    let _ = db.close().await;
    outcome
}

/// Drops `schema` and everything in it (waiting at most 10 s for a lock).
async fn drop_schema(url: &str, schema: &str) {
    let statements = [
        "SET lock_timeout = '10s'".to_owned(),
        format!(r#"DROP SCHEMA IF EXISTS "{schema}" CASCADE"#),
    ];
    if let Err(e) = admin(url, &statements).await {
        eprintln!("warning: schema {schema} was left behind: {e:#}");
    }
}

/// Deletes the queue's keys (`{prefix}:…`) and only those.
async fn delete_keys(url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let head = format!("{{{prefix}}}:");
    let mut keys: Vec<String> = RedisConfig::new(url).key_prefix(prefix).keys().to_vec();
    let mut cursor = 0u64;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{head}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        keys.extend(found);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    keys.sort();
    keys.dedup();
    for key in keys.iter().filter(|k| k.starts_with(&head)) {
        redis::cmd("DEL")
            .arg(key)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}

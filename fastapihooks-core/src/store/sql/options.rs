//! [`SqlStoreOptions`]: how [`SqlStore`] connects (pool, timeouts, migrations).

use std::time::Duration;

use sea_orm::{ConnectOptions, Database};

use super::SqlStore;
use crate::error::{Error, Result};

/// How to connect a [`SqlStore`]: the database URL, pool size, timeouts, and whether to run
/// pending migrations. [`SqlStore::connect`] uses the defaults.
///
/// Defaults: 10 pooled connections, a 10 s connect (and pool acquire) timeout so a database
/// that is down gives an error instead of a hang, a pooled connection checked (pinged) before
/// use only when it has been idle for 5 s or more (not on every checkout: a round trip per
/// statement), pending migrations applied. PostgreSQL on this machine (`localhost`,
/// `127.0.0.0/8`, `::1`) is reached without TLS unless the URL has an `sslmode` (TLS on a
/// loopback connection protects nothing and costs CPU on both ends; `sslmode=prefer` restores
/// the driver's default of taking it when offered), and its notices are not sent
/// (`client_min_messages = warning`, unless the URL's `options` set it). On SQLite: WAL
/// journal and a 5 s busy timeout, so readers never block the writer and concurrent writers
/// wait for each other instead of failing.
///
/// ```no_run
/// # async fn demo() -> fastapihooks_core::Result<()> {
/// use std::time::Duration;
/// use fastapihooks_core::SqlStoreOptions;
/// let store = SqlStoreOptions::new("postgres://app@127.0.0.1/app")
///     .max_connections(20)
///     .connect_timeout(Duration::from_secs(3))
///     .run_migrations(false) // migrations run by `fastapihooks migrate` at deploy time
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SqlStoreOptions {
    connect: ConnectOptions,
    run_migrations: bool,
    sqlite_busy_timeout: Duration,
    in_memory_sqlite: bool,
}

impl SqlStoreOptions {
    /// The default connect and acquire timeout.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default pool size.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
    /// How long a pooled connection may sit idle before it is checked again by default.
    pub const DEFAULT_PING_IDLE_AFTER: Duration = Duration::from_secs(5);
    /// How long an SQLite writer waits for another one by default.
    pub const DEFAULT_SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    /// Options for `url`: `sqlite://fastapihooks.db?mode=rwc`, `postgres://…`, `mysql://…`.
    ///
    /// An in-memory SQLite database (`sqlite::memory:`) lives as long as its one connection:
    /// the pool then holds exactly one, kept open, so every query sees the same database.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let in_memory = url.starts_with("sqlite:") && url.contains("memory");
        let url = super::loopback_tls::without_tls_on_loopback(&url).into_owned();
        #[cfg(feature = "postgres")]
        let quiet = url.starts_with("postgres") && !url.contains("client_min_messages");
        let mut connect = ConnectOptions::new(url);
        connect
            .max_connections(Self::DEFAULT_MAX_CONNECTIONS)
            .connect_timeout(Self::DEFAULT_CONNECT_TIMEOUT)
            .acquire_timeout(Self::DEFAULT_CONNECT_TIMEOUT)
            .test_before_acquire_if_idle_for(Self::DEFAULT_PING_IDLE_AFTER)
            .sqlx_logging(false);
        // The server's notices ("relation … already exists, skipping" from the migrations'
        // `CREATE … IF NOT EXISTS`, three on every start) are not sent: the driver logs each
        // at `info`, and nothing of the store's is said by a notice. A URL that sets
        // `client_min_messages` itself keeps its own.
        #[cfg(feature = "postgres")]
        if quiet {
            connect.map_sqlx_postgres_opts(|options| {
                options.options([("client_min_messages", "warning")])
            });
        }
        if in_memory {
            connect
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        Self {
            connect,
            run_migrations: true,
            sqlite_busy_timeout: Self::DEFAULT_SQLITE_BUSY_TIMEOUT,
            in_memory_sqlite: in_memory,
        }
    }

    /// Whether `connect` applies pending migrations (default: yes).
    pub fn run_migrations(mut self, run: bool) -> Self {
        self.run_migrations = run;
        self
    }

    /// How long opening a connection, or waiting for a pooled one, may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect
            .connect_timeout(timeout)
            .acquire_timeout(timeout);
        self
    }

    /// The most connections the pool opens (an in-memory SQLite database keeps its one).
    pub fn max_connections(mut self, max: u32) -> Self {
        if !self.in_memory_sqlite {
            self.connect.max_connections(max.max(1));
        }
        self
    }

    /// A pooled connection idle for at least `idle` is pinged before it is handed out, and
    /// replaced if the database no longer answers on it (closed by the server, a proxy or a
    /// firewall while idle). One in use more recently is handed out as it is: checking every
    /// checkout would cost a round trip per statement. A connection that broke within `idle`
    /// fails its statement with [`Error::Storage`], which every caller treats as an outage to
    /// retry (a delivery is tried again later, never dropped). `Duration::ZERO` pings on every
    /// checkout.
    pub fn ping_idle_connections_after(mut self, idle: Duration) -> Self {
        self.connect.test_before_acquire_if_idle_for(idle);
        self
    }

    /// PostgreSQL only: the schema the tables live in (its `search_path`). The schema must
    /// exist.
    pub fn postgres_schema(mut self, schema: impl Into<String>) -> Self {
        self.connect.set_schema_search_path(schema);
        self
    }

    /// SQLite only: how long a writer waits for another one before failing.
    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.sqlite_busy_timeout = timeout;
        self
    }

    /// The underlying sea-orm options, for settings not covered here.
    pub fn connect_options_mut(&mut self) -> &mut ConnectOptions {
        &mut self.connect
    }

    /// Connects, then applies pending migrations unless turned off.
    ///
    /// Fails with [`Error::Storage`] (`store.connect`) when the database cannot be reached
    /// within the connect timeout, and (`store.migrate`) when a migration fails.
    pub async fn connect(self) -> Result<SqlStore> {
        #[cfg_attr(not(feature = "sqlite"), allow(unused_mut))]
        let mut connect = self.connect;
        #[cfg(feature = "sqlite")]
        {
            let busy = self.sqlite_busy_timeout;
            connect.map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(busy)
            });
        }
        #[cfg(not(feature = "sqlite"))]
        let _ = self.sqlite_busy_timeout;
        let db = Database::connect(connect)
            .await
            .map_err(|e| Error::storage("store.connect", e))?;
        let store = SqlStore::new(db);
        if self.run_migrations {
            store.migrate().await?;
        }
        Ok(store)
    }
}

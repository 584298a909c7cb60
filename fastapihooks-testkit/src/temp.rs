//! A PostgreSQL schema or a database of one test's own, dropped when the guard is dropped.
//!
//! A `Drop` cannot await, and may run inside the test's runtime — a `#[tokio::test]` default
//! current-thread one, which must not be blocked on its own I/O. So a guard drops what it made
//! from a plain thread of its own with a small runtime of its own and a fresh connection (the
//! test's connections belong to the test's runtime), and waits for that thread (at most 30 s;
//! past that, or on an error, it says what it left behind). The drop statement runs with a
//! 10 s lock timeout, so a connection the test left in a transaction cannot hang it. In async
//! code, [`remove`](TempSchema::remove) does the same without the thread.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

#[cfg(feature = "postgres")]
use crate::Service;

/// How long a guard's drop waits for the clean-up.
const CLEANUP_WITHIN: Duration = Duration::from_secs(30);

/// A small administrative connection (one connection, 3 s to connect, no statement logging).
pub(crate) async fn admin(url: &str) -> Result<DatabaseConnection, String> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(3))
        .sqlx_logging(false);
    Database::connect(options).await.map_err(|e| e.to_string())
}

/// A fresh lower-case name, `fh_test_<ulid>`, for a schema or database.
pub fn unique_name() -> String {
    format!("fh_test_{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Runs `statements` on `url` through a fresh connection, one after the other.
async fn run(url: &str, statements: &[String]) -> Result<(), String> {
    let admin = admin(url).await?;
    let mut outcome = Ok(());
    for statement in statements {
        if let Err(e) = admin.execute_unprepared(statement).await {
            outcome = Err(format!("{statement}: {e}"));
            break;
        }
    }
    let _ = admin.close().await;
    outcome
}

/// Runs `statements` from a thread of its own with its own runtime: safe in any `Drop`,
/// inside a current-thread or multi-thread runtime, or outside any.
fn run_aside(what: String, url: String, statements: Vec<String>) {
    let (done, finished) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("fastapihooks-testkit-cleanup".into())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(run(&url, &statements)));
            let _ = done.send(outcome);
        });
    let outcome = match spawned {
        Ok(_) => finished
            .recv_timeout(CLEANUP_WITHIN)
            .unwrap_or_else(|e| Err(format!("no end within {CLEANUP_WITHIN:?} ({e})"))),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = outcome {
        eprintln!("fastapihooks-testkit: {what} was left behind: {e}");
    }
}

/// A PostgreSQL schema of one test's own, created empty and dropped (`CASCADE`) with the guard.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use fastapihooks_testkit::TempSchema;
///
/// let Some(schema) = TempSchema::create("my_test").await else {
///     return; // PostgreSQL does not answer: skipped (a failure under CI=true)
/// };
/// // e.g. SqlStoreOptions::new(schema.url()).postgres_schema(schema.name())
/// # let _ = (schema.url(), schema.name());
/// # }
/// ```
#[cfg(feature = "postgres")]
#[derive(Debug)]
pub struct TempSchema {
    url: String,
    name: String,
    removed: bool,
}

#[cfg(feature = "postgres")]
impl TempSchema {
    /// Creates a schema on the test PostgreSQL ([`Service::POSTGRES`]), or `None` when it
    /// does not answer (see [`Service::or_skip`]).
    pub async fn create(test: &str) -> Option<Self> {
        let name = unique_name();
        let create = format!(r#"CREATE SCHEMA "{name}""#);
        let url = Service::POSTGRES
            .or_skip(test, |url| async move {
                let admin = admin(&url).await?;
                let created = admin.execute_unprepared(&create).await;
                let _ = admin.close().await;
                created.map_err(|e| e.to_string())?;
                Ok(url)
            })
            .await?;
        Some(Self {
            url,
            name,
            removed: false,
        })
    }

    /// The server's URL (the schema is not in it: set it as the search path, e.g.
    /// `SqlStoreOptions::postgres_schema` or `fastapihooks start --postgres-schema`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn drop_statements(&self) -> Vec<String> {
        vec![
            "SET lock_timeout = '10s'".to_owned(),
            format!(r#"DROP SCHEMA IF EXISTS "{}" CASCADE"#, self.name),
        ]
    }

    /// Drops the schema now, from async code (without the guard's thread).
    pub async fn remove(mut self) {
        self.removed = true;
        if let Err(e) = run(&self.url, &self.drop_statements()).await {
            eprintln!(
                "fastapihooks-testkit: schema {} was left behind: {e}",
                self.name
            );
        }
    }
}

#[cfg(feature = "postgres")]
impl Drop for TempSchema {
    fn drop(&mut self) {
        if !self.removed {
            run_aside(
                format!("schema {}", self.name),
                self.url.clone(),
                self.drop_statements(),
            );
        }
    }
}

/// Which server a [`TempDatabase`] lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "mysql")]
    Mysql,
}

/// A database of one test's own (MariaDB/MySQL, or PostgreSQL), created empty and dropped with
/// the guard.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use fastapihooks_testkit::TempDatabase;
///
/// let Some(db) = TempDatabase::mysql("my_test").await else {
///     return; // MariaDB does not answer: skipped (a failure under CI=true)
/// };
/// // e.g. SqlStore::connect(db.url())
/// # let _ = db.url();
/// # }
/// ```
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[derive(Debug)]
pub struct TempDatabase {
    server: Server,
    /// The server's URL, for the administrative connection.
    admin_url: String,
    /// The URL of the database itself.
    url: String,
    name: String,
    removed: bool,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl TempDatabase {
    /// Creates a database on the test MariaDB ([`Service::MYSQL`](crate::Service::MYSQL)), or
    /// `None` when it does not answer (see [`Service::or_skip`](crate::Service::or_skip)).
    #[cfg(feature = "mysql")]
    pub async fn mysql(test: &str) -> Option<Self> {
        Self::create(Server::Mysql, crate::Service::MYSQL, test).await
    }

    /// Creates a database on the test PostgreSQL ([`Service::POSTGRES`]), or `None` when it
    /// does not answer. For most tests a [`TempSchema`] is lighter.
    #[cfg(feature = "postgres")]
    pub async fn postgres(test: &str) -> Option<Self> {
        Self::create(Server::Postgres, Service::POSTGRES, test).await
    }

    async fn create(server: Server, service: crate::Service, test: &str) -> Option<Self> {
        let name = unique_name();
        let create = match server {
            #[cfg(feature = "postgres")]
            Server::Postgres => format!(r#"CREATE DATABASE "{name}""#),
            #[cfg(feature = "mysql")]
            Server::Mysql => format!("CREATE DATABASE `{name}`"),
        };
        let admin_url = service
            .or_skip(test, |url| async move {
                let admin = admin(&url).await?;
                let created = admin.execute_unprepared(&create).await;
                let _ = admin.close().await;
                created.map_err(|e| e.to_string())?;
                Ok(url)
            })
            .await?;
        let mut url = reqwest::Url::parse(&admin_url).expect("a valid service URL");
        url.set_path(&name);
        Some(Self {
            server,
            admin_url,
            url: url.to_string(),
            name,
            removed: false,
        })
    }

    /// The URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn drop_statements(&self) -> Vec<String> {
        match self.server {
            #[cfg(feature = "postgres")]
            Server::Postgres => vec![
                "SET lock_timeout = '10s'".to_owned(),
                format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name),
            ],
            #[cfg(feature = "mysql")]
            Server::Mysql => vec![
                "SET SESSION lock_wait_timeout = 10".to_owned(),
                format!("DROP DATABASE IF EXISTS `{}`", self.name),
            ],
        }
    }

    /// Drops the database now, from async code (without the guard's thread).
    pub async fn remove(mut self) {
        self.removed = true;
        if let Err(e) = run(&self.admin_url, &self.drop_statements()).await {
            eprintln!(
                "fastapihooks-testkit: database {} was left behind: {e}",
                self.name
            );
        }
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl Drop for TempDatabase {
    fn drop(&mut self) {
        if !self.removed {
            run_aside(
                format!("database {}", self.name),
                self.admin_url.clone(),
                self.drop_statements(),
            );
        }
    }
}

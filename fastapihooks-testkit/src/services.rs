//! The machine's services (PostgreSQL, MariaDB, Redis): their URLs, and what a test does when
//! one is not there — skips with a note, or fails under `CI=true`.

use std::time::Duration;

/// How long a service has to answer before it counts as missing.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// A service a test may need: its name, the env var holding its URL, and the URL used without
/// the env var.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    /// What to call it in a message, e.g. `PostgreSQL`.
    pub name: &'static str,
    /// The env var with its URL, e.g. `FASTAPIHOOKS_TEST_POSTGRES`.
    pub var: &'static str,
    /// The URL without the env var.
    pub default: &'static str,
}

impl Service {
    /// PostgreSQL: `FASTAPIHOOKS_TEST_POSTGRES`, else `postgres://postgres@127.0.0.1:5432/test`.
    pub const POSTGRES: Self = Self {
        name: "PostgreSQL",
        var: "FASTAPIHOOKS_TEST_POSTGRES",
        default: "postgres://postgres@127.0.0.1:5432/test",
    };
    /// MariaDB/MySQL: `FASTAPIHOOKS_TEST_MYSQL`, else `mysql://root@127.0.0.1:3306/test`.
    pub const MYSQL: Self = Self {
        name: "MariaDB",
        var: "FASTAPIHOOKS_TEST_MYSQL",
        default: "mysql://root@127.0.0.1:3306/test",
    };
    /// Redis: `FASTAPIHOOKS_TEST_REDIS`, else `redis://127.0.0.1:6379`.
    pub const REDIS: Self = Self {
        name: "Redis",
        var: "FASTAPIHOOKS_TEST_REDIS",
        default: "redis://127.0.0.1:6379",
    };

    /// The URL: the env var, else the default.
    pub fn url(&self) -> String {
        std::env::var(self.var).unwrap_or_else(|_| self.default.to_owned())
    }

    /// Runs `reachable` on the service's URL (at most 3 s) and hands back what it made — or,
    /// when it fails, `None` after printing that `test` skipped and why. Under `CI=true` a
    /// missing service is a failure instead: this panics.
    ///
    /// Also installs a `tracing` subscriber writing to the test's output (filter from
    /// `RUST_LOG`, else `fastapihooks_core=warn`), so the library's warnings show with a failure.
    pub async fn or_skip<T, F, Fut>(&self, test: &str, reachable: F) -> Option<T>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        init_tracing();
        let url = self.url();
        let answer = tokio::time::timeout(ANSWER_WITHIN, reachable(url.clone()))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {ANSWER_WITHIN:?}")));
        match answer {
            Ok(made) => Some(made),
            Err(e) if in_ci() => {
                panic!(
                    "{test}: {} at {url} is required under CI=true: {e}",
                    self.name
                )
            }
            Err(e) => {
                eprintln!(
                    "{test}: SKIPPED: {} at {url} does not answer ({e}); set {} to use another",
                    self.name, self.var
                );
                None
            }
        }
    }
}

/// Whether this runs under CI (`CI=true`), where a missing service fails the test.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Installs (once per process) a `tracing` subscriber writing to the test's captured output:
/// filter from `RUST_LOG`, else `fastapihooks_core=warn`.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "fastapihooks_core=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The test Redis URL when it answers `PING`, or `None` after saying why (see
/// [`Service::or_skip`]).
#[cfg(feature = "redis")]
pub async fn redis_url(test: &str) -> Option<String> {
    Service::REDIS
        .or_skip(test, |url| async move {
            let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            Ok(url)
        })
        .await
}

/// The test PostgreSQL URL when it accepts a connection, or `None` after saying why (see
/// [`Service::or_skip`]). For a schema of the test's own, see [`TempSchema`](crate::TempSchema).
#[cfg(feature = "postgres")]
pub async fn postgres_url(test: &str) -> Option<String> {
    sql_url(Service::POSTGRES, test).await
}

/// The test MariaDB URL when it accepts a connection, or `None` after saying why (see
/// [`Service::or_skip`]). For a database of the test's own, see
/// [`TempDatabase`](crate::TempDatabase).
#[cfg(feature = "mysql")]
pub async fn mysql_url(test: &str) -> Option<String> {
    sql_url(Service::MYSQL, test).await
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn sql_url(service: Service, test: &str) -> Option<String> {
    service
        .or_skip(test, |url| async move {
            let admin = crate::temp::admin(&url).await?;
            let _ = admin.close().await;
            Ok(url)
        })
        .await
}

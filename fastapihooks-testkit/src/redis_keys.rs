//! A Redis key prefix of one test's own, its keys deleted when the guard is dropped.

use std::sync::Arc;
use std::time::Duration;

use fastapihooks_core::{RedisBackend, RedisConfig};

/// A queue config with a key prefix of its own (`fastapihooks-test-<test>-<ulid>`): tests share
/// the machine's Redis without seeing each other's keys. Its keys — and only them — are deleted
/// when it is dropped (a blocking connection of its own: Redis answers at once, and nothing of
/// the test's runtime is needed).
///
/// The config has test-sized timings: a 5 s visibility timeout, a 200 ms block.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use fastapihooks_testkit::{TestKeys, redis_url};
///
/// let Some(url) = redis_url("my_test").await else {
///     return; // Redis does not answer: skipped (a failure under CI=true)
/// };
/// let keys = TestKeys::new(&url, "my-test");
/// let backend = keys.backend().await; // publishes and leases under the test's prefix
/// # drop(backend);
/// # }
/// ```
pub struct TestKeys {
    /// The queue config: the test's key prefix and timings. Change it before calling
    /// [`backend`](Self::backend) if a test needs other timings.
    pub config: RedisConfig,
}

impl std::fmt::Debug for TestKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKeys")
            .field("url", &self.config.url)
            .field("key_prefix", &self.config.key_prefix)
            .finish_non_exhaustive()
    }
}

impl TestKeys {
    /// A prefix of its own for `test` on the Redis at `url`.
    pub fn new(url: &str, test: &str) -> Self {
        let prefix = format!("fastapihooks-test-{test}-{}", ulid::Ulid::new());
        let mut config = RedisConfig::new(url).key_prefix(prefix);
        config.visibility_timeout = Duration::from_secs(5);
        config.block = Duration::from_millis(200);
        Self { config }
    }

    /// The key prefix (e.g. for `fastapihooks start --key-prefix`).
    pub fn prefix(&self) -> &str {
        &self.config.key_prefix
    }

    /// A backend on these keys with its own consumer name (one per simulated sidecar).
    pub async fn backend(&self) -> Arc<RedisBackend> {
        let config = self
            .config
            .clone()
            .consumer(format!("consumer-{}", ulid::Ulid::new()));
        Arc::new(RedisBackend::connect(config).await.expect("connect"))
    }

    async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.config.url.as_str())
            .expect("a valid Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis")
    }

    /// Deletes this test's keys (and only them), as if Redis had lost its data.
    pub async fn delete_keys(&self) {
        redis::cmd("DEL")
            .arg(&self.config.keys())
            .query_async::<()>(&mut self.connection().await)
            .await
            .expect("DEL");
    }

    /// Tasks currently leased (pending in the consumer group); 0 before the group exists.
    pub async fn leased(&self) -> u64 {
        let summary: redis::Value = redis::cmd("XPENDING")
            .arg(self.config.tasks_key())
            .arg(&self.config.group)
            .query_async(&mut self.connection().await)
            .await
            .unwrap_or(redis::Value::Nil);
        match summary {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n as u64,
                other => panic!("XPENDING summary: {other:?}"),
            },
            // The group (or the stream) does not exist yet.
            redis::Value::Nil | redis::Value::ServerError(_) => 0,
            other => panic!("XPENDING summary: {other:?}"),
        }
    }

    /// Entries in the dead-letter stream, as (task as stored, reason).
    pub async fn dead_letters(&self) -> Vec<(String, String)> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.config.dead_key())
            .arg("-")
            .arg("+")
            .query_async(&mut self.connection().await)
            .await
            .expect("XRANGE");
        reply
            .ids
            .iter()
            .map(|e| {
                let field = |name: &str| match e.map.get(name) {
                    Some(redis::Value::BulkString(b)) => {
                        String::from_utf8(b.clone()).expect("UTF-8")
                    }
                    other => panic!("field {name}: {other:?}"),
                };
                (field("task"), field("reason"))
            })
            .collect()
    }
}

impl Drop for TestKeys {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.config.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(3)) else {
            eprintln!(
                "fastapihooks-testkit: the Redis keys of prefix {} were left behind",
                self.config.key_prefix
            );
            return;
        };
        // The queue's own keys, and anything else made under the prefix.
        let mut keys: Vec<String> = self.config.keys().into();
        let pattern = format!("*{}*", escape_glob(&self.config.key_prefix));
        if let Ok(found) = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter::<String>(&mut conn)
        {
            keys.extend(found.filter_map(Result::ok));
        }
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut conn);
    }
}

/// `prefix` with Redis glob characters escaped.
fn escape_glob(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

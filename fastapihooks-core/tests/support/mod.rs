//! Shared by the Redis queue tests: the real Redis (or a skip), a key prefix per test, a real
//! HTTP receiver on 127.0.0.1 counting by delivery id, and the one engine builder.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use fastapihooks_core::backend::{RedisBackend, RedisConfig};
use fastapihooks_core::{
    DeliveryEngine, Emitter, HttpConfig, MemoryStore, RetryPolicy, Store, Subscription,
};

/// The test Redis URL, or `None` (after saying why) when it does not answer outside CI.
pub async fn redis_url(test: &str) -> Option<String> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "fastapihooks_core=warn".into()),
        )
        .with_test_writer()
        .try_init();
    let url = std::env::var("FASTAPIHOOKS_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let reachable = async {
        let client = redis::Client::open(url.as_str()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    match tokio::time::timeout(Duration::from_secs(3), reachable).await {
        Ok(Some(_)) => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: Redis at {url} does not answer (CI=true: a missing service fails)")
        }
        _ => {
            eprintln!("{test}: SKIPPED: Redis at {url} does not answer");
            None
        }
    }
}

/// A queue config with a key prefix of its own; its keys are deleted when it is dropped.
pub struct TestKeys {
    pub config: RedisConfig,
}

impl TestKeys {
    pub fn new(url: &str, test: &str) -> Self {
        let prefix = format!("fastapihooks-test-{test}-{}", ulid::Ulid::new());
        let mut config = RedisConfig::new(url).key_prefix(prefix);
        config.visibility_timeout = Duration::from_secs(5);
        config.block = Duration::from_millis(200);
        Self { config }
    }

    /// A backend on these keys with its own consumer name (one per simulated sidecar).
    pub async fn backend(&self) -> Arc<RedisBackend> {
        let config = self
            .config
            .clone()
            .consumer(format!("consumer-{}", ulid::Ulid::new()));
        Arc::new(RedisBackend::connect(config).await.expect("connect"))
    }

    /// Deletes this test's keys (and only them), as if Redis had lost its data.
    pub async fn delete_keys(&self) {
        let client = redis::Client::open(self.config.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("DEL")
            .arg(&self.config.keys())
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }

    /// Tasks currently leased (pending in the consumer group).
    pub async fn leased(&self) -> u64 {
        let client = redis::Client::open(self.config.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let summary: redis::Value = redis::cmd("XPENDING")
            .arg(self.config.tasks_key())
            .arg(&self.config.group)
            .query_async(&mut conn)
            .await
            .unwrap();
        match summary {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n as u64,
                other => panic!("XPENDING summary: {other:?}"),
            },
            other => panic!("XPENDING summary: {other:?}"),
        }
    }

    /// Entries in the dead-letter stream, as (task as stored, reason).
    pub async fn dead_letters(&self) -> Vec<(String, String)> {
        let client = redis::Client::open(self.config.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.config.dead_key())
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        reply
            .ids
            .iter()
            .map(|e| {
                let field = |name: &str| match e.map.get(name) {
                    Some(redis::Value::BulkString(b)) => b.clone(),
                    other => panic!("field {name}: {other:?}"),
                };
                (
                    String::from_utf8(field("task")).unwrap(),
                    String::from_utf8(field("reason")).unwrap(),
                )
            })
            .collect()
    }
}

impl Drop for TestKeys {
    fn drop(&mut self) {
        if let Ok(client) = redis::Client::open(self.config.url.as_str())
            && let Ok(mut conn) = client.get_connection()
        {
            let _: redis::RedisResult<()> =
                redis::cmd("DEL").arg(&self.config.keys()).query(&mut conn);
        }
    }
}

/// The one place test engines are built: a short HTTP timeout, the given retry policy, and
/// loopback allowed through the SSRF guard (the receivers listen on 127.0.0.1).
pub fn engine(store: Arc<dyn Store>, retry: RetryPolicy) -> DeliveryEngine {
    let mut http = HttpConfig::default().allow_loopback();
    http.timeout = Duration::from_secs(1);
    http.connect_timeout = Duration::from_millis(500);
    Emitter::builder()
        .shared_store(store)
        .retry(retry)
        .http(http)
        .unsigned()
        .build_engine()
        .expect("engine")
}

/// Quick retries without jitter: `n` retries `every` apart.
pub fn quick_retries(n: usize, every: Duration) -> RetryPolicy {
    RetryPolicy::schedule(vec![every; n]).jitter(0.0).unwrap()
}

/// A store holding one `*` subscription per receiver URL.
pub async fn store_with_subscribers(urls: &[String]) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::with_max_deliveries(1_000_000));
    for url in urls {
        store
            .add_subscription(Subscription::new("*", url).unwrap())
            .await
            .unwrap();
    }
    store
}

/// How a receiver answers.
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    pub status: u16,
    pub delay: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            status: 200,
            delay: Duration::ZERO,
        }
    }
}

/// A real HTTP server on 127.0.0.1 that records requests by delivery id (`X-Fastapihooks-Id`)
/// as they arrive, and the most requests it ever had in flight at once.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    arrivals: Arc<Mutex<HashMap<String, Vec<Instant>>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    behaviour: Behaviour,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, behaviour)
    }

    /// A port nothing listens on yet (a receiver that is down), to start later with `start_on`.
    pub async fn reserve_port() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    pub async fn start_on(addr: SocketAddr, behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(listener, behaviour)
    }

    fn serve(listener: tokio::net::TcpListener, behaviour: Behaviour) -> Self {
        let receiver = Self {
            addr: listener.local_addr().unwrap(),
            arrivals: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            behaviour,
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    pub fn url(&self) -> String {
        url_of(self.addr)
    }

    /// Requests received per delivery id.
    pub fn counts(&self) -> HashMap<String, usize> {
        let arrivals = self.arrivals.lock().unwrap();
        arrivals
            .iter()
            .map(|(id, at)| (id.clone(), at.len()))
            .collect()
    }

    /// When each request of each delivery id arrived.
    pub fn arrivals(&self) -> HashMap<String, Vec<Instant>> {
        self.arrivals.lock().unwrap().clone()
    }

    /// Distinct delivery ids received.
    pub fn distinct(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

pub fn url_of(addr: SocketAddr) -> String {
    format!("http://{addr}/hook")
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap) -> StatusCode {
    let now = r.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    r.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let id = headers
        .get("x-fastapihooks-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
        .to_owned();
    r.arrivals
        .lock()
        .unwrap()
        .entry(id)
        .or_default()
        .push(Instant::now());
    tokio::time::sleep(r.behaviour.delay).await;
    r.in_flight.fetch_sub(1, Ordering::SeqCst);
    StatusCode::from_u16(r.behaviour.status).unwrap()
}

/// Polls `done` every 20 ms until it holds or `within` passes; says whether it held.
pub async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

/// Like [`eventually`], for conditions that need I/O to check.
pub async fn eventually_async<F, Fut>(within: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done().await
}

/// Count of delivery ids received more than once, and the extra requests they made.
pub fn duplicates(counts: &HashMap<String, usize>) -> (usize, usize) {
    let ids = counts.values().filter(|&&n| n > 1).count();
    let extra = counts.values().map(|n| n.saturating_sub(1)).sum();
    (ids, extra)
}

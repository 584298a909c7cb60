//! Shared by the sidecar tests: the real `fastapihooks` binary as a child process, a real HTTP
//! receiver on 127.0.0.1 counting requests by delivery id, and the services (or a skip).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use fastapihooks_core::{DeliveryId, Event, Subscription};

/// A service URL from `var`, else `default`, or `None` (after saying why) when `reachable`
/// fails outside CI. Under `CI=true` a missing service fails the test.
pub async fn service<F, Fut>(test: &str, var: &str, default: &str, reachable: F) -> Option<String>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let answer = tokio::time::timeout(Duration::from_secs(3), reachable(url.clone()))
        .await
        .unwrap_or_else(|_| Err("no answer within 3 s".to_owned()));
    match answer {
        Ok(()) => Some(url),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: {url} is required under CI=true: {e}")
        }
        Err(e) => {
            eprintln!("{test}: SKIPPED: {url} does not answer ({e})");
            None
        }
    }
}

/// The test Redis, or a skip.
pub async fn redis_url(test: &str) -> Option<String> {
    service(
        test,
        "FASTAPIHOOKS_TEST_REDIS",
        "redis://127.0.0.1:6379",
        |url| async move {
            let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        },
    )
    .await
}

/// `n` events named `order.created`.
pub fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event::new("order.created", &serde_json::json!({ "n": i })).unwrap())
        .collect()
}

/// Every delivery id the events must produce for the subscriptions.
pub fn expected_pairs(events: &[Event], subscriptions: &[Subscription]) -> HashSet<String> {
    events
        .iter()
        .flat_map(|e| {
            subscriptions
                .iter()
                .map(|s| DeliveryId::for_event(e.id(), &s.id).as_str().to_owned())
        })
        .collect()
}

/// The real `fastapihooks start`, as a child process. Killed (SIGKILL) when dropped.
pub struct Sidecar {
    child: Child,
}

impl Sidecar {
    /// Starts `fastapihooks start <args>`, logging warnings and errors to the test's stderr.
    pub fn start(args: &[String]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_fastapihooks"))
            .arg("start")
            .args(args)
            .env(
                "FASTAPIHOOKS_LOG_LEVEL",
                std::env::var("TEST_SIDECAR_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the fastapihooks binary");
        Self { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process stops where it is, mid-delivery.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the sidecar");
        self.child.wait().expect("reap the sidecar");
    }

    /// SIGTERM: the sidecar should stop leasing and drain.
    pub fn terminate(&self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    }

    /// Waits up to `within` for the process to exit; returns whether it succeeded and what it
    /// printed on stdout. Panics (after killing it) if it is still running.
    pub async fn exit(self, within: Duration) -> (bool, String) {
        let (status, stdout) = self.exit_status(within).await;
        (status.success(), stdout)
    }

    /// Like [`exit`](Self::exit), with the exit status itself.
    pub async fn exit_status(mut self, within: Duration) -> (std::process::ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stdout = String::new();
                if let Some(mut out) = self.child.stdout.take() {
                    use std::io::Read;
                    out.read_to_string(&mut stdout).unwrap();
                }
                return (status, stdout);
            }
            if start.elapsed() > within {
                self.kill();
                panic!("the sidecar did not exit within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A number from the sidecar's closing line, e.g. `delivered` from `stopped: …, delivered 12, …`.
pub fn reported(stdout: &str, what: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("stopped:"))
        .unwrap_or_else(|| panic!("no closing line in {stdout:?}"));
    line.split(", ")
        .find_map(|part| {
            part.trim_start_matches("stopped: ")
                .strip_prefix(what)
                .map(|n| n.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {what:?} in {line:?}"))
}

/// A real HTTP server on 127.0.0.1: answers 200 after `delay`, records requests by delivery id
/// (`X-Fastapihooks-Id`) as they arrive, counts those answered, and the most in flight at once.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    delay: Duration,
    arrivals: Arc<Mutex<HashMap<String, usize>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, delay)
    }

    /// A port nothing listens on yet (a receiver that is down); `start_on` it later.
    pub async fn reserve_port() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    pub async fn start_on(addr: SocketAddr, delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(listener, delay)
    }

    fn serve(listener: tokio::net::TcpListener, delay: Duration) -> Self {
        let receiver = Self {
            addr: listener.local_addr().unwrap(),
            delay,
            arrivals: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            answered: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/{subscriber}", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    /// The URL of one subscriber on this server.
    pub fn url(&self, subscriber: &str) -> String {
        format!("http://{}/{subscriber}", self.addr)
    }

    /// Requests received per delivery id.
    pub fn counts(&self) -> HashMap<String, usize> {
        self.arrivals.lock().unwrap().clone()
    }

    /// Distinct delivery ids received.
    pub fn distinct(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    /// Requests received in all.
    pub fn received(&self) -> usize {
        self.arrivals.lock().unwrap().values().sum()
    }

    /// Requests answered.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

/// Counts a request out of flight when its handler ends — answered, or dropped because the
/// sender went away (a killed sidecar).
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap) -> StatusCode {
    let now = r.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _in_flight = InFlight(r.in_flight.clone());
    r.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let id = headers
        .get("x-fastapihooks-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
        .to_owned();
    *r.arrivals.lock().unwrap().entry(id).or_default() += 1;
    tokio::time::sleep(r.delay).await;
    r.answered.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
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
pub async fn eventually_async(within: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done().await
}

/// What the receiver got against what was expected.
#[derive(Debug)]
pub struct Tally {
    pub expected: usize,
    pub lost: usize,
    /// Delivery ids received more than once.
    pub duplicated_ids: usize,
    /// Requests beyond the first per delivery id.
    pub extra_requests: usize,
    /// Requests for delivery ids nobody expected.
    pub unexpected: usize,
}

pub fn tally(receiver: &Receiver, expected: &HashSet<String>) -> Tally {
    let counts = receiver.counts();
    Tally {
        expected: expected.len(),
        lost: expected
            .iter()
            .filter(|id| !counts.contains_key(*id))
            .count(),
        duplicated_ids: counts.values().filter(|&&n| n > 1).count(),
        extra_requests: counts.values().map(|n| n - 1).sum(),
        unexpected: counts.keys().filter(|id| !expected.contains(*id)).count(),
    }
}

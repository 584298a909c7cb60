//! Test support: a real webhook receiver on 127.0.0.1:0 and an app server around a router.
#![allow(dead_code)] // each test file uses a different part

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use fastapihooks::prelude::*;
use fastapihooks::{HooksBuilder, signing::verify_sha256_hex};
use http::{HeaderMap, StatusCode};
use tokio::sync::Notify;

/// The secret the test hooks sign with.
pub const SECRET: &str = "test-secret";

/// Hooks for tests: fast retries, the test secret, and loopback allowed through the SSRF guard
/// (every receiver here is on 127.0.0.1).
pub fn hooks() -> HooksBuilder {
    Hooks::builder()
        .http(HttpConfig::default().allow_loopback())
        .secret(Secret::new(SECRET).unwrap())
        .retry(RetryPolicy::schedule([
            Duration::from_millis(20),
            Duration::from_millis(40),
        ]))
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Whether the `sha256=` signature checks with the test secret.
    pub fn verified(&self) -> bool {
        verify_sha256_hex(
            SECRET.as_bytes(),
            &self.body,
            self.header("x-fastapihooks-signature"),
        )
        .is_ok()
    }
}

/// How the receiver answers: status, extra headers, and a delay before answering.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Script = dyn Fn(&str, usize) -> Reply + Send + Sync;

struct State {
    received: Mutex<Vec<Received>>,
    counts: Mutex<std::collections::HashMap<String, usize>>,
    arrived: Notify,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    script: Box<Script>,
}

/// A webhook receiver: records every request, answers as the script says (by path and by the
/// number of earlier requests to that path).
#[derive(Clone)]
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Receiver {
    /// Answers 200 to everything.
    pub async fn ok() -> Self {
        Self::scripted(|_, _| Reply::status(200)).await
    }

    /// Answers `script(path, nth)`, `nth` counting from 0 per path.
    pub async fn scripted(script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
        let state = Arc::new(State {
            received: Mutex::default(),
            counts: Mutex::default(),
            arrived: Notify::new(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            script: Box::new(script),
        });
        let app = Router::new().fallback({
            let state = state.clone();
            move |req: Request| handle(state.clone(), req)
        });
        let addr = serve(app).await;
        Self { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A subscription of `filter` to `path` on this receiver.
    pub fn subscription(&self, filter: &str, path: &str) -> Subscription {
        Subscription::new(filter, &self.url(path)).unwrap()
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until at least `n` requests arrived (at most 10 s, a safety bound), returns all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        self.wait_until(|r| r.len() >= n).await
    }

    /// Waits until `done(received)` holds (at most 10 s), returns all received.
    pub async fn wait_until(&self, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.state.arrived.notified();
            let got = self.received();
            if done(&got) || Instant::now() > deadline {
                return got;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    /// The most requests that were being answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

async fn handle(state: Arc<State>, req: Request) -> Response {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let nth = {
        let mut counts = state.counts.lock().unwrap();
        let c = counts.entry(path.clone()).or_default();
        *c += 1;
        *c - 1
    };
    let reply = (state.script)(&path, nth);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    state.received.lock().unwrap().push(Received {
        path,
        headers: parts.headers,
        body,
        at: Instant::now(),
    });
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    state.arrived.notify_waiters();
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// Serves `app` on 127.0.0.1:0 and returns its address.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A plain HTTP client for calling the app under test.
pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// POSTs an empty body to `http://{addr}{path}`.
pub async fn post(addr: SocketAddr, path: &str) -> reqwest::Response {
    client()
        .post(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap()
}

/// Polls the store until the delivery history satisfies `done` (at most 10 s).
pub async fn wait_for_store<T>(mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "the store never reached the expected state"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

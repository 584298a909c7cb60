//! The one webhook receiver of the tests: a real HTTP server on 127.0.0.1 that records every
//! request and answers as a script says.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use fastapihooks_core::Subscription;
use fastapihooks_core::signing::verify_sha256_hex;
use http::{HeaderMap, Method, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::SECRET;
use crate::tls::TestCa;

/// The headers a delivery id is read from, first found wins: fastapihooks' own, then Standard
/// Webhooks'.
const ID_HEADERS: [&str; 2] = ["x-fastapihooks-id", "webhook-id"];

/// What [`Receiver::counts`] files a request without a delivery id under.
pub const NO_ID: &str = "<none>";

/// One request the receiver answered.
#[derive(Clone, Debug)]
pub struct Received {
    /// The method, `POST` for a delivery.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The request body, as sent.
    pub body: Bytes,
    /// The HTTP version it came over.
    pub version: http::Version,
    /// When the request arrived (before any scripted delay).
    pub at: Instant,
}

impl Received {
    /// The value of header `name`, or `""` when absent or not text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The delivery id (`X-Fastapihooks-Id`, else `webhook-id`), or [`NO_ID`].
    pub fn id(&self) -> &str {
        delivery_id(&self.headers)
    }

    /// The body as JSON. Panics if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    /// Whether the `sha256=` signature checks with the kit's [`SECRET`].
    pub fn verified(&self) -> bool {
        self.verified_with(SECRET)
    }

    /// Whether the `sha256=` signature checks with `secret`.
    pub fn verified_with(&self, secret: &str) -> bool {
        verify_sha256_hex(
            secret.as_bytes(),
            &self.body,
            self.header("x-fastapihooks-signature"),
        )
        .is_ok()
    }
}

/// How the receiver answers one request: a status, extra headers, a body, and a delay before
/// answering.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
    delay: Duration,
}

impl Default for Reply {
    /// `200`, at once.
    fn default() -> Self {
        Self::status(200)
    }
}

impl Reply {
    /// `200`, at once.
    pub fn ok() -> Self {
        Self::default()
    }

    /// `status`, at once.
    pub fn status(status: u16) -> Self {
        StatusCode::from_u16(status).expect("a valid HTTP status");
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            delay: Duration::ZERO,
        }
    }

    /// Answers with `body` (empty by default).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Answers only after `delay` (the request counts as in flight meanwhile).
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// The script: `(path, nth)` to the reply, `nth` counting the requests to that path from 0.
type Script = dyn Fn(&str, usize) -> Reply + Send + Sync;

struct State {
    script: Box<Script>,
    /// Requests per path so far: the `nth` handed to the script.
    per_path: Mutex<HashMap<String, usize>>,
    /// Arrival times per delivery id, recorded as each request arrives.
    arrivals: Mutex<HashMap<String, Vec<Instant>>>,
    arrived: AtomicUsize,
    /// The requests answered, in the order they were answered.
    answered: Mutex<Vec<Received>>,
    changed: Notify,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A webhook receiver on 127.0.0.1: records every request (headers, body, arrival time), counts
/// them by delivery id, tracks how many are in flight, and answers as its script says — by path
/// and by the number of earlier requests to that path.
///
/// Two views of what came in:
/// - as requests **arrive** (before any scripted delay, whether or not they are ever answered):
///   [`counts`](Self::counts), [`arrivals`](Self::arrivals), [`distinct`](Self::distinct),
///   [`arrived`](Self::arrived) — what a sender attempted, for at-least-once accounting;
/// - as requests are **answered**: [`received`](Self::received), [`wait_for`](Self::wait_for),
///   [`answered`](Self::answered) — complete exchanges, with their bodies.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use fastapihooks_testkit::{Receiver, Reply};
///
/// // 503 to the first request to /flaky, 200 to everything else.
/// let receiver = Receiver::scripted(|path, nth| match (path, nth) {
///     ("/flaky", 0) => Reply::status(503).header("retry-after", "1"),
///     _ => Reply::ok(),
/// })
/// .await;
/// let status = reqwest::Client::new()
///     .post(receiver.url("/flaky"))
///     .send()
///     .await
///     .unwrap()
///     .status();
/// assert_eq!(status, 503);
/// assert_eq!(receiver.wait_for(1).await[0].path, "/flaky");
/// # }
/// ```
#[derive(Clone)]
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<State>,
    /// The CA that issued its certificate, PEM, when it answers over TLS.
    ca_pem: Option<Arc<str>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .field("arrived", &self.arrived())
            .field("answered", &self.answered())
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// Answers 200 to everything, at once.
    pub async fn ok() -> Self {
        Self::replying(Reply::ok()).await
    }

    /// Answers `reply` to everything.
    pub async fn replying(reply: Reply) -> Self {
        Self::scripted(move |_, _| reply.clone()).await
    }

    /// Answers `script(path, nth)`, `nth` counting the requests to `path` from 0.
    pub async fn scripted(script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        Self::serve(listener, Box::new(script))
    }

    /// Like [`scripted`](Self::scripted), over TLS: `https://127.0.0.1:port`, with a certificate
    /// for `127.0.0.1` and `localhost` issued by a CA of its own ([`ca_pem`](Self::ca_pem)), in
    /// HTTP/2 or HTTP/1.1 as the client's ALPN agrees.
    pub async fn over_tls(script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a local address");
        let (state, app) = Self::app(Box::new(script));
        let ca = TestCa::new();
        ca.serve(listener, app);
        Self {
            addr,
            state,
            ca_pem: Some(ca.ca_pem.into()),
        }
    }

    /// The certificate (PEM) of the CA that issued this receiver's certificate, for
    /// `HttpConfig::add_root_certificates_pem`; `None` unless it answers over TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Answers `status` to everything until the returned [`Fix`] is applied, then 200: an
    /// endpoint that is broken, then repaired (for replay tests).
    pub async fn broken(status: u16) -> (Self, Fix) {
        Self::broken_then(status, Reply::ok()).await
    }

    /// Answers `status` to everything until the returned [`Fix`] is applied, then `repaired`.
    pub async fn broken_then(status: u16, repaired: Reply) -> (Self, Fix) {
        let fixed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fixed);
        let receiver = Self::scripted(move |_, _| {
            if flag.load(Ordering::SeqCst) {
                repaired.clone()
            } else {
                Reply::status(status)
            }
        })
        .await;
        (receiver, Fix(fixed))
    }

    /// A port on 127.0.0.1 nothing listens on yet — a receiver that is down — to start later
    /// with [`replying_on`](Self::replying_on) or [`scripted_on`](Self::scripted_on).
    pub async fn reserve_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        listener.local_addr().expect("a local address")
    }

    /// Like [`replying`](Self::replying), on `addr` (from [`reserve_port`](Self::reserve_port)).
    pub async fn replying_on(addr: SocketAddr, reply: Reply) -> Self {
        Self::scripted_on(addr, move |_, _| reply.clone()).await
    }

    /// Like [`scripted`](Self::scripted), on `addr` (from [`reserve_port`](Self::reserve_port)).
    pub async fn scripted_on(
        addr: SocketAddr,
        script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the reserved port");
        Self::serve(listener, Box::new(script))
    }

    fn serve(listener: TcpListener, script: Box<Script>) -> Self {
        let addr = listener.local_addr().expect("a local address");
        let (state, app) = Self::app(script);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            state,
            ca_pem: None,
        }
    }

    /// The recording state and the app that answers as `script` says.
    fn app(script: Box<Script>) -> (Arc<State>, Router) {
        let state = Arc::new(State {
            script,
            per_path: Mutex::default(),
            arrivals: Mutex::default(),
            arrived: AtomicUsize::new(0),
            answered: Mutex::default(),
            changed: Notify::new(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let app = Router::new().fallback({
            let state = state.clone();
            move |req: Request| handle(state.clone(), req)
        });
        (state, app)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port/path` (`https://` over TLS; a `/` is put before `path` if it has
    /// none).
    pub fn url(&self, path: &str) -> String {
        let url = url_of(self.addr, path);
        match self.ca_pem {
            Some(_) => url.replacen("http://", "https://", 1),
            None => url,
        }
    }

    /// A subscription of `filter` to `path` on this receiver.
    pub fn subscription(&self, filter: &str, path: &str) -> Subscription {
        Subscription::new(filter, &self.url(path)).expect("a valid subscription")
    }

    /// The requests answered so far, in the order they were answered.
    pub fn received(&self) -> Vec<Received> {
        self.state.answered.lock().unwrap().clone()
    }

    /// The requests to `path` answered so far.
    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until at least `n` requests were answered (at most 10 s, a safety bound), returns
    /// all answered.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        self.wait_until(|r| r.len() >= n).await
    }

    /// Waits until `done(answered)` holds (at most 10 s), returns all answered.
    pub async fn wait_until(&self, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.state.changed.notified();
            let got = self.received();
            if done(&got) || Instant::now() > deadline {
                return got;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    /// Requests that arrived per delivery id (see [`Received::id`]), answered or not.
    pub fn counts(&self) -> HashMap<String, usize> {
        let arrivals = self.state.arrivals.lock().unwrap();
        arrivals
            .iter()
            .map(|(id, at)| (id.clone(), at.len()))
            .collect()
    }

    /// When each request of each delivery id arrived.
    pub fn arrivals(&self) -> HashMap<String, Vec<Instant>> {
        self.state.arrivals.lock().unwrap().clone()
    }

    /// Distinct delivery ids that arrived.
    pub fn distinct(&self) -> usize {
        self.state.arrivals.lock().unwrap().len()
    }

    /// Requests that arrived, answered or not.
    pub fn arrived(&self) -> usize {
        self.state.arrived.load(Ordering::SeqCst)
    }

    /// Requests answered.
    pub fn answered(&self) -> usize {
        self.state.answered.lock().unwrap().len()
    }

    /// Requests arrived and not yet answered nor abandoned by their sender.
    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

/// `http://{addr}{path}` (a `/` is put before `path` if it has none): the URL of a receiver
/// that is not up yet (see [`Receiver::reserve_port`]).
pub fn url_of(addr: SocketAddr, path: &str) -> String {
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!("http://{addr}{slash}{path}")
}

fn delivery_id(headers: &HeaderMap) -> &str {
    ID_HEADERS
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .unwrap_or(NO_ID)
}

/// Counts a request out of flight when its handler ends: answered, or dropped because the
/// sender went away (a timed-out client, a killed sidecar).
struct InFlight(Arc<State>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

async fn handle(state: Arc<State>, req: Request) -> Response {
    let at = Instant::now();
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _in_flight = InFlight(state.clone());
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    state
        .arrivals
        .lock()
        .unwrap()
        .entry(delivery_id(&parts.headers).to_owned())
        .or_default()
        .push(at);
    state.arrived.fetch_add(1, Ordering::SeqCst);
    let nth = {
        let mut per_path = state.per_path.lock().unwrap();
        let n = per_path.entry(path.clone()).or_default();
        *n += 1;
        *n - 1
    };
    state.changed.notify_waiters();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let reply = (state.script)(&path, nth);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    state.answered.lock().unwrap().push(Received {
        method: parts.method,
        path,
        headers: parts.headers,
        body,
        version: parts.version,
        at,
    });
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).expect("checked by Reply");
    for (name, value) in reply.headers {
        let name = http::HeaderName::try_from(name).expect("a valid header name");
        response
            .headers_mut()
            .append(name, value.parse().expect("a valid header value"));
    }
    response
}

/// Repairs a [`Receiver::broken`] endpoint: from [`apply`](Self::apply) on, it answers 200.
#[derive(Clone, Debug)]
pub struct Fix(Arc<AtomicBool>);

impl Fix {
    /// Makes the endpoint answer 200 from now on.
    pub fn apply(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

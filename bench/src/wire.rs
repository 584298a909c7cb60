//! What the parts tell the conductor: each prints JSON lines on stdout — a server part first
//! its address ([`Listening`]), and every part one final report when it is done.

use serde::{Deserialize, Serialize};

/// The header every delivery (and every raw-loop request) carries its id in.
pub const ID_HEADER: &str = "x-fastapihooks-id";
/// The header the `sha256=` signature travels in.
pub const SIGNATURE_HEADER: &str = "x-fastapihooks-signature";
/// The event every subscription of the benchmark receives.
pub const EVENT_NAME: &str = "order.created";

/// A server part is listening.
#[derive(Debug, Serialize, Deserialize)]
pub struct Listening {
    /// `127.0.0.1:<port>`.
    pub addr: String,
}

/// The service under test, once it has shut down (deliveries drained).
#[derive(Debug, Serialize, Deserialize)]
pub struct AppDone {
    /// User + system CPU time of the whole process, from start to exit.
    pub cpu_ms: f64,
    /// Peak resident set size (VmHWM).
    pub peak_rss_kib: u64,
    /// Deliveries still pending when the shutdown deadline passed.
    pub abandoned: usize,
}

/// The receiving side under test (`inbox-app`), once it has stopped serving.
#[derive(Debug, Serialize, Deserialize)]
pub struct InboxAppDone {
    /// User + system CPU time of the whole process, from start to the end of serving.
    pub cpu_ms: f64,
    /// Of that, before it listened: the runtime, the pool's first connection, the check that
    /// the migrations are applied.
    pub startup_cpu_ms: f64,
    /// Peak resident set size (VmHWM).
    pub peak_rss_kib: u64,
}

/// The emitting process, once its deliveries have drained.
#[derive(Debug, Serialize, Deserialize)]
pub struct EmitDone {
    /// Events accepted by the backend.
    pub events: usize,
    /// Events the backend refused (queue full, shut down).
    pub publish_failures: usize,
    /// Unix ns just before the first event was emitted.
    pub started_ns: u64,
    /// Unix ns when `shutdown` returned: every delivery attempted.
    pub drained_ns: u64,
    /// CPU time spent from the first emit to the end of the drain.
    pub cpu_ms: f64,
    /// Peak resident set size (VmHWM).
    pub peak_rss_kib: u64,
    /// Deliveries still pending when the shutdown deadline passed.
    pub abandoned: usize,
    /// Allocations made from the first request to the end (`--features count-allocations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocations: Option<u64>,
}

/// The sidecar part has connected to its queue and store and is about to run its worker.
#[derive(Debug, Serialize, Deserialize)]
pub struct SidecarReady {
    /// Unix ns just before the worker started.
    pub ready_ns: u64,
    /// What Redis says of its persistence (`None` for the outbox).
    pub redis_persistence: Option<String>,
}

/// The `publish` part, every event published.
#[derive(Debug, Serialize, Deserialize)]
pub struct PublishDone {
    /// Events whose publish returned `Ok` (Redis acknowledged their `XADD`).
    pub published: u64,
    /// Publishes that returned an error.
    pub failed: u64,
    /// Wall time from the first publish to the last acknowledgement.
    pub secs: f64,
    /// CPU time of the process over the same span.
    pub cpu_ms: f64,
}

/// The sidecar part, stopped and drained.
#[derive(Debug, Serialize, Deserialize)]
pub struct SidecarDone {
    /// CPU time of the process from the worker's start to its return (idle tail included).
    pub cpu_ms: f64,
    /// Peak resident set size (VmHWM).
    pub peak_rss_kib: u64,
    /// What the worker counted.
    pub worker: WorkerCounts,
    /// Allocations made over the same span (`--features count-allocations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocations: Option<u64>,
}

/// The counts of the worker's `WorkerReport`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct WorkerCounts {
    /// Events turned into delivery tasks.
    pub fanned_out: u64,
    /// Deliveries that got a 2xx.
    pub delivered: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Deliveries moved to the dead letters.
    pub dead_lettered: u64,
    /// Delivery tasks acked without an attempt.
    pub skipped: u64,
    /// Settling steps that found their lease taken over.
    pub leases_lost: u64,
    /// Tasks that failed on a queue or store error.
    pub errors: u64,
    /// Tasks still in flight when the drain deadline passed.
    pub abandoned: usize,
}

impl From<fastapihooks_core::WorkerReport> for WorkerCounts {
    fn from(r: fastapihooks_core::WorkerReport) -> Self {
        Self {
            fanned_out: r.fanned_out,
            delivered: r.delivered,
            retried: r.retried,
            dead_lettered: r.dead_lettered,
            skipped: r.skipped,
            leases_lost: r.leases_lost,
            errors: r.errors,
            abandoned: r.abandoned,
        }
    }
}

/// The plain reqwest loop, done.
#[derive(Debug, Serialize, Deserialize)]
pub struct RawLoopDone {
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests that failed or were answered otherwise.
    pub failed: u64,
    /// Unix ns before the first request.
    pub started_ns: u64,
    /// Unix ns after the last answer.
    pub finished_ns: u64,
    /// CPU time of the loop.
    pub cpu_ms: f64,
    /// Peak resident set size (VmHWM).
    pub peak_rss_kib: u64,
    /// Allocations made from the first request to the end (`--features count-allocations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocations: Option<u64>,
}

/// The load generator, done.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoadDone {
    /// Requests answered, warm-up included (each one is an event when the route is hooked).
    pub total_ok: u64,
    /// Requests answered in the measured window.
    pub measured_ok: u64,
    /// Answers that were not 2xx, and connection or parse errors (all of them are failures).
    pub failed: u64,
    /// Length of the measured window.
    pub measured_secs: f64,
    /// Latency percentiles of the measured window, in microseconds.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Slowest answer.
    pub max_us: u64,
    /// CPU time of the load generator (to tell whether its core was the limit).
    pub cpu_ms: f64,
}

/// The receiver's running totals (`GET /count`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ReceiverCount {
    /// Requests received since the last reset, duplicates included.
    pub received: u64,
    /// CPU time of the receiver process since it started.
    pub cpu_ms: f64,
}

/// How a received request's signature checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signature {
    /// No signature header (the raw loop sends none).
    Absent,
    /// Verified with the benchmark secret.
    Valid,
    /// Present and wrong.
    Invalid,
}

impl Signature {
    /// One letter on the wire.
    pub fn letter(self) -> char {
        match self {
            Signature::Absent => '-',
            Signature::Valid => 'v',
            Signature::Invalid => 'x',
        }
    }

    /// Back from [`letter`](Self::letter).
    pub fn from_letter(letter: &str) -> Option<Self> {
        match letter {
            "-" => Some(Signature::Absent),
            "v" => Some(Signature::Valid),
            "x" => Some(Signature::Invalid),
            _ => None,
        }
    }
}

/// The benchmark's signing secret (loopback only; not a secret).
pub const SECRET: &str = "bench-secret";

/// The secret the receive rows' webhooks are signed with (Standard Webhooks form: `whsec_` and
/// base64; loopback only, not a secret).
pub const INBOX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The sender the receive rows' webhooks come from: the inbox's source.
pub const INBOX_SOURCE: &str = "shop";
/// Where the receive rows' webhooks are posted.
pub const INBOX_PATH: &str = "/webhooks/shop";

/// The JSON body the route receives and the payload the emitter emits: an order as the
/// quickstart makes them (about 80 bytes).
pub fn order(id: u64) -> serde_json::Value {
    serde_json::json!({"id": id, "order": {"sku": "A1", "qty": 2, "customer": "cus_8f3a2b"}})
}

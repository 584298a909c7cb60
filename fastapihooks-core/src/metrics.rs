//! The metric set: every metric fastapihooks records, its name, type, unit, labels and meaning,
//! in one catalogue ([`ALL`]) that the code, the README's table ([`markdown_table`]) and the
//! tests all read.
//!
//! The library records through the [`metrics`](https://docs.rs/metrics) facade and never
//! installs a recorder: an application exports them by installing one (e.g.
//! `metrics-exporter-prometheus`) and calling [`describe`] once after it, so each metric gets
//! its help text and unit. Until a recorder is installed, recording costs next to nothing.
//!
//! Names and labels are stable: counters end in `_total`, histograms and gauges of time in
//! `_seconds`, histograms of counts in the plural of what they count; times are in seconds.
//! Histograms come with the bucket bounds they are meant to be exported with
//! ([`MetricSpec::buckets`]); an exporter left to its defaults may render them as summaries.
//!
//! Labels are bounded by the application's code (event names, the route's inbox source) or by
//! fastapihooks (outcomes, reasons), never by its data — except the `subscription` label, which
//! is off unless asked for: see
//! [`EmitterBuilder::metrics_per_subscription`](crate::EmitterBuilder::metrics_per_subscription).

use std::fmt::Write as _;

use ::metrics::{Key, Label, Level, Metadata};

use crate::delivery::DeliveryStatus;
use crate::error::Error;
use crate::id::SubscriptionId;

// ---- Publishing (the application's side) ------------------------------------------------------

/// Events published, by event name.
pub const EVENTS_PUBLISHED_TOTAL: &str = "fastapihooks_events_published_total";
/// How long publishing one event took.
pub const PUBLISH_DURATION_SECONDS: &str = "fastapihooks_publish_duration_seconds";
/// Publish calls that failed, by reason.
pub const PUBLISH_ERRORS_TOTAL: &str = "fastapihooks_publish_errors_total";
/// Events a hooked route could not publish, by event name.
pub const PUBLISH_FAILED_TOTAL: &str = "fastapihooks_publish_failed_total";
/// Events the in-process backend refused, by reason.
pub const PUBLISH_REJECTED_TOTAL: &str = "fastapihooks_publish_rejected_total";
/// Transactional hooks whose transaction failed, by step.
pub const HOOK_TRANSACTION_FAILED_TOTAL: &str = "fastapihooks_hook_transaction_failed_total";
/// Bodies a hook did not capture, by part and reason.
pub const HOOK_CAPTURE_SKIPPED_TOTAL: &str = "fastapihooks_hook_capture_skipped_total";
/// Hooked responses not made into an event, by reason.
pub const HOOK_NOT_EMITTED_TOTAL: &str = "fastapihooks_hook_not_emitted_total";
/// Webhooks received into the inbox, by source.
pub const INBOX_RECEIVED_TOTAL: &str = "fastapihooks_inbox_received_total";
/// Received webhooks the inbox already held, by source.
pub const INBOX_DUPLICATES_TOTAL: &str = "fastapihooks_inbox_duplicates_total";

// ---- Fan-out and delivery (the engine: in-process backend and sidecar alike) -------------------

/// Subscriptions each event fanned out to.
pub const FANOUT_SUBSCRIPTIONS: &str = "fastapihooks_fanout_subscriptions";
/// How long fanning one event out took.
pub const FANOUT_DURATION_SECONDS: &str = "fastapihooks_fanout_duration_seconds";
/// Deliveries planned by fan-out.
pub const DELIVERIES_PLANNED_TOTAL: &str = "fastapihooks_deliveries_planned_total";
/// Events the in-process backend abandoned before fan-out.
pub const FANOUT_ABANDONED_TOTAL: &str = "fastapihooks_fanout_abandoned_total";
/// How long one HTTP attempt took.
pub const ATTEMPT_DURATION_SECONDS: &str = "fastapihooks_attempt_duration_seconds";
/// Deliveries that reached a final outcome, by outcome.
pub const DELIVERIES_TOTAL: &str = "fastapihooks_deliveries_total";
/// Retries scheduled.
pub const RETRIES_TOTAL: &str = "fastapihooks_retries_total";
/// HTTP attempts in flight: the in-process backend's, and a sidecar's.
pub const ATTEMPTS_IN_FLIGHT: &str = "fastapihooks_attempts_in_flight";
/// Tasks a sidecar worker is running.
pub const WORKER_TASKS_IN_FLIGHT: &str = "fastapihooks_worker_tasks_in_flight";
/// Subscriptions the engine disabled, by cause.
pub const SUBSCRIPTIONS_DISABLED_TOTAL: &str = "fastapihooks_subscriptions_disabled_total";
/// Store calls of the engine that failed, by operation.
pub const STORE_ERRORS_TOTAL: &str = "fastapihooks_store_errors_total";
/// Operational events published, by event name.
pub const OPS_EVENTS_TOTAL: &str = "fastapihooks_ops_events_total";
/// Operational events that could not be published, by event name.
pub const OPS_EVENTS_FAILED_TOTAL: &str = "fastapihooks_ops_events_failed_total";

// ---- The queue and the sidecar -----------------------------------------------------------------

/// Tasks in the queue not settled for good (sampled by the sidecar).
pub const QUEUE_DEPTH: &str = "fastapihooks_queue_depth";
/// How long the oldest ready task has waited (sampled by the sidecar).
pub const QUEUE_OLDEST_PENDING_SECONDS: &str = "fastapihooks_queue_oldest_pending_seconds";
/// Queue calls of the worker that failed.
pub const QUEUE_ERRORS_TOTAL: &str = "fastapihooks_queue_errors_total";
/// SQL outbox statements retried after a conflict.
pub const QUEUE_CONFLICTS_TOTAL: &str = "fastapihooks_queue_conflicts_total";
/// Redis tasks reclaimed from a consumer whose lease expired.
pub const QUEUE_RECLAIMED_TOTAL: &str = "fastapihooks_queue_reclaimed_total";
/// Queue entries that could not be decoded.
pub const QUEUE_UNDECODABLE_TOTAL: &str = "fastapihooks_queue_undecodable_total";
/// Redis consumer groups created again after they went missing.
pub const QUEUE_GROUP_RECREATED_TOTAL: &str = "fastapihooks_queue_group_recreated_total";
/// Leases a worker lost while it held the task.
pub const LEASES_LOST_TOTAL: &str = "fastapihooks_leases_lost_total";
/// Poison tasks dead-lettered, by task kind.
pub const POISON_TASKS_TOTAL: &str = "fastapihooks_poison_tasks_total";
/// Calls coalesced into each batched store or queue call.
pub const GROUP_COMMIT_BATCH_REQUESTS: &str = "fastapihooks_group_commit_batch_requests";

/// The label [`EmitterBuilder::metrics_per_subscription`](crate::EmitterBuilder::metrics_per_subscription)
/// adds to the delivery and attempt metrics: the subscription's id.
pub const SUBSCRIPTION_LABEL: &str = "subscription";

/// What kind of metric it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Only goes up (Prometheus `counter`).
    Counter,
    /// Goes up and down (Prometheus `gauge`).
    Gauge,
    /// A distribution of observations (Prometheus `histogram`, with [`MetricSpec::buckets`]).
    Histogram,
}

impl MetricKind {
    /// `counter`, `gauge` or `histogram`: the Prometheus type.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// What a metric's values are measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unit {
    /// A number of things (events, deliveries, tasks...).
    Count,
    /// Seconds.
    Seconds,
}

impl Unit {
    /// The unit in the `metrics` facade's terms.
    pub const fn to_metrics(self) -> ::metrics::Unit {
        match self {
            Self::Count => ::metrics::Unit::Count,
            Self::Seconds => ::metrics::Unit::Seconds,
        }
    }
}

/// One metric of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct MetricSpec {
    /// The full name, as exported.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// What its values are measured in.
    pub unit: Unit,
    /// The labels it always has.
    pub labels: &'static [&'static str],
    /// Whether [`EmitterBuilder::metrics_per_subscription`](crate::EmitterBuilder::metrics_per_subscription)
    /// adds the [`SUBSCRIPTION_LABEL`] to it.
    pub per_subscription: bool,
    /// What it counts or measures, and the values of its labels.
    pub description: &'static str,
    /// For a histogram, the upper bounds of the buckets to export it with; empty otherwise.
    pub buckets: &'static [f64],
}

impl MetricSpec {
    const fn new(
        name: &'static str,
        kind: MetricKind,
        unit: Unit,
        labels: &'static [&'static str],
        description: &'static str,
    ) -> Self {
        Self {
            name,
            kind,
            unit,
            labels,
            per_subscription: false,
            description,
            buckets: &[],
        }
    }

    const fn counter(
        name: &'static str,
        labels: &'static [&'static str],
        description: &'static str,
    ) -> Self {
        Self::new(name, MetricKind::Counter, Unit::Count, labels, description)
    }

    const fn gauge(name: &'static str, unit: Unit, description: &'static str) -> Self {
        Self::new(name, MetricKind::Gauge, unit, &[], description)
    }

    const fn histogram(
        name: &'static str,
        unit: Unit,
        buckets: &'static [f64],
        labels: &'static [&'static str],
        description: &'static str,
    ) -> Self {
        let mut spec = Self::new(name, MetricKind::Histogram, unit, labels, description);
        spec.buckets = buckets;
        spec
    }

    const fn per_subscription(mut self) -> Self {
        self.per_subscription = true;
        self
    }

    /// The spec of the metric called `name`, if it is one of fastapihooks'.
    pub fn find(name: &str) -> Option<&'static MetricSpec> {
        ALL.iter().find(|spec| spec.name == name)
    }
}

/// Buckets of a time on a local call (a channel send, a database write): 100 µs to 2.5 s.
const LOCAL_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Buckets of an HTTP attempt: 5 ms to 30 s (the default timeout is 10 s).
const ATTEMPT_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets of a fan-out's size.
const FANOUT_SIZES: &[f64] = &[
    0.0, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0,
];
/// Buckets of a batch's size (batches are at most a few hundred calls).
const BATCH_SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Every metric fastapihooks records, in the README's order: the application's side, the
/// delivery engine's, the queue's and the sidecar's.
pub const ALL: &[MetricSpec] = &[
    MetricSpec::counter(
        EVENTS_PUBLISHED_TOTAL,
        &["event"],
        "Events published: accepted by the backend (`Emitter::publish`, `Hooks::emit`, a hooked route), or committed with a transactional hook's transaction. `event`: the event's name.",
    ),
    MetricSpec::histogram(
        PUBLISH_DURATION_SECONDS,
        Unit::Seconds,
        LOCAL_SECONDS,
        &[],
        "Time one `Backend::publish` call took, whether it succeeded or not: the in-process channel send, or the queue or outbox write.",
    ),
    MetricSpec::counter(
        PUBLISH_ERRORS_TOTAL,
        &["reason"],
        "Publish calls that failed (each try of a hooked route counts). `reason`: `payload_too_large`, `queue_full`, `shut_down`, `storage` (the queue or outbox is unreachable), `other`.",
    ),
    MetricSpec::counter(
        PUBLISH_FAILED_TOTAL,
        &["event"],
        "Events a hooked route could not publish after its tries: lost unless `on_publish_error` kept them. `event`: the event's name.",
    ),
    MetricSpec::counter(
        PUBLISH_REJECTED_TOTAL,
        &["reason"],
        "Events the in-process backend refused. `reason`: `queue_full` (no room within the publish timeout).",
    ),
    MetricSpec::counter(
        HOOK_TRANSACTION_FAILED_TOTAL,
        &["step"],
        "Transactional hooks whose transaction failed, nothing committed. `step`: `begin`, `event check`, `outbox`, `commit`.",
    ),
    MetricSpec::counter(
        HOOK_CAPTURE_SKIPPED_TOTAL,
        &["part", "reason"],
        "Bodies a hook did not capture for its event. `part`: `request`, `response`; `reason`: `too_large`, `body_error`.",
    ),
    MetricSpec::counter(
        HOOK_NOT_EMITTED_TOTAL,
        &["reason"],
        "Hooked responses that could not be made into an event. `reason`: `not_json`, `no_payload`.",
    ),
    MetricSpec::counter(
        INBOX_RECEIVED_TOTAL,
        &["source"],
        "Webhooks received and stored in the inbox. `source`: the inbox route's source.",
    ),
    MetricSpec::counter(
        INBOX_DUPLICATES_TOTAL,
        &["source"],
        "Received webhooks the inbox already held (acknowledged, not stored again). `source`: the inbox route's source.",
    ),
    MetricSpec::histogram(
        FANOUT_SUBSCRIPTIONS,
        Unit::Count,
        FANOUT_SIZES,
        &[],
        "Subscriptions each event fanned out to: one delivery each.",
    ),
    MetricSpec::histogram(
        FANOUT_DURATION_SECONDS,
        Unit::Seconds,
        LOCAL_SECONDS,
        &[],
        "Time fanning one event out took: the matching subscriptions looked up and the deliveries recorded in the store (in process) or read from it (the sidecar, which records each with its first attempt).",
    ),
    MetricSpec::counter(
        DELIVERIES_PLANNED_TOTAL,
        &[],
        "Deliveries planned by fan-out (in process recorded in the store before any attempt; the sidecar records each with its first attempt).",
    ),
    MetricSpec::counter(
        FANOUT_ABANDONED_TOTAL,
        &[],
        "Events the in-process backend abandoned before fan-out: the shutdown deadline passed while the store was unreachable.",
    ),
    MetricSpec::histogram(
        ATTEMPT_DURATION_SECONDS,
        Unit::Seconds,
        ATTEMPT_SECONDS,
        &[],
        "Time one HTTP attempt took, from the request to the classified answer or error; its count is the attempts made.",
    )
    .per_subscription(),
    MetricSpec::counter(
        DELIVERIES_TOTAL,
        &["outcome"],
        "Deliveries that reached a final outcome. `outcome`: `delivered`; the dead letters `failed` (refused for good: a 4xx, a 410, a blocked address) and `dead` (out of retries); `not_sent` (the subscription was disabled or removed).",
    )
    .per_subscription(),
    MetricSpec::counter(
        RETRIES_TOTAL,
        &[],
        "Retries scheduled: attempts that failed and will be tried again.",
    )
    .per_subscription(),
    MetricSpec::gauge(
        ATTEMPTS_IN_FLIGHT,
        Unit::Count,
        "HTTP attempts in flight: the in-process backend's (at most its `concurrency`), and a sidecar worker's (at most `--concurrency`; its tasks waiting for a request slot or for their record are in `fastapihooks_worker_tasks_in_flight`).",
    ),
    MetricSpec::gauge(
        WORKER_TASKS_IN_FLIGHT,
        Unit::Count,
        "Tasks (fan-outs, deliveries, inbox processing) a sidecar worker is running (at most `--tasks-in-flight`): sending, waiting for a request slot, or waiting for their record and settle to commit.",
    ),
    MetricSpec::counter(
        SUBSCRIPTIONS_DISABLED_TOTAL,
        &["cause"],
        "Subscriptions the engine disabled. `cause`: `gone` (a 410 answer), `health` (a failure streak).",
    ),
    MetricSpec::counter(
        STORE_ERRORS_TOTAL,
        &["op"],
        "Store calls of the delivery engine that failed. `op`: `fan_out`, `record_attempt`, `record_health`.",
    ),
    MetricSpec::counter(
        OPS_EVENTS_TOTAL,
        &["event"],
        "Operational events published. `event`: `fastapihooks.delivery.dead`, `fastapihooks.subscription.disabled`.",
    ),
    MetricSpec::counter(
        OPS_EVENTS_FAILED_TOTAL,
        &["event"],
        "Operational events that could not be published. `event`: as for `fastapihooks_ops_events_total`.",
    ),
    MetricSpec::gauge(
        QUEUE_DEPTH,
        Unit::Count,
        "Tasks in the queue not settled for good (ready, leased, or waiting for a retry), sampled by the sidecar.",
    ),
    MetricSpec::gauge(
        QUEUE_OLDEST_PENDING_SECONDS,
        Unit::Seconds,
        "How long the oldest ready task (due, not leased) has waited, sampled by the sidecar; 0 when none waits: the lag to alert on.",
    ),
    MetricSpec::counter(
        QUEUE_ERRORS_TOTAL,
        &[],
        "Queue calls of the sidecar worker that failed (lease, renew, settle).",
    ),
    MetricSpec::counter(
        QUEUE_CONFLICTS_TOTAL,
        &[],
        "SQL outbox statements tried again after a serialization conflict or deadlock.",
    ),
    MetricSpec::counter(
        QUEUE_RECLAIMED_TOTAL,
        &[],
        "Redis tasks reclaimed from a consumer whose lease expired.",
    ),
    MetricSpec::counter(
        QUEUE_UNDECODABLE_TOTAL,
        &[],
        "Queue entries that could not be decoded (dead-lettered).",
    ),
    MetricSpec::counter(
        QUEUE_GROUP_RECREATED_TOTAL,
        &[],
        "Redis consumer groups created again after they went missing.",
    ),
    MetricSpec::counter(
        LEASES_LOST_TOTAL,
        &[],
        "Leases a sidecar worker lost while it ran the task (another worker may run it too).",
    ),
    MetricSpec::counter(
        POISON_TASKS_TOTAL,
        &["kind"],
        "Tasks dead-lettered for being leased too often without being settled. `kind`: `fanout`, `deliver`, `process`.",
    ),
    MetricSpec::histogram(
        GROUP_COMMIT_BATCH_REQUESTS,
        Unit::Count,
        BATCH_SIZES,
        &["op"],
        "Calls coalesced into each batched store or queue call of the sidecar. `op`: the batched call (`queue.settle`, `store.record_attempts`...).",
    ),
];

/// Registers the description and unit of every metric in [`ALL`] with the recorder installed
/// (the global one, or the thread's local one). Installs nothing: call it once, after the
/// application installed its exporter.
pub fn describe() {
    for spec in ALL {
        let unit = spec.unit.to_metrics();
        match spec.kind {
            MetricKind::Counter => ::metrics::describe_counter!(spec.name, unit, spec.description),
            MetricKind::Gauge => ::metrics::describe_gauge!(spec.name, unit, spec.description),
            MetricKind::Histogram => {
                ::metrics::describe_histogram!(spec.name, unit, spec.description)
            }
        }
    }
}

/// The catalogue as a Markdown table (name | type | labels | description), one row per metric
/// of [`ALL`]: the README's table.
pub fn markdown_table() -> String {
    let mut table = String::from("| name | type | labels | description |\n|---|---|---|---|\n");
    for spec in ALL {
        let mut labels: Vec<String> = spec.labels.iter().map(|l| format!("`{l}`")).collect();
        if spec.per_subscription {
            labels.push(format!("`{SUBSCRIPTION_LABEL}` (opt-in)"));
        }
        let labels = if labels.is_empty() {
            "—".to_owned()
        } else {
            labels.join(", ")
        };
        let _ = writeln!(
            table,
            "| `{}` | {} | {labels} | {} |",
            spec.name,
            spec.kind.as_str(),
            spec.description.replace('|', "\\|")
        );
    }
    table
}

/// The `reason` of [`PUBLISH_ERRORS_TOTAL`] for a failed publish.
pub(crate) fn publish_error_reason(error: &Error) -> &'static str {
    match error {
        Error::PayloadTooLarge { .. } => "payload_too_large",
        Error::QueueFull { .. } => "queue_full",
        Error::ShutDown => "shut_down",
        Error::Storage { .. } => "storage",
        _ => "other",
    }
}

/// One in a gauge while it lives: added when made, taken off when dropped — a future dropped
/// mid-way included.
pub(crate) struct InFlight(&'static str);

impl InFlight {
    pub(crate) fn new(gauge: &'static str) -> Self {
        metrics::gauge!(gauge).increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}

/// The delivery and attempt metrics, labelled per subscription only when asked: without the
/// opt-in, each records under a key built from static parts (no allocation per delivery).
pub(crate) mod delivery {
    use super::*;

    static METADATA: Metadata<'static> =
        Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

    const OUTCOME: &str = "outcome";
    static DELIVERED: [Label; 1] = [Label::from_static_parts(OUTCOME, "delivered")];
    static FAILED: [Label; 1] = [Label::from_static_parts(OUTCOME, "failed")];
    static DEAD: [Label; 1] = [Label::from_static_parts(OUTCOME, "dead")];
    static PENDING: [Label; 1] = [Label::from_static_parts(OUTCOME, "pending")];
    static NOT_SENT: [Label; 1] = [Label::from_static_parts(OUTCOME, "not_sent")];

    /// The final outcome a delivery is counted under in [`DELIVERIES_TOTAL`].
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Outcome {
        /// Its status: `delivered`, `failed` or `dead`.
        Final(DeliveryStatus),
        /// Failed without a request: the subscription is disabled or gone.
        NotSent,
    }

    impl Outcome {
        fn labels(self) -> &'static [Label] {
            match self {
                Self::Final(DeliveryStatus::Delivered) => &DELIVERED,
                Self::Final(DeliveryStatus::Failed) => &FAILED,
                Self::Final(DeliveryStatus::Dead) => &DEAD,
                Self::Final(DeliveryStatus::Pending) => &PENDING,
                Self::NotSent => &NOT_SENT,
            }
        }
    }

    fn key(
        name: &'static str,
        labels: &'static [Label],
        subscription: Option<&SubscriptionId>,
    ) -> Key {
        match subscription {
            None => Key::from_static_labels(name, labels),
            Some(id) => {
                let mut all = labels.to_vec();
                all.push(Label::new(SUBSCRIPTION_LABEL, id.to_string()));
                Key::from_parts(name, all)
            }
        }
    }

    /// One delivery reached `outcome` ([`DELIVERIES_TOTAL`]).
    pub(crate) fn finished(outcome: Outcome, subscription: Option<&SubscriptionId>) {
        let key = key(DELIVERIES_TOTAL, outcome.labels(), subscription);
        ::metrics::with_recorder(|r| r.register_counter(&key, &METADATA)).increment(1);
    }

    /// One retry scheduled ([`RETRIES_TOTAL`]).
    pub(crate) fn retry_scheduled(subscription: Option<&SubscriptionId>) {
        let key = key(RETRIES_TOTAL, &[], subscription);
        ::metrics::with_recorder(|r| r.register_counter(&key, &METADATA)).increment(1);
    }

    /// One attempt took `seconds` ([`ATTEMPT_DURATION_SECONDS`]).
    pub(crate) fn attempted(seconds: f64, subscription: Option<&SubscriptionId>) {
        let key = key(ATTEMPT_DURATION_SECONDS, &[], subscription);
        ::metrics::with_recorder(|r| r.register_histogram(&key, &METADATA)).record(seconds);
    }
}

//! [`Queue`]: a [`Backend`] that a sidecar can drain — leases, acks, retries, dead letters.
//!
//! Work travels as [`Task`]s. Publishing enqueues a [`Task::Fanout`]; the worker turns it into
//! one [`Task::Deliver`] per matching subscription with [`Queue::replace`], which acks the
//! fan-out and enqueues the deliveries **in one atomic step**: an event is never acked without
//! its deliveries, and never fanned out twice by two consumers. Each delivery then retries on
//! its own.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::Backend;
use super::process_task::ProcessTask;
use super::settlement::{self, Replacement, Settlement};
use crate::delivery::Delivery;
use crate::error::Result;
use crate::event::Event;
use crate::id::{DeliveryId, EventId, InboxId, SubscriptionId};

/// One unit of queued work.
///
/// Serialized (internally tagged by `type`) into the queue. A delivery task carries its event
/// so it can be sent without reading the event back — unless the store keeps every event of a
/// pending delivery ([`Store::keeps_events`](crate::Store::keeps_events), the SQL store): then the
/// sidecar's fan-out queues it with the event's id only, and the payload is stored once per
/// event, however many subscriptions receive it. The subscription is looked up when the task
/// runs, so a changed URL or secret applies and no secret is written to the queue.
///
/// ```
/// use fastapihooks_core::{Event, backend::Task};
/// let task = Task::fanout(Event::new("order.created", &1).unwrap());
/// let json = serde_json::to_string(&task).unwrap();
/// assert!(json.starts_with(r#"{"type":"fanout""#));
/// assert_eq!(serde_json::from_str::<Task>(&json).unwrap(), task);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "TaskWire")]
pub enum Task {
    /// Turn an event into its deliveries.
    Fanout {
        /// The published event.
        event: Event,
        /// How many times fan-out failed before (the store was unreachable); paces the backoff.
        #[serde(default, skip_serializing_if = "is_zero")]
        failures: u32,
    },
    /// Make the next attempt of one delivery.
    Deliver(DeliverTask),
    /// Make the next processing attempt of one received webhook (the [`Inbox`](crate::inbox::Inbox)'s
    /// queue, drained by the application's own worker).
    Process(ProcessTask),
}

/// The next attempt of one delivery: what a [`Task::Deliver`] carries.
///
/// Its id is always [`DeliveryId::for_event`] of its event and subscription, so a task built
/// twice for the same pair (a fan-out run again) names the same delivery.
///
/// ```
/// use fastapihooks_core::{DeliveryId, Event, SubscriptionId, backend::DeliverTask};
/// let event = Event::new("order.created", &1).unwrap();
/// let subscription = SubscriptionId::new();
/// let task = DeliverTask::new(event.clone(), subscription.clone()).with_attempts(2);
/// assert_eq!(task.delivery_id(), &DeliveryId::for_event(event.id(), &subscription));
/// assert_eq!(task.attempts(), 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DeliverTask {
    delivery_id: DeliveryId,
    subscription_id: SubscriptionId,
    /// The event, or `None` when only its id travels (the store keeps it).
    event: Option<Event>,
    event_id: EventId,
    attempts: u32,
    replay: u32,
    /// The event's trace context: travels with a task that does not carry its event.
    trace: Option<crate::trace::TraceParent>,
}

impl Serialize for DeliverTask {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let slim_trace = self.trace.filter(|_| self.event.is_none());
        let fields = 4 + usize::from(self.replay != 0) + usize::from(slim_trace.is_some());
        let mut task = s.serialize_struct("DeliverTask", fields)?;
        task.serialize_field("delivery_id", &self.delivery_id)?;
        task.serialize_field("subscription_id", &self.subscription_id)?;
        match &self.event {
            Some(event) => task.serialize_field("event", event)?,
            None => task.serialize_field("event_id", &self.event_id)?,
        }
        task.serialize_field("attempts", &self.attempts)?;
        if self.replay != 0 {
            task.serialize_field("replay", &self.replay)?;
        }
        if let Some(trace) = &slim_trace {
            task.serialize_field("traceparent", trace)?;
        }
        task.end()
    }
}

impl DeliverTask {
    /// The first attempt of `event` to `subscription_id`.
    pub fn new(event: Event, subscription_id: SubscriptionId) -> Self {
        Self {
            delivery_id: DeliveryId::for_event(event.id(), &subscription_id),
            subscription_id,
            event_id: event.id().clone(),
            trace: event.trace().copied(),
            event: Some(event),
            attempts: 0,
            replay: 0,
        }
    }

    /// The next attempt of `delivery`'s current run, as fan-out or a replay recorded it.
    pub(crate) fn of(delivery: Delivery) -> Self {
        Self {
            delivery_id: delivery.id,
            subscription_id: delivery.subscription_id,
            event_id: delivery.event.id().clone(),
            trace: delivery.event.trace().copied(),
            event: Some(delivery.event),
            attempts: delivery.attempts,
            replay: delivery.replays,
        }
    }

    /// The same task with the event's id only, not the event: for a store that keeps the
    /// event of every pending delivery, where the payload is then read back when the task
    /// runs instead of copied into the queue once per subscription.
    ///
    /// ```
    /// use fastapihooks_core::{Event, SubscriptionId, backend::DeliverTask};
    /// let event = Event::new("order.created", &"a large payload").unwrap();
    /// let task = DeliverTask::new(event.clone(), SubscriptionId::new()).without_event();
    /// assert!(task.event().is_none());
    /// assert_eq!(task.event_id(), event.id());
    /// assert!(!serde_json::to_string(&task).unwrap().contains("a large payload"));
    /// ```
    pub fn without_event(mut self) -> Self {
        self.event = None;
        self
    }

    /// The same delivery with `attempts` attempts already made.
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// The delivery: [`DeliveryId::for_event`] of the event and subscription.
    pub fn delivery_id(&self) -> &DeliveryId {
        &self.delivery_id
    }

    /// Where it goes.
    pub fn subscription_id(&self) -> &SubscriptionId {
        &self.subscription_id
    }

    /// What it carries: the event, or `None` when it travels by id only
    /// ([`without_event`](Self::without_event)).
    pub fn event(&self) -> Option<&Event> {
        self.event.as_ref()
    }

    /// The id of the event it delivers.
    pub fn event_id(&self) -> &EventId {
        &self.event_id
    }

    /// The trace context of the event it delivers, if it travels with one.
    pub fn trace(&self) -> Option<&crate::trace::TraceParent> {
        self.trace.as_ref()
    }

    /// Attempts already made.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The run this task belongs to: the delivery's `replays` when it was queued (0 before any
    /// replay). A task of an earlier run than the stored delivery's does not send.
    pub fn replay(&self) -> u32 {
        self.replay
    }
}

impl From<DeliverTask> for Task {
    fn from(task: DeliverTask) -> Self {
        Task::Deliver(task)
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What [`Task`] deserializes through: the fields of every kind of task in one flat struct, read
/// straight from the input. (A derived internally tagged enum buffers its fields first, and the
/// event's raw JSON payload cannot pass through that buffer.)
#[derive(Deserialize)]
struct TaskWire {
    #[serde(rename = "type")]
    kind: TaskKind,
    event: Option<Event>,
    event_id: Option<EventId>,
    #[serde(default)]
    failures: u32,
    delivery_id: Option<DeliveryId>,
    subscription_id: Option<SubscriptionId>,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    replay: u32,
    inbox_id: Option<InboxId>,
    traceparent: Option<crate::trace::TraceParent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TaskKind {
    Fanout,
    Deliver,
    Process,
}

impl TryFrom<TaskWire> for Task {
    type Error = &'static str;
    fn try_from(w: TaskWire) -> std::result::Result<Self, Self::Error> {
        Ok(match w.kind {
            TaskKind::Fanout => Task::Fanout {
                event: w.event.ok_or("a fanout task needs `event`")?,
                failures: w.failures,
            },
            // The id is taken as written, not derived again: a task queued by any version
            // settles the delivery it was queued for.
            TaskKind::Deliver => Task::Deliver(DeliverTask {
                delivery_id: w.delivery_id.ok_or("a deliver task needs `delivery_id`")?,
                subscription_id: w
                    .subscription_id
                    .ok_or("a deliver task needs `subscription_id`")?,
                event_id: match (&w.event, w.event_id) {
                    (Some(event), _) => event.id().clone(),
                    (None, Some(id)) => id,
                    (None, None) => return Err("a deliver task needs `event` or `event_id`"),
                },
                trace: w
                    .traceparent
                    .or_else(|| w.event.as_ref().and_then(|e| e.trace().copied())),
                event: w.event,
                attempts: w.attempts,
                replay: w.replay,
            }),
            TaskKind::Process => Task::Process(
                ProcessTask::new(w.inbox_id.ok_or("a process task needs `inbox_id`")?)
                    .with_attempts(w.attempts),
            ),
        })
    }
}

impl Task {
    /// The task as the queues store it (JSON); an error names the task, not a payload.
    pub(crate) fn encode(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|source| crate::Error::Encode {
            what: "queue.task",
            source,
        })
    }

    /// The fan-out task of a freshly published event.
    pub fn fanout(event: Event) -> Self {
        Task::Fanout { event, failures: 0 }
    }

    /// The first delivery task of `event` to `subscription_id`.
    pub fn deliver(event: Event, subscription_id: SubscriptionId) -> Self {
        Task::Deliver(DeliverTask::new(event, subscription_id))
    }

    /// The event the task carries: always for a fan-out; for a delivery, unless it travels by
    /// id only ([`DeliverTask::without_event`]); never for processing a received webhook.
    pub fn event(&self) -> Option<&Event> {
        match self {
            Task::Fanout { event, .. } => Some(event),
            Task::Deliver(task) => task.event.as_ref(),
            Task::Process(_) => None,
        }
    }

    /// The id of the event the task is about: `None` for processing a received webhook.
    pub fn event_id(&self) -> Option<&EventId> {
        match self {
            Task::Fanout { event, .. } => Some(event.id()),
            Task::Deliver(task) => Some(&task.event_id),
            Task::Process(_) => None,
        }
    }

    /// `fanout`, `deliver` or `process`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Task::Fanout { .. } => "fanout",
            Task::Deliver(_) => "deliver",
            Task::Process(_) => "process",
        }
    }

    /// What the task works on, for logs: the event it fans out, the delivery it attempts, the
    /// inbox entry it processes.
    pub fn subject(&self) -> &str {
        match self {
            Task::Fanout { event, .. } => event.id().as_str(),
            Task::Deliver(task) => task.delivery_id.as_str(),
            Task::Process(task) => task.inbox_id().as_str(),
        }
    }
}

/// The queue's handle on one lease (for Redis, the stream entry id). Opaque to the worker.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Receipt(Arc<str>);

impl Receipt {
    /// Wraps a queue-specific handle.
    pub fn new(handle: impl Into<Arc<str>>) -> Self {
        Self(handle.into())
    }

    /// The handle as the queue gave it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A task taken from the queue: invisible to other consumers until it is settled (acked,
/// replaced, retried or dead-lettered) or until the queue's visibility timeout passes, after
/// which another consumer may lease it again.
#[derive(Clone, Debug, PartialEq)]
pub struct Leased {
    /// The lease.
    pub receipt: Receipt,
    /// The work.
    pub task: Task,
    /// How many times the task has been leased since it was last settled, this lease
    /// included (1 for a task leased for the first time): a task whose leases keep expiring
    /// crashes or stalls every worker that takes it, and the worker dead-letters it past
    /// [`WorkerConfig::max_leases`](crate::WorkerConfig::max_leases). 0 when the queue does not
    /// count.
    pub leases: u32,
}

/// A durable [`Backend`] that a sidecar drains: `publish` enqueues a [`Task::Fanout`]; the
/// worker leases tasks and settles each lease exactly one way.
///
/// Every settling method returns whether the lease was still held: `false` means it had expired
/// and another consumer took the task over, and nothing was changed — the other consumer
/// settles it. Implementations must make each settling method atomic.
///
/// The worker accepts only a `Queue` (`Worker<Q: Queue>`), so a backend that cannot be drained
/// is rejected by the compiler, not at run time.
#[async_trait]
pub trait Queue: Backend {
    /// Leases up to `max` tasks, waiting a short, queue-defined while (about a second) when none
    /// is ready; an empty batch is not an error. Due retries and expired leases of crashed
    /// consumers come back through here.
    async fn lease(&self, max: usize) -> Result<Vec<Leased>>;

    /// Settles the lease and enqueues `next` in one atomic step (fan-out: the event's lease is
    /// replaced by its delivery tasks).
    async fn replace(&self, receipt: &Receipt, next: &[Task]) -> Result<bool>;

    /// Settles the lease: the task is done.
    async fn ack(&self, receipt: &Receipt) -> Result<bool> {
        self.replace(receipt, &[]).await
    }

    /// Settles the lease and brings `task` (usually the leased task with its attempt count
    /// updated; an event's task can come back as its only delivery's) back after `delay`, measured on the queue's own clock so consumers' clock skew
    /// does not matter.
    async fn retry_in(&self, receipt: &Receipt, task: &Task, delay: Duration) -> Result<bool>;

    /// Settles the lease and keeps `task` as a dead letter, with the `reason` for a human.
    async fn dead_letter(&self, receipt: &Receipt, task: &Task, reason: &str) -> Result<bool>;

    /// Settles the lease and puts each of `next` in the task's place as it says — due at once
    /// (in line where the task was), due after its delay, or kept as a dead letter — in one
    /// atomic step: how an event whose deliveries were attempted on its own lease is settled
    /// when some of them must be tried again or were given up.
    async fn replace_each(&self, receipt: &Receipt, next: &[Replacement]) -> Result<bool>;

    /// Settles several leases, each as its [`Settlement`] says and each fenced as the single
    /// methods are: one result per settlement, in order. The worker group-commits the
    /// settlements of tasks that end at about the same time through this. The default makes
    /// the single calls concurrently; a queue that can settle many in one statement should.
    async fn settle_many(&self, settlements: &[Settlement]) -> Vec<Result<bool>> {
        settlement::each(self, settlements).await
    }

    /// Renews the lease for another visibility timeout, from now. Returns `false`, changing
    /// nothing, when the lease is no longer held. The worker renews every lease it holds while
    /// its task runs, so a task slowed down by a slow store or receiver is never taken over by
    /// another consumer.
    async fn extend(&self, receipt: &Receipt) -> Result<bool>;

    /// How long a lease lasts before another consumer may take the task over. The worker checks
    /// that it exceeds the HTTP timeout, and renews leases while their tasks run.
    fn visibility_timeout(&self) -> Duration;

    /// Tasks not settled for good — ready, leased, or waiting for a retry: the queue depth.
    async fn depth(&self) -> Result<u64>;

    /// Dead letters the queue keeps.
    async fn dead_letters(&self) -> Result<u64>;

    /// How long the oldest task that is ready to run — due, and not leased — has been
    /// waiting, on the queue's own clock: the lag an operator alerts on (a sidecar that keeps
    /// up keeps it near zero). `None` when no task is ready, or when the queue cannot tell:
    /// the default, for a queue of one's own that does not override it.
    async fn oldest_pending_age(&self) -> Result<Option<Duration>> {
        Ok(None)
    }

    /// The SQL store this queue is the outbox of, and its table: set by
    /// `SqlBackend::for_store`, so the store can write a task in its own transaction.
    #[doc(hidden)]
    #[cfg(feature = "sql")]
    fn store_outbox(&self) -> Option<StoreOutbox<'_>> {
        None
    }

    /// Queues `tasks`, due at once, in one atomic step: how the inbox queues the processing of
    /// a received webhook ([`Task::Process`]), and how the worker hands an event's deliveries
    /// that waited for a permit on the event's lease to the queue (their tasks go ahead of the
    /// events queued after theirs, as a fan-out's). The default refuses with
    /// [`Error::Unsupported`](crate::Error::Unsupported) (`queue.enqueue`): a queue of one's own
    /// that does not take arbitrary tasks says so.
    async fn enqueue(&self, tasks: &[Task]) -> Result<()> {
        let _ = tasks;
        Err(crate::Error::Unsupported {
            what: "queue.enqueue",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deliver_task_round_trips_with_its_payload_embedded_as_json() {
        let event = Event::new("order.created", &serde_json::json!({"id": 7})).unwrap();
        let task = Task::from(DeliverTask::new(event, SubscriptionId::new()).with_attempts(2));
        let json = serde_json::to_string(&task).unwrap();
        assert!(json.contains(r#""payload":{"id":7}"#), "{json}");
        assert_eq!(serde_json::from_str::<Task>(&json).unwrap(), task);
    }

    /// The wire format of a deliver task, as earlier versions queued it: still read.
    #[test]
    fn a_deliver_task_keeps_its_wire_format() {
        let event = Event::new("order.created", &serde_json::json!({"id": 7})).unwrap();
        let subscription = SubscriptionId::new();
        let delivery = DeliveryId::for_event(event.id(), &subscription);
        let task =
            Task::from(DeliverTask::new(event.clone(), subscription.clone()).with_attempts(3));
        let value = serde_json::to_value(&task).unwrap();
        let expected = serde_json::json!({
            "type": "deliver",
            "delivery_id": delivery.as_str(),
            "subscription_id": subscription.as_str(),
            "event": serde_json::to_value(&event).unwrap(),
            "attempts": 3,
        });
        assert_eq!(value, expected);
        let written_before = format!(
            r#"{{"type":"deliver","delivery_id":"{}","subscription_id":"{}","event":{},"attempts":3}}"#,
            delivery.as_str(),
            subscription.as_str(),
            serde_json::to_string(&event).unwrap(),
        );
        assert_eq!(serde_json::from_str::<Task>(&written_before).unwrap(), task);
        let without_attempts = written_before.replace(r#","attempts":3"#, "");
        let Task::Deliver(read) = serde_json::from_str::<Task>(&without_attempts).unwrap() else {
            panic!("not a deliver task");
        };
        assert_eq!(read.attempts(), 0);
        assert_eq!(read.delivery_id(), &delivery);
    }

    #[test]
    fn a_deliver_task_without_its_event_round_trips_by_the_event_id() {
        let event = Event::new("order.created", &serde_json::json!({"id": 7})).unwrap();
        let task =
            Task::from(DeliverTask::new(event.clone(), SubscriptionId::new()).without_event());
        let value = serde_json::to_value(&task).unwrap();
        assert_eq!(value["event_id"], event.id().as_str());
        assert!(value.get("event").is_none(), "{value}");
        let back: Task = serde_json::from_value(value).unwrap();
        assert_eq!(back, task);
        assert_eq!(back.event_id(), Some(event.id()));
        assert!(back.event().is_none());
    }

    #[test]
    fn a_deliver_task_with_neither_event_nor_event_id_is_rejected() {
        let task = Task::deliver(Event::new("a", &1).unwrap(), SubscriptionId::new());
        let mut value = serde_json::to_value(&task).unwrap();
        value.as_object_mut().unwrap().remove("event");
        let err = serde_json::from_value::<Task>(value).unwrap_err();
        assert!(err.to_string().contains("event_id"), "{err}");
    }

    #[test]
    fn a_deliver_task_without_its_delivery_id_is_rejected() {
        let task = Task::deliver(Event::new("a", &1).unwrap(), SubscriptionId::new());
        let mut value = serde_json::to_value(&task).unwrap();
        value.as_object_mut().unwrap().remove("delivery_id");
        let err = serde_json::from_value::<Task>(value).unwrap_err();
        assert!(err.to_string().contains("delivery_id"), "{err}");
    }

    #[test]
    fn fields_may_come_in_any_order() {
        let task = Task::fanout(Event::new("a", &[1, 2]).unwrap());
        let value = serde_json::to_value(&task).unwrap();
        let reordered = format!(
            r#"{{"event":{},"type":"fanout"}}"#,
            serde_json::to_string(&value["event"]).unwrap()
        );
        assert_eq!(serde_json::from_str::<Task>(&reordered).unwrap(), task);
    }
}

/// Which store an outbox made with `SqlBackend::for_store` belongs to, and its table
/// ([`Queue::store_outbox`]).
#[cfg(feature = "sql")]
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct StoreOutbox<'a> {
    pub(crate) store: &'a std::sync::Arc<()>,
    pub(crate) table: crate::backend::OutboxTable,
}

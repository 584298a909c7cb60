//! [`Emitter`]: the publishing front — validates and sizes events, hands them to the backend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::{Backend, BackgroundConfig, BackgroundTaskBackend, ShutdownReport};
use crate::delivery::{Attempt, Delivery};
use crate::dispatch::{Dispatcher, HttpConfig};
use crate::engine::{DeliveryEngine, OnFailure};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::health::HealthPolicy;
use crate::publisher::PublisherBuilder;
use crate::retry::RetryPolicy;
use crate::secret::Secret;
use crate::signing::{Sha256Hex, Signer};
use crate::store::{MemoryStore, Store};
use crate::subscription::Subscription;
use crate::trace::{TraceContext, TraceParent};

/// The default maximum serialized payload: 256 KiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Publishes events to a [`Backend`]. Cheap to clone; clones share the backend.
///
/// ```no_run
/// # async fn run() -> Result<(), fastapihooks_core::Error> {
/// use fastapihooks_core::{Emitter, Secret, Subscription};
///
/// let emitter = Emitter::builder()
///     .subscriber(Subscription::new("order.created", "https://example.com/hooks")?)
///     .secret(Secret::new("change-me")?)
///     .build()?;
/// emitter.emit("order.created", &serde_json::json!({"id": 1})).await?;
/// emitter.shutdown(std::time::Duration::from_secs(5)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Emitter {
    backend: Arc<dyn Backend>,
    store: Arc<dyn Store>,
    max_payload_bytes: usize,
    trace_context: Option<Arc<dyn TraceContext>>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("max_payload_bytes", &self.max_payload_bytes)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// Starts configuring an emitter that delivers in-process: every delivery setting lives
    /// here.
    pub fn builder() -> EmitterBuilder {
        EmitterBuilder::default()
    }

    /// Starts configuring an emitter that only publishes into `backend` (a durable queue that
    /// a sidecar drains, or a backend of one's own): see [`PublisherBuilder`].
    pub fn publisher(backend: impl Backend) -> PublisherBuilder {
        PublisherBuilder::new(Arc::new(backend))
    }

    /// Like [`publisher`](Self::publisher), for a backend shared with other code (e.g. the
    /// [`SqlBackend`](crate::backend::SqlBackend) a transactional hook also writes through).
    pub fn shared_publisher(backend: Arc<dyn Backend>) -> PublisherBuilder {
        PublisherBuilder::new(backend)
    }

    pub(crate) fn from_parts(
        backend: Arc<dyn Backend>,
        store: Arc<dyn Store>,
        max_payload_bytes: usize,
        trace_context: Option<Arc<dyn TraceContext>>,
    ) -> Self {
        Self {
            backend,
            store,
            max_payload_bytes,
            trace_context,
        }
    }

    /// Emits `payload` (serialized once, here) as event `name`.
    pub async fn emit(&self, name: &str, payload: &impl Serialize) -> Result<Event> {
        let event = Event::new(name, payload)?;
        self.publish(event.clone()).await?;
        Ok(event)
    }

    /// Checks `event` against this emitter's limits, as [`publish`](Self::publish) does first
    /// (for events written elsewhere, such as into an outbox in a transaction).
    pub fn check(&self, event: &Event) -> Result<()> {
        let size = event.payload().len();
        if size > self.max_payload_bytes {
            return Err(Error::PayloadTooLarge {
                size,
                limit: self.max_payload_bytes,
            });
        }
        Ok(())
    }

    /// The event with its trace context, unless it has one already: the current one of the
    /// [`TraceContext`] if any, else a new trace. Every publish goes through this.
    pub fn traced(&self, event: Event) -> Event {
        if event.trace().is_some() {
            return event;
        }
        let trace = self
            .trace_context
            .as_ref()
            .and_then(|context| context.current())
            .unwrap_or_else(TraceParent::new_root);
        event.with_trace(trace)
    }

    /// Publishes a ready event, after checking its size, with its trace context
    /// ([`traced`](Self::traced)): the `fastapihooks.publish` span carries the event's id and
    /// trace id, as its deliveries' attempt spans do.
    #[tracing::instrument(name = "fastapihooks.publish", level = "info", skip_all, fields(event = %event.id(), name = %event.name(), trace_id = tracing::field::Empty))]
    pub async fn publish(&self, event: Event) -> Result<()> {
        if let Err(e) = self.check(&event) {
            return Err(publish_failed(e));
        }
        let event = self.traced(event);
        if let Some(trace) = event.trace() {
            let span = tracing::Span::current();
            if !span.is_disabled() {
                span.record("trace_id", tracing::field::display(trace.trace_id_hex()));
            }
        }
        let name = event.name().clone();
        let started = Instant::now();
        let published = self.backend.publish(event).await;
        metrics::histogram!(crate::metrics::PUBLISH_DURATION_SECONDS)
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = published {
            return Err(publish_failed(e));
        }
        metrics::counter!(crate::metrics::EVENTS_PUBLISHED_TOTAL, "event" => name.to_string())
            .increment(1);
        Ok(())
    }

    /// The store holding subscriptions and delivery history.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The backend events are published through: the one replays are queued on too
    /// ([`Replay`](crate::Replay), the management API).
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The largest payload accepted, in bytes.
    pub fn max_payload_bytes(&self) -> usize {
        self.max_payload_bytes
    }

    /// Stops accepting events and drains in-flight deliveries within `deadline`.
    pub async fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport> {
        self.backend.shutdown(deadline).await
    }
}

/// Counts a publish that failed, by its reason, and hands the error back.
fn publish_failed(error: Error) -> Error {
    let reason = crate::metrics::publish_error_reason(&error);
    metrics::counter!(crate::metrics::PUBLISH_ERRORS_TOTAL, "reason" => reason).increment(1);
    error
}

/// Configures an [`Emitter`]: where subscriptions live, how deliveries are signed, retried and
/// sent. Every setting has a working default but the signing secret (see
/// [`unsigned`](Self::unsigned)).
#[derive(Default)]
pub struct EmitterBuilder {
    store: Option<Arc<dyn Store>>,
    subscribers: Vec<Subscription>,
    secret: Option<Secret>,
    signer: Option<Arc<dyn Signer>>,
    retry: RetryPolicy,
    http: HttpConfig,
    unsigned: bool,
    background: BackgroundConfig,
    on_failure: Option<OnFailure>,
    max_payload_bytes: Option<usize>,
    health: HealthPolicy,
    metrics_per_subscription: bool,
    trace_context: Option<Arc<dyn TraceContext>>,
}

impl std::fmt::Debug for EmitterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmitterBuilder")
            .field("subscribers", &self.subscribers.len())
            .field("secret", &self.secret)
            .field("signer", &self.signer)
            .field("unsigned", &self.unsigned)
            .field("retry", &self.retry)
            .field("http", &self.http)
            .field("background", &self.background)
            .field("on_failure", &self.on_failure.is_some())
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("metrics_per_subscription", &self.metrics_per_subscription)
            .finish_non_exhaustive()
    }
}

impl EmitterBuilder {
    /// Where subscriptions and delivery history live. Default: a [`MemoryStore`].
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Like [`store`](Self::store), for a store shared with other code.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// A subscriber kept in code, beside those in the store. Building warns (a `tracing`
    /// warning) when its URL is a literal address the SSRF guard of [`http`](Self::http) refuses.
    pub fn subscriber(mut self, subscription: Subscription) -> Self {
        self.subscribers.push(subscription);
        self
    }

    /// The secret that signs deliveries to subscriptions without their own.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// The signature scheme. Default: [`Sha256Hex`].
    pub fn signer(mut self, signer: impl Signer + 'static) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// When failed deliveries are retried. Default: [`RetryPolicy::default`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// When a subscription whose endpoint keeps failing is disabled (default: after a day of
    /// failures and at least 10 failed attempts; [`HealthPolicy::never`] turns it off). See
    /// [`health`](crate::health).
    pub fn endpoint_health(mut self, policy: HealthPolicy) -> Self {
        self.health = policy;
        self
    }

    /// The HTTP client's limits.
    pub fn http(mut self, config: HttpConfig) -> Self {
        self.http = config;
        self
    }

    /// Limits of the in-process backend.
    pub fn background(mut self, config: BackgroundConfig) -> Self {
        self.background = config;
        self
    }

    /// Called with each dead letter and its last attempt.
    pub fn on_failure(mut self, f: impl Fn(&Delivery, &Attempt) + Send + Sync + 'static) -> Self {
        self.on_failure = Some(Arc::new(f));
        self
    }

    /// The largest serialized payload accepted. Default 256 KiB.
    pub fn max_payload_bytes(mut self, limit: usize) -> Self {
        self.max_payload_bytes = Some(limit);
        self
    }

    /// Adds a `subscription` label (the subscription's id) to the delivery and attempt metrics:
    /// `fastapihooks_deliveries_total`, `fastapihooks_retries_total` and
    /// `fastapihooks_attempt_duration_seconds` (see [`metrics`](crate::metrics)). Default: off.
    ///
    /// Off by default because of cardinality: every subscription becomes time series of its own
    /// — one per outcome, and fifteen for the attempt duration histogram (buckets, sum, count) —
    /// and subscriptions are data, added at run time by the application's users, not bounded by
    /// its code. A few thousand subscriptions make tens of thousands of series in every scrape,
    /// and the series of removed subscriptions linger in the exporter. Turn it on when the
    /// subscriptions are few and long-lived (tens, not thousands); otherwise the delivery history
    /// in the store answers per-subscription questions (`fastapihooks deliveries list`). The
    /// sidecar's flag for it is `--metrics-per-subscription`.
    pub fn metrics_per_subscription(mut self, on: bool) -> Self {
        self.metrics_per_subscription = on;
        self
    }

    /// Sends deliveries to subscriptions without a secret of their own **unsigned**. Without
    /// this or a [`secret`](Self::secret), building fails with [`Error::NoSigningSecret`]:
    /// nothing goes out unsigned unless asked for. Subscriptions with a secret of their own are
    /// signed either way.
    pub fn unsigned(mut self) -> Self {
        self.unsigned = true;
        self
    }

    /// Bridges traces to a tracing system (OpenTelemetry, say): events take the current
    /// context when published, and attempt spans get the event's context as their parent. Without
    /// it, an event takes the `traceparent` of the request that emitted it (the axum hook) or a
    /// new trace, and spans carry the trace id as a field.
    pub fn trace_context(mut self, context: Arc<dyn TraceContext>) -> Self {
        self.trace_context = Some(context);
        self
    }

    /// Builds the delivery engine these settings describe (what the in-process backend and a
    /// sidecar's [`Worker`](crate::worker::Worker) run).
    #[doc(hidden)]
    pub fn build_engine(&self) -> Result<DeliveryEngine> {
        if self.secret.is_none() && !self.unsigned {
            return Err(Error::NoSigningSecret);
        }
        for subscription in &self.subscribers {
            if let Err(refused) = self.http.check_url(&subscription.url) {
                tracing::warn!(
                    subscription = %subscription.id,
                    url = %subscription.url,
                    "{refused}"
                );
            }
        }
        let store = self.store_or_default();
        let signer = self
            .signer
            .clone()
            .unwrap_or_else(|| Arc::new(Sha256Hex::new()));
        let dispatcher = Dispatcher::new(&self.http, signer, self.secret.clone())?;
        Ok(DeliveryEngine::new(
            store,
            self.subscribers.clone(),
            dispatcher,
            self.retry.clone(),
            self.on_failure.clone(),
        )
        .with_health(self.health)
        .with_metrics_per_subscription(self.metrics_per_subscription)
        .with_trace_context(self.trace_context.clone()))
    }

    fn store_or_default(&self) -> Arc<dyn Store> {
        self.store
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryStore::new()))
    }

    /// Starts the in-process backend these settings describe, on the current tokio runtime,
    /// without an emitter in front: for a [`Backend`] of one's own that hands events on to it
    /// (wrap it, then [`Emitter::publisher`]).
    pub fn build_backend(&self) -> Result<BackgroundTaskBackend> {
        BackgroundTaskBackend::start(self.build_engine()?, self.background.clone())
    }

    /// Builds the emitter and starts its [`BackgroundTaskBackend`] on the current tokio
    /// runtime.
    ///
    /// Fails with [`Error::NoSigningSecret`] when neither [`secret`](Self::secret) nor
    /// [`unsigned`](Self::unsigned) was set.
    pub fn build(mut self) -> Result<Emitter> {
        let store = self.store_or_default();
        self.store = Some(store.clone());
        let backend = Arc::new(self.build_backend()?);
        Ok(Emitter {
            backend,
            store,
            max_payload_bytes: self.max_payload_bytes.unwrap_or(DEFAULT_MAX_PAYLOAD_BYTES),
            trace_context: self.trace_context.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emitter(limit: usize) -> Emitter {
        Emitter::builder()
            .unsigned()
            .max_payload_bytes(limit)
            .build()
            .unwrap()
    }

    /// Collects what `tracing` writes while `f` runs.
    fn logs_of(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_subscriber_the_guard_refuses_is_warned_about_with_how_to_allow_it() {
        let metadata = Subscription::new("*", "http://169.254.169.254/latest").unwrap();
        let logs = logs_of(|| {
            Emitter::builder()
                .unsigned()
                .subscriber(metadata)
                .build_engine()
                .unwrap();
        });
        assert!(logs.contains("WARN"), "{logs}");
        assert!(
            logs.contains("169.254.169.254") && logs.contains("allow_network"),
            "{logs}"
        );
        let public = Subscription::new("*", "https://93.184.215.14/hooks").unwrap();
        let quiet = logs_of(|| {
            Emitter::builder()
                .unsigned()
                .subscriber(public)
                .build_engine()
                .unwrap();
        });
        assert!(!quiet.contains("WARN"), "{quiet}");
    }

    #[test]
    fn building_without_a_secret_or_unsigned_is_refused() {
        let err = Emitter::builder().build_engine().unwrap_err();
        assert!(matches!(err, Error::NoSigningSecret), "{err}");
        assert!(err.to_string().contains(".unsigned()"), "{err}");
        assert!(Emitter::builder().unsigned().build_engine().is_ok());
        let secret = Secret::new("s").unwrap();
        assert!(Emitter::builder().secret(secret).build_engine().is_ok());
    }

    #[tokio::test]
    async fn a_payload_over_the_limit_is_refused_with_its_size_and_the_limit() {
        let emitter = emitter(16);
        let err = emitter
            .emit("order.created", &"x".repeat(20))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::PayloadTooLarge {
                    size: 22,
                    limit: 16
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("22 bytes") && err.to_string().contains("16 bytes"));
    }

    #[tokio::test]
    async fn a_payload_at_the_limit_is_accepted() {
        let emitter = emitter(16);
        // 14 characters and two quotes: exactly 16 bytes of JSON.
        emitter
            .emit("order.created", &"x".repeat(14))
            .await
            .unwrap();
    }

    #[test]
    fn the_default_limit_is_256_kib() {
        assert_eq!(DEFAULT_MAX_PAYLOAD_BYTES, 262_144);
    }
}

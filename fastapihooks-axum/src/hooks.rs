//! [`Hooks`]: the application's handle — makes hook layers, emits from code, shuts down.

use std::sync::Arc;
use std::time::Duration;

use fastapihooks_core::{
    Attempt, Backend, BackgroundConfig, Delivery, Emitter, EmitterBuilder, Error, Event, EventName,
    HttpConfig, PublisherBuilder, Result, RetryPolicy, Secret, ShutdownReport, Store, Subscription,
    signing::Signer,
};
use serde::Serialize;

use crate::layer::Hook;

/// Webhooks for an axum application. Cheap to clone; clones share everything.
///
/// ```no_run
/// use axum::{Json, Router, routing::post};
/// use fastapihooks_axum::Hooks;
/// use fastapihooks_core::{Secret, Subscription};
/// use serde_json::{Value, json};
///
/// async fn create_order() -> Json<Value> {
///     Json(json!({"id": 42}))
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let hooks = Hooks::builder()
///     .subscriber(Subscription::new("order.created", "https://example.com/hooks")?)
///     .secret(Secret::new("change-me")?)
///     .build()?;
///
/// let app = Router::new().route("/orders", post(create_order).layer(hooks.hook("order.created")?));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app).await?;
/// hooks.shutdown(std::time::Duration::from_secs(10)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Hooks {
    emitter: Emitter,
    on_publish_error: Option<OnPublishError>,
}

/// Called by a hooked route with an event it could not publish and why (see
/// [`HooksBuilder::on_publish_error`]).
pub(crate) type OnPublishError = Arc<dyn Fn(&Event, &Error) + Send + Sync>;

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("emitter", &self.emitter)
            .field("on_publish_error", &self.on_publish_error.is_some())
            .finish()
    }
}

impl From<Emitter> for Hooks {
    fn from(emitter: Emitter) -> Self {
        Self {
            emitter,
            on_publish_error: None,
        }
    }
}

impl Hooks {
    /// Starts configuring hooks that deliver in-process (the
    /// [`BackgroundTaskBackend`](fastapihooks_core::BackgroundTaskBackend)). Every setting has a working default but the
    /// signing secret: set one with [`secret`](HooksBuilder::secret), or ask for unsigned
    /// deliveries with [`unsigned`](HooksBuilder::unsigned).
    pub fn builder() -> HooksBuilder {
        HooksBuilder {
            emitter: Emitter::builder(),
            on_publish_error: None,
        }
    }

    /// Starts configuring hooks that only publish, into `backend`: a durable queue that the
    /// `fastapihooks start` sidecar drains (its flags hold the delivery settings), or a backend
    /// of one's own.
    ///
    /// ```no_run
    /// # #[cfg(feature = "sql")]
    /// # async fn run() -> Result<(), fastapihooks_core::Error> {
    /// use fastapihooks_axum::Hooks;
    /// use fastapihooks_core::{SqlBackend, SqlStore};
    ///
    /// let store = SqlStore::connect("sqlite://app.db?mode=rwc").await?;
    /// let hooks = Hooks::publisher(SqlBackend::for_store(&store)).store(store).build()?;
    /// # let _ = hooks; Ok(()) }
    /// ```
    pub fn publisher(backend: impl Backend) -> HooksPublisherBuilder {
        Self::shared_publisher(Arc::new(backend))
    }

    /// Like [`publisher`](Self::publisher), for a backend shared with other code (such as the
    /// outbox a [transactional hook](crate::Hook::in_transaction) writes through).
    pub fn shared_publisher(backend: Arc<dyn Backend>) -> HooksPublisherBuilder {
        HooksPublisherBuilder {
            publisher: Emitter::shared_publisher(backend),
            on_publish_error: None,
        }
    }

    /// A layer that emits `name` for each successful response of the routes it wraps.
    ///
    /// Fails (rather than panicking) on an invalid event name, so a typo is caught at startup
    /// with `?`.
    pub fn hook(&self, name: &str) -> Result<Hook> {
        Ok(Hook::new(
            EventName::new(name)?,
            self.emitter.clone(),
            self.on_publish_error.clone(),
        ))
    }

    /// Emits an event from code that is not a route (a job, a consumer, …). An error means the
    /// event was not accepted: the caller decides what to do with it.
    pub async fn emit(&self, name: &str, payload: &impl Serialize) -> Result<Event> {
        self.emitter.emit(name, payload).await
    }

    /// Emits an event owned by a tenant.
    pub async fn emit_owned(
        &self,
        name: &str,
        owner: &str,
        payload: &impl Serialize,
    ) -> Result<Event> {
        let event = Event::new(name, payload)?.with_owner(owner);
        self.emitter.publish(event.clone()).await?;
        Ok(event)
    }

    /// The underlying emitter.
    pub fn emitter(&self) -> &Emitter {
        &self.emitter
    }

    /// The store of subscriptions and delivery history.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.emitter.store()
    }

    /// Stops accepting events and drains in-flight deliveries within `deadline`. Call it after
    /// the server has stopped (e.g. after `axum::serve(..).with_graceful_shutdown(..)`).
    pub async fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport> {
        self.emitter.shutdown(deadline).await
    }
}

/// Configures [`Hooks`] that deliver in-process; each delivery method is the
/// [`EmitterBuilder`] method of the same name.
pub struct HooksBuilder {
    emitter: EmitterBuilder,
    on_publish_error: Option<OnPublishError>,
}

impl std::fmt::Debug for HooksBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HooksBuilder").finish_non_exhaustive()
    }
}

impl HooksBuilder {
    fn map(self, f: impl FnOnce(EmitterBuilder) -> EmitterBuilder) -> Self {
        Self {
            emitter: f(self.emitter),
            ..self
        }
    }

    /// Where subscriptions and delivery history live. Default: a memory store.
    pub fn store(self, store: impl Store) -> Self {
        self.map(|b| b.store(store))
    }

    /// A store shared with other code.
    pub fn shared_store(self, store: Arc<dyn Store>) -> Self {
        self.map(|b| b.shared_store(store))
    }

    /// A subscriber kept in code, like fastapihooks' `subscribers=`.
    pub fn subscriber(self, subscription: Subscription) -> Self {
        self.map(|b| b.subscriber(subscription))
    }

    /// The secret signing deliveries to subscriptions without their own.
    pub fn secret(self, secret: Secret) -> Self {
        self.map(|b| b.secret(secret))
    }

    /// Sends deliveries to subscriptions without a secret of their own unsigned. Without this
    /// or a [`secret`](Self::secret), [`build`](Self::build) fails with
    /// [`Error::NoSigningSecret`].
    pub fn unsigned(self) -> Self {
        self.map(EmitterBuilder::unsigned)
    }

    /// The signature scheme. Default: `sha256=` ([`fastapihooks_core::signing::Sha256Hex`]).
    pub fn signer(self, signer: impl Signer + 'static) -> Self {
        self.map(|b| b.signer(signer))
    }

    /// When failed deliveries are retried.
    pub fn retry(self, policy: RetryPolicy) -> Self {
        self.map(|b| b.retry(policy))
    }

    /// The HTTP client's limits.
    pub fn http(self, config: HttpConfig) -> Self {
        self.map(|b| b.http(config))
    }

    /// Limits of the in-process backend.
    pub fn background(self, config: BackgroundConfig) -> Self {
        self.map(|b| b.background(config))
    }

    /// Called with each dead letter and its last attempt.
    pub fn on_failure(self, f: impl Fn(&Delivery, &Attempt) + Send + Sync + 'static) -> Self {
        self.map(|b| b.on_failure(f))
    }

    /// The largest event payload (and captured body) in bytes. Default 256 KiB.
    pub fn max_payload_bytes(self, limit: usize) -> Self {
        self.map(|b| b.max_payload_bytes(limit))
    }

    /// Adds a `subscription` label to the delivery and attempt metrics. Off by default
    /// (cardinality): see [`EmitterBuilder::metrics_per_subscription`].
    pub fn metrics_per_subscription(self, on: bool) -> Self {
        self.map(|b| b.metrics_per_subscription(on))
    }

    /// Called by a hooked route with each event it could not publish (after brief retries),
    /// so the application can keep it itself. See [`Hook`] for what the client gets.
    pub fn on_publish_error(mut self, f: impl Fn(&Event, &Error) + Send + Sync + 'static) -> Self {
        self.on_publish_error = Some(Arc::new(f));
        self
    }

    /// Builds the hooks; the in-process backend starts on the current tokio runtime.
    ///
    /// Fails with [`Error::NoSigningSecret`] when neither a secret nor `unsigned` was set.
    pub fn build(self) -> Result<Hooks> {
        Ok(Hooks {
            emitter: self.emitter.build()?,
            on_publish_error: self.on_publish_error,
        })
    }
}

/// Configures [`Hooks`] that only publish (made by [`Hooks::publisher`]). Delivery settings
/// have no place here: they belong to what drains the backend (the sidecar's flags), so a
/// setting that would be ignored cannot even be written:
///
/// ```compile_fail
/// use fastapihooks_axum::Hooks;
/// use fastapihooks_core::{Backend, Secret};
/// fn hooks(queue: impl Backend) {
///     // error: no method named `secret` on `HooksPublisherBuilder`
///     let _ = Hooks::publisher(queue).secret(Secret::new("s").unwrap());
/// }
/// ```
pub struct HooksPublisherBuilder {
    publisher: PublisherBuilder,
    on_publish_error: Option<OnPublishError>,
}

impl std::fmt::Debug for HooksPublisherBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HooksPublisherBuilder")
            .finish_non_exhaustive()
    }
}

impl HooksPublisherBuilder {
    /// The store the subscriptions live in (the one the sidecar reads), for
    /// [`Hooks::store`]. Default: an empty memory store.
    pub fn store(mut self, store: impl Store) -> Self {
        self.publisher = self.publisher.store(store);
        self
    }

    /// A store shared with other code.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.publisher = self.publisher.shared_store(store);
        self
    }

    /// The largest event payload (and captured body) in bytes. Default 256 KiB.
    pub fn max_payload_bytes(mut self, limit: usize) -> Self {
        self.publisher = self.publisher.max_payload_bytes(limit);
        self
    }

    /// Called by a hooked route with each event it could not publish (after brief retries).
    pub fn on_publish_error(mut self, f: impl Fn(&Event, &Error) + Send + Sync + 'static) -> Self {
        self.on_publish_error = Some(Arc::new(f));
        self
    }

    /// Builds the hooks.
    pub fn build(self) -> Result<Hooks> {
        Ok(Hooks {
            emitter: self.publisher.build()?,
            on_publish_error: self.on_publish_error,
        })
    }
}

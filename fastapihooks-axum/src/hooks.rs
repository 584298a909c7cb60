//! [`Hooks`]: the application's handle — makes hook layers, emits from code, shuts down.

use std::time::Duration;

use fastapihooks_core::{
    Attempt, Backend, BackgroundConfig, Delivery, Emitter, EmitterBuilder, Event, EventName,
    HttpConfig, Result, RetryPolicy, Secret, ShutdownReport, Store, Subscription, signing::Signer,
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
#[derive(Clone, Debug)]
pub struct Hooks {
    emitter: Emitter,
}

impl From<Emitter> for Hooks {
    fn from(emitter: Emitter) -> Self {
        Self { emitter }
    }
}

impl Hooks {
    /// Starts configuring hooks. Every setting has a working default: a memory store, the
    /// in-process backend, `sha256=` signatures, the fastapihooks retry policy.
    pub fn builder() -> HooksBuilder {
        HooksBuilder(Emitter::builder())
    }

    /// A layer that emits `name` for each successful response of the routes it wraps.
    ///
    /// Fails (rather than panicking) on an invalid event name, so a typo is caught at startup
    /// with `?`.
    pub fn hook(&self, name: &str) -> Result<Hook> {
        Ok(Hook::new(EventName::new(name)?, self.emitter.clone()))
    }

    /// Emits an event from code that is not a route (a job, a consumer, …).
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
    pub fn store(&self) -> &std::sync::Arc<dyn Store> {
        self.emitter.store()
    }

    /// Stops accepting events and drains in-flight deliveries within `deadline`. Call it after
    /// the server has stopped (e.g. after `axum::serve(..).with_graceful_shutdown(..)`).
    pub async fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport> {
        self.emitter.shutdown(deadline).await
    }
}

/// Configures [`Hooks`]; each method is the [`EmitterBuilder`] method of the same name.
pub struct HooksBuilder(EmitterBuilder);

impl HooksBuilder {
    /// Where subscriptions and delivery history live. Default: a memory store.
    pub fn store(self, store: impl Store) -> Self {
        Self(self.0.store(store))
    }

    /// A store shared with other code.
    pub fn shared_store(self, store: std::sync::Arc<dyn Store>) -> Self {
        Self(self.0.shared_store(store))
    }

    /// A subscriber kept in code, like fastapihooks' `subscribers=`.
    pub fn subscriber(self, subscription: Subscription) -> Self {
        Self(self.0.subscriber(subscription))
    }

    /// The secret signing deliveries to subscriptions without their own.
    pub fn secret(self, secret: Secret) -> Self {
        Self(self.0.secret(secret))
    }

    /// The signature scheme. Default: `sha256=` ([`fastapihooks_core::signing::Sha256Hex`]).
    pub fn signer(self, signer: impl Signer + 'static) -> Self {
        Self(self.0.signer(signer))
    }

    /// When failed deliveries are retried.
    pub fn retry(self, policy: RetryPolicy) -> Self {
        Self(self.0.retry(policy))
    }

    /// The HTTP client's limits.
    pub fn http(self, config: HttpConfig) -> Self {
        Self(self.0.http(config))
    }

    /// Limits of the in-process backend.
    pub fn background(self, config: BackgroundConfig) -> Self {
        Self(self.0.background(config))
    }

    /// Publishes through this backend instead of delivering in-process.
    pub fn backend(self, backend: impl Backend) -> Self {
        Self(self.0.backend(backend))
    }

    /// Called with each dead letter and its last attempt.
    pub fn on_failure(self, f: impl Fn(&Delivery, &Attempt) + Send + Sync + 'static) -> Self {
        Self(self.0.on_failure(f))
    }

    /// The largest event payload (and captured body) in bytes. Default 256 KiB.
    pub fn max_payload_bytes(self, limit: usize) -> Self {
        Self(self.0.max_payload_bytes(limit))
    }

    /// Builds the hooks; the in-process backend starts on the current tokio runtime.
    pub fn build(self) -> Result<Hooks> {
        Ok(Hooks {
            emitter: self.0.build()?,
        })
    }
}

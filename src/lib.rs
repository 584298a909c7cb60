//! # fastapihooks
//!
//! Signed, retried, logged outbound webhooks for axum services. Annotate a route with
//! `hooks.hook("order.created")?` and every successful response becomes a signed delivery to
//! each subscriber of `order.created` — without slowing the response down.
//!
//! ```no_run
//! use axum::{Json, Router, routing::post};
//! use fastapihooks::prelude::*;
//! use serde_json::{Value, json};
//!
//! async fn create_order(Json(order): Json<Value>) -> Json<Value> {
//!     Json(json!({"id": 42, "order": order}))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let hooks = Hooks::builder()
//!     .subscriber(Subscription::new("order.created", "https://example.com/hooks")?)
//!     .secret(Secret::new("change-me")?)
//!     .build()?;
//! let app = Router::new().route("/orders", post(create_order).layer(hooks.hook("order.created")?));
//! axum::serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?, app).await?;
//! hooks.shutdown(std::time::Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```
//!
//! ## What is here
//!
//! - **Emitting**: [`Hooks`] (built with [`Hooks::builder`] to deliver in-process, or
//!   [`Hooks::publisher`] to publish into a durable queue that the `fastapihooks start` sidecar
//!   drains), the [`Hook`] layer, [`HookContext`] for `transform`/`when`, [`HookTransaction`]
//!   (feature `sql`) for routes whose event must exist if and only if their writes do.
//!   [`Emitter`] is the same without axum.
//! - **The model**: [`Event`], [`Subscription`] ([`EventFilter`], [`Auth`], [`Secret`]),
//!   [`Delivery`], [`Attempt`], their typed ids.
//! - **Settings**: [`RetryPolicy`], [`HttpConfig`] (timeouts, the SSRF guard),
//!   [`BackgroundConfig`].
//! - **Stores**: the [`Store`] trait, [`MemoryStore`], [`SqlStore`] (feature `sql`: SQLite by
//!   default, `postgres`, `mysql`).
//! - **Backends**: the [`Backend`] and [`Queue`] traits, [`BackgroundTaskBackend`],
//!   [`SqlBackend`] (the transactional outbox), [`RedisBackend`] (feature `redis`); [`queue`]
//!   has what a queue of one's own needs.
//! - [`signing`]: the signature schemes and the receiver-side [`signing::Verifier`].
//! - [`receive`] and [`inbox`]: receiving webhooks — [`receive::Verified`] checks a signature
//!   before parsing; [`receive::InboxRoute`] stores each webhook once and acknowledges at once;
//!   a [`Worker::for_inbox`](advanced::Worker::for_inbox) in the app processes it through a
//!   queue, re-dispatching it into the router ([`receive::Redispatch`]).
//! - [`admin`] (feature `admin`): the management API — a router of subscriptions, events,
//!   deliveries and replay with its OpenAPI document, to nest behind the application's auth.
//! - [`advanced`]: the delivery engine's parts, for a sidecar or a backend of one's own.

#[cfg(feature = "sql")]
pub use fastapihooks_axum::HookTransaction;
#[cfg(feature = "admin")]
pub use fastapihooks_axum::admin;
pub use fastapihooks_axum::{
    Hook, HookContext, HookService, Hooks, HooksBuilder, HooksPublisherBuilder, Problem,
};
pub use fastapihooks_core::metrics;
pub use fastapihooks_core::{
    AllowHint, Attempt, AttemptErrorKind, AttemptId, AttemptOutcome, Auth, Backend,
    BackgroundConfig, BackgroundTaskBackend, Delivery, DeliveryId, DeliveryQuery, DeliveryStatus,
    Emitter, EmitterBuilder, Error, Event, EventFilter, EventId, EventName, EventQuery, HttpConfig,
    InboxId, MemoryStore, PreviousSecret, Pruned, PublisherBuilder, Queue, Replay, ReplayOutcome,
    ReplaySummary, Result, RetryPolicy, Secret, ShutdownReport, Store, Subscription,
    SubscriptionId, SubscriptionQuery,
    health::{Disabled, EndpointHealth, HealthPolicy},
    prune_history,
    replay::Reopen,
};
#[cfg(feature = "sql")]
pub use fastapihooks_core::{OutboxTable, SqlBackend, SqlOutboxConfig, SqlStore, SqlStoreOptions};
#[cfg(feature = "redis")]
pub use fastapihooks_core::{RedisBackend, RedisConfig, RedisPersistence};

/// Signature schemes, and verifying a delivery on the receiving side.
pub mod signing {
    pub use fastapihooks_core::signing::{
        DEFAULT_TOLERANCE, Sha256Hex, SignInput, SignatureScheme, Signer, StandardWebhooks, Stripe,
        Verifier, VerifyError, sign_sha256_hex, verify_sha256_hex,
    };
}

/// Receiving webhooks: [`Verified<T>`](receive::Verified) checks the signature over the raw
/// body before anything is parsed; [`InboxRoute`](receive::InboxRoute) stores each webhook once
/// and acknowledges at once; [`Redispatch`](receive::Redispatch) processes it by re-entering the
/// application's router, behind [`Redispatched`](receive::Redispatched).
pub mod receive {
    pub use fastapihooks_axum::receive::{
        InboxRoute, Redispatch, Redispatched, Verified, VerifyLayer, VerifyRejection,
        VerifyService, WebhookVerifier,
    };
}

/// The inbox of received webhooks: stored once per (source, id), processed through a queue
/// with retries and dead letters, replayable. See [`receive`] for the axum side.
pub mod inbox {
    pub use fastapihooks_core::inbox::{
        Inbox, InboxEntry, InboxOutcome, InboxProcessing, InboxProcessor, InboxQuery, InboxReplay,
        InboxStatus, Intake, NewInboxEntry, OrderingKey, ProcessError, Received, key, replay_entry,
    };
}

/// Trace context: the W3C `traceparent` an event carries from the request that emitted it to
/// every attempt of its deliveries, the hook an OpenTelemetry bridge implements
/// ([`TraceContext`](trace::TraceContext), for `EmitterBuilder::trace_context`), and the names
/// of the spans made for every delivery.
pub mod trace {
    pub use fastapihooks_core::trace::{
        ATTEMPT_SPAN, FAN_OUT_SPAN, PER_DELIVERY_SPANS, TraceContext, TraceParent,
    };
}

/// What a [`Queue`] of one's own works with: the tasks it carries and the leases it hands out.
pub mod queue {
    pub use fastapihooks_core::backend::{
        DeliverTask, Leased, ProcessTask, Receipt, Replacement, Settlement, Task,
    };
}

/// The delivery engine's parts: the sidecar's [`Worker`](advanced::Worker) (most deployments
/// run it as `fastapihooks start`), one HTTP attempt ([`Dispatcher`](advanced::Dispatcher)), the
/// SSRF guard's policy. Not needed to emit or to run the sidecar.
pub mod advanced {
    pub use fastapihooks_core::dispatch::{AddressPolicy, Dispatcher};
    pub use fastapihooks_core::engine::{Attempted, DeliveryEngine, NextStep};
    pub use fastapihooks_core::fanout::fan_out;
    pub use fastapihooks_core::worker::{
        CancellationToken, Worker, WorkerConfig, WorkerReport, WorkerStatus,
    };
}

/// The names most applications need.
pub mod prelude {
    pub use fastapihooks_axum::{HookContext, Hooks};
    pub use fastapihooks_core::{
        Auth, BackgroundConfig, DeliveryStatus, Error, Event, HttpConfig, MemoryStore, RetryPolicy,
        Secret, Store, Subscription,
    };
}

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
//! This crate re-exports [`fastapihooks_core`] (model, signing, retry, stores, backends) and
//! [`fastapihooks_axum`] (the layer).

pub use fastapihooks_axum::{Hook, HookContext, HookService, Hooks, HooksBuilder};
pub use fastapihooks_core::*;

/// The names most applications need.
pub mod prelude {
    pub use fastapihooks_axum::{HookContext, Hooks};
    pub use fastapihooks_core::{
        Auth, BackgroundConfig, DeliveryStatus, Error, Event, HttpConfig, MemoryStore, RetryPolicy,
        Secret, Store, Subscription,
    };
}

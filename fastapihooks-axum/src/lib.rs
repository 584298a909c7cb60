//! # fastapihooks-axum
//!
//! Webhooks for axum routes: `post(handler).layer(hooks.hook("order.created")?)` turns each
//! successful response into a signed, retried delivery to every subscriber of `order.created`.
//!
//! - [`Hooks`]: the application's handle (builder, `hook`, `emit`, `shutdown`).
//! - [`Hook`] / [`HookService`]: the tower layer and its service.
//! - [`HookContext`]: what `transform` and `when` closures see.
//!
//! - [`HookTransaction`] (feature `sql`): the transaction a route runs in when its event must
//!   exist if and only if its writes do.
//!
//! Errors are [`fastapihooks_core::Error`]; what the layer answers itself is a [`Problem`]
//! (`application/problem+json`).
#![warn(missing_docs)]

#[cfg(feature = "admin")]
pub mod admin;
mod capture;
mod context;
mod event;
mod hooks;
mod layer;
mod problem;
mod publish;
pub mod receive;
#[cfg(feature = "sql")]
mod transaction;

pub use context::HookContext;
pub use hooks::{Hooks, HooksBuilder, HooksPublisherBuilder};
pub use layer::{Hook, HookService};
pub use problem::Problem;
#[cfg(feature = "sql")]
pub use transaction::HookTransaction;

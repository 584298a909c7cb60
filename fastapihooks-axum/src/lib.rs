//! # fastapihooks-axum
//!
//! Webhooks for axum routes: `post(handler).layer(hooks.hook("order.created")?)` turns each
//! successful response into a signed, retried delivery to every subscriber of `order.created`.
//!
//! - [`Hooks`]: the application's handle (builder, `hook`, `emit`, `shutdown`).
//! - [`Hook`] / [`HookService`]: the tower layer and its service.
//! - [`HookContext`]: what `transform` and `when` closures see.
//!
//! Errors are [`fastapihooks_core::Error`]: this crate adds no failure of its own.
#![warn(missing_docs)]

mod capture;
mod context;
mod hooks;
mod layer;

pub use context::HookContext;
pub use hooks::{Hooks, HooksBuilder};
pub use layer::{Hook, HookService};

//! The management API (feature `admin`): subscriptions, events, deliveries and replay as a JSON
//! API the application nests under its own path, behind its own authentication — with its
//! OpenAPI 3.1 document at `/openapi.json`, and a web console at `/console/`.
//!
//! ```no_run
//! use axum::Router;
//! use fastapihooks_axum::Hooks;
//! use fastapihooks_axum::admin::AdminApi;
//! # fn app(hooks: &Hooks) {
//! #[derive(Clone)]
//! struct Tenant(String); // put into the request by the application's auth layer
//!
//! let admin = AdminApi::for_hooks(hooks)
//!     .owner_from(|req| req.extensions.get::<Tenant>().map(|t| t.0.clone()))
//!     .router();
//! let app: Router = Router::new().nest("/webhooks", admin); // .layer(your_auth_layer)
//! # }
//! ```
//!
//! - **Tenancy.** With [`owner_from`](AdminApi::owner_from) every query and change is scoped
//!   to the owner it resolves from the request: another owner's objects answer `404`, exactly
//!   as ids that do not exist (nothing leaks), and a request without an owner is refused with
//!   `401`. Without a resolver the API sees every owner: mount it for operators only.
//! - **Errors** are `application/problem+json` with a stable `code` ([`Problem`](crate::Problem)).
//! - **Secrets are write-only**: shown once, in the answer that created or rotated them.
//! - **Lists** are newest first (subscriptions: oldest first) and page by cursor: pass the
//!   `next` of a page as `before` (`after` for subscriptions); the filters are the CLI's.

mod console;
mod extract;
mod handlers;
mod openapi;
mod page;
mod problems;
mod scope;
mod views;

use std::sync::Arc;

use fastapihooks_core::{Backend, Store};
use http::request::Parts;

pub use openapi::openapi;
pub use page::Page;
pub use views::{
    AttemptView, CreatedSubscription, DeliveryView, EventView, NewSubscription, ReplayRequest,
    ReplayResult, ReplaySummaryView, RotateSecret, SubscriptionPatch, SubscriptionView,
    TestDelivery,
};

/// Resolves the owner (tenant) a request acts for, from what the application's auth layer left
/// in it (an extension, a header it checked): `None` refuses the request.
pub type OwnerResolver = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// The management API's settings; [`router`](Self::router) builds the axum `Router`.
#[derive(Clone)]
pub struct AdminApi {
    store: Arc<dyn Store>,
    backend: Arc<dyn Backend>,
    owner: Option<OwnerResolver>,
}

impl std::fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminApi")
            .field("tenancy", &self.owner.is_some())
            .finish_non_exhaustive()
    }
}

impl AdminApi {
    /// The API over `store` (subscriptions and history), replaying and sending test events
    /// through `backend` (the one the application publishes through, or the sidecar drains).
    pub fn new(store: Arc<dyn Store>, backend: Arc<dyn Backend>) -> Self {
        Self {
            store,
            backend,
            owner: None,
        }
    }

    /// The API over what `hooks` delivers with: its store, and its backend for replays and
    /// test events.
    pub fn for_hooks(hooks: &crate::Hooks) -> Self {
        Self::new(
            Arc::clone(hooks.store()),
            Arc::clone(hooks.emitter().backend()),
        )
    }

    /// Scopes every request to the owner `resolve` finds in it; a request it finds none in is
    /// refused (`401`, code `owner_required`).
    pub fn owner_from(
        mut self,
        resolve: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.owner = Some(Arc::new(resolve));
        self
    }

    /// The router: nest it under a path of the application's (`Router::nest`), behind its
    /// authentication.
    ///
    /// It serves the web console too, at `console/` under the same path: a page of its own
    /// over this API, embedded in the binary.
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> axum::Router<S> {
        let (router, _) = openapi::routes().split_for_parts();
        router
            .with_state(AdminState(Arc::new(self)))
            .merge(console::routes())
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AdminState(Arc<AdminApi>);

impl std::ops::Deref for AdminState {
    type Target = AdminApi;
    fn deref(&self) -> &AdminApi {
        &self.0
    }
}

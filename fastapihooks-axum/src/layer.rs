//! [`Hook`] (a `tower::Layer`) and [`HookService`]: turn a route's successful response into an
//! event.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fastapihooks_core::{Emitter, EventName};
use http::request::Parts;
use http::{Request, StatusCode};
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::capture::capture;
use crate::context::HookContext;
use crate::event::{Built, SeenRequest, build_event, skipped};
use crate::hooks::OnPublishError;
use crate::problem::Problem;
use crate::publish::publish;

type Transform = Arc<dyn Fn(&HookContext) -> Result<Vec<u8>, serde_json::Error> + Send + Sync>;
type Predicate = Arc<dyn Fn(&HookContext) -> bool + Send + Sync>;
type OwnerResolver = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;
type StatusFilter = Arc<dyn Fn(StatusCode) -> bool + Send + Sync>;

/// Makes a route "webhook-enabled": each response that passes the status filter (2xx by
/// default) becomes an event `name`, published through the [`Hooks`](crate::Hooks) it came from.
///
/// Made by [`Hooks::hook`](crate::Hooks::hook). Usable on a handler
/// (`post(handler).layer(hook)`), with `Router::route_layer`, or on a whole `Router`.
///
/// The event payload is, by default, the response body (which must be JSON). With
/// `include_request` or `include_headers` it is an object with the included parts:
/// `{"response": …, "request": …, "headers": {…}}`. A `transform` replaces all of that with
/// whatever it returns.
///
/// The client receives the handler's response unchanged: status, headers and body bytes.
/// Publishing waits only for the backend to accept the event, never for its delivery. A
/// publish that fails is tried again briefly (within the request, a few tries); if it still
/// fails, the loss is surfaced — the `fastapihooks_publish_failed_total` metric, an error log
/// with the event's id, name and size, and the `on_publish_error` callback of [`Hooks`](crate::Hooks)
/// through which the application can keep the event — and the client still gets its response,
/// because the handler's work has happened and a retry would repeat it.
/// [`require_publish`](Hook::require_publish) answers 503 instead, for idempotent clients;
/// [`in_transaction`](Hook::in_transaction) makes the event and the handler's writes one
/// transaction (recommended for events that must not be lost).
///
/// ```
/// use axum::{Json, Router, routing::post};
/// use fastapihooks_axum::Hooks;
/// use serde_json::{Value, json};
///
/// async fn create_order(Json(order): Json<Value>) -> Json<Value> {
///     Json(json!({"id": 1, "order": order}))
/// }
///
/// # async fn run() -> Result<(), fastapihooks_core::Error> {
/// let hooks = Hooks::builder().build()?;
/// let app: Router = Router::new().route(
///     "/orders",
///     post(create_order).layer(
///         hooks
///             .hook("order.created")?
///             .include_request()
///             .owner(|req| req.headers.get("x-tenant")?.to_str().ok().map(str::to_owned))
///             .when(|ctx| ctx.status == 201 || ctx.status == 200),
///     ),
/// );
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Hook {
    pub(crate) name: EventName,
    pub(crate) emitter: Emitter,
    pub(crate) on_publish_error: Option<OnPublishError>,
    pub(crate) include_headers: bool,
    pub(crate) include_request: bool,
    pub(crate) include_response: bool,
    pub(crate) transform: Option<Transform>,
    pub(crate) when: Option<Predicate>,
    pub(crate) owner: Option<OwnerResolver>,
    status: Option<StatusFilter>,
    require_publish: bool,
    #[cfg(feature = "sql")]
    outbox: Option<Arc<fastapihooks_core::SqlBackend>>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("name", &self.name)
            .field("include_headers", &self.include_headers)
            .field("include_request", &self.include_request)
            .field("include_response", &self.include_response)
            .field("transform", &self.transform.is_some())
            .field("when", &self.when.is_some())
            .field("owner", &self.owner.is_some())
            .field("require_publish", &self.require_publish)
            .finish_non_exhaustive()
    }
}

impl Hook {
    pub(crate) fn new(
        name: EventName,
        emitter: Emitter,
        on_publish_error: Option<OnPublishError>,
    ) -> Self {
        Self {
            name,
            emitter,
            on_publish_error,
            require_publish: false,
            #[cfg(feature = "sql")]
            outbox: None,
            include_headers: false,
            include_request: false,
            include_response: true,
            transform: None,
            when: None,
            owner: None,
            status: None,
        }
    }

    /// Adds the request headers to the event (credentials such as `Authorization` and
    /// `Cookie` are redacted).
    pub fn include_headers(mut self) -> Self {
        self.include_headers = true;
        self
    }

    /// Adds the request body to the event. The body is buffered once (up to the payload cap)
    /// and handed to the handler unchanged, so extractors such as `Json<T>` still work.
    pub fn include_request(mut self) -> Self {
        self.include_request = true;
        self
    }

    /// Whether the response body goes into the event (default: yes).
    pub fn include_response(mut self, include: bool) -> Self {
        self.include_response = include;
        self
    }

    /// Builds the payload from the context instead: return any `Serialize`. It also lets a
    /// non-JSON response be emitted (see [`HookContext::response_bytes`]).
    pub fn transform<T, F>(mut self, f: F) -> Self
    where
        T: Serialize,
        F: Fn(&HookContext) -> T + Send + Sync + 'static,
    {
        self.transform = Some(Arc::new(move |ctx| serde_json::to_vec(&f(ctx))));
        self
    }

    /// Emits only when `f` returns true.
    pub fn when(mut self, f: impl Fn(&HookContext) -> bool + Send + Sync + 'static) -> Self {
        self.when = Some(Arc::new(f));
        self
    }

    /// Finds the owner (tenant) of the event from the request (a header, an extension set by
    /// an auth layer, …). Owned events go only to that owner's subscriptions and global ones.
    pub fn owner(mut self, f: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static) -> Self {
        self.owner = Some(Arc::new(f));
        self
    }

    /// Which response statuses emit (default: 2xx).
    pub fn on_status(mut self, f: impl Fn(StatusCode) -> bool + Send + Sync + 'static) -> Self {
        self.status = Some(Arc::new(f));
        self
    }

    /// Answers `503 Service Unavailable` (`application/problem+json`, code
    /// `event_not_published`) instead of the handler's response when the event could not be
    /// published. Only for clients that retry **idempotently**: the handler's work has already
    /// happened, so a retry repeats it. Without it (the default) the client gets the handler's
    /// response and the loss is surfaced to the application (metric, error log,
    /// `on_publish_error`). For events that must not be lost, prefer
    /// [`in_transaction`](Self::in_transaction).
    pub fn require_publish(mut self) -> Self {
        self.require_publish = true;
        self
    }

    /// Runs the route in a transaction of `outbox`'s database, handed to the handler as a
    /// [`HookTransaction`](crate::HookTransaction) extractor. The layer writes the event into the
    /// outbox **in that transaction** and commits only if the response passes the status filter
    /// (2xx by default) and the event was written: the event exists if and only if the
    /// handler's writes do. On any other outcome nothing commits; when the outbox write or the
    /// commit fails, the client gets a `503` (`application/problem+json`), safe to retry since
    /// nothing happened.
    #[cfg(feature = "sql")]
    pub fn in_transaction(mut self, outbox: &Arc<fastapihooks_core::SqlBackend>) -> Self {
        self.outbox = Some(outbox.clone());
        self
    }

    pub(crate) fn emits_for(&self, status: StatusCode) -> bool {
        match &self.status {
            Some(f) => f(status),
            None => status.is_success(),
        }
    }

    pub(crate) fn needs_context_values(&self) -> bool {
        self.transform.is_some() || self.when.is_some() || self.envelope()
    }

    pub(crate) fn envelope(&self) -> bool {
        self.include_request || self.include_headers
    }
}

impl<S> Layer<S> for Hook {
    type Service = HookService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HookService {
            inner,
            hook: Arc::new(self.clone()),
        }
    }
}

/// The service [`Hook`] wraps a route in.
#[derive(Clone, Debug)]
pub struct HookService<S> {
    inner: S,
    hook: Arc<Hook>,
}

impl<S> Service<Request<Body>> for HookService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was polled ready handles this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let hook = self.hook.clone();
        Box::pin(async move {
            #[cfg_attr(not(feature = "sql"), allow(unused_mut))]
            let (mut parts, body) = request.into_parts();
            let seen = SeenRequest::new(&hook, &parts);
            let (body, request_bytes) = if hook.include_request {
                let c = capture(body, hook.emitter.max_payload_bytes()).await;
                if let Some(skip) = c.skipped {
                    skipped(&hook.name, "request", skip);
                }
                (c.body, c.bytes)
            } else {
                (body, None)
            };
            #[cfg(feature = "sql")]
            if let Some(outbox) = &hook.outbox {
                let txn = match crate::transaction::begin(outbox, &mut parts).await {
                    Ok(txn) => txn,
                    Err(refused) => return Ok(refused),
                };
                let response = inner.call(Request::from_parts(parts, body)).await?;
                let build_event_of =
                    async |response| build(&hook, seen, request_bytes, response).await;
                return Ok(crate::transaction::finish(
                    &hook,
                    outbox,
                    txn,
                    response,
                    build_event_of,
                )
                .await);
            }
            let response = inner.call(Request::from_parts(parts, body)).await?;
            if !hook.emits_for(response.status()) {
                return Ok(response);
            }
            let (built, response) = build(&hook, seen, request_bytes, response).await;
            if let Built::Event(event) = built
                && !publish(&hook, event).await
                && hook.require_publish
            {
                return Ok(Problem::event_not_published(true).into_response());
            }
            Ok(response)
        })
    }
}

/// Captures the response body and builds the event; the response is handed back unchanged.
async fn build(
    hook: &Hook,
    seen: SeenRequest,
    request_bytes: Option<Bytes>,
    response: Response,
) -> (Built, Response) {
    let (parts, body) = response.into_parts();
    let c = capture(body, hook.emitter.max_payload_bytes()).await;
    if let Some(skip) = c.skipped {
        skipped(&hook.name, "response", skip);
    }
    let built = build_event(hook, seen, parts.status, request_bytes, c.bytes);
    (built, Response::from_parts(parts, c.body))
}

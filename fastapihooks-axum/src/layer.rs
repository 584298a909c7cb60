//! [`Hook`] (a `tower::Layer`) and [`HookService`]: turn a route's successful response into an
//! event.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use chrono::Utc;
use fastapihooks_core::{Emitter, Event, EventName};
use http::request::Parts;
use http::{Request, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};
use tower_layer::Layer;
use tower_service::Service;

use crate::capture::{Skip, capture};
use crate::context::{HookContext, headers_json};

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
/// The client always receives the handler's response unchanged: status, headers and body bytes.
/// Publishing waits only for the backend to accept the event, never for its delivery; a failure
/// to publish is logged and counted, and does not change the response.
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
    name: EventName,
    emitter: Emitter,
    include_headers: bool,
    include_request: bool,
    include_response: bool,
    transform: Option<Transform>,
    when: Option<Predicate>,
    owner: Option<OwnerResolver>,
    status: Option<StatusFilter>,
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
            .finish()
    }
}

impl Hook {
    pub(crate) fn new(name: EventName, emitter: Emitter) -> Self {
        Self {
            name,
            emitter,
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

    fn emits_for(&self, status: StatusCode) -> bool {
        match &self.status {
            Some(f) => f(status),
            None => status.is_success(),
        }
    }

    fn needs_context_values(&self) -> bool {
        self.transform.is_some() || self.when.is_some() || self.envelope()
    }

    fn envelope(&self) -> bool {
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
            let (parts, body) = request.into_parts();
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
            let response = inner.call(Request::from_parts(parts, body)).await?;
            if !hook.emits_for(response.status()) {
                return Ok(response);
            }
            let (res_parts, res_body) = response.into_parts();
            let c = capture(res_body, hook.emitter.max_payload_bytes()).await;
            if let Some(skip) = c.skipped {
                skipped(&hook.name, "response", skip);
            }
            emit(&hook, seen, res_parts.status, request_bytes, c.bytes).await;
            Ok(Response::from_parts(res_parts, c.body))
        })
    }
}

/// What the hook keeps of the request before the handler consumes it.
struct SeenRequest {
    owner: Option<String>,
    method: http::Method,
    uri: http::Uri,
    headers: Option<Map<String, Value>>,
}

impl SeenRequest {
    fn new(hook: &Hook, parts: &Parts) -> Self {
        Self {
            owner: hook.owner.as_ref().and_then(|f| f(parts)),
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: hook.include_headers.then(|| headers_json(&parts.headers)),
        }
    }
}

fn skipped(name: &EventName, part: &'static str, skip: Skip) {
    metrics::counter!("fastapihooks_hook_capture_skipped_total", "part" => part, "reason" => skip.as_str())
        .increment(1);
    tracing::warn!(event = %name, part, reason = skip.as_str(), "body not captured for the event");
}

async fn emit(
    hook: &Hook,
    seen: SeenRequest,
    status: StatusCode,
    request_bytes: Option<Bytes>,
    response_bytes: Option<Bytes>,
) {
    let payload = if hook.needs_context_values() {
        let ctx = HookContext {
            event_name: hook.name.clone(),
            owner: seen.owner.clone(),
            method: seen.method,
            uri: seen.uri,
            status,
            headers: seen.headers,
            request: request_bytes
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok()),
            request_bytes,
            response: response_bytes
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok()),
            response_bytes,
            timestamp: Utc::now(),
        };
        if hook.when.as_ref().is_some_and(|when| !when(&ctx)) {
            return;
        }
        payload_from_context(hook, &ctx)
    } else {
        // The plain case: the response bytes are the payload, validated, never re-encoded.
        response_bytes.ok_or("the response body was not captured")
    };
    let event = match payload.map(|bytes| Event::from_json_bytes(&hook.name, bytes)) {
        Ok(Ok(event)) => event,
        Ok(Err(e)) => return not_emitted(hook, "not_json", &e.to_string()),
        Err(reason) => return not_emitted(hook, "no_payload", reason),
    };
    let event = match seen.owner {
        Some(owner) => event.with_owner(owner),
        None => event,
    };
    if let Err(e) = hook.emitter.publish(event).await {
        metrics::counter!("fastapihooks_emit_failed_total").increment(1);
        tracing::error!(event = %hook.name, error = %e, "event not published");
    }
}

fn payload_from_context(hook: &Hook, ctx: &HookContext) -> Result<Bytes, &'static str> {
    if let Some(transform) = &hook.transform {
        return transform(ctx)
            .map(Bytes::from)
            .map_err(|_| "the transform's value could not be serialized");
    }
    if !hook.envelope() {
        return ctx
            .response_bytes
            .clone()
            .ok_or("the response body was not captured");
    }
    let mut envelope = Map::new();
    if hook.include_response {
        let response = ctx
            .response
            .clone()
            .ok_or("the response body is not JSON")?;
        envelope.insert("response".into(), response);
    }
    if hook.include_request {
        envelope.insert("request".into(), ctx.request.clone().unwrap_or(Value::Null));
    }
    if let Some(headers) = &ctx.headers {
        envelope.insert("headers".into(), Value::Object(headers.clone()));
    }
    serde_json::to_vec(&envelope)
        .map(Bytes::from)
        .map_err(|_| "the event could not be serialized")
}

fn not_emitted(hook: &Hook, reason: &'static str, detail: &str) {
    metrics::counter!("fastapihooks_hook_not_emitted_total", "reason" => reason).increment(1);
    tracing::warn!(event = %hook.name, reason, detail, "response not emitted as an event (add a transform to emit it)");
}

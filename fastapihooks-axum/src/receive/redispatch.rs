//! [`Redispatch`]: processing a received webhook by re-entering the application's router with a
//! fresh internal request — normal routing, extractors, state and middleware — and
//! [`Redispatched`], the extractor that both gives that route the entry's metadata and refuses
//! any request that did not come this way.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use fastapihooks_core::InboxId;
use fastapihooks_core::inbox::{InboxEntry, InboxProcessor, ProcessError};
use http::request::Parts;
use http::{Extensions, HeaderValue, StatusCode, header};
use tower_service::Service;

use crate::problem::Problem;

/// Adds what the internal routes need to each re-dispatched request.
type Extend = dyn Fn(&mut Extensions) + Send + Sync;

/// An [`InboxProcessor`] that sends each entry into `router` as a fresh `POST` to the internal
/// route of its source (`tower::ServiceExt::oneshot` on a clone of the router: its own task,
/// nothing shared with the request that delivered the webhook). The body is the webhook's raw
/// body, with its content type; the route takes it with `Json<T>` as usual and the entry's
/// metadata with [`Redispatched`]. A 2xx answer is success; anything else is a failed attempt
/// (its `Retry-After` honoured), retried under the inbox's retry policy, and logged with the
/// inbox id and the route.
///
/// ```
/// use axum::{Json, Router, routing::post};
/// use fastapihooks_axum::receive::{Redispatch, Redispatched};
///
/// async fn process_push(hook: Redispatched, Json(push): Json<serde_json::Value>) -> &'static str {
///     tracing::info!(inbox = %hook.inbox_id, "push to {}", push["ref"]);
///     "done"
/// }
///
/// let app: Router = Router::new().route("/internal/github/process", post(process_push));
/// let processor = Redispatch::new(app.clone()).route("github", "/internal/github/process");
/// # let _ = processor;
/// ```
#[derive(Clone)]
pub struct Redispatch {
    router: Router,
    routes: HashMap<String, String>,
    extend: Vec<Arc<Extend>>,
}

impl fmt::Debug for Redispatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redispatch")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl Redispatch {
    /// Re-dispatches into `router` (with its state applied: a `Router<()>`).
    pub fn new(router: Router) -> Self {
        Self {
            router,
            routes: HashMap::new(),
            extend: Vec::new(),
        }
    }

    /// Entries of `source` are processed by a `POST` to `path`.
    pub fn route(mut self, source: impl Into<String>, path: impl Into<String>) -> Self {
        self.routes.insert(source.into(), path.into());
        self
    }

    /// Adds `value` as a request extension to every re-dispatched request (for an
    /// `Extension<T>` the internal routes take).
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extend
            .push(Arc::new(move |extensions: &mut Extensions| {
                extensions.insert(value.clone());
            }));
        self
    }

    fn request(&self, path: &str, entry: &InboxEntry) -> Result<Request, ProcessError> {
        let content_type = entry
            .header(header::CONTENT_TYPE.as_str())
            .and_then(|v| HeaderValue::from_str(v).ok())
            .unwrap_or(HeaderValue::from_static("application/json"));
        let mut request = Request::post(path)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(entry.body.clone()))
            .map_err(|e| ProcessError::new(format!("cannot re-dispatch to {path}: {e}")))?;
        let extensions = request.extensions_mut();
        for extend in &self.extend {
            extend(extensions);
        }
        extensions.insert(Redispatched::of(entry));
        Ok(request)
    }
}

#[async_trait]
impl InboxProcessor for Redispatch {
    async fn process(&self, entry: &InboxEntry) -> Result<(), ProcessError> {
        let Some(path) = self.routes.get(&entry.source) else {
            return Err(ProcessError::new(format!(
                "no internal route for source `{}`: add one with Redispatch::route",
                entry.source
            )));
        };
        let request = self.request(path, entry)?;
        let mut router = self.router.clone();
        let response = match router.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(fastapihooks_core::retry::parse_retry_after);
        let body = axum::body::to_bytes(response.into_body(), 512)
            .await
            .unwrap_or_default();
        let excerpt = String::from_utf8_lossy(&body);
        let mut failure =
            ProcessError::new(format!("POST {path} answered {status}: {}", excerpt.trim()));
        failure.retry_after = retry_after;
        Err(failure)
    }
}

/// The entry a re-dispatched request processes — and the guard of an internal route: a request
/// that did not come from [`Redispatch`] (one from the network, which cannot carry this
/// extension) is refused with 404, as if the route were not there.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redispatched {
    /// The inbox's id of the webhook.
    pub inbox_id: InboxId,
    /// Who sent it.
    pub source: String,
    /// The sender's id of it.
    pub external_id: String,
    /// This attempt's number (1 for the first), over every run.
    pub attempt: u32,
    /// Its place among the events about the same object, if the provider gave one.
    pub ordering: Option<fastapihooks_core::inbox::OrderingKey>,
}

impl Redispatched {
    fn of(entry: &InboxEntry) -> Self {
        Self {
            inbox_id: entry.id.clone(),
            source: entry.source.clone(),
            external_id: entry.external_id.clone(),
            attempt: entry.attempts,
            ordering: entry.ordering.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Redispatched {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Redispatched>().cloned().ok_or_else(|| {
            tracing::warn!(uri = %parts.uri, "an internal webhook route was called from outside; refused as not found");
            Problem::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "Not found",
                "no such route",
            )
            .into_response()
        })
    }
}

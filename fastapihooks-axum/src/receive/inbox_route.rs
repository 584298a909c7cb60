//! [`InboxRoute`]: the public route of a webhook sender — verify, store once, queue the
//! processing, acknowledge. The route stays thin: processing happens later, in the application's
//! own route, re-dispatched by [`Redispatch`](super::Redispatch).

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use fastapihooks_core::backend::Queue;
use fastapihooks_core::inbox::key::InboxKey;
use fastapihooks_core::inbox::{Inbox, NewInboxEntry, OrderingKey, Received};
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderName, StatusCode, header};
use tower_service::Service;

use super::verify::{WebhookVerifier, read_and_verify};
use crate::problem::Problem;

/// Where an event stands among the events about the same object, read from a verified request.
type OrderingOf = dyn Fn(&HeaderMap, &[u8]) -> Option<OrderingKey> + Send + Sync;

/// The public endpoint of one webhook sender (one *source*): a `tower::Service` to mount with
/// `post_service`.
///
/// For each request: the signature is verified over the raw body ([`WebhookVerifier`]; 401,
/// 413 as [`Verified<T>`](super::Verified) answers), the sender's id of the webhook is taken
/// ([`InboxKey`]; 400 when there is none), the webhook is stored in the [`Inbox`] — once per
/// (source, id): a redelivered copy is acknowledged and not processed again — and its processing
/// is queued on the inbox's [`Queue`] (drained by the application's
/// [`Worker::for_inbox`](fastapihooks_core::Worker::for_inbox)). Then `200 OK`, empty. An inbox
/// that cannot store answers 503, so the sender retries; a queue that fails after the entry is
/// stored is logged and the worker's sweep of stranded entries queues it.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, routing::post_service};
/// use fastapihooks_axum::receive::{InboxRoute, WebhookVerifier};
/// use fastapihooks_core::inbox::key;
/// use fastapihooks_core::signing::{Sha256Hex, Verifier};
/// use fastapihooks_core::{MemoryStore, Secret};
///
/// # fn app(queue: Arc<dyn fastapihooks_core::Queue>) -> Result<Router, fastapihooks_core::Error> {
/// let inbox = Arc::new(MemoryStore::new());
/// let github = Verifier::with_signer(Arc::new(Sha256Hex::new().signature_header("X-Hub-Signature-256")?))
///     .secret(Secret::new("It's a Secret to Everybody")?);
/// let route = InboxRoute::new("github", WebhookVerifier::new(github), key::github(), inbox, queue);
/// Ok(Router::new().route("/webhooks/github", post_service(route)))
/// # }
/// ```
#[derive(Clone)]
pub struct InboxRoute {
    source: Arc<str>,
    verifier: WebhookVerifier,
    key: Arc<dyn InboxKey>,
    inbox: Arc<dyn Inbox>,
    queue: Arc<dyn Queue>,
    keep: Option<Arc<[HeaderName]>>,
    ordering: Option<Arc<OrderingOf>>,
}

impl fmt::Debug for InboxRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxRoute")
            .field("source", &self.source)
            .field("verifier", &self.verifier)
            .field("key", &self.key)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

/// Headers never stored: credentials and hop-by-hop headers.
const NEVER_KEPT: [HeaderName; 6] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::CONTENT_LENGTH,
];

impl InboxRoute {
    /// The endpoint of `source`: verified with `verifier`, keyed by `key`, stored in `inbox`,
    /// its processing queued on `queue`. Every header is kept but credentials and hop-by-hop
    /// ones ([`keep_headers`](Self::keep_headers) chooses).
    pub fn new(
        source: impl Into<String>,
        verifier: WebhookVerifier,
        key: impl InboxKey,
        inbox: Arc<dyn Inbox>,
        queue: Arc<dyn Queue>,
    ) -> Self {
        Self {
            source: Arc::from(source.into()),
            verifier,
            key: Arc::new(key),
            inbox,
            queue,
            keep: None,
            ordering: None,
        }
    }

    /// Keeps only these headers with each entry (names are matched without regard to case).
    pub fn keep_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.keep = Some(names.into_iter().collect());
        self
    }

    /// Reads each webhook's place among the events about the same object (for providers that
    /// give an object id and a timestamp or sequence), so its processing can ask
    /// [`Inbox::newer_processed`].
    pub fn ordering(
        mut self,
        ordering: impl Fn(&HeaderMap, &[u8]) -> Option<OrderingKey> + Send + Sync + 'static,
    ) -> Self {
        self.ordering = Some(Arc::new(ordering));
        self
    }

    fn kept(&self, headers: &HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .filter(|(name, _)| match &self.keep {
                Some(keep) => keep.contains(name),
                None => !NEVER_KEPT.contains(name),
            })
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect()
    }

    async fn receive(self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = match read_and_verify(&self.verifier, &parts, body).await {
            Ok(body) => body,
            Err(rejection) => return rejection.into_response(),
        };
        let Some(external_id) = self.key.external_id(&parts.headers, &body) else {
            tracing::warn!(source = %self.source, key = ?self.key, "webhook refused: a verified request without the id the inbox is keyed on");
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "missing_webhook_id",
                "Missing webhook id",
                "the request carries no webhook id",
            )
            .into_response();
        };
        let entry = NewInboxEntry {
            source: self.source.to_string(),
            external_id,
            headers: self.kept(&parts.headers),
            ordering: self
                .ordering
                .as_ref()
                .and_then(|f| f(&parts.headers, &body)),
            body,
        };
        let intake = match self.inbox.receive_and_queue(entry, &*self.queue).await {
            Ok(intake) => intake,
            Err(e) => {
                tracing::error!(source = %self.source, error = %e, "webhook not stored: the inbox is unreachable; answered 503 so the sender retries");
                return Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "inbox_unavailable",
                    "Try again later",
                    "the webhook could not be stored; send it again later",
                )
                .into_response();
            }
        };
        match intake.received {
            Received::New(entry) => {
                match intake.not_queued {
                    None => {
                        tracing::debug!(inbox = %entry.id, source = %entry.source, external_id = %entry.external_id, "webhook received")
                    }
                    Some(e) => {
                        tracing::error!(inbox = %entry.id, source = %entry.source, error = %e, "webhook stored but its processing not queued; the inbox worker's sweep of stranded entries queues it")
                    }
                }
                metrics::counter!(fastapihooks_core::metrics::INBOX_RECEIVED_TOTAL, "source" => self.source.to_string()).increment(1);
            }
            Received::Duplicate(entry) => {
                tracing::info!(inbox = %entry.id, source = %entry.source, external_id = %entry.external_id, status = %entry.status, "duplicate webhook acknowledged, not processed again");
                metrics::counter!(fastapihooks_core::metrics::INBOX_DUPLICATES_TOTAL, "source" => self.source.to_string()).increment(1);
            }
        }
        StatusCode::OK.into_response()
    }
}

impl Service<Request> for InboxRoute {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = self.clone();
        Box::pin(async move { Ok(route.receive(request).await) })
    }
}

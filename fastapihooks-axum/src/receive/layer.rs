//! [`VerifyLayer`]: every request of a router verified before it reaches a route — for a router
//! that only receives webhooks from one sender.

use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use tower_layer::Layer;
use tower_service::Service;

use super::verify::{VerifiedRequest, WebhookVerifier, read_and_verify};

/// Verifies the signature of every request over its raw body before the router sees it; a
/// request that does not verify is answered (401, 413 or 400, as [`Verified<T>`](super::Verified)
/// would) and never reaches a handler. Handlers then take `Verified<T>` (no second check),
/// `Json<T>`, `Bytes`, or anything else that reads the body.
///
/// ```
/// use axum::{Json, Router, routing::post};
/// use fastapihooks_axum::receive::{VerifyLayer, WebhookVerifier};
/// use fastapihooks_core::{Secret, signing::{SignatureScheme, Verifier}};
///
/// async fn order(Json(order): Json<serde_json::Value>) { let _ = order; }
/// async fn invoice(Json(invoice): Json<serde_json::Value>) { let _ = invoice; }
///
/// let verifier = Verifier::new(SignatureScheme::StandardWebhooks).secret(Secret::new("whsec_c2VjcmV0")?);
/// let partner: Router = Router::new()
///     .route("/orders", post(order))
///     .route("/invoices", post(invoice))
///     .layer(VerifyLayer::new(WebhookVerifier::new(verifier)));
/// # Ok::<(), fastapihooks_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct VerifyLayer {
    webhook: WebhookVerifier,
}

impl VerifyLayer {
    /// Verifies every request with `webhook`.
    pub fn new(webhook: WebhookVerifier) -> Self {
        Self { webhook }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            webhook: self.webhook.clone(),
        }
    }
}

/// The service of [`VerifyLayer`].
#[derive(Clone, Debug)]
pub struct VerifyService<S> {
    inner: S,
    webhook: WebhookVerifier,
}

impl<S> Service<Request> for VerifyService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was made ready is the one called (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let webhook = self.webhook.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let body = match read_and_verify(&webhook, &parts, body).await {
                Ok(body) => body,
                Err(rejection) => return Ok(rejection.into_response()),
            };
            parts.extensions.insert(VerifiedRequest);
            inner
                .call(Request::from_parts(parts, Body::from(body)))
                .await
        })
    }
}

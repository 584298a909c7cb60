//! [`Verified<T>`]: an extractor that checks a webhook's signature over the **raw** body, then
//! parses it — nothing is parsed from a request that is not signed.

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use fastapihooks_core::signing::Verifier;
use http::StatusCode;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// What [`Verified<T>`] checks with: a [`Verifier`] (its scheme, candidate secrets and timestamp
/// tolerance) and the largest body it reads. Put it on the route (or router) as an extension.
///
/// ```
/// use axum::{Extension, Router, routing::post};
/// use fastapihooks_axum::receive::{Verified, WebhookVerifier};
/// use fastapihooks_core::Secret;
/// use fastapihooks_core::signing::{Sha256Hex, Verifier};
/// use std::sync::Arc;
///
/// async fn github(Verified(push): Verified<serde_json::Value>) -> &'static str {
///     // Only a request signed with the secret gets here.
///     let _ = push["ref"].as_str();
///     "ok"
/// }
///
/// let github_signature = Sha256Hex::new().signature_header("X-Hub-Signature-256")?;
/// let verifier = Verifier::with_signer(Arc::new(github_signature)).secret(Secret::new("It's a Secret to Everybody")?);
/// let app: Router = Router::new()
///     .route("/webhooks/github", post(github))
///     .layer(Extension(WebhookVerifier::new(verifier)));
/// # Ok::<(), fastapihooks_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct WebhookVerifier {
    verifier: Arc<Verifier>,
    limit: usize,
}

impl WebhookVerifier {
    /// The largest body read by default: 1 MiB.
    pub const DEFAULT_LIMIT: usize = 1 << 20;

    /// Verifies with `verifier`, reading bodies of at most [`DEFAULT_LIMIT`](Self::DEFAULT_LIMIT).
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier: Arc::new(verifier),
            limit: Self::DEFAULT_LIMIT,
        }
    }

    /// Refuses bodies over `bytes` with 413, without reading further.
    pub fn limit(mut self, bytes: usize) -> Self {
        self.limit = bytes;
        self
    }
}

/// A webhook whose signature was verified over its raw body, parsed as JSON into `T`.
///
/// Rejections say as little as they can ([`VerifyRejection`]): 401 for a missing, malformed or
/// wrong signature or a stale timestamp (the reason is logged, not answered), 413 over the
/// body limit, 400 for a signed body that is not the JSON `T` expects, 500 when the route has no
/// [`WebhookVerifier`] (nor a [`VerifyLayer`](super::VerifyLayer) in front of it).
#[derive(Clone, Debug)]
pub struct Verified<T>(pub T);

/// Why [`Verified<T>`] refused a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum VerifyRejection {
    /// The signature is missing, malformed or wrong, or its timestamp out of tolerance: 401.
    Unauthorized,
    /// The body is over the [`WebhookVerifier`]'s limit: 413.
    TooLarge,
    /// The body is signed but is not the JSON expected: 400.
    Malformed,
    /// No [`WebhookVerifier`] extension on the route: 500 (a mistake in the application).
    NoVerifier,
}

impl IntoResponse for VerifyRejection {
    fn into_response(self) -> Response {
        match self {
            VerifyRejection::Unauthorized => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "Invalid signature",
                "the request's signature could not be verified",
            ),
            VerifyRejection::TooLarge => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
                "the body is over this endpoint's limit",
            ),
            VerifyRejection::Malformed => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_payload",
                "Malformed payload",
                "the body is not the JSON this endpoint expects",
            ),
            VerifyRejection::NoVerifier => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no_webhook_verifier",
                "Webhook verifier missing",
                "this route has no webhook verifier configured",
            ),
        }
        .into_response()
    }
}

/// Marks a request whose signature [`VerifyLayer`](super::VerifyLayer) verified.
#[derive(Clone, Copy, Debug)]
pub(super) struct VerifiedRequest;

impl<S, T> FromRequest<S> for Verified<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = VerifyRejection;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let body = if parts.extensions.get::<VerifiedRequest>().is_some() {
            // Verified by the layer already: the body is in memory, within its limit.
            axum::body::to_bytes(body, usize::MAX)
                .await
                .map_err(|_| VerifyRejection::Malformed)?
        } else {
            let Some(webhook) = parts.extensions.get::<WebhookVerifier>().cloned() else {
                tracing::error!(uri = %parts.uri, "Verified<T> on a route without a WebhookVerifier extension or a VerifyLayer");
                return Err(VerifyRejection::NoVerifier);
            };
            read_and_verify(&webhook, &parts, body).await?
        };
        serde_json::from_slice(&body).map(Verified).map_err(|e| {
            tracing::warn!(uri = %parts.uri, error = %e, "webhook refused: a signed body that is not the JSON expected");
            VerifyRejection::Malformed
        })
    }
}

/// Reads `body` within the verifier's limit and verifies it with the request's headers.
pub(super) async fn read_and_verify(
    webhook: &WebhookVerifier,
    parts: &http::request::Parts,
    body: axum::body::Body,
) -> Result<bytes::Bytes, VerifyRejection> {
    let body = axum::body::to_bytes(body, webhook.limit)
        .await
        .map_err(|e| {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over {
                VerifyRejection::TooLarge
            } else {
                tracing::warn!(error = %e, "webhook refused: its body could not be read");
                VerifyRejection::Malformed
            }
        })?;
    if let Err(e) = webhook.verifier.verify(&parts.headers, &body) {
        tracing::warn!(uri = %parts.uri, error = %e, "webhook refused: its signature did not verify");
        return Err(VerifyRejection::Unauthorized);
    }
    Ok(body)
}

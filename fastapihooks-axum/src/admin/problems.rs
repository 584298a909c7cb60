//! The management API's problems: its stable codes, and the core's errors as problems.

use fastapihooks_core::Error;
use http::StatusCode;

use crate::Problem;

/// 404 `not_found`: no `kind` with this id — or one of another owner, which is not told apart.
pub(crate) fn not_found(kind: &str, id: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "Not found",
        format!("no {kind} {id}"),
    )
}

/// 400 `invalid_request`: the request is malformed; `detail` says what to change.
pub(crate) fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Invalid request",
        detail,
    )
}

/// The problem a core error answers: what the client sent is wrong (400, its message says
/// what), a conflict (409), or the store or queue failed (503, no internals).
pub(crate) fn from_core(error: Error) -> Problem {
    match &error {
        Error::InvalidUrl { .. }
        | Error::InvalidEventName { .. }
        | Error::InvalidEventFilter { .. }
        | Error::InvalidId { .. }
        | Error::InvalidSecret { .. }
        | Error::InvalidHeader { .. }
        | Error::UnknownSignatureScheme { .. }
        | Error::InvalidRetryPolicy { .. }
        | Error::InvalidConfig { .. }
        | Error::InvalidPayload(_)
        | Error::TooLong { .. }
        | Error::HttpsRequired { .. }
        | Error::BlockedAddress { .. } => invalid(error.to_string()),
        Error::SubscriptionNotFound { id } => not_found("subscription", &id.to_string()),
        Error::DeliveryNotFound { id } => not_found("delivery", &id.to_string()),
        Error::SubscriptionExists { .. } => Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Conflict",
            error.to_string(),
        ),
        Error::ReplayUnsupported { .. } | Error::Unsupported { .. } => Problem::new(
            StatusCode::NOT_IMPLEMENTED,
            "unsupported",
            "Not supported here",
            error.to_string(),
        ),
        _ => {
            tracing::error!(error = %error, "management API: the store or the queue failed");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "the store or the queue could not be reached; try again",
            )
        }
    }
}

impl From<Error> for Problem {
    fn from(error: Error) -> Self {
        from_core(error)
    }
}

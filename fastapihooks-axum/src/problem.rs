//! [`Problem`]: an `application/problem+json` (RFC 9457) response with a stable, machine-readable
//! code, for what the hook layer itself answers.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// An error answered as `application/problem+json`.
///
/// `code` is stable (clients may match on it); `title` is for a human; `detail` says what
/// happened without revealing internals.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "admin", derive(utoipa::ToSchema))]
pub struct Problem {
    #[serde(skip)]
    status: StatusCode,
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    #[serde(rename = "status")]
    status_code: u16,
    code: &'static str,
    detail: String,
}

impl Problem {
    /// A problem with this HTTP status, stable `code` and human `title` and `detail`.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind: format!("https://docs.rs/fastapihooks/latest/fastapihooks/problems#{code}"),
            title,
            status_code: status.as_u16(),
            code,
            detail: detail.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// 503 `event_not_published`: the event could not be published and nothing was committed
    /// (or, with [`Hook::require_publish`](crate::Hook::require_publish), the work happened but
    /// its event was lost): retrying is how the client finds out.
    pub(crate) fn event_not_published(committed: bool) -> Self {
        let detail = if committed {
            "the request was processed but its event could not be published"
        } else {
            "the event could not be published; nothing was committed, so the request can be retried"
        };
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "event_not_published",
            "Event not published",
            detail,
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_problem_is_problem_json_with_its_code_and_status() {
        let response = Problem::event_not_published(false).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["code"], "event_not_published");
        assert_eq!(json["status"], 503);
        assert!(
            json["detail"]
                .as_str()
                .unwrap()
                .contains("nothing was committed")
        );
    }
}

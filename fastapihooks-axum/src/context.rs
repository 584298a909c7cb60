//! [`HookContext`]: what a hooked request produced, for `transform` and `when`.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use fastapihooks_core::EventName;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Map, Value};

/// Everything a hook knows about one request and its response.
///
/// `transform` and `when` closures receive it. Parts that were not asked for (see the
/// `include_*` options of [`Hook`](crate::Hook)) are `None`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HookContext {
    /// The event this hook emits.
    pub event_name: EventName,
    /// The owner (tenant) the `owner` resolver found, if any.
    pub owner: Option<String>,
    /// The request method.
    pub method: Method,
    /// The request URI.
    pub uri: Uri,
    /// The response status.
    pub status: StatusCode,
    /// The request headers (with `include_headers`), credentials redacted.
    pub headers: Option<Map<String, Value>>,
    /// The request body as JSON (with `include_request`, when it is JSON within the cap).
    pub request: Option<Value>,
    /// The request body bytes (with `include_request`, within the cap).
    pub request_bytes: Option<Bytes>,
    /// The response body as JSON (when it is JSON within the cap).
    pub response: Option<Value>,
    /// The response body bytes (within the cap), JSON or not.
    pub response_bytes: Option<Bytes>,
    /// When the response was produced.
    pub timestamp: DateTime<Utc>,
}

/// Header names whose values never leave the service in an event.
pub(crate) const REDACTED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// Request headers as a JSON object; repeated headers joined with `, `; credentials redacted.
pub(crate) fn headers_json(headers: &HeaderMap) -> Map<String, Value> {
    let mut map = Map::new();
    for name in headers.keys() {
        let value = if REDACTED_HEADERS.contains(&name.as_str()) {
            "[redacted]".to_owned()
        } else {
            headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        map.insert(name.as_str().to_owned(), Value::String(value));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_and_repeats_joined() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer secret".parse().unwrap());
        h.append("x-tag", "a".parse().unwrap());
        h.append("x-tag", "b".parse().unwrap());
        let json = headers_json(&h);
        assert_eq!(json["authorization"], "[redacted]");
        assert_eq!(json["x-tag"], "a, b");
    }
}

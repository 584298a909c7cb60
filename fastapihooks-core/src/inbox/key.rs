//! [`InboxKey`]: where a received webhook's id comes from — the key that makes a redelivered
//! webhook a duplicate.

use std::fmt;

use http::{HeaderMap, HeaderName};

/// Takes a received webhook's id (unique per source) from its headers or body.
///
/// Built in: [`header`] (any header), [`standard_webhooks`] (`webhook-id`), [`github`]
/// (`X-GitHub-Delivery`), [`json_field`] (a top-level field of a JSON body), [`stripe`] (the
/// body's `id`). Implement it for anything else.
///
/// ```
/// use fastapihooks_core::inbox::key::{self, InboxKey};
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse().unwrap());
/// assert_eq!(
///     key::github().external_id(&headers, b"{}").as_deref(),
///     Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
/// );
/// assert_eq!(key::stripe().external_id(&headers, br#"{"id":"evt_1"}"#).as_deref(), Some("evt_1"));
/// ```
pub trait InboxKey: fmt::Debug + Send + Sync + 'static {
    /// The webhook's id, or `None` when the request carries none (it is then refused).
    fn external_id(&self, headers: &HeaderMap, body: &[u8]) -> Option<String>;
}

/// The value of one header.
#[derive(Clone, Debug)]
pub struct HeaderKey(HeaderName);

impl InboxKey for HeaderKey {
    fn external_id(&self, headers: &HeaderMap, _body: &[u8]) -> Option<String> {
        let value = headers.get(&self.0)?.to_str().ok()?.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }
}

/// A top-level field of a JSON body (a string or an integer).
#[derive(Clone, Debug)]
pub struct JsonFieldKey(String);

impl InboxKey for JsonFieldKey {
    fn external_id(&self, _headers: &HeaderMap, body: &[u8]) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Fields(serde_json::Map<String, serde_json::Value>);
        let Fields(fields) = serde_json::from_slice(body).ok()?;
        match fields.get(&self.0)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// The id in header `name`.
pub fn header(name: HeaderName) -> HeaderKey {
    HeaderKey(name)
}

/// Standard Webhooks (and this crate's own deliveries): the `webhook-id` header.
pub fn standard_webhooks() -> HeaderKey {
    HeaderKey(HeaderName::from_static("webhook-id"))
}

/// GitHub: the `X-GitHub-Delivery` header.
pub fn github() -> HeaderKey {
    HeaderKey(HeaderName::from_static("x-github-delivery"))
}

/// The top-level field `name` of a JSON body.
pub fn json_field(name: impl Into<String>) -> JsonFieldKey {
    JsonFieldKey(name.into())
}

/// Stripe: the event's `id` in the body (`evt_…`).
pub fn stripe() -> JsonFieldKey {
    json_field("id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_key_is_none() {
        let mut headers = HeaderMap::new();
        assert_eq!(standard_webhooks().external_id(&headers, b""), None);
        headers.insert("webhook-id", " ".parse().unwrap());
        assert_eq!(standard_webhooks().external_id(&headers, b""), None);
        assert_eq!(stripe().external_id(&headers, b"not json"), None);
        assert_eq!(stripe().external_id(&headers, br#"{"id":""}"#), None);
        assert_eq!(stripe().external_id(&headers, br#"{"id":{"x":1}}"#), None);
    }

    #[test]
    fn a_numeric_json_id_is_taken_as_its_digits() {
        let key = json_field("delivery");
        assert_eq!(
            key.external_id(&HeaderMap::new(), br#"{"delivery":42}"#)
                .as_deref(),
            Some("42")
        );
    }
}

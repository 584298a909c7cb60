//! [`Subscription`]: who wants which events, where, and how to authenticate to them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{EventName, validate_segments};
use crate::health::{Disabled, EndpointHealth};
use crate::id::SubscriptionId;
use crate::retry::RetryPolicy;
use crate::rotation::PreviousSecret;
use crate::secret::Secret;
use crate::signing::SignatureScheme;
pub use crate::webhook_url::{MAX_URL_LEN, WebhookUrl};

/// Which event names a subscription receives: an exact name, every name under a prefix
/// (`order.*` matches `order.created` and `order.line.added`, not `order`), or all (`*`).
///
/// ```
/// use fastapihooks_core::{EventFilter, EventName};
/// let f: EventFilter = "order.*".parse().unwrap();
/// assert!(f.matches(&EventName::new("order.created").unwrap()));
/// assert!(!f.matches(&EventName::new("invoice.paid").unwrap()));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum EventFilter {
    /// Exactly this name.
    Exact(EventName),
    /// Every name under this prefix (`order.*`).
    Prefix(EventPrefix),
    /// Every event of the application (not the operational `fastapihooks.*` ones).
    All,
}

impl EventFilter {
    /// Whether an event of this name passes the filter.
    pub fn matches(&self, name: &EventName) -> bool {
        match self {
            EventFilter::Exact(n) => n == name,
            EventFilter::Prefix(p) => name.as_str().starts_with(p.as_str()),
            // Operational events go only to whoever asked for them by name.
            EventFilter::All => !name.is_operational(),
        }
    }
}

impl FromStr for EventFilter {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidEventFilter {
            filter: s.to_owned(),
            reason,
        };
        if s == "*" {
            return Ok(EventFilter::All);
        }
        if let Some(prefix) = s.strip_suffix(".*") {
            validate_segments(prefix).map_err(invalid)?;
            return Ok(EventFilter::Prefix(EventPrefix(format!("{prefix}."))));
        }
        if s.contains('*') {
            return Err(invalid(
                "`*` is only allowed alone or as a last segment (`order.*`)",
            ));
        }
        EventName::new(s)
            .map(EventFilter::Exact)
            .map_err(|_| invalid("expected an event name, `prefix.*` or `*`"))
    }
}

/// The prefix of an `order.*` filter: valid event-name segments followed by a dot (`order.`).
/// Made only by parsing a filter, so it is always valid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventPrefix(String);

impl EventPrefix {
    /// The prefix, dot included (`order.`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for EventFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventFilter::Exact(n) => f.write_str(n.as_str()),
            EventFilter::Prefix(p) => write!(f, "{p}*"),
            EventFilter::All => f.write_str("*"),
        }
    }
}

impl fmt::Debug for EventFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl Serialize for EventFilter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventFilter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How deliveries authenticate to the subscriber, besides the signature.
///
/// A custom header is validated wherever it comes from, [`Auth::header`] or deserialization.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "AuthRepr")]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: Secret,
    },
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// A custom header, such as `X-Api-Key: <value>`, made by [`Auth::header`].
    Header(HeaderAuth),
}

/// A custom header credential, validated when made by [`Auth::header`]: a valid header name
/// that does not override a header the delivery engine sets, and a value without control
/// characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeaderAuth {
    name: String,
    value: Secret,
}

impl HeaderAuth {
    /// The header name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header value.
    pub fn value(&self) -> &Secret {
        &self.value
    }
}

/// [`Auth`] as read, before its custom header is validated.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AuthRepr {
    None,
    Bearer { token: Secret },
    Basic { username: String, password: Secret },
    Header { name: String, value: Secret },
}

impl TryFrom<AuthRepr> for Auth {
    type Error = Error;
    fn try_from(repr: AuthRepr) -> Result<Self> {
        Ok(match repr {
            AuthRepr::None => Auth::None,
            AuthRepr::Bearer { token } => Auth::Bearer { token },
            AuthRepr::Basic { username, password } => Auth::Basic { username, password },
            AuthRepr::Header { name, value } => Auth::header(name, value)?,
        })
    }
}

impl Auth {
    /// A custom header credential; the name is checked to be a valid header name that does not
    /// override the headers the delivery engine sets.
    pub fn header(name: impl Into<String>, value: Secret) -> Result<Self> {
        let name = name.into();
        validate_custom_header(&name, value.expose())?;
        Ok(Auth::Header(HeaderAuth { name, value }))
    }
}

/// Headers a subscription may not set itself: the engine owns them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "content-encoding",
    "host",
    "user-agent",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

pub(crate) fn validate_custom_header(name: &str, value: &str) -> Result<()> {
    let invalid = |reason| Error::InvalidHeader {
        name: name.to_owned(),
        reason,
    };
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| invalid("not a valid HTTP header name"))?;
    let lower = name.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str())
        || lower.starts_with("x-fastapihooks-")
        || lower.starts_with("webhook-")
    {
        return Err(invalid(
            "this header is set by the delivery engine and cannot be overridden",
        ));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(invalid("the value contains CR, LF or NUL"));
    }
    if http::HeaderValue::from_str(value).is_err() {
        return Err(invalid("the value contains a control character"));
    }
    Ok(())
}

/// A subscriber: which events it wants, where they go, and how they are authenticated.
///
/// A subscription with an `owner` receives only that owner's events; one without receives every
/// event that passes its filter (an operator-wide subscription).
///
/// ```
/// use fastapihooks_core::{Subscription, Secret};
/// let sub = Subscription::new("order.*", "https://example.com/hooks")
///     .unwrap()
///     .with_secret(Secret::new("s3cret").unwrap())
///     .with_owner("tenant-1");
/// assert_eq!(sub.filter.to_string(), "order.*");
/// assert!(Subscription::new("order.created", "ftp://example.com").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// `sub_…`.
    pub id: SubscriptionId,
    /// Which events it receives.
    pub filter: EventFilter,
    /// Where deliveries are POSTed: a [`WebhookUrl`], validated when it was made.
    pub url: WebhookUrl,
    /// Credentials sent with each delivery.
    #[serde(default)]
    pub auth: Auth,
    /// Its own signing secret; without one, the `Hooks` secret signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Secrets replaced by [`rotate_secret`](Self::rotate_secret) that keep signing until they
    /// expire, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_secrets: Vec<PreviousSecret>,
    /// Its own signature scheme; without one, the emitter's signer signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_scheme: Option<SignatureScheme>,
    /// Its own retry policy; without one, the emitter's (or the sidecar's) applies. Boxed: the
    /// in-process backend holds a copy of the subscription per pending delivery, and most have
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Box<RetryPolicy>>,
    /// The owner (tenant) it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Free JSON for the application (a description, a customer id, ...).
    #[serde(default)]
    pub metadata: serde_json::Value,
    /// Disabled subscriptions receive nothing (a 410 Gone disables one, and so does a failure
    /// streak the [`HealthPolicy`](crate::health::HealthPolicy) finds too long).
    pub enabled: bool,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Why and when it was disabled, when the engine disabled it. Boxed: most have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<Box<Disabled>>,
    /// Its failure streak. Written by the engine after attempts, never by
    /// [`Store::update_subscription`](crate::Store::update_subscription).
    #[serde(default, skip_serializing_if = "EndpointHealth::is_healthy")]
    pub health: EndpointHealth,
}

impl Subscription {
    /// A new, enabled subscription of `filter` (a name, `prefix.*` or `*`) to `url`.
    pub fn new(filter: &str, url: &str) -> Result<Self> {
        Ok(Self {
            id: SubscriptionId::new(),
            filter: filter.parse()?,
            url: WebhookUrl::parse(url)?,
            auth: Auth::None,
            secret: None,
            previous_secrets: Vec::new(),
            signature_scheme: None,
            retry: None,
            owner: None,
            metadata: serde_json::Value::Null,
            enabled: true,
            created_at: Utc::now(),
            disabled: None,
            health: EndpointHealth::default(),
        })
    }

    /// Signs this subscription's deliveries with its own secret.
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Signs this subscription's deliveries with `scheme` instead of the emitter's signer.
    pub fn with_signature_scheme(mut self, scheme: SignatureScheme) -> Self {
        self.signature_scheme = Some(scheme);
        self
    }

    /// Retries this subscription's deliveries on `policy` instead of the default one (e.g. a
    /// receiver known to be down for maintenance windows gets a longer schedule).
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(Box::new(policy));
        self
    }

    /// The retry policy of this subscription's deliveries: its own, else `default`.
    pub fn retry_policy<'a>(&'a self, default: &'a RetryPolicy) -> &'a RetryPolicy {
        self.retry.as_deref().unwrap_or(default)
    }

    /// Sends these credentials with each delivery.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Scopes the subscription to an owner (tenant).
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Attaches application metadata.
    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// Whether an event of this name and owner goes to this subscription (enabled, filter,
    /// owner). The single definition every store's `matching` must agree with.
    pub fn receives(&self, name: &EventName, owner: Option<&str>) -> bool {
        self.enabled
            && self.filter.matches(name)
            && match &self.owner {
                None => true,
                Some(mine) => owner == Some(mine.as_str()),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> EventName {
        EventName::new(s).unwrap()
    }

    #[test]
    fn filters_parse_and_print_back() {
        for f in ["order.created", "order.*", "*", "a.b.*"] {
            assert_eq!(f.parse::<EventFilter>().unwrap().to_string(), f);
        }
        for bad in ["", "order*", "*.created", "order.*.x", ".*", "a b"] {
            assert!(bad.parse::<EventFilter>().is_err(), "{bad}");
        }
    }

    #[test]
    fn prefix_filters_match_whole_segments_only() {
        let f: EventFilter = "order.*".parse().unwrap();
        assert!(f.matches(&name("order.created")));
        assert!(f.matches(&name("order.line.added")));
        assert!(!f.matches(&name("order")));
        assert!(!f.matches(&name("orders.created")));
    }

    #[test]
    fn a_url_error_names_the_input() {
        let err = Subscription::new("a", "ftp://x.example").unwrap_err();
        assert!(err.to_string().contains("ftp://x.example"), "{err}");
    }

    #[test]
    fn owned_subscriptions_receive_only_their_owners_events() {
        let global = Subscription::new("*", "http://h.example").unwrap();
        let owned = global.clone().with_owner("a");
        assert!(global.receives(&name("x"), Some("b")));
        assert!(global.receives(&name("x"), None));
        assert!(owned.receives(&name("x"), Some("a")));
        assert!(!owned.receives(&name("x"), Some("b")));
        assert!(!owned.receives(&name("x"), None));
    }

    #[test]
    fn disabled_subscriptions_receive_nothing() {
        let mut s = Subscription::new("*", "http://h.example").unwrap();
        s.enabled = false;
        assert!(!s.receives(&name("x"), None));
    }

    #[test]
    fn custom_auth_headers_cannot_override_engine_headers_or_smuggle_lines() {
        let v = Secret::new("v").unwrap();
        assert!(Auth::header("X-Api-Key", v.clone()).is_ok());
        assert!(Auth::header("Content-Type", v.clone()).is_err());
        assert!(Auth::header("X-Fastapihooks-Signature", v.clone()).is_err());
        assert!(Auth::header("bad header", v).is_err());
    }

    #[test]
    fn custom_header_values_with_line_breaks_are_refused() {
        for value in ["a\r\nX-Injected: 1", "a\nb", "a\rb"] {
            // `Secret` itself refuses control characters; the header check is the second line.
            assert!(
                validate_custom_header("X-Api-Key", value).is_err(),
                "{value:?}"
            );
        }
        assert!(validate_custom_header("X-Api-Key", "a\u{7f}b").is_err());
    }

    #[test]
    fn hop_by_hop_and_framing_headers_are_reserved() {
        let v = Secret::new("v").unwrap();
        for name in [
            "Content-Length",
            "Transfer-Encoding",
            "Host",
            "Connection",
            "Upgrade",
            "Content-Encoding",
            "webhook-signature",
            "Webhook-Id",
            "X-Fastapihooks-Id",
        ] {
            assert!(Auth::header(name, v.clone()).is_err(), "{name}");
        }
    }

    #[test]
    fn a_stored_custom_header_is_validated_when_read() {
        let json = r#"{"type":"header","name":"Content-Type","value":"text/plain"}"#;
        let err = serde_json::from_str::<Auth>(json).unwrap_err();
        assert!(err.to_string().contains("Content-Type"), "{err}");
        let ok = r#"{"type":"header","name":"X-Api-Key","value":"k"}"#;
        assert!(serde_json::from_str::<Auth>(ok).is_ok());
    }

    #[test]
    fn subscriptions_round_trip_through_json() {
        let s = Subscription::new("order.*", "https://example.com/h")
            .unwrap()
            .with_auth(Auth::Bearer {
                token: Secret::new("t").unwrap(),
            })
            .with_owner("o");
        let back: Subscription = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}

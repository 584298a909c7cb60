//! [`Event`] and [`EventName`]: one thing that happened, serialized once.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::id::EventId;
use crate::trace::TraceParent;

/// The name of an event, such as `order.created`.
///
/// 1 to 128 characters of `A-Z a-z 0-9 _ - :` in dot-separated, non-empty segments. `*` is
/// reserved for subscription filters.
///
/// ```
/// use fastapihooks_core::EventName;
/// assert!(EventName::new("order.created").is_ok());
/// assert!(EventName::new("order..created").is_err());
/// assert!(EventName::new("order.*").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventName(Arc<str>);

impl EventName {
    /// The longest accepted name, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Validates and wraps an event name.
    pub fn new(name: impl AsRef<str>) -> Result<Self> {
        let name = name.as_ref();
        validate_segments(name).map_err(|reason| Error::InvalidEventName {
            name: name.to_owned(),
            reason,
        })?;
        Ok(Self(name.into()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name is in the reserved `fastapihooks.` namespace of
    /// [operational events](crate::ops_events): only a subscription that names them (exactly,
    /// or with a `fastapihooks.…*` filter) receives them — `*` does not.
    pub fn is_operational(&self) -> bool {
        self.0.starts_with(crate::ops_events::NAMESPACE)
    }
}

/// Checks the dot-separated segment grammar shared by names and filter prefixes.
pub(crate) fn validate_segments(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > EventName::MAX_LEN {
        return Err("it is longer than 128 bytes");
    }
    if name.split('.').any(str::is_empty) {
        return Err("it has an empty segment (leading, trailing or double dot)");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
    {
        return Err("only ASCII letters, digits and . _ - : are allowed");
    }
    Ok(())
}

impl AsRef<str> for EventName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for EventName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<&str> for EventName {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for EventName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for EventName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        EventName::new(&*s).map_err(serde::de::Error::custom)
    }
}

/// One thing that happened: its id, name, owner (tenant) and JSON payload.
///
/// The payload is serialized **once**, when the event is made; fan-out to a thousand
/// subscriptions shares the same bytes. Cloning an `Event` is cheap.
///
/// ```
/// use fastapihooks_core::Event;
/// let event = Event::new("order.created", &serde_json::json!({"id": 42})).unwrap();
/// assert_eq!(event.name().as_str(), "order.created");
/// assert_eq!(&event.payload()[..], br#"{"id":42}"#);
/// ```
#[derive(Clone, Debug)]
pub struct Event {
    id: EventId,
    name: EventName,
    owner: Option<Arc<str>>,
    payload: Bytes,
    created_at: DateTime<Utc>,
    trace: Option<TraceParent>,
}

/// Events are equal when they are the same event with the same content; the trace context
/// they travel with is not part of it (a store does not keep it).
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.name == other.name
            && self.owner == other.owner
            && self.payload == other.payload
            && self.created_at == other.created_at
    }
}

impl Event {
    /// An event whose payload is `payload` serialized to JSON.
    pub fn new(name: impl AsRef<str>, payload: &impl Serialize) -> Result<Self> {
        let name = EventName::new(name)?;
        let bytes = serde_json::to_vec(payload).map_err(Error::InvalidPayload)?;
        Ok(Self::from_parts(name, Bytes::from(bytes)))
    }

    /// An event whose payload is already-serialized JSON. The bytes are checked to be one JSON
    /// value (without building it) and then sent as they are.
    pub fn from_json_bytes(name: impl AsRef<str>, json: impl Into<Bytes>) -> Result<Self> {
        let name = EventName::new(name)?;
        let json = json.into();
        serde_json::from_slice::<serde::de::IgnoredAny>(&json).map_err(Error::InvalidPayload)?;
        Ok(Self::from_parts(name, json))
    }

    fn from_parts(name: EventName, payload: Bytes) -> Self {
        Self {
            id: EventId::new(),
            name,
            owner: None,
            payload,
            created_at: Utc::now(),
            trace: None,
        }
    }

    /// Rebuilds an event read back from a store or queue, keeping its id and time (for
    /// `Store` and `Queue` implementations; applications make events with [`Event::new`]).
    #[doc(hidden)]
    pub fn restore(
        id: EventId,
        name: EventName,
        owner: Option<String>,
        payload: Bytes,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            name,
            owner: owner.map(Into::into),
            payload,
            created_at,
            trace: None,
        }
    }

    /// Scopes the event to an owner (tenant): only that owner's subscriptions and the global
    /// ones receive it.
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into().into());
        self
    }

    /// The event's id (`evt_…`).
    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// The event's name.
    pub fn name(&self) -> &EventName {
        &self.name
    }

    /// The owner (tenant) the event belongs to, if any.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The JSON payload, exactly the bytes every subscriber receives.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// When the event was made.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// The event with the trace context of the request that emitted it: its deliveries'
    /// attempts, in any process, carry that trace id. The publish path sets it (from a
    /// [`TraceContext`](crate::trace::TraceContext), the request's `traceparent`, or a new
    /// trace) unless it is set already.
    pub fn with_trace(mut self, trace: TraceParent) -> Self {
        self.trace = Some(trace);
        self
    }

    /// The trace context the event travels with, if any.
    pub fn trace(&self) -> Option<&TraceParent> {
        self.trace.as_ref()
    }
}

/// The wire form of an [`Event`] in a queue: the payload is embedded as raw JSON, byte for byte,
/// not re-encoded as a string.
#[derive(Serialize)]
struct EventRef<'a> {
    id: &'a EventId,
    name: &'a EventName,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    payload: &'a RawValue,
    created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a TraceParent>,
}

#[derive(serde::Deserialize)]
struct EventOwned {
    id: EventId,
    name: EventName,
    #[serde(default)]
    owner: Option<String>,
    payload: Box<RawValue>,
    created_at: DateTime<Utc>,
    #[serde(default)]
    traceparent: Option<TraceParent>,
}

/// Serializes as `{"id", "name", "owner"?, "payload", "created_at", "traceparent"?}` with the payload embedded as
/// the JSON it is (not a string), so a queue entry stays readable and the bytes subscribers
/// receive are exactly the ones emitted.
///
/// ```
/// use fastapihooks_core::Event;
/// let event = Event::new("order.created", &serde_json::json!({"id": 42})).unwrap();
/// let json = serde_json::to_string(&event).unwrap();
/// assert!(json.contains(r#""payload":{"id":42}"#));
/// let back: Event = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, event);
/// ```
impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        // The constructors guarantee JSON; `restore` takes the bytes on trust, so check here
        // rather than write a broken document.
        let text = std::str::from_utf8(&self.payload).map_err(S::Error::custom)?;
        let payload: &RawValue = serde_json::from_str(text).map_err(S::Error::custom)?;
        EventRef {
            id: &self.id,
            name: &self.name,
            owner: self.owner.as_deref(),
            payload,
            created_at: self.created_at,
            traceparent: self.trace.as_ref(),
        }
        .serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let e = EventOwned::deserialize(d)?;
        let payload: Box<str> = e.payload.into();
        let event = Event::restore(
            e.id,
            e.name,
            e.owner,
            Bytes::from(String::from(payload)),
            e.created_at,
        );
        Ok(match e.traceparent {
            Some(trace) => event.with_trace(trace),
            None => event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_follow_the_dotted_grammar() {
        for ok in [
            "order.created",
            "a",
            "invoice.paid:v2",
            "user_profile.updated-late",
        ] {
            assert!(EventName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "a b",
            "a/*",
            "*",
            "é",
            &"x".repeat(129),
        ] {
            assert!(EventName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_invalid_name_is_named_in_the_error() {
        let err = EventName::new("order created").unwrap_err();
        assert!(err.to_string().contains("\"order created\""), "{err}");
    }

    #[test]
    fn from_json_bytes_rejects_bytes_that_are_not_json() {
        assert!(Event::from_json_bytes("a", &b"{\"x\":1}"[..]).is_ok());
        assert!(matches!(
            Event::from_json_bytes("a", &b"<html>"[..]),
            Err(Error::InvalidPayload(_))
        ));
    }

    #[test]
    fn serde_round_trips_keeping_the_payload_bytes_exactly() {
        let raw = br#"{ "b": [1, 2.50, "x\u00e9"], "a": null }"#;
        let event = Event::from_json_bytes("order.created", &raw[..])
            .unwrap()
            .with_owner("tenant-1");
        let json = serde_json::to_vec(&event).unwrap();
        let back: Event = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, event);
        assert_eq!(&back.payload()[..], &raw[..]);
    }

    #[test]
    fn the_payload_is_embedded_as_json_not_as_a_string() {
        let event = Event::new("a", &serde_json::json!({"k": "v"})).unwrap();
        let value: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["payload"], serde_json::json!({"k": "v"}));
        assert!(value.get("owner").is_none(), "no owner, no field");
    }

    #[test]
    fn a_restored_payload_that_is_not_json_fails_to_serialize() {
        let event = Event::restore(
            EventId::new(),
            EventName::new("a").unwrap(),
            None,
            Bytes::from_static(b"not json"),
            Utc::now(),
        );
        assert!(serde_json::to_vec(&event).is_err());
    }

    #[test]
    fn the_trace_context_travels_through_the_queue_form() {
        let trace = crate::trace::TraceParent::new_root();
        let event = Event::new("a", &1).unwrap().with_trace(trace);
        let json = serde_json::to_string(&event).unwrap();
        assert!(
            json.contains(&format!(r#""traceparent":"{trace}""#)),
            "{json}"
        );
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back.trace(), Some(&trace));
    }

    #[test]
    fn owner_is_kept() {
        let e = Event::new("a", &1).unwrap().with_owner("tenant-1");
        assert_eq!(e.owner(), Some("tenant-1"));
    }
}

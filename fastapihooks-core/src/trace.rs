//! [`TraceParent`]: the W3C trace context an event carries from the request that emitted it,
//! through any queue, to every attempt of its deliveries — so the sidecar's attempt spans and
//! logs carry the same trace id as the application's publish span.
//!
//! The library depends on `tracing` only: spans carry the ids as fields (`trace_id`, `event`,
//! `delivery`, `subscription`). To join a tracing system's traces (OpenTelemetry), give the
//! emitter and the engine a [`TraceContext`] that reads the current context and attaches a
//! remote parent to a span; without one, an event takes the `traceparent` of the request that
//! emitted it (the axum hook layer reads the header), or starts a trace of its own.

/// The name of the span each event's fan-out runs in (fields `event`, `name`, `trace_id`).
pub const FAN_OUT_SPAN: &str = "fastapihooks.fan_out";

/// The name of the span each attempt runs in (fields `event`, `delivery`, `subscription`,
/// `attempt`, `trace_id`).
pub const ATTEMPT_SPAN: &str = "fastapihooks.attempt";

/// The spans made once or twice per delivery ([`FAN_OUT_SPAN`], [`ATTEMPT_SPAN`]). A log layer
/// that formats every span's fields as the span is made pays for them on every delivery, whether
/// or not a line is ever written inside one: the sidecar's log lines leave them out (the lines
/// written inside them carry the same ids as fields), its OTLP export keeps them.
pub const PER_DELIVERY_SPANS: [&str; 2] = [FAN_OUT_SPAN, ATTEMPT_SPAN];

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A W3C `traceparent` (version 00): trace id, parent span id, sampled flag.
///
/// ```
/// use fastapihooks_core::trace::TraceParent;
/// let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?;
/// assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// let child = parent.child();
/// assert_eq!(child.trace_id(), parent.trace_id());
/// assert_ne!(child.to_string(), parent.to_string());
/// # Ok::<(), fastapihooks_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: u128,
    parent_id: u64,
    sampled: bool,
}

impl TraceParent {
    /// A new trace: random trace and span ids, sampled.
    pub fn new_root() -> Self {
        Self {
            trace_id: nonzero(|| fastrand::u128(..)),
            parent_id: nonzero(|| fastrand::u64(..)),
            sampled: true,
        }
    }

    /// The same trace, with a new span id as the parent: what an outgoing request sends.
    pub fn child(&self) -> Self {
        Self {
            parent_id: nonzero(|| fastrand::u64(..)),
            ..*self
        }
    }

    /// The trace id, 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The trace id as 32 lower-case hex digits, written when displayed: what a span records
    /// without allocating a `String`.
    pub fn trace_id_hex(&self) -> impl fmt::Display + use<> {
        struct Hex(u128);
        impl fmt::Display for Hex {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:032x}", self.0)
            }
        }
        Hex(self.trace_id)
    }

    /// The parent span id, 16 lower-case hex digits.
    pub fn parent_id(&self) -> String {
        format!("{:016x}", self.parent_id)
    }

    /// Whether the trace is sampled (flag `01`).
    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// A context from a tracing system's ids (an OpenTelemetry `SpanContext`'s, say): `None` if
    /// the trace or span id is all zeros (invalid in W3C trace context).
    ///
    /// ```
    /// use fastapihooks_core::trace::TraceParent;
    /// let parent = TraceParent::from_ids([0x4b; 16], [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7], true)
    ///     .expect("non-zero ids");
    /// assert_eq!(parent.parent_id(), "00f067aa0ba902b7");
    /// assert_eq!(parent.trace_id_bytes(), [0x4b; 16]);
    /// assert!(TraceParent::from_ids([0; 16], [1; 8], true).is_none());
    /// ```
    pub fn from_ids(trace_id: [u8; 16], parent_id: [u8; 8], sampled: bool) -> Option<Self> {
        let trace_id = u128::from_be_bytes(trace_id);
        let parent_id = u64::from_be_bytes(parent_id);
        (trace_id != 0 && parent_id != 0).then_some(Self {
            trace_id,
            parent_id,
            sampled,
        })
    }

    /// The trace id as 16 bytes (big-endian, as OpenTelemetry's `TraceId::from_bytes` takes it).
    pub fn trace_id_bytes(&self) -> [u8; 16] {
        self.trace_id.to_be_bytes()
    }

    /// The parent span id as 8 bytes (as OpenTelemetry's `SpanId::from_bytes` takes it).
    pub fn parent_id_bytes(&self) -> [u8; 8] {
        self.parent_id.to_be_bytes()
    }
}

fn nonzero<T: PartialEq + Default>(mut make: impl FnMut() -> T) -> T {
    loop {
        let value = make();
        if value != T::default() {
            return value;
        }
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.parent_id,
            u8::from(self.sampled)
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for TraceParent {
    type Err = Error;
    /// Parses version `00` (a later version's first four fields, as the spec asks); refuses an
    /// all-zero trace or span id.
    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Error::InvalidConfig {
            field: "traceparent",
            reason: format!("`{s}` is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)"),
        };
        let mut parts = s.trim().split('-');
        let (Some(version), Some(trace), Some(parent), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let hex = |part: &str, len: usize| {
            (part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then_some(())
                .ok_or_else(invalid)
        };
        hex(version, 2)?;
        hex(trace, 32)?;
        hex(parent, 16)?;
        hex(flags, 2)?;
        if version == "ff" || (version == "00" && parts.next().is_some()) {
            return Err(invalid());
        }
        let trace_id = u128::from_str_radix(trace, 16).map_err(|_| invalid())?;
        let parent_id = u64::from_str_radix(parent, 16).map_err(|_| invalid())?;
        let flags = u8::from_str_radix(flags, 16).map_err(|_| invalid())?;
        if trace_id == 0 || parent_id == 0 {
            return Err(invalid());
        }
        Ok(Self {
            trace_id,
            parent_id,
            sampled: flags & 1 == 1,
        })
    }
}

impl serde::Serialize for TraceParent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TraceParent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Bridges this crate's trace context to a tracing system (OpenTelemetry through
/// `tracing-opentelemetry`, say): the application and the sidecar install one, the library
/// stays on `tracing` alone.
pub trait TraceContext: fmt::Debug + Send + Sync + 'static {
    /// The context of the current span, if the tracing system has one: an event published now
    /// carries it.
    fn current(&self) -> Option<TraceParent>;

    /// Makes `parent` (an event's context, from another process) the parent of `span`. Called
    /// before `span` is first entered.
    fn attach(&self, span: &tracing::Span, parent: &TraceParent);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips_through_its_text() {
        let root = TraceParent::new_root();
        let text = root.to_string();
        assert_eq!(text.len(), 55);
        assert_eq!(text.parse::<TraceParent>().unwrap(), root);
    }

    #[test]
    fn malformed_or_zero_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad}");
        }
        let unsampled: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
            .parse()
            .unwrap();
        assert!(!unsampled.sampled());
    }
}

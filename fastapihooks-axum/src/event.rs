//! Building the event of one hooked exchange: what the hook kept of the request, the captured
//! response, the `when` filter, the `transform` or the envelope.

use bytes::Bytes;
use chrono::Utc;
use fastapihooks_core::{Event, EventName};
use http::StatusCode;
use http::request::Parts;
use serde_json::{Map, Value};

use crate::capture::Skip;
use crate::context::{HookContext, headers_json};
use crate::layer::Hook;

/// What the hook keeps of the request before the handler consumes it.
pub(crate) struct SeenRequest {
    owner: Option<String>,
    method: http::Method,
    uri: http::Uri,
    headers: Option<Map<String, Value>>,
    /// The caller's W3C trace context (`traceparent`), which the event continues.
    trace: Option<fastapihooks_core::trace::TraceParent>,
}

impl SeenRequest {
    pub(crate) fn new(hook: &Hook, parts: &Parts) -> Self {
        Self {
            owner: hook.owner.as_ref().and_then(|f| f(parts)),
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: hook.include_headers.then(|| headers_json(&parts.headers)),
            trace: parts
                .headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        }
    }
}

/// What became of the exchange.
pub(crate) enum Built {
    /// The event to publish.
    Event(Event),
    /// `when` said no: nothing is emitted, and that is not a failure.
    Filtered,
    /// The event could not be made (logged and counted here).
    NotEmitted,
}

/// Builds the event of a response that passed the status filter.
pub(crate) fn build_event(
    hook: &Hook,
    seen: SeenRequest,
    status: StatusCode,
    request_bytes: Option<Bytes>,
    response_bytes: Option<Bytes>,
) -> Built {
    let payload = if hook.needs_context_values() {
        let ctx = HookContext {
            event_name: hook.name.clone(),
            owner: seen.owner.clone(),
            method: seen.method,
            uri: seen.uri,
            status,
            headers: seen.headers,
            request: request_bytes
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok()),
            request_bytes,
            response: response_bytes
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok()),
            response_bytes,
            timestamp: Utc::now(),
        };
        if hook.when.as_ref().is_some_and(|when| !when(&ctx)) {
            return Built::Filtered;
        }
        payload_from_context(hook, &ctx)
    } else {
        // The plain case: the response bytes are the payload, validated, never re-encoded.
        response_bytes.ok_or("the response body was not captured")
    };
    let event = match payload.map(|bytes| Event::from_json_bytes(&hook.name, bytes)) {
        Ok(Ok(event)) => event,
        Ok(Err(e)) => return not_emitted(&hook.name, "not_json", &e.to_string()),
        Err(reason) => return not_emitted(&hook.name, "no_payload", reason),
    };
    let event = match seen.trace {
        Some(trace) => event.with_trace(trace),
        None => event,
    };
    Built::Event(match seen.owner {
        Some(owner) => event.with_owner(owner),
        None => event,
    })
}

fn payload_from_context(hook: &Hook, ctx: &HookContext) -> Result<Bytes, &'static str> {
    if let Some(transform) = &hook.transform {
        return transform(ctx)
            .map(Bytes::from)
            .map_err(|_| "the transform's value could not be serialized");
    }
    if !hook.envelope() {
        return ctx
            .response_bytes
            .clone()
            .ok_or("the response body was not captured");
    }
    let mut envelope = Map::new();
    if hook.include_response {
        let response = ctx
            .response
            .clone()
            .ok_or("the response body is not JSON")?;
        envelope.insert("response".into(), response);
    }
    if hook.include_request {
        envelope.insert("request".into(), ctx.request.clone().unwrap_or(Value::Null));
    }
    if let Some(headers) = &ctx.headers {
        envelope.insert("headers".into(), Value::Object(headers.clone()));
    }
    serde_json::to_vec(&envelope)
        .map(Bytes::from)
        .map_err(|_| "the event could not be serialized")
}

/// Logs and counts a body that was not captured.
pub(crate) fn skipped(name: &EventName, part: &'static str, skip: Skip) {
    metrics::counter!(fastapihooks_core::metrics::HOOK_CAPTURE_SKIPPED_TOTAL, "part" => part, "reason" => skip.as_str())
        .increment(1);
    tracing::warn!(event = %name, part, reason = skip.as_str(), "body not captured for the event");
}

fn not_emitted(name: &EventName, reason: &'static str, detail: &str) -> Built {
    metrics::counter!(fastapihooks_core::metrics::HOOK_NOT_EMITTED_TOTAL, "reason" => reason)
        .increment(1);
    tracing::warn!(event = %name, reason, detail, "response not emitted as an event (add a transform to emit it)");
    Built::NotEmitted
}

//! `fastapihooks start --otlp-endpoint` (cargo feature `otlp`): the real binary exports its
//! spans over OTLP/HTTP to a collector of the test's own (a receiver on 127.0.0.1 reading the
//! JSON encoding), each span of an event's delivery a child of the context the event was
//! published with — the trace of the request that emitted it.
#![cfg(all(feature = "sqlite", feature = "otlp"))]

mod support;

use fastapihooks_core::Event;
use fastapihooks_core::trace::TraceParent;
use fastapihooks_testkit::Receiver;
use serde_json::Value;
use support::{Sidecar, SqliteApp, WAIT};

/// Every span the collector received: `resourceSpans[].scopeSpans[].spans[]`, each with its
/// resource's attributes beside it.
fn exported_spans(collector: &Receiver) -> Vec<(Value, Value)> {
    let mut spans = Vec::new();
    for request in collector.received_at("/v1/traces") {
        let body = request.json();
        for resource in body["resourceSpans"].as_array().into_iter().flatten() {
            let attributes = resource["resource"]["attributes"].clone();
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    spans.push((span.clone(), attributes.clone()));
                }
            }
        }
    }
    spans
}

/// The string value of attribute `key` in an OTLP attribute list.
fn attribute<'a>(attributes: &'a Value, key: &str) -> Option<&'a str> {
    attributes.as_array()?.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecars_spans_are_exported_over_otlp_as_children_of_the_events_trace() {
    let receiver = Receiver::ok().await;
    let collector = Receiver::ok().await;
    let app = SqliteApp::with_subscriber(&receiver.url("hook")).await;
    let published_in = TraceParent::new_root();
    let event = Event::new("order.created", &serde_json::json!({"id": 1}))
        .unwrap()
        .with_trace(published_in);
    let mut args = app.args(&["--signing-secret", "test-secret", "--allow-loopback"]);
    args.extend(
        [
            "--otlp-endpoint",
            &collector.url(""),
            "--otlp-protocol",
            "http/json",
            "--log-level",
            "info",
        ]
        .map(String::from),
    );
    let sidecar = Sidecar::start(&args);
    app.publish(std::slice::from_ref(&event)).await;
    let delivered = receiver.wait_for(1).await;
    // Stopping flushes the spans still batched.
    sidecar.stop(WAIT).await;

    let spans = exported_spans(&collector);
    for name in ["fastapihooks.fan_out", "fastapihooks.attempt"] {
        let (span, resource) = spans
            .iter()
            .find(|(span, _)| {
                span["name"] == name
                    && attribute(&span["attributes"], "event") == Some(event.id().as_str())
            })
            .unwrap_or_else(|| panic!("no {name} span for {} in {spans:#?}", event.id()));
        assert_eq!(span["traceId"], published_in.trace_id(), "{span:#}");
        assert_eq!(span["parentSpanId"], published_in.parent_id(), "{span:#}");
        assert_eq!(attribute(resource, "service.name"), Some("fastapihooks"));
    }
    let (attempt, _) = spans
        .iter()
        .find(|(span, _)| span["name"] == "fastapihooks.attempt")
        .expect("an attempt span");
    assert_eq!(
        attribute(&attempt["attributes"], "delivery"),
        Some(delivered[0].id()),
        "{attempt:#}"
    );
}

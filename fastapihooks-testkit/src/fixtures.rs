//! Model values for store tests, with times at microsecond precision: what a SQL store keeps,
//! so a value read back compares equal to the value written on every store.
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use fastapihooks_core::{
    Attempt, AttemptId, AttemptOutcome, Delivery, Event, EventId, EventName, Subscription,
    SubscriptionId,
};

/// Now, truncated to the microsecond.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("now is representable")
}

/// An enabled subscription of `filter` to a fixed URL.
pub fn subscription(filter: &str) -> Subscription {
    let mut sub = Subscription::new(filter, "https://receiver.example/hooks").expect("valid");
    sub.created_at = now();
    sub
}

/// An event named `name` of `owner` with a small JSON payload.
pub fn event(name: &str, owner: Option<&str>) -> Event {
    Event::restore(
        EventId::new(),
        EventName::new(name).expect("valid name"),
        owner.map(str::to_owned),
        Bytes::from(format!(r#"{{"name":"{name}","n":42}}"#)),
        now(),
    )
}

/// A pending delivery of `event` to `subscription`.
pub fn delivery(event: &Event, subscription: &SubscriptionId) -> Delivery {
    let mut d = Delivery::new(event.clone(), subscription.clone());
    let t = now();
    d.created_at = t;
    d.updated_at = t;
    d.next_attempt_at = Some(t);
    d
}

/// Attempt number `number` of `delivery`, which came to `outcome`.
pub fn attempt(delivery: &Delivery, number: u32, outcome: AttemptOutcome) -> Attempt {
    Attempt {
        id: AttemptId::new(),
        delivery_id: delivery.id.clone(),
        number,
        started_at: now(),
        duration: Duration::from_millis(12),
        outcome,
    }
}

/// An outcome without a response: the request timed out.
pub fn timed_out() -> AttemptOutcome {
    AttemptOutcome::Error {
        kind: fastapihooks_core::AttemptErrorKind::Timeout,
        message: "timed out after 10s".into(),
    }
}

/// A response outcome with `status`.
pub fn response(status: u16) -> AttemptOutcome {
    AttemptOutcome::Response {
        status,
        body_excerpt: format!("answer {status}"),
    }
}

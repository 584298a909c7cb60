//! Tenancy: owner A can neither read nor change nor replay owner B's objects.

use super::support::*;

use fastapihooks::prelude::*;
use fastapihooks::{Delivery, SqlStore};
use http::{Method, StatusCode};
use serde_json::json;

pub(crate) async fn owner_a_can_neither_read_nor_change_nor_replay_owner_bs_objects(
    store: &SqlStore,
) {
    let api = queued(store, true);
    let (status, problem) = api.get("/subscriptions", None).await;
    assert_eq!(
        (status, &problem["code"]),
        (StatusCode::UNAUTHORIZED, &json!("owner_required"))
    );
    let (b_sub, _) = api
        .subscribe("https://example.com/b", Some("tenant-b"))
        .await;
    let (a_sub, _) = api
        .subscribe("https://example.com/a", Some("tenant-a"))
        .await;
    // B's history: an event of B's and its delivery.
    let event = Event::new("order.created", &json!({"n": 1}))
        .unwrap()
        .with_owner("tenant-b");
    let mut delivery = Delivery::new(event.clone(), b_sub.parse().unwrap());
    delivery.status = DeliveryStatus::Dead;
    store
        .record_deliveries(std::slice::from_ref(&delivery))
        .await
        .unwrap();
    let b_delivery = delivery.id.to_string();
    let b_event = event.id().to_string();

    let a = Some("tenant-a");
    for path in [
        format!("/subscriptions/{b_sub}"),
        format!("/events/{b_event}"),
        format!("/deliveries/{b_delivery}"),
        format!("/deliveries/{b_delivery}/attempts"),
    ] {
        let (status, problem) = api.get(&path, a).await;
        assert_eq!(
            (status, &problem["code"]),
            (StatusCode::NOT_FOUND, &json!("not_found")),
            "{path}"
        );
    }
    for (method, path) in [
        (Method::PATCH, format!("/subscriptions/{b_sub}")),
        (Method::DELETE, format!("/subscriptions/{b_sub}")),
        (Method::POST, format!("/subscriptions/{b_sub}/disable")),
        (
            Method::POST,
            format!("/subscriptions/{b_sub}/rotate-secret"),
        ),
        (Method::POST, format!("/subscriptions/{b_sub}/test")),
        (Method::POST, format!("/deliveries/{b_delivery}/replay")),
        (Method::POST, format!("/events/{b_event}/replay")),
    ] {
        let (status, _) = api.call(method.clone(), &path, a, Some(json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    // A's lists hold A's objects only; a bulk replay of A's replays nothing of B's.
    let (_, subs) = api.get("/subscriptions?owner=tenant-b", a).await;
    let ids: Vec<&str> = subs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a_sub.as_str()]);
    for path in ["/events", "/deliveries"] {
        let (_, page) = api.get(path, a).await;
        assert_eq!(page["data"], json!([]), "{path}");
    }
    let (_, summary) = api
        .post("/replay", a, json!({"filter": {"status": "dead"}}))
        .await;
    assert_eq!(summary["queued"], 0, "{summary}");
    // Creating for another owner is refused; B's objects are all still there and unchanged.
    let (status, problem) = api
        .post(
            "/subscriptions",
            a,
            json!({"filter": "*", "url": "https://example.com/x", "owner": "tenant-b"}),
        )
        .await;
    assert_eq!(
        (status, &problem["code"]),
        (StatusCode::FORBIDDEN, &json!("owner_mismatch"))
    );
    let (status, b_view) = api
        .get(&format!("/subscriptions/{b_sub}"), Some("tenant-b"))
        .await;
    assert_eq!((status, &b_view["enabled"]), (StatusCode::OK, &json!(true)));
    let (_, b_dead) = api
        .get(&format!("/deliveries/{b_delivery}"), Some("tenant-b"))
        .await;
    assert_eq!(b_dead["status"], "dead", "not replayed by A");
}

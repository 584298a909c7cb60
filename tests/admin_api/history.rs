//! Events and deliveries: found, paged, filtered, and replayed.

use super::support::*;

use fastapihooks::prelude::*;
use fastapihooks::{Delivery, SqlStore};
use fastapihooks_testkit::{Receiver, eventually_async};
use http::StatusCode;
use serde_json::{Value, json};

pub(crate) async fn a_failed_delivery_is_found_replayed_and_delivered_through_the_api(
    store: &SqlStore,
) {
    let api = delivering(store);
    let (receiver, fix) = Receiver::broken(500).await;
    let (sub, _) = api.subscribe(&receiver.url("/hooks"), None).await;
    let (status, queued) = api
        .post(&format!("/subscriptions/{sub}/test"), None, json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let delivery = queued["delivery_id"].as_str().unwrap().to_owned();
    let dead = eventually_async(std::time::Duration::from_secs(20), || async {
        let (_, page) = api
            .get(&format!("/deliveries?status=dead&subscription={sub}"), None)
            .await;
        page["data"].as_array().unwrap().len() == 1
    })
    .await;
    assert!(dead, "the failed delivery is listed as dead");
    let (_, attempts) = api
        .get(&format!("/deliveries/{delivery}/attempts"), None)
        .await;
    assert_eq!(attempts[0]["status_code"], 500, "{attempts}");

    fix.apply();
    let (status, replayed) = api
        .post(&format!("/deliveries/{delivery}/replay"), None, json!({}))
        .await;
    assert_eq!(
        (status, &replayed["outcome"]),
        (StatusCode::OK, &json!("queued"))
    );
    let delivered = eventually_async(std::time::Duration::from_secs(20), || async {
        api.get(&format!("/deliveries/{delivery}"), None).await.1["status"] == "delivered"
    })
    .await;
    assert!(delivered);
    let (_, attempts) = api
        .get(&format!("/deliveries/{delivery}/attempts"), None)
        .await;
    let codes: Vec<&Value> = attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(200)], "attempts appended");
    assert_eq!(receiver.received().len(), 2);
    assert!(
        receiver.received().iter().all(|r| r.id() == delivery),
        "same delivery id"
    );
}

pub(crate) async fn a_bulk_replay_dry_run_counts_and_changes_nothing(store: &SqlStore) {
    let api = queued(store, false);
    let (sub, _) = api.subscribe("https://example.com/hooks", None).await;
    let mut deliveries = Vec::new();
    for n in 0..3 {
        let mut d = Delivery::new(
            Event::new("order.created", &json!({"n": n})).unwrap(),
            sub.parse().unwrap(),
        );
        d.status = if n == 0 {
            DeliveryStatus::Delivered
        } else {
            DeliveryStatus::Dead
        };
        deliveries.push(d);
    }
    store.record_deliveries(&deliveries).await.unwrap();
    let (status, dry) = api
        .post(
            "/replay",
            None,
            json!({"filter": {"event": "order.*"}, "dry_run": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry["would_replay"], 2, "the two dead letters: {dry}");
    let (_, page) = api.get("/deliveries?status=dead", None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2, "unchanged");
    let (_, done) = api
        .post("/replay", None, json!({"filter": {"event": "order.*"}}))
        .await;
    assert_eq!(done["queued"], 2, "{done}");
    let (_, page) = api.get("/deliveries?status=pending", None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
}

pub(crate) async fn deliveries_and_events_page_by_cursor_and_filter(store: &SqlStore) {
    let api = queued(store, false);
    let (sub, _) = api.subscribe("https://example.com/hooks", None).await;
    let mut made = Vec::new();
    for n in 0..5 {
        let name = if n % 2 == 0 {
            "order.created"
        } else {
            "invoice.paid"
        };
        made.push(Delivery::new(
            Event::new(name, &json!({"n": n})).unwrap(),
            sub.parse().unwrap(),
        ));
    }
    store.record_deliveries(&made).await.unwrap();
    let mut seen = Vec::new();
    let mut path = "/deliveries?limit=2".to_owned();
    loop {
        let (_, page) = api.get(&path, None).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/deliveries?limit=2&before={next}"),
            None => break,
        }
    }
    // Newest first is by id (time-sortable; within one millisecond, by its random part).
    let mut newest_first: Vec<String> = made.iter().map(|d| d.id.to_string()).collect();
    newest_first.sort();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let (_, orders) = api.get("/deliveries?event=order.*", None).await;
    assert_eq!(orders["data"].as_array().unwrap().len(), 3);
    let (_, events) = api.get("/events?name=invoice.*", None).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 2);
    let (_, event) = api
        .get(&format!("/events/{}", made[1].event.id()), None)
        .await;
    assert_eq!(event["payload"], json!({"n": 1}));
    let (status, problem) = api.get("/deliveries?status=lost", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
}

pub(crate) async fn an_events_deliveries_are_replayed_together(store: &SqlStore) {
    let api = queued(store, false);
    let (first, _) = api.subscribe("https://example.com/one", None).await;
    let (second, _) = api.subscribe("https://example.com/two", None).await;
    let event = Event::new("order.created", &json!({"n": 1})).unwrap();
    let mut made = Vec::new();
    for sub in [&first, &second] {
        let mut d = Delivery::new(event.clone(), sub.parse().unwrap());
        d.status = DeliveryStatus::Dead;
        made.push(d);
    }
    store.record_deliveries(&made).await.unwrap();
    let (status, summary) = api
        .post(&format!("/events/{}/replay", event.id()), None, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["queued"], 2, "{summary}");
    let (_, again) = api
        .post(&format!("/events/{}/replay", event.id()), None, json!({}))
        .await;
    assert_eq!(
        (&again["queued"], &again["resumed"]),
        (&json!(0), &json!(0)),
        "a second replay queues nothing twice: {again}"
    );
    let (status, problem) = api
        .post(
            "/events/evt_01JE6Y0V3K8Q2M4N6P8R0T2V4W/replay",
            None,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, &problem["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
}

pub(crate) async fn a_delivery_made_between_two_pages_neither_repeats_nor_hides_a_row(
    store: &SqlStore,
) {
    let api = queued(store, false);
    let (sub, _) = api.subscribe("https://example.com/hooks", None).await;
    let old: Vec<Delivery> = (0..4)
        .map(|n| {
            Delivery::new(
                Event::new("order.created", &json!({"n": n})).unwrap(),
                sub.parse().unwrap(),
            )
        })
        .collect();
    store.record_deliveries(&old).await.unwrap();
    let (_, first) = api.get("/deliveries?limit=2", None).await;
    // A new delivery arrives while the reader is between pages: newer than the cursor.
    let newer = Delivery::new(
        Event::new("order.created", &json!({"n": 4})).unwrap(),
        sub.parse().unwrap(),
    );
    store
        .record_deliveries(std::slice::from_ref(&newer))
        .await
        .unwrap();
    let next = first["next"].as_str().unwrap();
    let (_, second) = api
        .get(&format!("/deliveries?limit=2&before={next}"), None)
        .await;
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut seen = ids(&first);
    seen.extend(ids(&second));
    let mut expected: Vec<String> = old.iter().map(|d| d.id.to_string()).collect();
    expected.sort();
    expected.reverse();
    assert_eq!(seen, expected, "the old rows, each once, in order");
    assert!(!seen.contains(&newer.id.to_string()));
}

//! Summary stats and the event types seen.

use super::support::*;

use fastapihooks::prelude::*;
use fastapihooks::{Delivery, SqlStore};
use http::StatusCode;
use serde_json::{Value, json};

/// A delivery to `sub` of a new `name` event of `owner` (if any), made at `at` (RFC 3339),
/// in `status`.
pub(crate) fn made_at(
    sub: &str,
    name: &str,
    owner: Option<&str>,
    at: &str,
    status: DeliveryStatus,
) -> Delivery {
    let mut event = Event::new(name, &json!({"at": at})).unwrap();
    if let Some(owner) = owner {
        event = event.with_owner(owner);
    }
    let mut d = Delivery::new(event, sub.parse().unwrap());
    d.created_at = at.parse().unwrap();
    d.updated_at = d.created_at;
    d.status = status;
    d
}

/// The `(delivered, failed, pending)` of a bucket or a subscription's stats.
pub(crate) fn tally(v: &Value) -> (u64, u64, u64) {
    (
        v["delivered"].as_u64().unwrap(),
        v["failed"].as_u64().unwrap(),
        v["pending"].as_u64().unwrap(),
    )
}

pub(crate) async fn stats_count_deliveries_by_status_bucket_and_subscription(store: &SqlStore) {
    use DeliveryStatus::{Dead, Delivered, Failed, Pending};
    let api = queued(store, false);
    let (s1, _) = api.subscribe("https://example.com/1", None).await;
    let (s2, _) = api.subscribe("https://example.com/2", None).await;
    let e = "order.created";
    store
        .record_deliveries(&[
            made_at(&s1, e, None, "2025-03-01T05:10:00Z", Delivered),
            made_at(&s1, e, None, "2025-03-01T05:50:00Z", Delivered),
            made_at(&s1, e, None, "2025-03-01T05:59:59Z", Failed),
            made_at(&s2, e, None, "2025-03-01T07:00:00Z", Dead),
            made_at(&s2, e, None, "2025-03-01T07:30:00Z", Pending),
            made_at(&s1, e, None, "2025-03-01T23:59:59Z", Delivered),
            // Outside the day: `until` is excluded, `since` included.
            made_at(&s2, e, None, "2025-03-02T00:00:00Z", Delivered),
            made_at(&s1, e, None, "2025-02-28T23:59:59Z", Failed),
        ])
        .await
        .unwrap();

    let day = "since=2025-03-01T00:00:00Z&until=2025-03-02T00:00:00Z";
    let (status, stats) = api.get(&format!("/stats?{day}"), None).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(
        stats["counts"],
        json!({"pending": 1, "delivered": 3, "failed": 1, "dead": 1})
    );
    assert_eq!(stats["success_rate"], json!(0.6), "3 of the 5 final ones");
    assert_eq!(stats["total"], 6);
    assert_eq!(stats["bucket_seconds"], 3600);
    let buckets = stats["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 24, "one per hour, empty ones included");
    assert_eq!(buckets[0]["start"], "2025-03-01T00:00:00Z");
    assert_eq!(buckets[23]["start"], "2025-03-01T23:00:00Z");
    assert_eq!(tally(&buckets[5]), (2, 1, 0), "{}", buckets[5]);
    assert_eq!(
        tally(&buckets[7]),
        (0, 1, 1),
        "dead counts as failed: {}",
        buckets[7]
    );
    assert_eq!(tally(&buckets[23]), (1, 0, 0));
    let elsewhere: u64 = [0, 1, 2, 3, 4, 6]
        .into_iter()
        .chain(8..23)
        .map(|i| {
            let (d, f, p) = tally(&buckets[i]);
            d + f + p
        })
        .sum();
    assert_eq!(elsewhere, 0);
    let mut expected = vec![
        json!({"subscription_id": s1, "delivered": 3, "failed": 1, "pending": 0, "success_rate": 0.75}),
        json!({"subscription_id": s2, "delivered": 0, "failed": 1, "pending": 1, "success_rate": 0.0}),
    ];
    expected.sort_by_key(|v| v["subscription_id"].as_str().unwrap().to_owned());
    assert_eq!(stats["subscriptions"], json!(expected));

    // One subscription's.
    let (_, only) = api
        .get(&format!("/stats?{day}&subscription={s2}"), None)
        .await;
    assert_eq!(
        only["counts"],
        json!({"pending": 1, "delivered": 0, "failed": 0, "dead": 1})
    );
    assert_eq!(only["success_rate"], json!(0.0));
    assert_eq!(only["subscriptions"].as_array().unwrap().len(), 1);

    // A range that starts within an hour: its first bucket starts on the hour.
    let (_, part) = api
        .get(
            "/stats?since=2025-03-01T05:30:00Z&until=2025-03-01T08:00:00Z",
            None,
        )
        .await;
    let starts: Vec<&str> = part["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2025-03-01T05:00:00Z",
            "2025-03-01T06:00:00Z",
            "2025-03-01T07:00:00Z"
        ]
    );
    assert_eq!(part["total"], 4, "made at or after 05:30: {part}");
    assert_eq!(tally(&part["buckets"][0]), (1, 1, 0));

    // Daily buckets.
    let (status, days) = api
        .get(
            "/stats?since=2025-02-28T00:00:00Z&until=2025-03-03T00:00:00Z&bucket=day",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{days}");
    assert_eq!(days["bucket_seconds"], 86400);
    let per_day: Vec<(u64, u64, u64)> = days["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(tally)
        .collect();
    assert_eq!(per_day, [(0, 1, 0), (3, 2, 1), (1, 0, 0)]);

    // The default range is the last 24 hours: none of these, and no rate without final ones.
    let (status, recent) = api.get("/stats", None).await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    assert_eq!(recent["total"], 0);
    assert!(recent["success_rate"].is_null(), "{recent}");
    assert_eq!(recent["subscriptions"], json!([]));
    let hours = recent["buckets"].as_array().unwrap().len();
    assert!((24..=25).contains(&hours), "{hours} buckets");
}

pub(crate) async fn stats_of_one_owner_count_none_of_anothers(store: &SqlStore) {
    let api = queued(store, true);
    let (a_sub, _) = api
        .subscribe("https://example.com/a", Some("tenant-a"))
        .await;
    let (b_sub, _) = api
        .subscribe("https://example.com/b", Some("tenant-b"))
        .await;
    let now = chrono::Utc::now() - chrono::Duration::minutes(5);
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut history = Vec::new();
    for _ in 0..2 {
        history.push(made_at(
            &a_sub,
            "order.created",
            Some("tenant-a"),
            &at,
            DeliveryStatus::Delivered,
        ));
    }
    for _ in 0..3 {
        history.push(made_at(
            &b_sub,
            "order.refunded",
            Some("tenant-b"),
            &at,
            DeliveryStatus::Dead,
        ));
    }
    store.record_deliveries(&history).await.unwrap();

    let a = Some("tenant-a");
    for path in ["/stats".to_owned(), "/stats?owner=tenant-b".to_owned()] {
        let (status, stats) = api.get(&path, a).await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        assert_eq!(
            stats["counts"],
            json!({"pending": 0, "delivered": 2, "failed": 0, "dead": 0}),
            "{path}"
        );
        assert_eq!(stats["success_rate"], json!(1.0));
        let subs: Vec<&str> = stats["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["subscription_id"].as_str().unwrap())
            .collect();
        assert_eq!(subs, [a_sub.as_str()], "{path}");
    }
    let (_, of_b_sub) = api.get(&format!("/stats?subscription={b_sub}"), a).await;
    assert_eq!(of_b_sub["total"], 0, "{of_b_sub}");
    let (_, b_stats) = api.get("/stats", Some("tenant-b")).await;
    assert_eq!(b_stats["counts"]["dead"], 3, "{b_stats}");
    assert_eq!(b_stats["counts"]["delivered"], 0);

    let (_, a_types) = api.get("/event-types?owner=tenant-b", a).await;
    assert_eq!(
        a_types["data"],
        json!([{"name": "order.created", "events": 2, "last_seen": a_types["data"][0]["last_seen"]}])
    );
    let (_, b_types) = api.get("/event-types", Some("tenant-b")).await;
    let names: Vec<&str> = b_types["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["order.refunded"]);

    for path in ["/stats", "/event-types"] {
        let (status, problem) = api.get(path, None).await;
        assert_eq!(
            (status, &problem["code"]),
            (StatusCode::UNAUTHORIZED, &json!("owner_required")),
            "{path}"
        );
    }
}

pub(crate) async fn a_stats_range_too_long_is_a_400_problem(store: &SqlStore) {
    let api = queued(store, false);
    for (query, says) in [
        (
            "since=2025-01-01T00:00:00Z&until=2025-02-15T00:00:00Z",
            "31 days",
        ),
        (
            "since=2024-01-01T00:00:00Z&until=2025-03-01T00:00:00Z&bucket=day",
            "366 days",
        ),
        (
            "since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z",
            "not before",
        ),
        (
            "since=2025-01-01T00:00:00Z&until=2025-01-01T00:00:00Z",
            "not before",
        ),
        ("bucket=week", "bucket"),
        ("subscription=nope", "subscription"),
        ("since=yesterday", "since"),
    ] {
        let (status, problem) = api.get(&format!("/stats?{query}"), None).await;
        assert_eq!(
            (status, &problem["code"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_request")),
            "{query}: {problem}"
        );
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{query}: {detail}");
    }
    // The longest ranges are answered.
    for (query, buckets) in [
        (
            "since=2025-01-01T00:00:00Z&until=2025-02-01T00:00:00Z",
            31 * 24,
        ),
        (
            "since=2025-01-01T00:00:00Z&until=2025-02-15T00:00:00Z&bucket=day",
            45,
        ),
        (
            "since=2024-01-01T00:00:00Z&until=2025-01-01T00:00:00Z&bucket=day",
            366,
        ),
    ] {
        let (status, stats) = api.get(&format!("/stats?{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {stats}");
        assert_eq!(
            stats["buckets"].as_array().unwrap().len(),
            buckets,
            "{query}"
        );
    }
}

pub(crate) async fn event_types_list_each_name_once_with_its_count(store: &SqlStore) {
    let api = queued(store, false);
    let (s1, _) = api.subscribe("https://example.com/1", None).await;
    let (s2, _) = api.subscribe("https://example.com/2", None).await;
    let mut history = Vec::new();
    let mut newest: std::collections::BTreeMap<&str, chrono::DateTime<chrono::Utc>> =
        std::collections::BTreeMap::new();
    for name in [
        "order.created",
        "invoice.paid",
        "order.created",
        "user.deleted",
        "invoice.paid",
        "order.created",
    ] {
        let event = Event::new(name, &json!({})).unwrap();
        let at = event.created_at();
        newest.insert(name, at); // made in order: the last one is the newest
        history.push(Delivery::new(event.clone(), s1.parse().unwrap()));
        if name == "order.created" {
            // An event delivered to two subscriptions is still one event.
            history.push(Delivery::new(event, s2.parse().unwrap()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    store.record_deliveries(&history).await.unwrap();
    let (status, types) = api.get("/event-types", None).await;
    assert_eq!(status, StatusCode::OK, "{types}");
    let seen: Vec<(&str, u64)> = types["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["events"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("invoice.paid", 2),
            ("order.created", 3),
            ("user.deleted", 1)
        ]
    );
    for t in types["data"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let last_seen: chrono::DateTime<chrono::Utc> =
            t["last_seen"].as_str().unwrap().parse().unwrap();
        // Stores keep microseconds.
        let expected = newest[name];
        assert!(
            (last_seen - expected).num_microseconds().unwrap().abs() < 1,
            "{name}: last seen {last_seen}, the newest was made {expected}"
        );
    }
}

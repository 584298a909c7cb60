//! Subscriptions: create (the secret once), validate, page, change, rotate, test.

use super::support::*;

use fastapihooks::SqlStore;
use fastapihooks_testkit::Receiver;
use http::{Method, StatusCode};
use serde_json::json;

pub(crate) async fn a_created_subscription_shows_its_secret_once(store: &SqlStore) {
    let api = queued(store, false);
    let (status, created) = api
        .post(
            "/subscriptions",
            None,
            json!({"filter": "order.*", "url": "https://example.com/hooks", "metadata": {"plan": "pro"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "a generated secret: {secret}");
    let id = created["subscription"]["id"].as_str().unwrap();
    let (status, shown) = api.get(&format!("/subscriptions/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["has_secret"], true);
    assert_eq!(shown["metadata"]["plan"], "pro");
    let (_, listed) = api.get("/subscriptions", None).await;
    for answer in [&shown, &listed] {
        assert!(
            !answer.to_string().contains(secret),
            "the secret is shown again: {answer}"
        );
    }
    // The store holds it, and signs with it.
    let stored = api
        .store
        .get_subscription(&id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.secret.unwrap().expose(), secret);
}

pub(crate) async fn a_malformed_subscription_is_a_400_problem_naming_the_field(store: &SqlStore) {
    let api = queued(store, false);
    let (status, problem) = api
        .post(
            "/subscriptions",
            None,
            json!({"filter": "order.*", "url": "ftp://example.com/hooks"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["code"], "invalid_request");
    assert!(
        problem["detail"].as_str().unwrap().contains("ftp"),
        "{problem}"
    );
    let (status, problem) = api
        .post(
            "/subscriptions",
            None,
            json!({"filter": "order..created", "url": "https://example.com/hooks"}),
        )
        .await;
    assert_eq!(
        (status, &problem["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
    let (status, problem) = api.get("/subscriptions?limit=501", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("limit"));
}

pub(crate) async fn subscriptions_page_by_cursor_without_skipping_or_repeating(store: &SqlStore) {
    let api = queued(store, false);
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(
            api.subscribe(&format!("https://example.com/{i}"), None)
                .await
                .0,
        );
    }
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut path = "/subscriptions?limit=3".to_owned();
    loop {
        let (status, page) = api.get(&path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/subscriptions?limit=3&after={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, made, "oldest first, each once");
}

pub(crate) async fn a_subscription_is_changed_disabled_enabled_and_deleted(store: &SqlStore) {
    let api = queued(store, false);
    let (id, _) = api.subscribe("https://example.com/hooks", None).await;
    let path = format!("/subscriptions/{id}");
    let (status, changed) = api
        .call(
            Method::PATCH,
            &path,
            None,
            Some(json!({"url": "https://example.com/v2", "filter": "invoice.*"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        (changed["url"].as_str(), changed["filter"].as_str()),
        (Some("https://example.com/v2"), Some("invoice.*"))
    );
    let (status, disabled) = api.post(&format!("{path}/disable"), None, json!({})).await;
    assert_eq!(
        (status, &disabled["enabled"]),
        (StatusCode::OK, &json!(false))
    );
    let (_, enabled) = api.post(&format!("{path}/enable"), None, json!({})).await;
    assert_eq!(enabled["enabled"], true);
    let (status, unknown_field) = api
        .call(Method::PATCH, &path, None, Some(json!({"urll": "x"})))
        .await;
    assert!(status.is_client_error(), "{unknown_field}");
    let (status, _) = api.call(Method::DELETE, &path, None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, problem) = api.get(&path, None).await;
    assert_eq!(
        (status, &problem["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
}

pub(crate) async fn rotating_a_secret_shows_the_new_one_once_and_keeps_the_old_for_the_grace(
    store: &SqlStore,
) {
    let api = queued(store, false);
    let (id, old) = api.subscribe("https://example.com/hooks", None).await;
    let (status, rotated) = api
        .post(
            &format!("/subscriptions/{id}/rotate-secret"),
            None,
            json!({"grace_seconds": 3600}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(rotated["subscription"]["previous_secret_expires_at"].is_string());
    let stored = api
        .store
        .get_subscription(&id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let signing: Vec<&str> = stored
        .signing_secrets(chrono::Utc::now())
        .into_iter()
        .map(|s| s.expose())
        .collect();
    assert_eq!(signing, [new, old.as_str()], "both sign during the grace");
}

pub(crate) async fn a_secret_rotated_without_a_body_keeps_the_old_one_for_a_day(store: &SqlStore) {
    let api = queued(store, false);
    let (id, _) = api.subscribe("https://example.com/hooks", None).await;
    let (status, rotated) = api
        .call(
            Method::POST,
            &format!("/subscriptions/{id}/rotate-secret"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let expires: chrono::DateTime<chrono::Utc> =
        rotated["subscription"]["previous_secret_expires_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    let grace = expires - chrono::Utc::now();
    assert!(
        grace > chrono::Duration::hours(23) && grace <= chrono::Duration::hours(24),
        "{grace}"
    );
}

pub(crate) async fn a_test_event_reaches_that_subscription_alone(store: &SqlStore) {
    let api = delivering(store);
    let receiver = Receiver::ok().await;
    // Neither subscription's filter matches the test event's name.
    let (sub, secret) = api.subscribe(&receiver.url("/one"), None).await;
    api.subscribe(&receiver.url("/other"), None).await;
    let (status, queued) = api
        .post(&format!("/subscriptions/{sub}/test"), None, json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let received = receiver.wait_for(1).await;
    assert_eq!(received[0].path, "/one");
    assert_eq!(received[0].id(), queued["delivery_id"].as_str().unwrap());
    assert!(
        received[0].verified_with(&secret),
        "signed with its own secret"
    );
    assert_eq!(received[0].json()["test"], true);
    assert_eq!(receiver.received_at("/other").len(), 0);
}

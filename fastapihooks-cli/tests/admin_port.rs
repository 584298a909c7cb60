//! `fastapihooks start --admin-addr --admin-token`: the real binary serves the management API
//! over the application's database — only to requests bearing the token — and refuses to serve
//! it on a public address without one.
#![cfg(feature = "sqlite")]

mod support;

use std::time::Duration;

use fastapihooks_testkit::{Receiver, events};
use serde_json::{Value, json};
use support::{Sidecar, SqliteApp, WAIT, fastapihooks};

const TOKEN: &str = "a-long-random-admin-token-0123456789";
const LISTENING: &str = "management API listening on http://";

/// `method url` with `token` as a bearer token, if any: the status and the JSON body.
async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .timeout(Duration::from_secs(10));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn with_admin_port(app: &SqliteApp) -> (Sidecar, String) {
    let args = app.args(&[
        "--signing-secret",
        "test-secret",
        "--allow-loopback",
        "--admin-addr",
        "127.0.0.1:0",
        "--admin-token",
        TOKEN,
        "--log-level",
        "info",
    ]);
    let sidecar = Sidecar::start_capturing(&args);
    let base = sidecar.listening(LISTENING).await;
    (sidecar, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_api_answers_only_requests_bearing_the_token() {
    let receiver = Receiver::ok().await;
    let app = SqliteApp::with_subscriber(&receiver.url("a")).await;
    let (sidecar, base) = with_admin_port(&app).await;
    let subscriptions = format!("{base}/subscriptions");
    for token in [None, Some("wrong-token-wrong-token-wrong")] {
        let (status, problem) = call(reqwest::Method::GET, &subscriptions, token, None).await;
        assert_eq!(
            (status, &problem["code"]),
            (401, &json!("unauthorized")),
            "{token:?}"
        );
    }
    let (status, page) = call(reqwest::Method::GET, &subscriptions, Some(TOKEN), None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"][0]["id"], app.subscription().id.to_string());
    let (status, document) = call(
        reqwest::Method::GET,
        &format!("{base}/openapi.json"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(document["paths"]["/subscriptions"].is_object());
    drop(sidecar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_made_by_the_sidecar_is_replayed_through_its_management_api() {
    let receiver = Receiver::ok().await;
    let app = SqliteApp::with_subscriber(&receiver.url("a")).await;
    let (sidecar, base) = with_admin_port(&app).await;
    app.publish(&events(1)).await;
    let first = receiver.wait_for(1).await;
    let delivery = first[0].id().to_owned();
    let delivered = fastapihooks_testkit::eventually_async(WAIT, || async {
        call(
            reqwest::Method::GET,
            &format!("{base}/deliveries/{delivery}"),
            Some(TOKEN),
            None,
        )
        .await
        .1["status"]
            == "delivered"
    })
    .await;
    assert!(delivered);
    let (status, replayed) = call(
        reqwest::Method::POST,
        &format!("{base}/deliveries/{delivery}/replay"),
        Some(TOKEN),
        Some(json!({"resend_delivered": true})),
    )
    .await;
    assert_eq!(
        (status, &replayed["outcome"]),
        (200, &json!("queued")),
        "{replayed}"
    );
    let both = receiver.wait_for(2).await;
    assert!(
        both.iter().all(|r| r.id() == delivery),
        "sent again, same id"
    );
    drop(sidecar);
}

#[test]
fn serving_it_on_a_public_address_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
    let out = fastapihooks()
        .args([
            "start",
            "--queue",
            &url,
            "--migrate",
            "--signing-secret",
            "test-secret",
            "--admin-addr",
            "0.0.0.0:0",
        ])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("without --admin-token"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_event_sent_through_the_management_port_is_delivered_by_the_sidecar() {
    let receiver = Receiver::ok().await;
    let app = SqliteApp::with_subscriber(&receiver.url("a")).await;
    let (sidecar, base) = with_admin_port(&app).await;
    let id = app.subscription().id.to_string();
    let (status, queued) = call(
        reqwest::Method::POST,
        &format!("{base}/subscriptions/{id}/test"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let received = receiver.wait_for(1).await;
    assert_eq!(received[0].id(), queued["delivery_id"].as_str().unwrap());
    assert_eq!(
        received[0].header("x-fastapihooks-event"),
        "fastapihooks.test"
    );
    drop(sidecar);
}

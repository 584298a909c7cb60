//! The examples, run: each example file is included as a module and its logic called, so what
//! the examples show is what works.
#![cfg(feature = "sqlite")]

#[cfg(feature = "admin")]
#[path = "../examples/admin.rs"]
#[allow(dead_code, reason = "the example's `main` is not called here")]
pub mod admin;
#[path = "../examples/custom_backend.rs"]
#[allow(dead_code, reason = "the example's `main` is not called here")]
pub mod custom_backend;
#[path = "../examples/custom_store.rs"]
#[allow(dead_code, reason = "the example's `main` is not called here")]
pub mod custom_store;
#[path = "../examples/metrics.rs"]
#[allow(dead_code, reason = "the example's `main` is not called here")]
pub mod metrics_example;
#[path = "../examples/receive_github.rs"]
#[allow(dead_code, reason = "the example's `main` is not called here")]
pub mod receive_github;
#[path = "../examples/receive_own_webhooks.rs"]
#[allow(dead_code, reason = "the example's `main` is not called here")]
pub mod receive_own_webhooks;
#[path = "../examples/sidecar.rs"]
#[allow(dead_code, reason = "the example's `main` is not called here")]
pub mod sidecar;

use std::time::Duration;

use fastapihooks::advanced::{CancellationToken, WorkerConfig};
use fastapihooks::prelude::*;
use fastapihooks::{Queue, SqlBackend};
use fastapihooks_cli::sidecar::{SidecarConfig, run_sidecar_until};
use fastapihooks_testkit::{Receiver, SECRET, serve};

#[tokio::test]
async fn custom_store_enforces_its_tenant_quota_and_delivers_by_owner() {
    let outcome = custom_store::demo().await.unwrap();
    assert!(
        outcome.refused.contains("already has 2 subscriptions"),
        "{}",
        outcome.refused
    );
    let mut received: Vec<(String, usize)> = outcome.received.into_iter().collect();
    received.sort();
    // acme's event reached acme's two endpoints, globex's event globex's one: never across.
    assert_eq!(
        received,
        [
            ("acme-billing".to_owned(), 1),
            ("acme-crm".to_owned(), 1),
            ("globex".to_owned(), 1)
        ]
    );
    assert_eq!(outcome.delivered, 3, "the store recorded every delivery");
}

#[tokio::test]
async fn custom_store_quota_error_keeps_its_type() {
    let store = custom_store::TenantStore::new(1);
    let sub = || {
        Subscription::new("*", "https://example.com/h")
            .unwrap()
            .with_owner("acme")
    };
    store.add_subscription(sub()).await.unwrap();
    let err = store.add_subscription(sub()).await.unwrap_err();
    let source = std::error::Error::source(&err).expect("a source");
    let quota = source
        .downcast_ref::<custom_store::QuotaExceeded>()
        .expect("the store's own error type");
    assert_eq!((quota.owner.as_str(), quota.limit), ("acme", 1));
}

#[tokio::test]
async fn custom_backend_audits_every_event_before_it_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = custom_backend::demo(&dir.path().join("audit.jsonl"))
        .await
        .unwrap();
    let names: Vec<&str> = outcome.audit.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["order.created", "order.paid", "order.created"]);
    assert_eq!(outcome.audit[1].payload.get(), r#"{"order":1}"#);
    assert_eq!(outcome.received, 3);
}

/// `/dev/full` fails every write with ENOSPC: an audit log that cannot be written.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn custom_backend_refuses_an_event_it_cannot_audit_and_delivers_nothing() {
    use fastapihooks::{Backend, Emitter};
    let receiver = Receiver::ok().await;
    let inner = Emitter::builder()
        .http(HttpConfig::default().allow_loopback())
        .subscriber(receiver.subscription("*", "/hooks"))
        .unsigned()
        .build_backend()
        .unwrap();
    let audited = custom_backend::AuditedBackend::open(inner, std::path::Path::new("/dev/full"))
        .await
        .unwrap();
    let err = audited
        .publish(Event::new("order.created", &1).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Storage {
                what: "audit.write" | "audit.sync",
                ..
            }
        ),
        "{err:?}"
    );
    audited.shutdown(Duration::from_secs(5)).await.unwrap();
    assert!(
        receiver.received().is_empty(),
        "an unaudited event was delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_example_delivers_committed_orders_and_nothing_for_refused_ones() {
    let receiver = Receiver::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
    let (store, state) = sidecar::open(&url).await.unwrap();
    sidecar::subscribe_once(&store, &receiver.url("/hooks"))
        .await
        .unwrap();
    let addr = serve(sidecar::app(state)).await;

    let client = fastapihooks_testkit::client();
    let order = |sku: &str| {
        client
            .post(format!("http://{addr}/orders"))
            .json(&serde_json::json!({"sku": sku, "qty": 2}))
            .send()
    };
    assert_eq!(order("A1").await.unwrap().status(), 201);
    assert_eq!(order("").await.unwrap().status(), 422);
    assert_eq!(order("B2").await.unwrap().status(), 201);

    // The sidecar, in-process through the library entry point, on the same database.
    let outbox = std::sync::Arc::new(
        SqlBackend::with_config(
            store.connection().clone(),
            fastapihooks::SqlOutboxConfig {
                visibility_timeout: Duration::from_secs(3),
                poll_interval: Duration::from_millis(50),
                block: Duration::from_millis(200),
            },
        )
        .unwrap(),
    );
    let mut http = HttpConfig::default().allow_loopback();
    http.timeout = Duration::from_secs(1);
    http.connect_timeout = Duration::from_millis(500);
    let config = SidecarConfig {
        secret: Some(Secret::new(SECRET).unwrap()),
        http,
        worker: WorkerConfig {
            concurrency: 4,
            ..WorkerConfig::default()
        },
        ..SidecarConfig::default()
    };
    let stop = CancellationToken::new();
    let running = tokio::spawn(run_sidecar_until(
        outbox.clone(),
        std::sync::Arc::new(store),
        config,
        stop.clone(),
    ));
    let got = receiver.wait_for(2).await;
    // Long enough for a third delivery, if there were one, to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    let report = running.await.unwrap().unwrap();

    let skus: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.json()["sku"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got.len(), 2);
    assert_eq!(
        skus.len(),
        2,
        "the refused order emitted an event: {skus:?}"
    );
    assert!(skus.contains(&"A1".to_owned()) && skus.contains(&"B2".to_owned()));
    assert!(receiver.received().iter().all(|r| r.verified()));
    assert_eq!(report.delivered, 2);
    assert_eq!(outbox.depth().await.unwrap(), 0);
}

/// The example's own store keeps the `Store` contract: what a user writing a store runs, one
/// test per behaviour of `fastapihooks_testkit::contract`.
mod custom_store_contract {
    use fastapihooks::Store;

    /// A fresh store per behaviour, with a quota no behaviour reaches.
    async fn with_store(behaviour: impl AsyncFnOnce(&dyn Store)) {
        behaviour(&super::custom_store::TenantStore::new(usize::MAX)).await;
    }

    fastapihooks_testkit::store_contract!(with_store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_github_processes_a_signed_push_once_and_hides_its_internal_route() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("github.db").display()
    );
    let retry = fastapihooks::RetryPolicy::schedule([Duration::from_millis(20)]);
    let receiving = receive_github::receiving(&database, retry).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = receiving.app.clone();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(receiving.worker.run(shutdown.clone()));
    let body = r#"{"ref":"refs/heads/main","pusher":{"name":"octocat"}}"#;
    let signature =
        fastapihooks::signing::sign_sha256_hex(receive_github::SECRET.as_bytes(), body.as_bytes());
    let client = reqwest::Client::new();
    let push = || {
        client
            .post(format!("{base}/webhooks/github"))
            .header("X-Hub-Signature-256", &signature)
            .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
            .header("X-GitHub-Event", "push")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(push().await.unwrap().status(), 200);
    assert_eq!(
        push().await.unwrap().status(),
        200,
        "a redelivery is acknowledged"
    );
    let pushes = receiving.state.pushes.clone();
    let processed = fastapihooks_testkit::eventually(Duration::from_secs(20), || {
        pushes.lock().unwrap().len() == 1
    })
    .await;
    assert!(processed, "the push was processed");
    let forged = client
        .post(format!("{base}/webhooks/github"))
        .header("X-Hub-Signature-256", "sha256=00")
        .header("X-GitHub-Delivery", "another")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let internal = client
        .post(format!("{base}/internal/github/process"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(internal.status(), 404, "the processing route is internal");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pushes = pushes.lock().unwrap().clone();
    assert_eq!(pushes.len(), 1, "processed once: {pushes:?}");
    assert_eq!(pushes[0].0, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(pushes[0].1.pusher.name, "octocat");
    shutdown.cancel();
    let report = worker.await.unwrap();
    assert_eq!(report.processed, 1);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_own_webhooks_keeps_the_newer_version_of_an_order_and_skips_the_stale_one() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("receiver.db").display()
    );
    let outcome = receive_own_webhooks::demo(&database).await.unwrap();
    let order = outcome.known.get(&7).expect("order 7 known");
    assert_eq!((order.version, order.status.as_str()), (2, "shipped"));
    let skipped: Vec<i64> = outcome.skipped.iter().map(|o| o.version).collect();
    assert_eq!(skipped, [1]);
}

/// On a current-thread runtime every task runs on the test's thread, so the example's recorder
/// is set for this thread only: no global recorder for the other tests of this binary.
#[tokio::test]
async fn metrics_example_serves_the_hook_metrics_after_a_hooked_request() {
    let recorder = metrics_example::prometheus().unwrap().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let scrape = metrics_example::demo(recorder.handle()).await.unwrap();
    for line in [
        r#"fastapihooks_events_published_total{event="order.created"} 1"#,
        r#"fastapihooks_deliveries_total{outcome="delivered"} 1"#,
        "fastapihooks_deliveries_planned_total 1",
        "# TYPE fastapihooks_attempt_duration_seconds histogram",
        "fastapihooks_attempt_duration_seconds_count 1",
        "# TYPE fastapihooks_fanout_subscriptions histogram",
        r#"fastapihooks_fanout_subscriptions_bucket{le="1"} 1"#,
        "fastapihooks_publish_duration_seconds_count 1",
    ] {
        assert!(
            scrape.lines().any(|l| l == line),
            "no `{line}` in:\n{scrape}"
        );
    }
    // What is served is what the catalogue says: type and help text of each metric.
    for spec in fastapihooks::metrics::ALL {
        if !scrape.contains(&format!("\n{} ", spec.name))
            && !scrape.contains(&format!("\n{}{{", spec.name))
            && !scrape.contains(&format!("\n{}_count", spec.name))
        {
            continue; // not recorded by this exchange
        }
        let kind = format!("# TYPE {} {}", spec.name, spec.kind.as_str());
        let help = format!("# HELP {} {}", spec.name, spec.description);
        assert!(scrape.contains(&kind), "no `{kind}` in:\n{scrape}");
        assert!(scrape.contains(&help), "no `{help}` in:\n{scrape}");
    }
}

#[cfg(feature = "admin")]
#[tokio::test]
async fn admin_scopes_the_management_api_to_the_tenant_the_apps_auth_found() {
    let hooks = Hooks::builder()
        .secret(Secret::new(SECRET).unwrap())
        .build()
        .unwrap();
    let seen = admin::demo(&hooks).await.unwrap();
    assert!(seen.created.starts_with("sub_"), "{seen:?}");
    assert_eq!(seen.acme_lists, std::slice::from_ref(&seen.created));
    assert!(seen.globex_lists.is_empty(), "{seen:?}");
    assert_eq!(seen.globex_reads_acmes, reqwest::StatusCode::NOT_FOUND);
    let stored = hooks
        .store()
        .list_subscriptions(&Default::default())
        .await
        .unwrap();
    assert_eq!(
        stored[0].owner.as_deref(),
        Some("acme"),
        "owned by the tenant"
    );
}

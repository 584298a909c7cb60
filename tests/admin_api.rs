//! The management API (`fastapihooks::admin`), driven through a real axum `Router` against
//! SQLite and PostgreSQL: every endpoint's status codes and problem bodies, pagination,
//! tenancy (owner A sees nothing of owner B's: 404, as for ids that do not exist), replay of a
//! delivery that failed against a real receiver — and every answer checked against the
//! committed OpenAPI document.
#![cfg(all(feature = "admin", feature = "sqlite"))]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use fastapihooks::admin::AdminApi;
use fastapihooks::prelude::*;
use fastapihooks::{Backend, Delivery, Emitter, SqlStore};
use fastapihooks_testkit::{Receiver, Reply, SECRET, TempSqlite, eventually_async};
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The committed document.
const OPENAPI_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fastapihooks-axum/openapi.json"
);

/// The header the test's own "auth layer" reads the owner from.
const TENANT: &str = "x-test-tenant";

#[derive(Clone)]
struct Tenant(String);

/// The application: the API nested under `/admin`, behind an auth layer of the test's own that
/// puts the request's tenant into an extension — or, without tenancy, an operator's API.
struct Api {
    app: Router,
    store: Arc<dyn Store>,
    document: Value,
}

impl Api {
    fn new(store: Arc<dyn Store>, backend: Arc<dyn Backend>, tenancy: bool) -> Self {
        let mut admin = AdminApi::new(store.clone(), backend);
        if tenancy {
            admin = admin.owner_from(|parts| parts.extensions.get::<Tenant>().map(|t| t.0.clone()));
        }
        let app = Router::new()
            .nest("/admin", admin.router())
            .layer(axum::middleware::from_fn(
                |mut request: axum::extract::Request, next: axum::middleware::Next| async move {
                    let tenant = request
                        .headers()
                        .get(TENANT)
                        .and_then(|v| v.to_str().ok())
                        .map(|t| Tenant(t.to_owned()));
                    if let Some(tenant) = tenant {
                        request.extensions_mut().insert(tenant);
                    }
                    next.run(request).await
                },
            ));
        let document = serde_json::from_str(&std::fs::read_to_string(OPENAPI_FILE).unwrap())
            .expect("the committed document is JSON");
        Self {
            app,
            store,
            document,
        }
    }

    /// `method /admin{path}` as `tenant` (if any) with a JSON `body`: the status and the JSON
    /// answer, checked against the document.
    async fn call(
        &self,
        method: Method,
        path: &str,
        tenant: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("/admin{path}"));
        if let Some(tenant) = tenant {
            request = request.header(TENANT, tenant);
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
        };
        self.check_against_document(&method, path, status, content_type.as_deref(), &json);
        (status, json)
    }

    async fn get(&self, path: &str, tenant: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, tenant, None).await
    }

    async fn post(&self, path: &str, tenant: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, tenant, Some(body)).await
    }

    /// Creates a subscription to `url` for `owner`: its id and secret.
    async fn subscribe(&self, url: &str, owner: Option<&str>) -> (String, String) {
        let (status, body) = self
            .post(
                "/subscriptions",
                owner,
                json!({"filter": "order.*", "url": url}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["subscription"]["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// The answer must be one the document lists for this operation, with its content type,
    /// and its body must validate against the schema it gives.
    fn check_against_document(
        &self,
        method: &Method,
        path: &str,
        status: StatusCode,
        content_type: Option<&str>,
        body: &Value,
    ) {
        let path = path.split('?').next().unwrap();
        let template = self.document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .find(|template| matches_template(template, path))
            .unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"))
            .clone();
        let operation = &self.document["paths"][&template][method.as_str().to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let response = &operation["responses"][status.as_str()];
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, which the document does not list: {body}"
        );
        let Some(content) = response["content"].as_object() else {
            assert!(
                body.is_null(),
                "{method} {template} {status}: a body not documented"
            );
            return;
        };
        let content_type = content_type.expect("a content type");
        let (media, schema) = content.iter().next().unwrap();
        assert_eq!(content_type, media, "{method} {template} {status}");
        let pointer = format!(
            "#/paths/{}/{}/responses/{}/content/{}/schema",
            escape(&template),
            method.as_str().to_lowercase(),
            status.as_str(),
            escape(media)
        );
        let _ = schema;
        let mut root = self.document.clone();
        root["$ref"] = Value::String(pointer);
        let validator = jsonschema::validator_for(&root).expect("a valid schema");
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: {errors:?} in {body:#}"
        );
    }
}

/// A JSON pointer segment as a URI fragment (`/` → `~1`, `~` → `~0`, braces escaped).
fn escape(segment: &str) -> String {
    segment
        .replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

/// Whether `/subscriptions/sub_1/enable` is an instance of `/subscriptions/{id}/enable`.
fn matches_template(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

/// A store of one kind for one test, with what keeps it alive.
struct TestStore {
    store: SqlStore,
    _guard: Box<dyn std::any::Any + Send>,
}

async fn sqlite(_test: &str) -> Option<TestStore> {
    let (guard, store) = TempSqlite::store().await;
    Some(TestStore {
        store,
        _guard: Box::new(guard),
    })
}

#[cfg(feature = "postgres")]
async fn postgres(test: &str) -> Option<TestStore> {
    let schema = fastapihooks_testkit::TempSchema::create(test).await?;
    let store = fastapihooks::SqlStoreOptions::new(schema.url())
        .postgres_schema(schema.name())
        .connect()
        .await
        .unwrap();
    Some(TestStore {
        store,
        _guard: Box::new(schema),
    })
}

/// The API over `store` with the outbox in its database as the backend (replays are queued,
/// nothing is sent).
fn queued(store: &SqlStore, tenancy: bool) -> Api {
    let store_arc: Arc<dyn Store> = Arc::new(store.clone());
    Api::new(store_arc, fastapihooks_testkit::outbox(store), tenancy)
}

/// The API over `store` delivering in-process with no retries: a failed attempt is final.
fn delivering(store: &SqlStore) -> Api {
    let store_arc: Arc<dyn Store> = Arc::new(store.clone());
    let backend = Emitter::builder()
        .shared_store(store_arc.clone())
        .secret(Secret::new(SECRET).unwrap())
        .http(HttpConfig::default().allow_loopback())
        .retry(RetryPolicy::none())
        .build_backend()
        .unwrap();
    Api::new(store_arc, Arc::new(backend), false)
}

/// Runs `behaviour` on a SQLite store, and on a PostgreSQL one where it answers.
macro_rules! on_each_store {
    ($($behaviour:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    if let Some(db) = super::sqlite(stringify!($behaviour)).await {
                        super::$behaviour(&db.store).await;
                    }
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    if let Some(db) = super::postgres(stringify!($behaviour)).await {
                        super::$behaviour(&db.store).await;
                    }
                }
            )*
        }
    };
}

on_each_store!(
    a_created_subscription_shows_its_secret_once,
    a_malformed_subscription_is_a_400_problem_naming_the_field,
    subscriptions_page_by_cursor_without_skipping_or_repeating,
    a_subscription_is_changed_disabled_enabled_and_deleted,
    rotating_a_secret_shows_the_new_one_once_and_keeps_the_old_for_the_grace,
    owner_a_can_neither_read_nor_change_nor_replay_owner_bs_objects,
    a_failed_delivery_is_found_replayed_and_delivered_through_the_api,
    a_bulk_replay_dry_run_counts_and_changes_nothing,
    a_test_event_reaches_that_subscription_alone,
    deliveries_and_events_page_by_cursor_and_filter,
    stats_count_deliveries_by_status_bucket_and_subscription,
    stats_of_one_owner_count_none_of_anothers,
    a_stats_range_too_long_is_a_400_problem,
    event_types_list_each_name_once_with_its_count,
);

async fn a_created_subscription_shows_its_secret_once(store: &SqlStore) {
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

async fn a_malformed_subscription_is_a_400_problem_naming_the_field(store: &SqlStore) {
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

async fn subscriptions_page_by_cursor_without_skipping_or_repeating(store: &SqlStore) {
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

async fn a_subscription_is_changed_disabled_enabled_and_deleted(store: &SqlStore) {
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

async fn rotating_a_secret_shows_the_new_one_once_and_keeps_the_old_for_the_grace(
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

async fn owner_a_can_neither_read_nor_change_nor_replay_owner_bs_objects(store: &SqlStore) {
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

async fn a_failed_delivery_is_found_replayed_and_delivered_through_the_api(store: &SqlStore) {
    let api = delivering(store);
    let fixed = Arc::new(AtomicBool::new(false));
    let flag = fixed.clone();
    let receiver = Receiver::scripted(move |_, _| {
        if flag.load(Ordering::SeqCst) {
            Reply::ok()
        } else {
            Reply::status(500)
        }
    })
    .await;
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

    fixed.store(true, Ordering::SeqCst);
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

async fn a_bulk_replay_dry_run_counts_and_changes_nothing(store: &SqlStore) {
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

async fn a_test_event_reaches_that_subscription_alone(store: &SqlStore) {
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

async fn deliveries_and_events_page_by_cursor_and_filter(store: &SqlStore) {
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

/// A delivery to `sub` of a new `name` event of `owner` (if any), made at `at` (RFC 3339),
/// in `status`.
fn made_at(
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
fn tally(v: &Value) -> (u64, u64, u64) {
    (
        v["delivered"].as_u64().unwrap(),
        v["failed"].as_u64().unwrap(),
        v["pending"].as_u64().unwrap(),
    )
}

async fn stats_count_deliveries_by_status_bucket_and_subscription(store: &SqlStore) {
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
    assert_eq!(
        (stats["examined"].as_u64(), &stats["truncated"]),
        (Some(6), &json!(false))
    );
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
    assert_eq!(part["examined"], 4, "made at or after 05:30: {part}");
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
    assert_eq!(recent["examined"], 0);
    assert!(recent["success_rate"].is_null(), "{recent}");
    assert_eq!(recent["subscriptions"], json!([]));
    let hours = recent["buckets"].as_array().unwrap().len();
    assert!((24..=25).contains(&hours), "{hours} buckets");
}

async fn stats_of_one_owner_count_none_of_anothers(store: &SqlStore) {
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
    assert_eq!(of_b_sub["examined"], 0, "{of_b_sub}");
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

async fn a_stats_range_too_long_is_a_400_problem(store: &SqlStore) {
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

async fn event_types_list_each_name_once_with_its_count(store: &SqlStore) {
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
    assert_eq!(
        (types["examined"].as_u64(), &types["truncated"]),
        (Some(6), &json!(false))
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

/// Runs a future to completion on a fresh runtime (for the tests that need no store).
fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Runtime::new().unwrap().block_on(future)
}

#[test]
fn the_committed_openapi_document_is_the_one_the_code_generates() {
    let generated = fastapihooks::admin::openapi().to_pretty_json().unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(OPENAPI_FILE, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(OPENAPI_FILE).unwrap_or_default();
    assert!(
        committed == generated,
        "fastapihooks-axum/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test --all-features --test admin_api the_committed_openapi` and commit it"
    );
    let document: Value = serde_json::from_str(&generated).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[test]
fn the_document_is_served_at_openapi_json() {
    block_on(async {
        let (_guard, store) = TempSqlite::store().await;
        let api = queued(&store, false);
        let response = api
            .app
            .clone()
            .oneshot(
                Request::get("/admin/openapi.json")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        let served: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(served, api.document);
    });
}

#[test]
fn every_documented_example_is_valid_against_its_schema() {
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(OPENAPI_FILE).unwrap()).unwrap();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let mut checked = 0;
    for (name, schema) in schemas {
        let Some(example) = schema
            .get("example")
            .or_else(|| schema.get("examples").and_then(|e| e.get(0)))
        else {
            continue;
        };
        let mut root = document.clone();
        root["$ref"] = Value::String(format!("#/components/schemas/{}", escape(name)));
        let validator = jsonschema::validator_for(&root).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(example)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}'s example: {errors:?}");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} examples");
}

//! Receiving end to end: this crate's sender (an in-process `Emitter`, Standard Webhooks) →
//! this crate's receiver (`InboxRoute` → inbox → `Worker::for_inbox` → `Redispatch` into the
//! app's internal route), over real HTTP on 127.0.0.1, with the inbox in SQLite and in
//! PostgreSQL. Every behaviour runs on both.
#![cfg(feature = "sqlite")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{post, post_service};
use axum::{Json, Router};
use fastapihooks::advanced::{CancellationToken, Worker, WorkerConfig};
use fastapihooks::inbox::{
    Inbox, InboxEntry, InboxProcessing, InboxQuery, InboxStatus, NewInboxEntry, Received, key,
};
use fastapihooks::receive::{InboxRoute, Redispatch, Redispatched, WebhookVerifier};
use fastapihooks::signing::{SignatureScheme, Verifier};
use fastapihooks::{
    Backend, BackgroundTaskBackend, DeliveryQuery, DeliveryStatus, Emitter, Event, HttpConfig,
    MemoryStore, OutboxTable, Queue, Replay, RetryPolicy, Secret, SqlBackend, SqlStore,
    SqlStoreOptions, Store, Subscription,
};
use fastapihooks_testkit::eventually_async;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(20);
/// A receiver with its worker, whose sweep for stranded entries never comes within a test:
/// what is processed went through the queue.
const WORKS: Option<Duration> = Some(Duration::from_secs(600));

/// A database the receiver's inbox lives in, which a second receiver can open again (a
/// restart).
enum Database {
    Sqlite(tempfile::TempDir),
    #[cfg(feature = "postgres")]
    Postgres(fastapihooks_testkit::TempSchema),
}

impl Database {
    /// The URL and PostgreSQL schema to open it with (another process can open it too).
    fn location(&self) -> (String, Option<String>) {
        match self {
            Database::Sqlite(dir) => (
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("inbox.db").display()
                ),
                None,
            ),
            #[cfg(feature = "postgres")]
            Database::Postgres(schema) => (schema.url().to_owned(), Some(schema.name().to_owned())),
        }
    }

    async fn open(&self) -> SqlStore {
        let (url, schema) = self.location();
        open(&url, schema.as_deref()).await
    }
}

async fn open(url: &str, schema: Option<&str>) -> SqlStore {
    let mut options = SqlStoreOptions::new(url);
    if let Some(schema) = schema {
        options = options.postgres_schema(schema);
    }
    options.connect().await.unwrap()
}

async fn sqlite(_test: &str) -> Option<Database> {
    Some(Database::Sqlite(tempfile::tempdir().unwrap()))
}

#[cfg(feature = "postgres")]
async fn postgres(test: &str) -> Option<Database> {
    Some(Database::Postgres(
        fastapihooks_testkit::TempSchema::create(test).await?,
    ))
}

/// What the internal route does: hang (as a process about to be killed), fail while `broken`,
/// or for the first `fail_first` attempts; count what it processed, by the sender's id.
#[derive(Clone, Default)]
struct Script {
    hang: Arc<AtomicBool>,
    broken: Arc<AtomicBool>,
    fail_first: Arc<AtomicU32>,
    processed: Arc<Mutex<HashMap<String, u32>>>,
}

impl Script {
    fn processed(&self, external_id: &str) -> u32 {
        self.processed
            .lock()
            .unwrap()
            .get(external_id)
            .copied()
            .unwrap_or(0)
    }
}

async fn process(
    State(script): State<Script>,
    hook: Redispatched,
    Json(_order): Json<serde_json::Value>,
) -> StatusCode {
    if script.hang.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if script.broken.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let failing = script
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    *script
        .processed
        .lock()
        .unwrap()
        .entry(hook.external_id)
        .or_default() += 1;
    StatusCode::NO_CONTENT
}

/// The receiving app on 127.0.0.1:0, its inbox, its queue and (unless stopped) its worker.
struct Receiving {
    url: String,
    inbox: Arc<SqlStore>,
    queue: Arc<SqlBackend>,
    script: Script,
    server: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
    worker: Option<tokio::task::JoinHandle<fastapihooks::advanced::WorkerReport>>,
}

impl Receiving {
    /// Starts the receiver on `db`; with `work`, its inbox worker too (retries: 2, 20 ms apart),
    /// sweeping for stranded entries this often.
    async fn start(db: &Database, script: Script, work: Option<Duration>) -> Self {
        Self::start_on(db.open().await, script, work).await
    }

    async fn start_on(inbox: SqlStore, script: Script, work: Option<Duration>) -> Self {
        let inbox = Arc::new(inbox);
        // The store's own outbox: a webhook and its task are committed together.
        let queue = Arc::new(
            SqlBackend::for_store_with_config(
                &inbox,
                fastapihooks::SqlOutboxConfig {
                    visibility_timeout: Duration::from_secs(5),
                    poll_interval: Duration::from_millis(20),
                    block: Duration::from_millis(200),
                },
            )
            .unwrap()
            .on_table(OutboxTable::Inbox),
        );
        let verifier =
            Verifier::new(SignatureScheme::StandardWebhooks).secret(Secret::new(SECRET).unwrap());
        let public = InboxRoute::new(
            "shop",
            WebhookVerifier::new(verifier),
            key::standard_webhooks(),
            inbox.clone(),
            queue.clone(),
        );
        let app = Router::new()
            .route("/webhooks/shop", post_service(public))
            .route("/internal/shop/process", post(process))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = {
            let app = app.clone();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() })
        };
        let shutdown = CancellationToken::new();
        let worker = work.map(|sweep| {
            let processor = Redispatch::new(app).route("shop", "/internal/shop/process");
            let processing = InboxProcessing::new(inbox.clone(), Arc::new(processor))
                .retry(RetryPolicy::schedule([
                    Duration::from_millis(20),
                    Duration::from_millis(20),
                ]))
                .timeout(Duration::from_secs(2))
                .stranded_after(sweep);
            let worker =
                Worker::for_inbox(queue.clone(), processing, WorkerConfig::default()).unwrap();
            tokio::spawn(worker.run(shutdown.clone()))
        });
        Self {
            url,
            inbox,
            queue,
            script,
            server,
            shutdown,
            worker,
        }
    }

    /// Stops serving and processing, as a process that ends would.
    async fn stop(self) {
        self.shutdown.cancel();
        if let Some(worker) = self.worker {
            worker.await.unwrap();
        }
        self.server.abort();
    }

    async fn entries(&self) -> Vec<InboxEntry> {
        self.inbox.list_inbox(&InboxQuery::default()).await.unwrap()
    }

    async fn until(&self, what: impl Fn(&[InboxEntry]) -> bool) -> Vec<InboxEntry> {
        let reached = eventually_async(WAIT, || async { what(&self.entries().await) }).await;
        let entries = self.entries().await;
        assert!(reached, "not reached within {WAIT:?}: {entries:#?}");
        entries
    }
}

/// This crate's sender, in-process, delivering `order.updated` to the receiver, signed with
/// Standard Webhooks; its delivery history in memory.
struct Sending {
    backend: Arc<BackgroundTaskBackend>,
    store: Arc<MemoryStore>,
}

impl Sending {
    fn to(receiver: &Receiving) -> Self {
        Self::to_url(&receiver.url)
    }

    fn to_url(receiver: &str) -> Self {
        let store = Arc::new(MemoryStore::new());
        let subscription = Subscription::new("order.updated", &format!("{receiver}/webhooks/shop"))
            .unwrap()
            .with_signature_scheme(SignatureScheme::StandardWebhooks);
        let backend = Emitter::builder()
            .shared_store(store.clone())
            .subscriber(subscription)
            .secret(Secret::new(SECRET).unwrap())
            .http(HttpConfig::default().allow_loopback())
            .retry(RetryPolicy::schedule([Duration::from_millis(50)]))
            .build_backend()
            .unwrap();
        Self {
            backend: Arc::new(backend),
            store,
        }
    }

    /// Sends one event and waits until the receiver acknowledged it; returns the delivery id
    /// (the `webhook-id` the receiver keys on).
    async fn send(&self, order: u64) -> String {
        let event = Event::new("order.updated", &serde_json::json!({"order": order})).unwrap();
        let id = event.id().clone();
        self.backend.publish(event).await.unwrap();
        let delivered = eventually_async(WAIT, || async {
            self.delivered().await.iter().any(|d| d.event.id() == &id)
        })
        .await;
        assert!(delivered, "the receiver acknowledged the webhook");
        let deliveries = self.delivered().await;
        deliveries
            .iter()
            .find(|d| d.event.id() == &id)
            .map(|d| d.id.to_string())
            .unwrap()
    }

    async fn delivered(&self) -> Vec<fastapihooks::Delivery> {
        self.store
            .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Delivered))
            .await
            .unwrap()
    }
}

/// POSTs `body` to the receiver's public route, signed (Standard Webhooks) as `delivery_id` with
/// `secret`: the status answered.
async fn post_signed(receiver: &Receiving, delivery_id: &str, secret: &str, body: &[u8]) -> u16 {
    let mut headers = http::HeaderMap::new();
    SignatureScheme::StandardWebhooks.signer().sign(
        &fastapihooks::signing::SignInput {
            delivery_id,
            event_name: "order.updated",
            timestamp: chrono::Utc::now().timestamp(),
            body,
        },
        &[&Secret::new(secret).unwrap()],
        &mut headers,
    );
    reqwest::Client::new()
        .post(format!("{}/webhooks/shop", receiver.url))
        .headers(headers)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn a_webhook_sent_again_is_acknowledged_and_processed_once(db: Database) {
    let receiver = Receiving::start(&db, Script::default(), WORKS).await;
    let sender = Sending::to(&receiver);
    let id = sender.send(1).await;
    receiver
        .until(|e| e.len() == 1 && e[0].status == InboxStatus::Processed)
        .await;
    // The sender delivers it again, under the same id: acknowledged, not processed again.
    let replayed = Replay::new(sender.store.clone(), sender.backend.clone())
        .resend_delivered(true)
        .delivery(&id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(replayed.as_str(), "queued");
    let acknowledged = eventually_async(WAIT, || async {
        let attempts = sender
            .store
            .list_attempts(&id.parse().unwrap())
            .await
            .unwrap();
        attempts.len() == 2
            && attempts
                .iter()
                .all(|a| a.status_code().is_some_and(|s| (200..300).contains(&s)))
    })
    .await;
    assert!(acknowledged, "the second copy was answered with a 2xx");
    // Give a wrongly queued second processing the time to happen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.script.processed(&id), 1);
    let entries = receiver.entries().await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0].attempts, 1);
    receiver.stop().await;
}

async fn a_processing_failure_is_retried_then_succeeds(db: Database) {
    let script = Script::default();
    script.fail_first.store(2, Ordering::SeqCst);
    let receiver = Receiving::start(&db, script, WORKS).await;
    let id = Sending::to(&receiver).send(1).await;
    let entries = receiver
        .until(|e| e.len() == 1 && e[0].status == InboxStatus::Processed)
        .await;
    assert_eq!(entries[0].attempts, 3, "two failures, then success");
    assert_eq!(receiver.script.processed(&id), 1);
    receiver.stop().await;
}

async fn a_route_that_keeps_failing_ends_dead_and_a_replay_processes_it_once_fixed(db: Database) {
    let script = Script::default();
    script.broken.store(true, Ordering::SeqCst);
    let receiver = Receiving::start(&db, script, WORKS).await;
    let id = Sending::to(&receiver).send(1).await;
    let entries = receiver
        .until(|e| e.len() == 1 && e[0].status == InboxStatus::Dead)
        .await;
    let dead = &entries[0];
    assert_eq!(dead.attempts, 3, "the first attempt and two retries");
    let error = dead.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("/internal/shop/process") && error.contains("500"),
        "{error}"
    );
    assert_eq!(receiver.queue.dead_letters().await.unwrap(), 1);
    // Fixed, then replayed with `fastapihooks inbox replay <id>`.
    receiver.script.broken.store(false, Ordering::SeqCst);
    let (url, schema) = db.location();
    let mut args = vec![
        "fastapihooks".to_owned(),
        "inbox".into(),
        "replay".into(),
        "--database".into(),
        url,
        dead.id.to_string(),
    ];
    if let Some(schema) = schema {
        args.extend(["--postgres-schema".into(), schema]);
    }
    let mut out = Vec::new();
    let cli = <fastapihooks_cli::Cli as clap::Parser>::try_parse_from(args).unwrap();
    fastapihooks_cli::run(cli, &mut out).await.unwrap();
    let printed = String::from_utf8_lossy(&out);
    assert!(printed.contains("queued 1"), "{printed}");
    let entries = receiver
        .until(|e| e[0].status == InboxStatus::Processed)
        .await;
    assert_eq!(entries[0].attempts, 4);
    assert_eq!(receiver.script.processed(&id), 1);
    receiver.stop().await;
}

async fn a_webhook_acknowledged_before_the_receiver_stopped_is_processed_after_it_restarts(
    db: Database,
) {
    // The first receiver acknowledges and stops before it processes anything.
    let first = Receiving::start(&db, Script::default(), None).await;
    let id = Sending::to(&first).send(1).await;
    let entries = first.entries().await;
    assert_eq!(entries[0].status, InboxStatus::Received);
    assert_eq!(first.script.processed(&id), 0);
    first.stop().await;
    // The restarted receiver — new connections, new worker, same database — processes it.
    let restarted = Receiving::start(&db, Script::default(), WORKS).await;
    restarted
        .until(|e| e.len() == 1 && e[0].status == InboxStatus::Processed)
        .await;
    assert_eq!(restarted.script.processed(&id), 1);
    restarted.stop().await;
}

async fn a_webhook_stored_without_its_task_is_queued_by_the_stranded_sweep(db: Database) {
    let sweep = Some(Duration::from_millis(300));
    let receiver = Receiving::start(&db, Script::default(), sweep).await;
    // Stored, its task never queued (the process stopped between the two).
    let stored = receiver
        .inbox
        .receive(NewInboxEntry {
            source: "shop".into(),
            external_id: "msg_stranded".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: bytes::Bytes::from_static(br#"{"order":9}"#),
            ordering: None,
        })
        .await
        .unwrap();
    assert!(matches!(stored, Received::New(_)));
    receiver
        .until(|e| e.len() == 1 && e[0].status == InboxStatus::Processed)
        .await;
    assert_eq!(receiver.script.processed("msg_stranded"), 1);
    receiver.stop().await;
}

async fn the_internal_route_is_not_found_from_the_network(db: Database) {
    let receiver = Receiving::start(&db, Script::default(), WORKS).await;
    let response = reqwest::Client::new()
        .post(format!("{}/internal/shop/process", receiver.url))
        .json(&serde_json::json!({"order": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(receiver.script.processed.lock().unwrap().is_empty());
    receiver.stop().await;
}

async fn a_webhook_signed_with_another_secret_is_refused_and_not_stored(db: Database) {
    let receiver = Receiving::start(&db, Script::default(), WORKS).await;
    let status = post_signed(
        &receiver,
        "msg_forged",
        "whsec_b3RoZXItc2VjcmV0LW9mLTMyLWJ5dGVzLWxvbmc=",
        br#"{"order":1}"#,
    )
    .await;
    assert_eq!(status, 401);
    assert!(receiver.entries().await.is_empty());
    receiver.stop().await;
}

async fn a_webhook_whose_task_cannot_be_queued_is_not_stored_either(db: Database) {
    let receiver = Receiving::start(&db, Script::default(), None).await;
    // The inbox queue refuses every row (a trigger of the test's own): the entry and its task
    // are one transaction, so the entry is not kept either, and the sender is told to retry.
    let refuse = match &db {
        Database::Sqlite(_) => vec![
            "CREATE TRIGGER refuse_tasks BEFORE INSERT ON fastapihooks_inbox_queue \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                .to_owned(),
        ],
        #[cfg(feature = "postgres")]
        Database::Postgres(_) => vec![
            "CREATE FUNCTION refuse_tasks() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                .to_owned(),
            "CREATE TRIGGER refuse_tasks BEFORE INSERT ON fastapihooks_inbox_queue \
             FOR EACH ROW EXECUTE FUNCTION refuse_tasks()"
                .to_owned(),
        ],
    };
    for statement in refuse {
        use sea_orm::ConnectionTrait as _;
        receiver
            .inbox
            .connection()
            .execute_unprepared(&statement)
            .await
            .unwrap();
    }
    let status = post_signed(&receiver, "msg_not_queued", SECRET, br#"{"order":1}"#).await;
    assert_eq!(status, 503, "the sender is told to send it again");
    assert!(
        receiver.entries().await.is_empty(),
        "no entry without its task"
    );
    receiver.stop().await;
}

/// The receiver process of the kill test: opens the database the test names, serves with a
/// processing route that hangs, prints its URL, and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the receiver process of `a_receiver_killed_after_acknowledging_…`, started by it"]
async fn receiver_process_that_hangs_while_processing() {
    let Ok(url) = std::env::var("FASTAPIHOOKS_TEST_INBOX_URL") else {
        return;
    };
    let schema = std::env::var("FASTAPIHOOKS_TEST_INBOX_SCHEMA").ok();
    let script = Script::default();
    script.hang.store(true, Ordering::SeqCst);
    let receiver = Receiving::start_on(open(&url, schema.as_deref()).await, script, WORKS).await;
    println!("receiver {}", receiver.url);
    tokio::time::sleep(Duration::from_secs(120)).await;
}

/// Kills the child on drop, whatever happens to the test.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the receiver process on `db` and returns it with its URL.
async fn receiver_process(db: &Database) -> (Killed, String) {
    use std::io::BufRead;
    let (url, schema) = db.location();
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "receiver_process_that_hangs_while_processing",
            "--ignored",
            "--nocapture",
        ])
        .env("FASTAPIHOOKS_TEST_INBOX_URL", &url)
        .stdout(std::process::Stdio::piped());
    if let Some(schema) = &schema {
        command.env("FASTAPIHOOKS_TEST_INBOX_SCHEMA", schema);
    }
    let mut child = Killed(command.spawn().unwrap());
    let stdout = child.0.stdout.take().unwrap();
    let base = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("receiver ").map(str::to_owned))
    })
    .await
    .unwrap()
    .expect("the receiver process printed its URL");
    (child, base)
}

async fn a_receiver_killed_after_acknowledging_is_processed_after_a_restart(db: Database) {
    let (mut child, url) = receiver_process(&db).await;
    // The child acknowledges the sender's webhook, then its processing hangs.
    let observer = Receiving::start(&db, Script::default(), None).await;
    let sender = Sending::to_url(&url);
    let id = sender.send(1).await;
    observer
        .until(|e| e.len() == 1 && e[0].status == InboxStatus::Processing)
        .await;
    observer.stop().await;
    // kill -9 mid-processing: nothing it held is settled.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // A new receiver on the same database processes it once the dead one's lease expires.
    let restarted = Receiving::start(&db, Script::default(), WORKS).await;
    let entries = restarted
        .until(|e| e.len() == 1 && e[0].status == InboxStatus::Processed)
        .await;
    assert_eq!(
        entries[0].attempts, 2,
        "the killed attempt and the one after the restart"
    );
    assert_eq!(restarted.script.processed(&id), 1);
    restarted.stop().await;
}

/// One test per behaviour and database.
macro_rules! on {
    ($db:ident: $($behaviour:ident),+ $(,)?) => {
        mod $db {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    let Some(db) = super::$db(stringify!($behaviour)).await else { return };
                    super::$behaviour(db).await;
                }
            )+
        }
    };
}

macro_rules! every_behaviour {
    ($db:ident) => {
        on!($db:
            a_webhook_sent_again_is_acknowledged_and_processed_once,
            a_processing_failure_is_retried_then_succeeds,
            a_route_that_keeps_failing_ends_dead_and_a_replay_processes_it_once_fixed,
            a_webhook_acknowledged_before_the_receiver_stopped_is_processed_after_it_restarts,
            a_receiver_killed_after_acknowledging_is_processed_after_a_restart,
            a_webhook_stored_without_its_task_is_queued_by_the_stranded_sweep,
            the_internal_route_is_not_found_from_the_network,
            a_webhook_signed_with_another_secret_is_refused_and_not_stored,
            a_webhook_whose_task_cannot_be_queued_is_not_stored_either,
        );
    };
}

every_behaviour!(sqlite);
#[cfg(feature = "postgres")]
every_behaviour!(postgres);

//! The outbox through the hook: a route wrapped in `hook(..).in_transaction(&outbox)` writes its
//! rows and its event in one transaction — both or neither — on SQLite, PostgreSQL and MariaDB.
//!
//! The app's handler inserts an order through its `HookTransaction`; its JSON body can ask it to
//! fail its second write (`twice`), to answer another status (`then`), or to leave a deferred
//! foreign key broken so that the commit itself fails (`orphan`).
#![cfg(all(feature = "sqlite", feature = "postgres", feature = "mysql"))]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Json;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fastapihooks::{HookTransaction, Hooks, SqlBackend, SqlStore, SqlStoreOptions};
use fastapihooks_testkit::{client, serve};
use http::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::Deserialize;
use serde_json::json;

/// One database for one test, and whatever keeps it alive.
struct Db {
    store: SqlStore,
    _guard: Box<dyn std::any::Any + Send>,
}

async fn sqlite(_test: &str) -> Option<Db> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    Some(Db {
        store,
        _guard: Box::new(dir),
    })
}

async fn postgres(test: &str) -> Option<Db> {
    let schema = fastapihooks_testkit::TempSchema::create(test).await?;
    let store = SqlStoreOptions::new(schema.url())
        .postgres_schema(schema.name())
        .connect()
        .await
        .unwrap();
    Some(Db {
        store,
        _guard: Box::new(schema),
    })
}

async fn mysql(test: &str) -> Option<Db> {
    let database = fastapihooks_testkit::TempDatabase::mysql(test).await?;
    let store = SqlStore::connect(database.url()).await.unwrap();
    Some(Db {
        store,
        _guard: Box::new(database),
    })
}

/// What the test app's handler is asked to do.
#[derive(Deserialize)]
struct Order {
    sku: String,
    /// Insert the order a second time: the write fails on the unique key.
    #[serde(default)]
    twice: bool,
    /// Answer this status instead of 201, after the write.
    #[serde(default)]
    then: Option<u16>,
    /// Leave a row whose deferred foreign key is broken: the commit fails.
    #[serde(default)]
    orphan: bool,
}

async fn create_order(tx: HookTransaction, Json(order): Json<Order>) -> Response {
    let backend = tx.get_database_backend();
    let insert = |sku: &str| {
        Statement::from_sql_and_values(
            backend,
            format!("INSERT INTO orders (sku) VALUES ({})", placeholder(backend)),
            [sku.into()],
        )
    };
    if tx.execute_raw(insert(&order.sku)).await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    if order.twice && tx.execute_raw(insert(&order.sku)).await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    if order.orphan {
        let orphan = "INSERT INTO order_lines (order_id) VALUES (999999)";
        if tx.execute_unprepared(orphan).await.is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    let status = StatusCode::from_u16(order.then.unwrap_or(201)).unwrap();
    (status, Json(json!({"sku": order.sku}))).into_response()
}

fn placeholder(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::MySql => "?",
        _ => "$1",
    }
}

/// The app's tables: orders (unique sku) and order lines whose foreign key is checked at commit
/// (deferred) where the database can defer it (PostgreSQL, SQLite).
async fn create_tables(db: &DatabaseConnection) {
    let statements: &[&str] = match db.get_database_backend() {
        DbBackend::Postgres => &[
            "CREATE TABLE orders (id SERIAL PRIMARY KEY, sku TEXT NOT NULL UNIQUE)",
            "CREATE TABLE order_lines (order_id INT REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED)",
        ],
        DbBackend::MySql => &[
            "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, sku VARCHAR(64) NOT NULL UNIQUE)",
        ],
        _ => &[
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE)",
            "CREATE TABLE order_lines (order_id INT REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED)",
        ],
    };
    for statement in statements {
        db.execute_unprepared(statement).await.unwrap();
    }
}

/// Makes every outbox insert fail, as a full disk or a broken database would.
async fn refuse_outbox_writes(db: &DatabaseConnection) {
    let statements: &[&str] = match db.get_database_backend() {
        DbBackend::Postgres => &[
            "CREATE FUNCTION refuse_outbox() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_outbox BEFORE INSERT ON fastapihooks_outbox FOR EACH ROW EXECUTE FUNCTION refuse_outbox()",
        ],
        DbBackend::MySql => &[
            "CREATE TRIGGER refuse_outbox BEFORE INSERT ON fastapihooks_outbox FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'outbox refused'",
        ],
        _ => &[
            "CREATE TRIGGER refuse_outbox BEFORE INSERT ON fastapihooks_outbox BEGIN SELECT RAISE(ABORT, 'outbox refused'); END",
        ],
    };
    for statement in statements {
        db.execute_unprepared(statement).await.unwrap();
    }
}

struct App {
    addr: SocketAddr,
    db: DatabaseConnection,
    _db: Db,
}

async fn app(db: Db) -> App {
    let connection = db.store.connection().clone();
    create_tables(&connection).await;
    let outbox = Arc::new(SqlBackend::for_store(&db.store));
    let hooks = Hooks::shared_publisher(outbox.clone())
        .store(db.store.clone())
        .build()
        .unwrap();
    let hook = hooks.hook("order.created").unwrap().in_transaction(&outbox);
    let router = Router::new().route("/orders", post(create_order).layer(hook));
    App {
        addr: serve(router).await,
        db: connection,
        _db: db,
    }
}

impl App {
    async fn order(&self, body: serde_json::Value) -> reqwest::Response {
        client()
            .post(format!("http://{}/orders", self.addr))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }

    async fn orders_and_events(&self) -> (i64, i64) {
        (
            self.count("orders").await,
            self.count("fastapihooks_outbox").await,
        )
    }
}

async fn a_success_commits_the_write_and_its_event_together(db: Db) {
    let app = app(db).await;
    let response = app.order(json!({"sku": "A1"})).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.text().await.unwrap(), r#"{"sku":"A1"}"#);
    assert_eq!(app.orders_and_events().await, (1, 1));
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT task FROM fastapihooks_outbox",
        ))
        .await
        .unwrap()
        .unwrap();
    let task: String = row.try_get("", "task").unwrap();
    assert!(
        task.contains("order.created") && task.contains(r#""sku":"A1""#),
        "{task}"
    );
}

async fn a_handler_whose_write_fails_commits_nothing(db: Db) {
    let app = app(db).await;
    let response = app.order(json!({"sku": "A1", "twice": true})).await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        app.orders_and_events().await,
        (0, 0),
        "the first insert is rolled back with the failed one, and no event is written"
    );
}

async fn a_handler_answering_4xx_commits_nothing(db: Db) {
    let app = app(db).await;
    let response = app.order(json!({"sku": "A1", "then": 422})).await;
    assert_eq!(response.status(), 422, "the handler's answer is kept");
    assert_eq!(app.orders_and_events().await, (0, 0));
}

async fn a_failing_outbox_write_rolls_back_and_answers_503(db: Db) {
    let app = app(db).await;
    refuse_outbox_writes(&app.db).await;
    let response = app.order(json!({"sku": "A1"})).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "event_not_published");
    assert_eq!(
        app.count("orders").await,
        0,
        "the order is rolled back with its event"
    );
}

async fn a_failing_commit_answers_503_and_commits_nothing(db: Db) {
    let app = app(db).await;
    let response = app.order(json!({"sku": "A1", "orphan": true})).await;
    assert_eq!(response.status(), 503, "{:?}", response.text().await);
    assert_eq!(app.orders_and_events().await, (0, 0));
}

/// One test per behaviour and database.
macro_rules! on {
    ($db:ident: $($behaviour:ident),+ $(,)?) => {
        mod $db {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    let Some(db) = super::$db(stringify!($behaviour)).await else { return };
                    super::$behaviour(db).await;
                }
            )+
        }
    };
}

on!(sqlite:
    a_success_commits_the_write_and_its_event_together,
    a_handler_whose_write_fails_commits_nothing,
    a_handler_answering_4xx_commits_nothing,
    a_failing_outbox_write_rolls_back_and_answers_503,
    a_failing_commit_answers_503_and_commits_nothing,
);
on!(postgres:
    a_success_commits_the_write_and_its_event_together,
    a_handler_whose_write_fails_commits_nothing,
    a_handler_answering_4xx_commits_nothing,
    a_failing_outbox_write_rolls_back_and_answers_503,
    a_failing_commit_answers_503_and_commits_nothing,
);
// MariaDB checks foreign keys at once (it cannot defer them), so the commit-failure case has no
// portable trigger there; the outbox-write failure covers the rollback path.
on!(mysql:
    a_success_commits_the_write_and_its_event_together,
    a_handler_whose_write_fails_commits_nothing,
    a_handler_answering_4xx_commits_nothing,
    a_failing_outbox_write_rolls_back_and_answers_503,
);

#[tokio::test]
async fn a_route_without_a_transactional_hook_cannot_extract_a_transaction() {
    let hooks = Hooks::builder().unsigned().build().unwrap();
    let router = Router::new().route(
        "/orders",
        post(create_order).layer(hooks.hook("order.created").unwrap()),
    );
    let addr = serve(router).await;
    let response = client()
        .post(format!("http://{addr}/orders"))
        .json(&json!({"sku": "A1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "no_hook_transaction");
}

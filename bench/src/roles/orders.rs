//! The handler of `POST /orders` in its three forms: answering the order without a database
//! (the quickstart's), writing it as a row in PostgreSQL in a transaction of its own, or
//! writing it in the transaction of a transactional hook (the outbox: the event's row commits
//! with it). The two database forms do the same work apart from the hook's.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::http::StatusCode;
use axum::routing::{MethodRouter, post};
use fastapihooks::HookTransaction;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::Value;

use crate::wire::order;

/// The order table of the database forms, made by the conductor in the run's schema.
pub const CREATE_TABLE: &str =
    "CREATE TABLE bench_orders (id BIGINT PRIMARY KEY, body TEXT NOT NULL)";

static NEXT_ORDER: AtomicU64 = AtomicU64::new(1);

/// The answer: the order with its new id.
type Answer = (StatusCode, Json<Value>);

/// `POST /orders` answering the order; with `db`, after writing it in a transaction (begin,
/// insert, commit).
pub fn route(db: Option<DatabaseConnection>) -> MethodRouter {
    match db {
        None => post(create_order),
        Some(db) => post(move |body| create_order_in(db.clone(), body)),
    }
}

/// `POST /orders` writing the order through the transactional hook's transaction (the layer
/// begins it and commits it with the event's outbox row).
pub fn route_in_hook_transaction() -> MethodRouter {
    post(create_order_in_hook_transaction)
}

/// The handler that knows nothing about webhooks or databases.
async fn create_order(Json(body): Json<Value>) -> Answer {
    new_order(body).1
}

async fn create_order_in(
    db: DatabaseConnection,
    Json(body): Json<Value>,
) -> Result<Answer, StatusCode> {
    let row = body.to_string();
    let (id, answer) = new_order(body);
    let txn = db.begin().await.map_err(internal)?;
    txn.execute_raw(insert(id, row)).await.map_err(internal)?;
    txn.commit().await.map_err(internal)?;
    Ok(answer)
}

async fn create_order_in_hook_transaction(
    tx: HookTransaction,
    Json(body): Json<Value>,
) -> Result<Answer, StatusCode> {
    let row = body.to_string();
    let (id, answer) = new_order(body);
    tx.execute_raw(insert(id, row)).await.map_err(internal)?;
    Ok(answer)
}

/// A new order: its id, and the answer (the order with its id).
fn new_order(body: Value) -> (u64, Answer) {
    let id = NEXT_ORDER.fetch_add(1, Ordering::Relaxed);
    let mut answer = order(id);
    answer["order"] = body;
    (id, (StatusCode::CREATED, Json(answer)))
}

/// The row of order `id`.
fn insert(id: u64, body: String) -> Statement {
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO bench_orders (id, body) VALUES ($1, $2)",
        [i64::try_from(id).unwrap_or(i64::MAX).into(), body.into()],
    )
}

/// A database error: 500 (counted as a failed request by the load generator).
fn internal(e: sea_orm::DbErr) -> StatusCode {
    eprintln!("app: order not written: {e}");
    StatusCode::INTERNAL_SERVER_ERROR
}

//! The outbox through the hook: a route that runs in a database transaction, handed to the
//! handler as [`HookTransaction`]; the layer writes the event into the SQL outbox in the same
//! transaction and commits only if the response is a success — so the event exists if and only
//! if the handler's writes do.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use fastapihooks_core::SqlBackend;
use fastapihooks_core::metrics::{EVENTS_PUBLISHED_TOTAL, HOOK_TRANSACTION_FAILED_TOTAL};
use http::StatusCode;
use http::request::Parts;
use sea_orm::{DatabaseTransaction, TransactionTrait};

use crate::event::Built;
use crate::layer::Hook;
use crate::problem::Problem;

/// The database transaction of a route wrapped in a
/// [transactional hook](crate::Hook::in_transaction). Do the route's writes through it
/// (`&*tx` is a sea-orm `ConnectionTrait`); the hook commits them together with the event, or
/// neither.
///
/// ```no_run
/// use std::sync::Arc;
/// use axum::{Json, Router, http::StatusCode, routing::post};
/// use fastapihooks_axum::{HookTransaction, Hooks};
/// use fastapihooks_core::{SqlBackend, SqlStore};
/// use sea_orm::{ConnectionTrait, Statement};
/// use serde_json::{Value, json};
///
/// async fn create_order(tx: HookTransaction, Json(order): Json<Value>) -> Result<Json<Value>, StatusCode> {
///     let insert = Statement::from_sql_and_values(
///         tx.get_database_backend(),
///         "INSERT INTO orders (sku) VALUES ($1)",
///         [order["sku"].as_str().unwrap_or_default().into()],
///     );
///     tx.execute_raw(insert).await.map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
///     Ok(Json(json!({"order": order})))
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqlStore::connect("postgres://app@127.0.0.1/app").await?;
/// let outbox = Arc::new(SqlBackend::for_store(&store));
/// let hooks = Hooks::shared_publisher(outbox.clone()).store(store).build()?;
/// let app: Router = Router::new().route(
///     "/orders",
///     post(create_order).layer(hooks.hook("order.created")?.in_transaction(&outbox)),
/// );
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct HookTransaction(Arc<DatabaseTransaction>);

impl std::fmt::Debug for HookTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("HookTransaction").finish_non_exhaustive()
    }
}

impl Deref for HookTransaction {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for HookTransaction {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        parts.extensions.get::<HookTransaction>().cloned().ok_or_else(|| {
            tracing::error!(
                "HookTransaction extracted on a route without a transactional hook: wrap it in `hooks.hook(..)?.in_transaction(&outbox)`"
            );
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no_hook_transaction",
                "Route misconfigured",
                "the route asks for a transaction that no hook provides",
            )
        })
    }
}

/// Begins the route's transaction and hands it to the handler through `parts`; on failure, the
/// response to give instead (the handler does not run).
pub(crate) async fn begin(
    outbox: &SqlBackend,
    parts: &mut Parts,
) -> Result<Arc<DatabaseTransaction>, Response> {
    match outbox.connection().begin().await {
        Ok(txn) => {
            let txn = Arc::new(txn);
            parts.extensions.insert(HookTransaction(txn.clone()));
            Ok(txn)
        }
        Err(e) => {
            failed("begin", &e);
            Err(unavailable())
        }
    }
}

/// Ends the route's transaction once the handler has answered `response`: commits the
/// handler's writes and the event's outbox row together when the response passes the hook's
/// status filter and its event could be written; otherwise rolls everything back.
pub(crate) async fn finish(
    hook: &Hook,
    outbox: &SqlBackend,
    txn: Arc<DatabaseTransaction>,
    response: Response,
    build: impl AsyncFnOnce(Response) -> (Built, Response),
) -> Response {
    let Ok(txn) = Arc::try_unwrap(txn) else {
        tracing::error!(
            event = %hook.name,
            "the handler kept its HookTransaction beyond the request: nothing is committed"
        );
        return Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "transaction_kept",
            "Transaction not ended",
            "the route kept its transaction beyond the request; nothing was committed",
        )
        .into_response();
    };
    if !hook.emits_for(response.status()) {
        rollback(txn).await;
        return response;
    }
    let (built, response) = build(response).await;
    // The event written to the outbox: published once the transaction commits.
    let mut written = None;
    match built {
        Built::Filtered => {}
        Built::NotEmitted => {
            rollback(txn).await;
            return Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "event_not_built",
                "Event not built",
                "the response could not be made into an event; nothing was committed",
            )
            .into_response();
        }
        Built::Event(event) => {
            let event = hook.emitter.traced(event);
            if let Err(e) = hook.emitter.check(&event) {
                rollback(txn).await;
                failed("event check", &e);
                return Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "event_too_large",
                    "Event too large",
                    "the event exceeds the payload limit; nothing was committed",
                )
                .into_response();
            }
            if let Err(e) = outbox.publish_in(&txn, &event).await {
                rollback(txn).await;
                tracing::error!(event_id = %event.id(), event = %event.name(), size = event.payload().len(), error = %e, "outbox write failed: the transaction is rolled back");
                metrics::counter!(HOOK_TRANSACTION_FAILED_TOTAL, "step" => "outbox").increment(1);
                return unavailable();
            }
            written = Some(event.name().clone());
        }
    }
    match txn.commit().await {
        Ok(()) => {
            if let Some(name) = written {
                metrics::counter!(EVENTS_PUBLISHED_TOTAL, "event" => name.to_string()).increment(1);
            }
            response
        }
        Err(e) => {
            failed("commit", &e);
            unavailable()
        }
    }
}

async fn rollback(txn: DatabaseTransaction) {
    if let Err(e) = txn.rollback().await {
        // The database ends a transaction whose connection is gone; nothing was committed.
        tracing::warn!(error = %e, "rollback failed");
    }
}

fn failed(step: &'static str, error: &dyn std::fmt::Display) {
    tracing::error!(step, error = %error, "hook transaction failed: nothing was committed");
    metrics::counter!(HOOK_TRANSACTION_FAILED_TOTAL, "step" => step).increment(1);
}

fn unavailable() -> Response {
    Problem::event_not_published(false).into_response()
}

//! What the delivery history's foreign keys guaranteed before migration 16 dropped them, kept by
//! the store's statements (`store/sql/parents.rs`): a prune and a writer of deliveries of the
//! same event are ordered on the event's row, so no delivery is left without its event.
//! `parent_behaviours!(harness)` runs each on a database with concurrent writers (PostgreSQL,
//! MariaDB; SQLite has one writer at a time). Each holds one side's lock in a transaction of its
//! own, the test's, and runs the store's other side against it. Writers sharing events take them
//! in key order besides, so two never wait for each other in a cycle.

use std::time::Duration;

use chrono::Utc;
use fastapihooks_core::{AttemptOutcome, Delivery, DeliveryStatus, SqlStore, Store};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait};
use tokio::task::JoinHandle;

use fastapihooks_testkit::fixtures::{attempt, delivery, event};

/// One `#[tokio::test]` per behaviour below, each run through `$harness`.
macro_rules! parent_behaviours {
    ($harness:path) => {
        parent_behaviours!(@each $harness;
            a_prune_waits_for_a_writer_holding_the_event_and_keeps_it,
            a_writer_waits_for_a_prune_holding_the_event_and_stores_it_again,
            a_batch_takes_its_events_in_key_order_so_a_writer_sharing_them_never_deadlocks_with_it,
        );
    };
    (@each $harness:path; $($behaviour:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $behaviour() {
                $harness($crate::parents::$behaviour).await;
            }
        )*
    };
}

/// An event whose one delivery was delivered: all of it prunable by a cut-off in the future.
async fn delivered_event(store: &SqlStore) -> fastapihooks_core::Event {
    let e = event("order.created", None);
    let mut d = delivery(&e, &fastapihooks_core::SubscriptionId::new());
    store
        .record_deliveries(std::slice::from_ref(&d))
        .await
        .unwrap();
    let response = AttemptOutcome::Response {
        status: 204,
        body_excerpt: String::new(),
    };
    (d.attempts, d.status, d.next_attempt_at) = (1, DeliveryStatus::Delivered, None);
    store
        .record_attempt(&d, &attempt(&d, 1, response))
        .await
        .unwrap();
    e
}

/// `sql` run in `txn`, its `?`s written as the database's placeholders.
async fn run(txn: &DatabaseTransaction, sql: &str, values: Vec<sea_orm::Value>) {
    let backend = txn.get_database_backend();
    let mut n = 0;
    let sql: String = sql
        .chars()
        .map(|c| match (c, backend) {
            ('?', DbBackend::Postgres) => {
                n += 1;
                format!("${n}")
            }
            _ => c.to_string(),
        })
        .collect();
    txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
}

/// The database session of `txn`, as the server names it.
async fn session(txn: &DatabaseTransaction) -> i64 {
    let sql = match txn.get_database_backend() {
        DbBackend::Postgres => "SELECT CAST(pg_backend_pid() AS BIGINT) AS s",
        _ => "SELECT CAST(CONNECTION_ID() AS SIGNED) AS s",
    };
    let row = txn
        .query_one_raw(Statement::from_string(txn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Whether another session waits for a lock `session` holds; asked until one does or `task` has
/// finished (for at most 30 s), so a store call that never waits is seen finished instead.
async fn waits_for<T>(store: &SqlStore, session: i64, task: &JoinHandle<T>) -> bool {
    let db = store.connection();
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM pg_stat_activity \
             WHERE {session} = ANY(pg_blocking_pids(pid))"
        ),
        // MariaDB does not list every wait on a lock (not one on a row another transaction
        // has just inserted): a statement of this test's database running for half a second,
        // in a session other than `session` and this one, is one waiting.
        _ => format!(
            "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.PROCESSLIST \
             WHERE db = DATABASE() AND command IN ('Query', 'Execute') AND time_ms >= 500 \
             AND id <> CONNECTION_ID() AND id <> {session}"
        ),
    };
    for _ in 0..1_500 {
        if task.is_finished() {
            return false;
        }
        let row = db
            .query_one_raw(Statement::from_string(backend, sql.clone()))
            .await
            .unwrap()
            .unwrap();
        if row.try_get_by_index::<i64>(0).unwrap() > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A delivery of `e` delivered at its first attempt, as a fan-out records it.
fn delivered_first_attempt(e: &fastapihooks_core::Event) -> (Delivery, fastapihooks_core::Attempt) {
    let mut d = delivery(e, &fastapihooks_core::SubscriptionId::new());
    let first = attempt(
        &d,
        1,
        AttemptOutcome::Response {
            status: 204,
            body_excerpt: String::new(),
        },
    );
    (d.attempts, d.status, d.next_attempt_at) = (1, DeliveryStatus::Delivered, None);
    (d, first)
}

/// The delivery of `id` as the store reads it, which names its event.
async fn read_back(store: &SqlStore, d: &Delivery) -> Delivery {
    store
        .get_delivery(&d.id)
        .await
        .expect("a delivery whose event is gone reads as a corrupt record")
        .expect("the delivery is stored")
}

/// A writer (here by hand: the lock the store's writers take on an event they found, and a
/// delivery of it) holds the event while a prune deletes the event's old history: the prune
/// waits, sees the new delivery once the writer commits, and keeps the event.
pub(crate) async fn a_prune_waits_for_a_writer_holding_the_event_and_keeps_it(store: &SqlStore) {
    let e = delivered_event(store).await;
    let d = delivery(&e, &fastapihooks_core::SubscriptionId::new());
    let writer = store.connection().begin().await.unwrap();
    let lock = match writer.get_database_backend() {
        DbBackend::Postgres => "FOR KEY SHARE",
        _ => "LOCK IN SHARE MODE",
    };
    let held = format!("SELECT id FROM fastapihooks_events WHERE id = ? {lock}");
    run(&writer, &held, vec![e.id().to_string().into()]).await;
    let now = Utc::now().timestamp_micros();
    run(
        &writer,
        "INSERT INTO fastapihooks_deliveries (id, event_id, subscription_id, status, attempts, \
         next_attempt_at_us, created_at_us, updated_at_us, replays, attempts_before_replay) \
         VALUES (?, ?, ?, 'pending', 0, ?, ?, ?, 0, 0)",
        vec![
            d.id.to_string().into(),
            e.id().to_string().into(),
            d.subscription_id.to_string().into(),
            now.into(),
            now.into(),
            now.into(),
        ],
    )
    .await;
    let writer_session = session(&writer).await;

    let pruning = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .prune(Utc::now() + chrono::Duration::days(1), 100)
                .await
        })
    };
    assert!(
        waits_for(store, writer_session, &pruning).await,
        "the prune waits for the writer holding the event"
    );
    writer.commit().await.unwrap();
    let pruned = pruning.await.unwrap().unwrap();
    assert_eq!(
        pruned.deliveries, 1,
        "the old delivery is pruned: {pruned:?}"
    );
    assert_eq!(pruned.events, 0, "the event is kept: {pruned:?}");
    assert_eq!(read_back(store, &d).await.event.id(), e.id());
}

/// A prune (here by hand: the lock the store's prune takes on an event it is about to delete)
/// holds an event while a fan-out records a new delivery of it with its first attempt: the
/// writer waits, and once the prune has deleted the event and committed, stores it again.
pub(crate) async fn a_writer_waits_for_a_prune_holding_the_event_and_stores_it_again(
    store: &SqlStore,
) {
    let e = delivered_event(store).await;
    let prune = store.connection().begin().await.unwrap();
    run(
        &prune,
        "SELECT id FROM fastapihooks_events WHERE id = ? FOR UPDATE",
        vec![e.id().to_string().into()],
    )
    .await;
    let prune_session = session(&prune).await;

    let (d, first) = delivered_first_attempt(&e);
    let writing = {
        let (store, d) = (store.clone(), d.clone());
        tokio::spawn(async move { store.record_first_attempts(&[(d, first)]).await })
    };
    assert!(
        waits_for(store, prune_session, &writing).await,
        "the writer waits for the prune holding the event"
    );
    run(
        &prune,
        "DELETE FROM fastapihooks_attempts WHERE delivery_id IN \
         (SELECT id FROM fastapihooks_deliveries WHERE event_id = ?)",
        vec![e.id().to_string().into()],
    )
    .await;
    run(
        &prune,
        "DELETE FROM fastapihooks_deliveries WHERE event_id = ? AND id <> ?",
        vec![e.id().to_string().into(), d.id.to_string().into()],
    )
    .await;
    run(
        &prune,
        "DELETE FROM fastapihooks_events WHERE id = ?",
        vec![e.id().to_string().into()],
    )
    .await;
    prune.commit().await.unwrap();
    writing.await.unwrap().unwrap();
    let back = read_back(store, &d).await;
    assert_eq!(back.event.id(), e.id());
    assert_eq!(back.status, DeliveryStatus::Delivered);
}

/// Another writer (here by hand) has inserted the lower of two events and not committed yet; a
/// batch of first attempts naming the higher one first waits for the lower one without holding
/// the higher: the other writer inserts the higher one without waiting, and both commit. Taken
/// in the batch's order instead, each would wait for the other — a deadlock the database breaks
/// by failing one of them (for the sidecar, a batch of attempts not recorded, sent again).
pub(crate) async fn a_batch_takes_its_events_in_key_order_so_a_writer_sharing_them_never_deadlocks_with_it(
    store: &SqlStore,
) {
    let mut events = [event("order.created", None), event("order.created", None)];
    events.sort_by(|a, b| a.id().cmp(b.id()));
    let [low, high] = events;
    let insert = "INSERT INTO fastapihooks_events (id, name, owner, payload, created_at_us) \
                  VALUES (?, ?, NULL, ?, ?)";
    let row = |e: &fastapihooks_core::Event| -> Vec<sea_orm::Value> {
        vec![
            e.id().to_string().into(),
            e.name().to_string().into(),
            e.payload().to_vec().into(),
            e.created_at().timestamp_micros().into(),
        ]
    };
    let other = store.connection().begin().await.unwrap();
    run(&other, insert, row(&low)).await;
    let other_session = session(&other).await;

    let batch = vec![
        delivered_first_attempt(&high),
        delivered_first_attempt(&low),
    ];
    let writing = {
        let (store, batch) = (store.clone(), batch.clone());
        tokio::spawn(async move { store.record_first_attempts(&batch).await })
    };
    assert!(
        waits_for(store, other_session, &writing).await,
        "the batch waits for the lower event, which the other writer holds"
    );
    tokio::time::timeout(Duration::from_secs(30), run(&other, insert, row(&high)))
        .await
        .expect("the other writer inserts the higher event without waiting for the batch");
    other.commit().await.unwrap();
    writing
        .await
        .unwrap()
        .expect("the batch commits: it never waited in a cycle");
    for (d, _) in &batch {
        assert_eq!(read_back(store, d).await.status, DeliveryStatus::Delivered);
    }
}

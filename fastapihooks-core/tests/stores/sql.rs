//! What only a SQL store promises, for any of its databases. `sql_store_behaviours!(harness)`
//! turns each behaviour into a test run through `harness`, which hands it a fresh, migrated
//! `SqlStore` of its own.

use fastapihooks_core::{
    AttemptOutcome, DeliveryQuery, DeliveryStatus, Error, EventName, SqlStore, Store,
    SubscriptionQuery,
};
use sea_orm::{ConnectionTrait, Statement};

use fastapihooks_testkit::fixtures::{attempt, delivery, event, subscription};

/// One `#[tokio::test]` per behaviour below, each run through `$harness`.
macro_rules! sql_store_behaviours {
    ($harness:path) => {
        sql_store_behaviours!(@each $harness;
            migrations_run_again_change_nothing,
            an_event_payload_is_stored_once_for_all_its_deliveries,
            concurrent_writers_lose_nothing,
            a_subscription_owner_longer_than_its_column_is_refused,
            an_event_of_a_long_owner_is_recorded,
            the_history_indexes_migration_can_be_undone_and_redone,
            concurrent_copies_of_one_webhook_store_one_entry,
            a_body_of_several_mebibytes_is_kept_byte_for_byte,
            a_fan_out_learns_which_deliveries_it_inserted_except_on_mysql,
            undoing_the_first_attempt_columns_keeps_every_attempt,
        );
    };
    (@each $harness:path; $($behaviour:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $behaviour() {
                $harness($crate::sql::$behaviour).await;
            }
        )*
    };
}

/// `SELECT COUNT(*)` of a table.
pub(crate) async fn count(store: &SqlStore, table: &str) -> i64 {
    let db = store.connection();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

pub(crate) async fn migrations_run_again_change_nothing(store: &SqlStore) {
    let sub = subscription("order.*");
    store.add_subscription(sub.clone()).await.unwrap();
    store.migrate().await.unwrap();
    SqlStore::new(store.connection().clone())
        .migrate()
        .await
        .unwrap();
    assert!(store.pending_migrations().await.unwrap().is_empty());
    assert_eq!(store.get_subscription(&sub.id).await.unwrap().unwrap(), sub);
}

pub(crate) async fn an_event_payload_is_stored_once_for_all_its_deliveries(store: &SqlStore) {
    let e = event("order.created", None);
    let batch: Vec<_> = (0..10)
        .map(|_| delivery(&e, &fastapihooks_core::SubscriptionId::new()))
        .collect();
    store.record_deliveries(&batch[..5]).await.unwrap();
    store.record_deliveries(&batch).await.unwrap();
    assert_eq!(count(store, "fastapihooks_events").await, 1);
    assert_eq!(count(store, "fastapihooks_deliveries").await, 10);
}

pub(crate) async fn concurrent_writers_lose_nothing(store: &SqlStore) {
    const WRITERS: usize = 8;
    const EACH: usize = 15;
    // Every writer also records the deliveries of one shared event: racing inserts-if-absent.
    let shared = event("shared.happened", None);
    let shared_subs: Vec<_> = (0..EACH)
        .map(|_| fastapihooks_core::SubscriptionId::new())
        .collect();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let shared = shared.clone();
        let shared_subs = shared_subs.clone();
        writers.spawn(async move {
            for (i, shared_sub) in shared_subs.iter().enumerate() {
                let sub = subscription(&format!("w{w}.e{i}"));
                store.add_subscription(sub.clone()).await.unwrap();
                let mut own = delivery(&event(&format!("w{w}.e{i}"), None), &sub.id);
                store
                    .record_deliveries(&[own.clone(), delivery(&shared, shared_sub)])
                    .await
                    .unwrap();
                own.attempts = 1;
                own.status = DeliveryStatus::Delivered;
                own.next_attempt_at = None;
                store
                    .record_attempt(
                        &own,
                        &attempt(
                            &own,
                            1,
                            AttemptOutcome::Response {
                                status: 204,
                                body_excerpt: String::new(),
                            },
                        ),
                    )
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let subs = store
        .list_subscriptions(&SubscriptionQuery {
            limit: 10_000,
            ..SubscriptionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(subs.len(), WRITERS * EACH);
    let delivered = store
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Delivered).limit(10_000))
        .await
        .unwrap();
    assert_eq!(delivered.len(), WRITERS * EACH);
    let pending = store
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Pending).limit(10_000))
        .await
        .unwrap();
    assert_eq!(pending.len(), EACH, "one delivery per shared subscription");
    assert_eq!(
        count(store, "fastapihooks_attempts").await,
        (WRITERS * EACH) as i64
    );
    let one = EventName::new("w3.e7").unwrap();
    assert_eq!(store.matching(&one, None).await.unwrap().len(), 1);
}

pub(crate) async fn a_subscription_owner_longer_than_its_column_is_refused(store: &SqlStore) {
    let sub = subscription("a").with_owner("o".repeat(256));
    let err = store.add_subscription(sub.clone()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLong {
                field: "subscription.owner",
                len: 256,
                limit: 255
            }
        ),
        "{err:?}"
    );
    let widest = subscription("a").with_owner("ö".repeat(255));
    store.add_subscription(widest.clone()).await.unwrap();
    assert_eq!(
        store.get_subscription(&widest.id).await.unwrap(),
        Some(widest)
    );
}

pub(crate) async fn an_event_of_a_long_owner_is_recorded(store: &SqlStore) {
    let owner = "tenant-".repeat(100);
    let d = delivery(
        &event("a", Some(&owner)),
        &fastapihooks_core::SubscriptionId::new(),
    );
    store
        .record_deliveries(std::slice::from_ref(&d))
        .await
        .unwrap();
    let back = store.get_delivery(&d.id).await.unwrap().unwrap();
    assert_eq!(back.event.owner(), Some(owner.as_str()));
}

/// Undoes the migration `name` and every migration after it, and checks they are pending.
async fn undo_from(store: &SqlStore, name: &str) {
    use fastapihooks_core::store::sql::Migrator;
    use sea_orm_migration::MigratorTrait;

    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let from = names.iter().position(|n| n == name).unwrap();
    Migrator::down(store.connection(), Some((names.len() - from) as u32))
        .await
        .unwrap();
    assert_eq!(store.pending_migrations().await.unwrap(), names[from..]);
}

pub(crate) async fn the_history_indexes_migration_can_be_undone_and_redone(store: &SqlStore) {
    use fastapihooks_core::EventQuery;

    let e = event("order.created", Some("T1"));
    store
        .record_deliveries(&[delivery(&e, &fastapihooks_core::SubscriptionId::new())])
        .await
        .unwrap();
    undo_from(store, "m20261202_000005_history_indexes").await;
    store.migrate().await.unwrap();
    assert!(store.pending_migrations().await.unwrap().is_empty());
    let query = EventQuery::default().name("order.*").unwrap().owner("T1");
    assert_eq!(store.list_events(&query).await.unwrap(), [e]);
    let other_case = EventQuery::default().owner("t1");
    assert!(store.list_events(&other_case).await.unwrap().is_empty());
}

/// Migration 17 undone: the first attempts kept in their deliveries' rows (on PostgreSQL) are
/// moved to the attempts' table, and a delivery's history reads the same before, between and
/// after — not one attempt lost, none twice.
pub(crate) async fn undoing_the_first_attempt_columns_keeps_every_attempt(store: &SqlStore) {
    let e = event("order.created", None);
    let mut d = delivery(&e, &fastapihooks_core::SubscriptionId::new());
    (d.attempts, d.status, d.next_attempt_at) = (1, DeliveryStatus::Pending, None);
    let first = attempt(
        &d,
        1,
        AttemptOutcome::Response {
            status: 503,
            body_excerpt: "busy".into(),
        },
    );
    store
        .record_first_attempts(&[(d.clone(), first)])
        .await
        .unwrap();
    (d.attempts, d.status) = (2, DeliveryStatus::Delivered);
    let second = attempt(
        &d,
        2,
        AttemptOutcome::Response {
            status: 200,
            body_excerpt: String::new(),
        },
    );
    store.record_attempt(&d, &second).await.unwrap();
    let history = store.list_attempts(&d.id).await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");

    undo_from(store, "m20261206_000017_first_attempt_in_delivery_row").await;
    assert_eq!(count(store, "fastapihooks_attempts").await, 2);
    store.migrate().await.unwrap();
    assert_eq!(store.list_attempts(&d.id).await.unwrap(), history);
}

/// A webhook for the inbox: `source`'s `external_id`, with `body`.
fn webhook(
    source: &str,
    external_id: &str,
    body: bytes::Bytes,
) -> fastapihooks_core::inbox::NewInboxEntry {
    fastapihooks_core::inbox::NewInboxEntry {
        source: source.to_owned(),
        external_id: external_id.to_owned(),
        headers: vec![("webhook-id".into(), external_id.to_owned())],
        body,
        ordering: None,
    }
}

pub(crate) async fn concurrent_copies_of_one_webhook_store_one_entry(store: &SqlStore) {
    use fastapihooks_core::inbox::{Inbox, Received};
    const COPIES: usize = 20;
    // Every copy waits for the others, then they all insert at once (separate connections of
    // the pool, separate runtime threads).
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(COPIES));
    let mut copies = tokio::task::JoinSet::new();
    for _ in 0..COPIES {
        let (store, start) = (store.clone(), start.clone());
        copies.spawn(async move {
            start.wait().await;
            let body = bytes::Bytes::from_static(br#"{"id":"evt_1"}"#);
            store.receive(webhook("partner", "evt_1", body)).await
        });
    }
    let mut received = Vec::with_capacity(COPIES);
    while let Some(done) = copies.join_next().await {
        received.push(done.unwrap().unwrap());
    }
    let new: Vec<_> = received
        .iter()
        .filter_map(|r| match r {
            Received::New(entry) => Some(entry),
            Received::Duplicate(_) => None,
        })
        .collect();
    assert_eq!(new.len(), 1, "{received:?}");
    let duplicates = received
        .iter()
        .filter(|r| matches!(r, Received::Duplicate(_)))
        .count();
    assert_eq!(duplicates, COPIES - 1);
    for r in &received {
        assert_eq!(
            r.entry(),
            new[0],
            "every copy answers with the one stored entry"
        );
    }
    assert_eq!(count(store, "fastapihooks_inbox").await, 1);
}

pub(crate) async fn a_body_of_several_mebibytes_is_kept_byte_for_byte(store: &SqlStore) {
    use fastapihooks_core::inbox::{Inbox, InboxQuery, Received};
    // 4 MiB of every byte value in a scrambled order: not UTF-8, no repeating 256-byte run.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let body: Vec<u8> = (0..4 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect();
    assert!(std::str::from_utf8(&body).is_err());
    let body = bytes::Bytes::from(body);
    let Received::New(entry) = store
        .receive(webhook("bulk", "big-1", body.clone()))
        .await
        .unwrap()
    else {
        panic!("a new webhook")
    };
    let back = store.get_inbox_entry(&entry.id).await.unwrap().unwrap();
    // Compared with `==`, not `assert_eq!`: a failure would print 4 MiB.
    assert_eq!(back.body.len(), body.len());
    assert!(back.body == body, "the body read back differs");
    assert!(back == entry, "the entry read back differs");
    let listed = store
        .list_inbox(&InboxQuery::default().source("bulk"))
        .await
        .unwrap();
    assert!(
        listed.len() == 1 && listed[0] == entry,
        "the listed entry differs"
    );
    let again = store
        .receive(webhook(
            "bulk",
            "big-1",
            bytes::Bytes::from_static(b"other"),
        ))
        .await
        .unwrap();
    assert!(
        again == Received::Duplicate(entry),
        "a copy is a duplicate, unchanged"
    );
}

/// PostgreSQL and SQLite say which deliveries a fan-out inserted (`INSERT … RETURNING`), which
/// spares the sidecar reading a new delivery back; MySQL/MariaDB cannot tell.
pub(crate) async fn a_fan_out_learns_which_deliveries_it_inserted_except_on_mysql(
    store: &SqlStore,
) {
    let e = event("order.created", None);
    let before = delivery(&e, &fastapihooks_core::SubscriptionId::new());
    let fresh = delivery(&e, &fastapihooks_core::SubscriptionId::new());
    store
        .record_deliveries(std::slice::from_ref(&before))
        .await
        .unwrap();
    let told = store
        .record_new_deliveries(&[before.clone(), fresh.clone()])
        .await
        .unwrap();
    let mysql = store.connection().get_database_backend() == sea_orm::DbBackend::MySql;
    let expected = (!mysql).then(|| vec![false, true]);
    assert_eq!(told, expected);
}

//! `SqlBackend`, the transactional outbox, on each database: SQLite (a file of the test's own),
//! PostgreSQL (a schema of its own) and MariaDB (a database of its own).
#![cfg(feature = "sql")]

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use fastapihooks_core::backend::{
    OutboxTable, Queue, Replacement, Settlement, SqlBackend, SqlOutboxConfig, Task,
};
use fastapihooks_core::{Backend, Event, SqlStore, SqlStoreOptions, SubscriptionId};
use futures_util::FutureExt;
use sea_orm::{ConnectionTrait, TransactionTrait};

const VISIBILITY: Duration = Duration::from_millis(1500);

fn outbox(store: &SqlStore) -> SqlBackend {
    SqlBackend::with_config(
        store.connection().clone(),
        SqlOutboxConfig {
            visibility_timeout: VISIBILITY,
            poll_interval: Duration::from_millis(50),
            block: Duration::from_millis(200),
        },
    )
    .unwrap()
}

fn event(n: usize) -> Event {
    Event::new("order.created", &serde_json::json!({ "n": n })).unwrap()
}

/// Settles the batch in one `settle_many`: whether each lease was still held.
async fn settle_all(outbox: &SqlBackend, settlements: &[Settlement]) -> Vec<bool> {
    outbox
        .settle_many(settlements)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

async fn create_orders_table(store: &SqlStore) {
    store
        .connection()
        .execute_unprepared("CREATE TABLE orders (id VARCHAR(32) PRIMARY KEY)")
        .await
        .unwrap();
}

async fn insert_order(conn: &impl ConnectionTrait, id: &str) {
    conn.execute_unprepared(&format!("INSERT INTO orders (id) VALUES ('{id}')"))
        .await
        .unwrap();
}

async fn orders(store: &SqlStore) -> usize {
    store
        .connection()
        .query_all_raw(sea_orm::Statement::from_string(
            store.connection().get_database_backend(),
            "SELECT id FROM orders",
        ))
        .await
        .unwrap()
        .len()
}

/// The one task that comes back `delay` after `settled_at` — leased as soon as it is due, and
/// not before.
async fn lease_once_due(
    outbox: &SqlBackend,
    settled_at: Instant,
    delay: Duration,
) -> fastapihooks_core::backend::Leased {
    let mut back = Vec::new();
    while back.is_empty() && settled_at.elapsed() < delay * 5 {
        back = outbox.lease(10).await.unwrap();
    }
    assert!(settled_at.elapsed() >= delay - Duration::from_millis(50));
    assert_eq!(back.len(), 1, "exactly one task came back");
    back.remove(0)
}

/// Behaviours, each run on every database.
mod behaviours {
    use super::*;

    pub(crate) async fn publish_in_a_rolled_back_transaction_emits_nothing(store: SqlStore) {
        create_orders_table(&store).await;
        let outbox = outbox(&store);
        let txn = store.connection().begin().await.unwrap();
        insert_order(&txn, "ord_1").await;
        outbox.publish_in(&txn, &event(1)).await.unwrap();
        txn.rollback().await.unwrap();

        assert_eq!(orders(&store).await, 0);
        assert_eq!(outbox.depth().await.unwrap(), 0);
        assert!(outbox.lease(10).await.unwrap().is_empty());
    }

    pub(crate) async fn publish_in_a_committed_transaction_emits_the_event_once(store: SqlStore) {
        create_orders_table(&store).await;
        let outbox = outbox(&store);
        let published = event(1);
        let txn = store.connection().begin().await.unwrap();
        insert_order(&txn, "ord_1").await;
        outbox.publish_in(&txn, &published).await.unwrap();
        txn.commit().await.unwrap();

        assert_eq!(orders(&store).await, 1);
        let leased = outbox.lease(10).await.unwrap();
        assert_eq!(leased.len(), 1);
        assert_eq!(leased[0].task, Task::fanout(published));
        assert!(outbox.ack(&leased[0].receipt).await.unwrap());
        assert_eq!(outbox.depth().await.unwrap(), 0);
    }

    pub(crate) async fn a_leased_task_is_hidden_until_its_lease_expires_then_comes_back(
        store: SqlStore,
    ) {
        let outbox = outbox(&store);
        outbox.publish(event(1)).await.unwrap();
        let first = outbox.lease(10).await.unwrap();
        assert_eq!(first.len(), 1);
        let leased_at = Instant::now();
        assert!(outbox.lease(10).await.unwrap().is_empty(), "leased twice");

        let mut again = Vec::new();
        while again.is_empty() && leased_at.elapsed() < VISIBILITY * 4 {
            again = outbox.lease(10).await.unwrap();
        }
        assert_eq!(again.len(), 1, "the expired lease never came back");
        assert!(leased_at.elapsed() >= VISIBILITY - Duration::from_millis(100));
        assert_eq!(again[0].task, first[0].task);
    }

    pub(crate) async fn a_settle_after_the_lease_was_taken_over_changes_nothing(store: SqlStore) {
        let outbox = outbox(&store);
        outbox.publish(event(1)).await.unwrap();
        let stale = outbox.lease(1).await.unwrap().remove(0);
        tokio::time::sleep(VISIBILITY + Duration::from_millis(100)).await;
        let current = outbox.lease(1).await.unwrap().remove(0);

        let deliveries = [Task::deliver(event(2), SubscriptionId::new())];
        assert!(!outbox.replace(&stale.receipt, &deliveries).await.unwrap());
        assert!(!outbox.ack(&stale.receipt).await.unwrap());
        assert_eq!(
            outbox.depth().await.unwrap(),
            1,
            "the stale settle inserted or removed"
        );
        assert!(outbox.ack(&current.receipt).await.unwrap());
        assert_eq!(outbox.depth().await.unwrap(), 0);
    }

    pub(crate) async fn replace_swaps_the_event_for_its_delivery_tasks(store: SqlStore) {
        let outbox = outbox(&store);
        let published = event(1);
        outbox.publish(published.clone()).await.unwrap();
        let fanout = outbox.lease(1).await.unwrap().remove(0);
        let deliveries = vec![
            Task::deliver(published.clone(), SubscriptionId::new()),
            Task::deliver(published, SubscriptionId::new()),
        ];
        assert!(outbox.replace(&fanout.receipt, &deliveries).await.unwrap());

        let leased = outbox.lease(10).await.unwrap();
        let got: HashSet<String> = leased
            .iter()
            .map(|l| serde_json::to_string(&l.task).unwrap())
            .collect();
        let want: HashSet<String> = deliveries
            .iter()
            .map(|t| serde_json::to_string(t).unwrap())
            .collect();
        assert_eq!(got, want);
    }

    /// How an event whose deliveries ran on its lease is settled: each replacement in the
    /// event's place its own way, in one transaction.
    pub(crate) async fn replace_each_puts_each_task_in_its_place_due_now_later_or_dead(
        store: SqlStore,
    ) {
        let outbox = outbox(&store);
        let published = event(1);
        outbox.publish(published.clone()).await.unwrap();
        let leased = outbox.lease(1).await.unwrap().remove(0);
        let [now, later, dead] =
            [(); 3].map(|_| Task::deliver(published.clone(), SubscriptionId::new()));
        let delay = Duration::from_millis(600);
        let next = [
            Replacement::Due(now.clone()),
            Replacement::DueIn(later.clone(), delay),
            Replacement::Dead {
                task: dead,
                reason: "refused for good".to_owned(),
            },
        ];
        let settled_at = Instant::now();
        assert!(outbox.replace_each(&leased.receipt, &next).await.unwrap());

        let ready = outbox.lease(10).await.unwrap();
        assert_eq!(ready.len(), 1, "only one is due at once");
        assert_eq!(ready[0].task, now);
        assert_eq!(outbox.dead_letters().await.unwrap(), 1);
        let back = lease_once_due(&outbox, settled_at, delay).await;
        assert_eq!(back.task, later, "due after its delay");
    }

    /// The group commit's way (one transaction with the batch's acks), fenced like every
    /// settle: a lease taken over in between puts none of its replacements in.
    pub(crate) async fn a_batch_replaces_each_for_a_lease_it_holds_and_not_for_a_lost_one(
        store: SqlStore,
    ) {
        let outbox = outbox(&store);
        outbox.publish_many(&[event(1), event(2)]).await.unwrap();
        let leased = outbox.lease(2).await.unwrap();
        assert_eq!(leased.len(), 2);
        tokio::time::sleep(VISIBILITY + Duration::from_millis(100)).await;
        assert!(outbox.extend(&leased[0].receipt).await.unwrap());
        let taken = outbox.lease(2).await.unwrap();
        assert_eq!(taken.len(), 1, "the second's lease was taken over");

        let replacements = |l: &fastapihooks_core::backend::Leased| {
            let task = Task::deliver(l.task.event().unwrap().clone(), SubscriptionId::new());
            vec![
                Replacement::DueIn(task.clone(), Duration::from_secs(60)),
                Replacement::Dead {
                    task,
                    reason: "refused for good".to_owned(),
                },
            ]
        };
        let settlements: Vec<Settlement> = leased
            .iter()
            .map(|l| Settlement::ReplaceEach {
                receipt: l.receipt.clone(),
                next: replacements(l),
            })
            .collect();
        let settled = settle_all(&outbox, &settlements).await;
        assert_eq!(settled, [true, false]);
        assert_eq!(outbox.dead_letters().await.unwrap(), 1);
        // Left: the first's retry, waiting, and the row the other consumer holds.
        assert_eq!(outbox.depth().await.unwrap(), 2);
        assert!(outbox.lease(10).await.unwrap().is_empty());
    }

    /// How the worker hands a delivery that waited on its event's lease to the queue: its task
    /// is leased before the events queued after its event, not behind the whole backlog.
    pub(crate) async fn an_enqueued_delivery_task_goes_before_the_events_queued_after_its_event(
        store: SqlStore,
    ) {
        let outbox = outbox(&store);
        let earlier = event(0);
        tokio::time::sleep(Duration::from_millis(5)).await;
        outbox.publish_many(&[event(1), event(2)]).await.unwrap();
        let delivery = Task::deliver(earlier, SubscriptionId::new());
        outbox
            .enqueue(std::slice::from_ref(&delivery))
            .await
            .unwrap();

        let first = outbox.lease(1).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].task, delivery);
    }

    pub(crate) async fn a_retry_comes_back_after_its_delay_and_not_before(store: SqlStore) {
        let outbox = outbox(&store);
        outbox.publish(event(1)).await.unwrap();
        let leased = outbox.lease(1).await.unwrap().remove(0);
        let delay = Duration::from_millis(600);
        let retried = Task::Fanout {
            event: event(1),
            failures: 1,
        };
        assert!(
            outbox
                .retry_in(&leased.receipt, &retried, delay)
                .await
                .unwrap()
        );
        let settled_at = Instant::now();
        let back = lease_once_due(&outbox, settled_at, delay).await;
        assert_eq!(back.task, retried, "the updated task comes back");
    }

    pub(crate) async fn the_oldest_pending_age_grows_while_a_task_waits_and_is_none_when_empty(
        store: SqlStore,
    ) {
        let outbox = outbox(&store);
        assert_eq!(outbox.oldest_pending_age().await.unwrap(), None, "empty");
        outbox.publish(event(1)).await.unwrap();
        let first = outbox
            .oldest_pending_age()
            .await
            .unwrap()
            .expect("a task waits");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let later = outbox
            .oldest_pending_age()
            .await
            .unwrap()
            .expect("it still waits");
        assert!(
            later >= first + Duration::from_millis(250),
            "{first:?}, then {later:?}"
        );
        assert!(later < Duration::from_secs(30), "{later:?}");

        let leased = outbox.lease(1).await.unwrap().remove(0);
        assert_eq!(
            outbox.oldest_pending_age().await.unwrap(),
            None,
            "a leased task is not waiting"
        );
        let later_retry = Duration::from_secs(3600);
        assert!(
            outbox
                .retry_in(&leased.receipt, &leased.task, later_retry)
                .await
                .unwrap()
        );
        assert_eq!(
            outbox.oldest_pending_age().await.unwrap(),
            None,
            "a retry not yet due is not waiting"
        );
    }

    pub(crate) async fn a_dead_letter_is_kept_and_never_leased_again(store: SqlStore) {
        let outbox = outbox(&store);
        outbox.publish(event(1)).await.unwrap();
        let leased = outbox.lease(1).await.unwrap().remove(0);
        assert!(
            outbox
                .dead_letter(&leased.receipt, &leased.task, "refused for good")
                .await
                .unwrap()
        );
        assert_eq!(outbox.dead_letters().await.unwrap(), 1);
        assert_eq!(outbox.depth().await.unwrap(), 0);
        assert!(outbox.lease(10).await.unwrap().is_empty());
    }

    pub(crate) async fn pruning_dead_letters_removes_only_those_dead_before_the_cut_off(
        store: SqlStore,
    ) {
        let outbox = outbox(&store);
        let events: Vec<Event> = (0..4).map(event).collect();
        outbox.publish_many(&events).await.unwrap();
        let leased = outbox.lease(3).await.unwrap();
        assert_eq!(leased.len(), 3);
        for l in &leased {
            assert!(
                outbox
                    .dead_letter(&l.receipt, &l.task, "refused for good")
                    .await
                    .unwrap()
            );
        }
        // Two died a day ago, one just now; the live row (never leased) is a day old too.
        let row = |l: &fastapihooks_core::backend::Leased| {
            let (id, _token) = l.receipt.as_str().split_once('/').unwrap();
            format!("'{id}'")
        };
        let long_dead = [row(&leased[0]), row(&leased[1])].join(", ");
        let a_day_us = 86_400_000_000i64;
        store
            .connection()
            .execute_unprepared(&format!(
                "UPDATE fastapihooks_outbox SET available_at_us = available_at_us - {a_day_us} \
                 WHERE id IN ({long_dead}) OR dead = FALSE"
            ))
            .await
            .unwrap();

        let cut = chrono::Utc::now() - chrono::Duration::hours(1);
        assert_eq!(outbox.prune_dead_letters(cut, 1).await.unwrap(), 1, "limit");
        assert_eq!(outbox.prune_dead_letters(cut, 10).await.unwrap(), 1);
        assert_eq!(outbox.prune_dead_letters(cut, 10).await.unwrap(), 0);
        assert_eq!(outbox.dead_letters().await.unwrap(), 1, "the recent one");
        assert_eq!(outbox.depth().await.unwrap(), 1, "the live row");
        let live = outbox.lease(10).await.unwrap();
        assert_eq!(live.len(), 1);
        assert!(leased.iter().all(|l| l.task != live[0].task));
    }

    /// The acks of a batch go in one statement, each still fenced by its own lease: a lease
    /// taken over in between is not settled, the others are, and the rest of the batch
    /// (a retry) settles as it would alone.
    pub(crate) async fn a_batch_of_settlements_settles_each_lease_it_still_holds(store: SqlStore) {
        let outbox = outbox(&store);
        let events: Vec<Event> = (0..4).map(event).collect();
        outbox.publish_many(&events).await.unwrap();
        let leased = outbox.lease(4).await.unwrap();
        assert_eq!(leased.len(), 4);
        // The lease of the third expires and another consumer takes it.
        tokio::time::sleep(VISIBILITY + Duration::from_millis(100)).await;
        for l in [&leased[0], &leased[1], &leased[3]] {
            assert!(outbox.extend(&l.receipt).await.unwrap());
        }
        let taken = outbox.lease(4).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].task, leased[2].task);

        let delivery = |l: &fastapihooks_core::backend::Leased| {
            Task::deliver(l.task.event().unwrap().clone(), SubscriptionId::new())
        };
        let settlements = vec![
            Settlement::ack(leased[0].receipt.clone()),
            // Lost: what would replace it is not inserted.
            Settlement::Replace {
                receipt: leased[2].receipt.clone(),
                next: vec![delivery(&leased[2])],
            },
            Settlement::RetryIn {
                receipt: leased[1].receipt.clone(),
                task: leased[1].task.clone(),
                delay: Duration::from_secs(60),
            },
            Settlement::Replace {
                receipt: leased[3].receipt.clone(),
                next: vec![delivery(&leased[3])],
            },
        ];
        let settled = settle_all(&outbox, &settlements).await;
        assert_eq!(settled, [true, false, true, true]);
        // Left: the retry, waiting; the row the other consumer holds; the fourth's delivery.
        assert_eq!(outbox.depth().await.unwrap(), 3);
        let ready = outbox.lease(4).await.unwrap();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].task.event(), leased[3].task.event());
        assert!(matches!(ready[0].task, Task::Deliver(_)));
    }

    /// A batch of acks for rows taken by different lease calls (a token each) deletes each row
    /// only under the lease it names: a row leased again since, by a later call, is not
    /// deleted by the ack of its first lease, even when that later call's other rows are in
    /// the same batch.
    pub(crate) async fn a_batch_of_acks_from_several_lease_calls_is_fenced_lease_by_lease(
        store: SqlStore,
    ) {
        let outbox = outbox(&store);
        let events: Vec<Event> = (0..4).map(event).collect();
        outbox.publish_many(&events[..2]).await.unwrap();
        let first = outbox.lease(2).await.unwrap();
        assert_eq!(first.len(), 2);
        // The second row's first lease expires; a later call takes it again, with new rows.
        tokio::time::sleep(VISIBILITY + Duration::from_millis(100)).await;
        assert!(outbox.extend(&first[0].receipt).await.unwrap());
        outbox.publish_many(&events[2..]).await.unwrap();
        let second = outbox.lease(3).await.unwrap();
        assert_eq!(second.len(), 3);
        assert!(second.iter().any(|l| l.task == first[1].task));

        let acks: Vec<Settlement> = first
            .iter()
            .chain(second.iter().filter(|l| l.task != first[1].task))
            .map(|l| Settlement::ack(l.receipt.clone()))
            .collect();
        let settled = settle_all(&outbox, &acks).await;
        assert_eq!(settled, [true, false, true, true]);
        assert_eq!(
            outbox.depth().await.unwrap(),
            1,
            "the row the later lease holds"
        );
        let retaken = second.iter().find(|l| l.task == first[1].task).unwrap();
        assert!(outbox.extend(&retaken.receipt).await.unwrap(), "still held");
    }

    /// No head-of-line blocking: the delivery tasks of an event fanned out now are leased
    /// before the events queued after it, not behind the fan-out of the whole backlog.
    pub(crate) async fn the_deliveries_of_a_fanned_out_event_go_before_later_events(
        store: SqlStore,
    ) {
        let outbox = outbox(&store);
        let events: Vec<Event> = (0..3).map(event).collect();
        // One after the other, so the queue has an order (a batch shares one time).
        for e in &events {
            outbox.publish(e.clone()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let first = outbox.lease(1).await.unwrap().remove(0);
        assert_eq!(first.task, Task::fanout(events[0].clone()));
        let deliveries = vec![
            Task::deliver(events[0].clone(), SubscriptionId::new()),
            Task::deliver(events[0].clone(), SubscriptionId::new()),
        ];
        assert!(outbox.replace(&first.receipt, &deliveries).await.unwrap());
        let next: Vec<Task> = outbox
            .lease(2)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.task)
            .collect();
        assert_eq!(next.len(), 2);
        assert!(next.iter().all(|t| deliveries.contains(t)), "{next:?}");
    }

    pub(crate) async fn concurrent_leases_take_disjoint_rows(store: SqlStore) {
        let a = outbox(&store);
        let b = outbox(&store);
        let events: Vec<Event> = (0..200).map(event).collect();
        a.publish_many(&events).await.unwrap();
        let drain = async |q: &SqlBackend| {
            let mut ids = Vec::new();
            loop {
                let leased = q.lease(7).await.unwrap();
                if leased.is_empty() {
                    return ids;
                }
                for l in leased {
                    ids.push(l.task.event_id().unwrap().to_string());
                    assert!(q.ack(&l.receipt).await.unwrap(), "a lease was lost");
                }
            }
        };
        let (from_a, from_b) = tokio::join!(drain(&a), drain(&b));
        let all: HashSet<&String> = from_a.iter().chain(&from_b).collect();
        assert_eq!(from_a.len() + from_b.len(), 200, "a row was leased twice");
        assert_eq!(all.len(), 200);
    }

    /// Two tables of one database, two queues: a task queued into one is leased, settled,
    /// counted, dead-lettered and pruned through a backend on that table only.
    pub(crate) async fn the_inbox_table_and_the_events_table_are_separate_queues(store: SqlStore) {
        let events = outbox(&store);
        let inbox = outbox(&store).on_table(OutboxTable::Inbox);
        assert_eq!(events.table(), OutboxTable::Events);
        let received = event(1);
        inbox.publish(received.clone()).await.unwrap();
        assert!(
            events.lease(10).await.unwrap().is_empty(),
            "the events table leased an inbox task"
        );
        let published = vec![event(2), event(3)];
        events.publish_many(&published).await.unwrap();
        assert_eq!(inbox.depth().await.unwrap(), 1);
        assert_eq!(events.depth().await.unwrap(), 2);

        let from_inbox = inbox.lease(10).await.unwrap();
        assert_eq!(from_inbox.len(), 1, "the inbox leased an events task");
        assert_eq!(from_inbox[0].task, Task::fanout(received.clone()));
        assert!(inbox.lease(10).await.unwrap().is_empty());
        // A receipt of the inbox settles nothing in the events table.
        assert!(!events.ack(&from_inbox[0].receipt).await.unwrap());
        // What replaces a leased inbox task goes into the inbox.
        let next = [Task::deliver(received, SubscriptionId::new())];
        assert!(inbox.replace(&from_inbox[0].receipt, &next).await.unwrap());
        assert_eq!(inbox.depth().await.unwrap(), 1);
        assert_eq!(events.depth().await.unwrap(), 2);

        let from_events = events.lease(10).await.unwrap();
        let got: HashSet<String> = from_events
            .iter()
            .map(|l| l.task.event_id().unwrap().to_string())
            .collect();
        let want: HashSet<String> = published.iter().map(|e| e.id().to_string()).collect();
        assert_eq!(got, want);
        let again = inbox.lease(10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].task, next[0]);

        // Dead letters are counted and pruned in their own table.
        assert!(
            inbox
                .dead_letter(&again[0].receipt, &again[0].task, "refused for good")
                .await
                .unwrap()
        );
        assert_eq!(inbox.dead_letters().await.unwrap(), 1);
        assert_eq!(events.dead_letters().await.unwrap(), 0);
        assert_eq!(inbox.depth().await.unwrap(), 0);
        assert_eq!(
            events.depth().await.unwrap(),
            2,
            "the events table's leased rows"
        );
        let cut = chrono::Utc::now() + chrono::Duration::hours(1);
        assert_eq!(events.prune_dead_letters(cut, 10).await.unwrap(), 0);
        assert_eq!(inbox.dead_letters().await.unwrap(), 1);
        assert_eq!(inbox.prune_dead_letters(cut, 10).await.unwrap(), 1);
        assert_eq!(inbox.dead_letters().await.unwrap(), 0);
    }
}

macro_rules! outbox_behaviours {
    ($with:ident) => {
        outbox_behaviours!(@each $with:
            publish_in_a_rolled_back_transaction_emits_nothing,
            publish_in_a_committed_transaction_emits_the_event_once,
            a_leased_task_is_hidden_until_its_lease_expires_then_comes_back,
            a_settle_after_the_lease_was_taken_over_changes_nothing,
            replace_swaps_the_event_for_its_delivery_tasks,
            replace_each_puts_each_task_in_its_place_due_now_later_or_dead,
            a_batch_replaces_each_for_a_lease_it_holds_and_not_for_a_lost_one,
            an_enqueued_delivery_task_goes_before_the_events_queued_after_its_event,
            a_retry_comes_back_after_its_delay_and_not_before,
            a_dead_letter_is_kept_and_never_leased_again,
            the_oldest_pending_age_grows_while_a_task_waits_and_is_none_when_empty,
            pruning_dead_letters_removes_only_those_dead_before_the_cut_off,
            concurrent_leases_take_disjoint_rows,
            a_batch_of_settlements_settles_each_lease_it_still_holds,
            a_batch_of_acks_from_several_lease_calls_is_fenced_lease_by_lease,
            the_deliveries_of_a_fanned_out_event_go_before_later_events,
            the_inbox_table_and_the_events_table_are_separate_queues,
        );
    };
    (@each $with:ident: $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $with(crate::behaviours::$name).await;
            }
        )*
    };
}

/// Runs `behaviour`, then `cleanup`, then re-raises a panic of the behaviour.
async fn guarded<F: Future<Output = ()>>(behaviour: F, cleanup: impl AsyncFnOnce()) {
    let outcome = AssertUnwindSafe(behaviour).catch_unwind().await;
    cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    async fn with<F: Future<Output = ()>>(behaviour: impl FnOnce(SqlStore) -> F) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
        let store = SqlStore::connect(&url).await.unwrap();
        behaviour(store).await;
    }

    outbox_behaviours!(with);
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use std::sync::Arc;

    async fn with<F: Future<Output = ()>>(behaviour: impl FnOnce(SqlStore) -> F) {
        // A schema of the test's own, dropped with the guard.
        let Some(schema) = fastapihooks_testkit::TempSchema::create("outbox on PostgreSQL").await
        else {
            return;
        };
        let store = SqlStoreOptions::new(schema.url())
            .postgres_schema(schema.name())
            .max_connections(4)
            .connect()
            .await
            .unwrap();
        let connection = store.connection().clone();
        guarded(behaviour(store), async || connection.close().await.unwrap()).await;
    }

    outbox_behaviours!(with);

    /// A lease call waiting for work is woken by the commit (`LISTEN`/`NOTIFY`), not by its
    /// next poll: with a poll interval as long as the call may wait, only the wake can make
    /// it return the event published while it waits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_lease_is_woken_by_the_commit_of_a_publish() {
        with(async |store: SqlStore| woken_by_a_commit(store, OutboxTable::Events).await).await;
    }

    /// The same on the inbox table: its trigger notifies its own channel, the one a lease
    /// call on it listens on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_lease_on_the_inbox_table_is_woken_by_the_commit_of_a_publish_into_it() {
        with(async |store: SqlStore| woken_by_a_commit(store, OutboxTable::Inbox).await).await;
    }

    /// Publishes into `table`, one commit a second, while a lease call on `table` waits; the
    /// call must return one of them long before its next poll.
    async fn woken_by_a_commit(store: SqlStore, table: OutboxTable) {
        let patient = SqlBackend::with_config(
            store.connection().clone(),
            SqlOutboxConfig {
                visibility_timeout: Duration::from_secs(120),
                poll_interval: Duration::from_secs(60),
                block: Duration::from_secs(60),
            },
        )
        .unwrap()
        .on_table(table);
        let publisher = outbox(&store).on_table(table);
        let mut waiting = tokio::spawn(async move { patient.lease(1).await.unwrap() });
        // One commit a second (the first may come before the call listens), until the
        // waiting call returns; a poll would take a minute.
        let mut published = Vec::new();
        let leased = loop {
            let event = event(published.len());
            let txn = store.connection().begin().await.unwrap();
            publisher.publish_in(&txn, &event).await.unwrap();
            txn.commit().await.unwrap();
            published.push(Task::fanout(event));
            match tokio::time::timeout(Duration::from_secs(1), &mut waiting).await {
                Ok(leased) => break leased.unwrap(),
                Err(_) if published.len() < 20 => continue,
                Err(_) => panic!("the waiting lease call was not woken by 20 commits"),
            }
        };
        assert_eq!(leased.len(), 1);
        assert!(published.contains(&leased[0].task));
    }

    /// Only a commit made while a lease call waits notifies: the first notification on the
    /// table's channel comes from the second of two committing sessions, the one that
    /// committed after a lease call started waiting.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_notifies_only_while_a_lease_call_waits() {
        with(async |store: SqlStore| {
            let pool = store.connection().get_postgres_connection_pool().clone();
            let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(&pool)
                .await
                .unwrap();
            listener.listen(&channel(&store).await).await.unwrap();
            let publisher = outbox(&store);
            // Two transactions open at once: two sessions.
            let first_txn = store.connection().begin().await.unwrap();
            let second_txn = store.connection().begin().await.unwrap();
            let unseen = publish_and_commit(first_txn, &publisher, 0).await;
            assert_eq!(publisher.lease(1).await.unwrap().len(), 1);
            let _waiting = spawn_patient_lease(&store);
            wait_for_gate(&store, Some(true)).await;
            let seen = publish_and_commit(second_txn, &publisher, 1).await;
            assert_ne!(unseen, seen);
            let first = tokio::time::timeout(Duration::from_secs(20), listener.recv())
                .await
                .expect("no notification after a commit while a lease call waits")
                .unwrap();
            assert_eq!(first.process_id(), seen);
        })
        .await;
    }

    /// A waiting lease call holds the gate (publishers notify); once it has leased rows it
    /// lets go of it (publishers stop notifying).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_call_holds_the_gate_while_it_waits_and_lets_go_once_it_leases() {
        with(async |store: SqlStore| {
            // Kept: a backend dropped lets go of the gate with its connection.
            let patient = Arc::new(patient(&store));
            let waiting = spawn_lease(&patient);
            wait_for_gate(&store, Some(true)).await;
            outbox(&store).publish(event(0)).await.unwrap();
            let leased = tokio::time::timeout(Duration::from_secs(20), waiting)
                .await
                .expect("the waiting lease call was not woken")
                .unwrap();
            assert_eq!(leased.len(), 1);
            wait_for_gate(&store, None).await;
        })
        .await;
    }

    /// A publishing transaction that took the gate before the lease call started waiting does
    /// not notify; the call, which takes the gate only once that transaction has ended, looks
    /// again then and leases its row — not at its next poll, a minute later.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_in_flight_when_a_lease_call_starts_waiting_is_leased_without_a_poll() {
        with(async |store: SqlStore| {
            let txn = store.connection().begin().await.unwrap();
            outbox(&store).publish_in(&txn, &event(0)).await.unwrap();
            let waiting = spawn_patient_lease(&store);
            // The call's connection queues for the gate behind the open transaction.
            wait_for_gate(&store, Some(false)).await;
            txn.commit().await.unwrap();
            let leased = tokio::time::timeout(Duration::from_secs(20), waiting)
                .await
                .expect("the row of the transaction in flight waited for a poll")
                .unwrap();
            assert_eq!(leased.len(), 1);
        })
        .await;
    }

    /// Two lease calls waiting on one table: the commit wakes one, the other takes the gate
    /// over and is woken by the next commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_waiting_lease_calls_are_each_woken_by_a_commit() {
        with(async |store: SqlStore| {
            let mut first = spawn_patient_lease(&store);
            let mut second = spawn_patient_lease(&store);
            wait_for_gate(&store, Some(true)).await;
            let publisher = outbox(&store);
            publisher.publish(event(0)).await.unwrap();
            let woken = Duration::from_secs(20);
            let later = tokio::select! {
                leased = &mut first => { assert_eq!(leased.unwrap().len(), 1); second }
                leased = &mut second => { assert_eq!(leased.unwrap().len(), 1); first }
                _ = tokio::time::sleep(woken) => panic!("neither lease call was woken"),
            };
            publisher.publish(event(1)).await.unwrap();
            let leased = tokio::time::timeout(woken, later)
                .await
                .expect("the other lease call was not woken by the second commit")
                .unwrap();
            assert_eq!(leased.len(), 1);
        })
        .await;
    }

    /// A lease call for one row, on a backend of its own that polls once a minute.
    fn spawn_patient_lease(
        store: &SqlStore,
    ) -> tokio::task::JoinHandle<Vec<fastapihooks_core::backend::Leased>> {
        spawn_lease(&Arc::new(patient(store)))
    }

    /// A backend that polls once a minute and may wait as long for work.
    fn patient(store: &SqlStore) -> SqlBackend {
        SqlBackend::with_config(
            store.connection().clone(),
            SqlOutboxConfig {
                visibility_timeout: Duration::from_secs(120),
                poll_interval: Duration::from_secs(60),
                block: Duration::from_secs(60),
            },
        )
        .unwrap()
    }

    /// A lease call for one row on `backend`.
    fn spawn_lease(
        backend: &Arc<SqlBackend>,
    ) -> tokio::task::JoinHandle<Vec<fastapihooks_core::backend::Leased>> {
        let backend = Arc::clone(backend);
        tokio::spawn(async move { backend.lease(1).await.unwrap() })
    }

    /// Publishes event `n` in `txn`, commits, and returns the id of the session that committed.
    async fn publish_and_commit(
        txn: sea_orm::DatabaseTransaction,
        outbox: &SqlBackend,
        n: usize,
    ) -> u32 {
        outbox.publish_in(&txn, &event(n)).await.unwrap();
        let pid = txn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT pg_backend_pid() AS pid",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i32>("", "pid")
            .unwrap();
        txn.commit().await.unwrap();
        u32::try_from(pid).unwrap()
    }

    /// The channel of the outbox table in the store's schema.
    async fn channel(store: &SqlStore) -> String {
        let sql = "SELECT relname || '_' || oid AS channel FROM pg_class \
                   WHERE oid = to_regclass('fastapihooks_outbox')";
        store
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql,
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "channel")
            .unwrap()
    }

    /// Waits (up to 20 s) until the gate of the store's outbox is held by a lease call
    /// (`Some(true)`), asked for and not yet granted (`Some(false)`), or neither (`None`).
    async fn wait_for_gate(store: &SqlStore, want: Option<bool>) {
        let sql = "SELECT bool_or(granted) AS granted FROM pg_locks \
                   WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' \
                   AND classid = 1717661800 AND objsubid = 2 \
                   AND objid = to_regclass('fastapihooks_outbox')::oid";
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let granted: Option<bool> = store
                .connection()
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    sql,
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get("", "granted")
                .unwrap();
            if granted == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the gate is {granted:?}, not {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;

    async fn with<F: Future<Output = ()>>(behaviour: impl FnOnce(SqlStore) -> F) {
        // A database of the test's own, dropped with the guard.
        let Some(database) = fastapihooks_testkit::TempDatabase::mysql("outbox on MariaDB").await
        else {
            return;
        };
        let store = SqlStoreOptions::new(database.url())
            .max_connections(4)
            .connect()
            .await
            .unwrap();
        let connection = store.connection().clone();
        guarded(behaviour(store), async || connection.close().await.unwrap()).await;
    }

    outbox_behaviours!(with);
}

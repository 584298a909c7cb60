//! `RedisBackend` as a `Queue`, step by step, against the machine's real Redis. Each test has
//! its own key prefix.
#![cfg(feature = "redis")]

use std::time::{Duration, Instant};

use fastapihooks_core::backend::{Replacement, Settlement, Task};
use fastapihooks_core::{Backend, Event, Queue};
use fastapihooks_testkit::{RecordedMetrics, TestKeys, redis_url};

fn event() -> Event {
    Event::new("order.created", &serde_json::json!({"id": 1})).unwrap()
}

/// Leases until something comes (a lease call returns empty after its short block).
async fn lease_one(queue: &impl Queue) -> fastapihooks_core::Leased {
    for _ in 0..20 {
        if let Some(leased) = queue.lease(1).await.unwrap().pop() {
            return leased;
        }
    }
    panic!("nothing to lease");
}

#[tokio::test]
async fn a_published_event_is_leased_as_its_fanout_task() {
    let Some(url) = redis_url("a_published_event_is_leased_as_its_fanout_task").await else {
        return;
    };
    let keys = TestKeys::new(&url, "lease");
    let queue = keys.backend().await;
    let event = event();
    queue.publish(event.clone()).await.unwrap();
    let leased = lease_one(&*queue).await;
    assert_eq!(leased.task, Task::fanout(event));
    assert!(queue.lease(1).await.unwrap().is_empty(), "leased once only");
}

#[tokio::test]
async fn replacing_a_fanout_acks_it_and_enqueues_its_deliveries_in_one_step() {
    let Some(url) = redis_url("replacing_a_fanout").await else {
        return;
    };
    let keys = TestKeys::new(&url, "replace");
    let queue = keys.backend().await;
    let event = event();
    queue.publish(event.clone()).await.unwrap();
    let leased = lease_one(&*queue).await;
    let deliveries = vec![
        Task::deliver(event.clone(), fastapihooks_core::SubscriptionId::new()),
        Task::deliver(event.clone(), fastapihooks_core::SubscriptionId::new()),
    ];
    assert!(queue.replace(&leased.receipt, &deliveries).await.unwrap());
    let mut next = Vec::new();
    while next.len() < 2 {
        next.extend(queue.lease(2).await.unwrap().into_iter().map(|l| l.task));
    }
    assert_eq!(next, deliveries);
    assert_eq!(queue.depth().await.unwrap(), 2, "the fan-out task is gone");
}

#[tokio::test]
async fn a_settle_after_the_lease_was_taken_over_changes_nothing() {
    let Some(url) = redis_url("a_settle_after_the_lease_was_taken_over").await else {
        return;
    };
    let mut keys = TestKeys::new(&url, "fenced");
    keys.config.visibility_timeout = Duration::from_millis(300);
    keys.config.block = Duration::from_millis(100);
    let (stalled, healthy) = (keys.backend().await, keys.backend().await);
    let event = event();
    stalled.publish(event.clone()).await.unwrap();
    let lost = lease_one(&*stalled).await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    let taken_over = lease_one(&*healthy).await;
    assert_eq!(
        taken_over.receipt, lost.receipt,
        "the expired lease was claimed"
    );
    let late = [Task::deliver(
        event,
        fastapihooks_core::SubscriptionId::new(),
    )];
    assert!(!stalled.replace(&lost.receipt, &late).await.unwrap());
    assert_eq!(
        healthy.depth().await.unwrap(),
        1,
        "no delivery was enqueued"
    );
    assert!(healthy.ack(&taken_over.receipt).await.unwrap());
    assert_eq!(healthy.depth().await.unwrap(), 0);
}

/// The worker's group commit: a batch of settles in one call, each still fenced by its own
/// lease — a lease taken over in between is not settled (what would replace it is not queued),
/// the others are, each its own way.
#[tokio::test]
async fn a_batch_of_settles_settles_each_lease_it_still_holds() {
    let Some(url) = redis_url("a_batch_of_settles").await else {
        return;
    };
    let mut keys = TestKeys::new(&url, "settle-many");
    keys.config.visibility_timeout = Duration::from_millis(300);
    keys.config.block = Duration::from_millis(100);
    let (stalled, healthy) = (keys.backend().await, keys.backend().await);
    let events: Vec<Event> = (0..4).map(|_| event()).collect();
    stalled.publish_many(&events).await.unwrap();
    let mut leased = Vec::new();
    while leased.len() < 4 {
        leased.extend(stalled.lease(4 - leased.len()).await.unwrap());
    }
    // The lease of the third expires and the other consumer takes it over.
    tokio::time::sleep(Duration::from_millis(400)).await;
    for l in [&leased[0], &leased[1], &leased[3]] {
        assert!(stalled.extend(&l.receipt).await.unwrap());
    }
    let taken_over = lease_one(&*healthy).await;
    assert_eq!(taken_over.receipt, leased[2].receipt);

    let delivery = |l: &fastapihooks_core::Leased| {
        Task::deliver(
            l.task.event().unwrap().clone(),
            fastapihooks_core::SubscriptionId::new(),
        )
    };
    let settlements = [
        Settlement::ack(leased[0].receipt.clone()),
        Settlement::Replace {
            receipt: leased[2].receipt.clone(),
            next: vec![delivery(&leased[2])],
        },
        Settlement::RetryIn {
            receipt: leased[1].receipt.clone(),
            task: leased[1].task.clone(),
            delay: Duration::from_secs(60),
        },
        Settlement::DeadLetter {
            receipt: leased[3].receipt.clone(),
            task: leased[3].task.clone(),
            reason: "refused for good".to_owned(),
        },
    ];
    let settled: Vec<bool> = stalled
        .settle_many(&settlements)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    assert_eq!(settled, [true, false, true, true]);
    // Left: the retry, waiting, and the entry the other consumer holds — no delivery task.
    assert_eq!(healthy.depth().await.unwrap(), 2);
    assert_eq!(keys.dead_letters().await.len(), 1);
    assert!(healthy.ack(&taken_over.receipt).await.unwrap());
    assert_eq!(healthy.depth().await.unwrap(), 1, "the retry");
}

/// How an event whose deliveries ran on its lease is settled: each replacement in the event's
/// place its own way — due at once, due after its delay, kept as a dead letter — in one step.
#[tokio::test]
async fn replace_each_puts_each_task_in_its_place_due_now_later_or_dead() {
    let Some(url) = redis_url("replace_each").await else {
        return;
    };
    let keys = TestKeys::new(&url, "replace-each");
    let queue = keys.backend().await;
    let event = event();
    queue.publish(event.clone()).await.unwrap();
    let leased = lease_one(&*queue).await;
    let [now, later, dead] =
        [(); 3].map(|_| Task::deliver(event.clone(), fastapihooks_core::SubscriptionId::new()));
    let delay = Duration::from_millis(400);
    let next = [
        Replacement::Due(now.clone()),
        Replacement::DueIn(later.clone(), delay),
        Replacement::Dead {
            task: dead.clone(),
            reason: "refused for good".to_owned(),
        },
    ];
    let settled_at = Instant::now();
    assert!(queue.replace_each(&leased.receipt, &next).await.unwrap());

    assert_eq!(lease_one(&*queue).await.task, now, "due at once");
    let dead_letters = keys.dead_letters().await;
    assert_eq!(dead_letters.len(), 1);
    assert_eq!(dead_letters[0].1, "refused for good");
    let back = lease_one(&*queue).await;
    assert_eq!(back.task, later);
    assert!(settled_at.elapsed() >= delay, "due after its delay only");
    assert_eq!(queue.depth().await.unwrap(), 2, "the event's task is gone");
}

/// How the worker hands a delivery that waited on its event's lease to the queue: its task
/// goes into the stream leased first, not behind the events already queued.
#[tokio::test]
async fn an_enqueued_delivery_task_is_leased_before_the_queued_events() {
    let Some(url) = redis_url("enqueued_delivery_first").await else {
        return;
    };
    let keys = TestKeys::new(&url, "enqueue-delivery");
    let queue = keys.backend().await;
    queue.publish_many(&[event(), event()]).await.unwrap();
    let delivery = Task::deliver(event(), fastapihooks_core::SubscriptionId::new());
    queue
        .enqueue(std::slice::from_ref(&delivery))
        .await
        .unwrap();

    assert_eq!(lease_one(&*queue).await.task, delivery);
}

/// Fenced like every settle: a lease taken over in between queues none of its replacements.
#[tokio::test]
async fn replace_each_after_the_lease_was_taken_over_changes_nothing() {
    let Some(url) = redis_url("replace_each_taken_over").await else {
        return;
    };
    let mut keys = TestKeys::new(&url, "replace-each-lost");
    keys.config.visibility_timeout = Duration::from_millis(300);
    keys.config.block = Duration::from_millis(100);
    let (stalled, healthy) = (keys.backend().await, keys.backend().await);
    let event = event();
    stalled.publish(event.clone()).await.unwrap();
    let stale = lease_one(&*stalled).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let current = lease_one(&*healthy).await;

    let task = Task::deliver(event, fastapihooks_core::SubscriptionId::new());
    let next = [
        Replacement::Due(task.clone()),
        Replacement::Dead {
            task,
            reason: "refused for good".to_owned(),
        },
    ];
    let settlements = [Settlement::ReplaceEach {
        receipt: stale.receipt.clone(),
        next: next.to_vec(),
    }];
    assert!(!stalled.settle_many(&settlements).await.remove(0).unwrap());
    assert_eq!(
        healthy.depth().await.unwrap(),
        1,
        "only the event, still leased"
    );
    assert!(keys.dead_letters().await.is_empty());
    assert!(healthy.ack(&current.receipt).await.unwrap());
}

#[tokio::test]
async fn a_retry_comes_back_when_due_and_not_before() {
    let Some(url) = redis_url("a_retry_comes_back_when_due").await else {
        return;
    };
    let keys = TestKeys::new(&url, "retry");
    let queue = keys.backend().await;
    queue.publish(event()).await.unwrap();
    let leased = lease_one(&*queue).await;
    let delay = Duration::from_millis(300);
    let scheduled = Instant::now();
    assert!(
        queue
            .retry_in(&leased.receipt, &leased.task, delay)
            .await
            .unwrap()
    );
    let again = lease_one(&*queue).await;
    assert!(scheduled.elapsed() >= delay, "{:?}", scheduled.elapsed());
    assert_eq!(again.task, leased.task);
}

#[tokio::test]
async fn a_dead_letter_is_kept_in_the_dead_letter_stream_with_its_reason() {
    let Some(url) = redis_url("a_dead_letter_is_kept").await else {
        return;
    };
    let keys = TestKeys::new(&url, "dead");
    let queue = keys.backend().await;
    queue.publish(event()).await.unwrap();
    let leased = lease_one(&*queue).await;
    assert!(
        queue
            .dead_letter(&leased.receipt, &leased.task, "refused for good")
            .await
            .unwrap()
    );
    let letters = keys.dead_letters().await;
    assert_eq!(letters.len(), 1);
    let task: serde_json::Value = serde_json::from_str(&letters[0].0).unwrap();
    assert_eq!(task["type"], "fanout");
    assert_eq!(letters[0].1, "refused for good");
    assert_eq!(queue.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn an_entry_that_is_not_a_task_is_dead_lettered_not_retried() {
    let Some(url) = redis_url("an_entry_that_is_not_a_task").await else {
        return;
    };
    let keys = TestKeys::new(&url, "garbage");
    let queue = keys.backend().await;
    assert!(queue.lease(1).await.unwrap().is_empty()); // creates the group
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("XADD")
        .arg(keys.config.tasks_key())
        .arg("*")
        .arg("task")
        .arg("not json")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert!(queue.lease(1).await.unwrap().is_empty());
    let letters = keys.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].0, "not json", "kept as it was");
    assert!(
        letters[0].1.starts_with("undecodable task"),
        "{}",
        letters[0].1
    );
    assert_eq!(queue.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn after_the_keys_are_deleted_a_lease_is_lost_and_the_queue_carries_on() {
    let Some(url) = redis_url("after_the_keys_are_deleted").await else {
        return;
    };
    let keys = TestKeys::new(&url, "nogroup");
    let queue = keys.backend().await;
    queue.publish(event()).await.unwrap();
    let leased = lease_one(&*queue).await;

    keys.delete_keys().await;
    assert!(
        !queue.ack(&leased.receipt).await.unwrap(),
        "the lease went with the data"
    );
    let next = event();
    queue.publish(next.clone()).await.unwrap();
    assert_eq!(lease_one(&*queue).await.task, Task::fanout(next));
}

#[tokio::test]
async fn a_stopped_consumer_without_leases_is_forgotten() {
    let Some(url) = redis_url("a_stopped_consumer_without_leases_is_forgotten").await else {
        return;
    };
    let mut keys = TestKeys::new(&url, "forget");
    keys.config.visibility_timeout = Duration::from_millis(300);
    keys.config.block = Duration::from_millis(50);
    keys.config.forget_consumers_after = Duration::from_millis(600);
    let stopped = keys.backend().await;
    stopped.publish(event()).await.unwrap();
    let leased = lease_one(&*stopped).await; // joins the group
    assert!(stopped.ack(&leased.receipt).await.unwrap());
    let consumers = || async {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let infos: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(keys.config.tasks_key())
            .arg(&keys.config.group)
            .query_async(&mut conn)
            .await
            .unwrap();
        infos
            .iter()
            .map(|info| redis::from_redis_value_ref::<String>(&info["name"]).unwrap())
            .collect::<Vec<_>>()
    };
    let stopped_name = stopped.config().consumer.clone();
    assert_eq!(consumers().await, std::slice::from_ref(&stopped_name));
    drop(stopped);

    let live = keys.backend().await;
    let started = Instant::now();
    while consumers().await.contains(&stopped_name) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never forgotten"
        );
        assert!(live.lease(1).await.unwrap().is_empty());
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before it was idle for about the configured 600 ms"
    );
}

#[tokio::test]
async fn the_oldest_pending_age_grows_while_a_task_waits_and_is_none_when_empty() {
    let Some(url) = redis_url("the_oldest_pending_age_grows_while_a_task_waits").await else {
        return;
    };
    let keys = TestKeys::new(&url, "lag");
    let queue = keys.backend().await;
    assert_eq!(queue.oldest_pending_age().await.unwrap(), None, "empty");
    // Before any sidecar made the consumer group, every entry waits.
    queue.publish(event()).await.unwrap();
    let first = queue
        .oldest_pending_age()
        .await
        .unwrap()
        .expect("a task waits");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = queue
        .oldest_pending_age()
        .await
        .unwrap()
        .expect("it still waits");
    assert!(
        later >= first + Duration::from_millis(250),
        "{first:?}, then {later:?}"
    );
    assert!(later < Duration::from_secs(30), "{later:?}");

    let leased = lease_one(&*queue).await;
    assert_eq!(
        queue.oldest_pending_age().await.unwrap(),
        None,
        "a leased task is not waiting"
    );
    let delay = Duration::from_millis(200);
    assert!(
        queue
            .retry_in(&leased.receipt, &leased.task, delay)
            .await
            .unwrap()
    );
    assert_eq!(
        queue.oldest_pending_age().await.unwrap(),
        None,
        "a retry not yet due is not waiting"
    );
    tokio::time::sleep(delay + Duration::from_millis(300)).await;
    let due = queue
        .oldest_pending_age()
        .await
        .unwrap()
        .expect("a due retry waits, before a lease call moves it back into its stream");
    assert!(due >= Duration::from_millis(200), "{due:?}");
    let again = lease_one(&*queue).await;
    assert_eq!(again.task, leased.task);
    assert!(queue.ack(&again.receipt).await.unwrap());
    assert_eq!(queue.oldest_pending_age().await.unwrap(), None, "drained");
}

/// Publishes `n` scheduler turns after being asked to: a request whose handler finished a
/// little later than the others (its own database answer arrived on a later turn).
async fn publish_turns_later(queue: &impl Backend, n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
    queue.publish(event()).await.unwrap();
}

/// The publishes of requests that finish a few turns of the scheduler apart share one pipeline
/// (one round trip to Redis), each still awaiting its own acknowledgement.
#[tokio::test]
async fn publishes_a_few_turns_apart_share_one_pipeline() {
    let Some(url) = redis_url("publishes_a_few_turns_apart_share_one_pipeline").await else {
        return;
    };
    let keys = TestKeys::new(&url, "turns");
    let queue = keys.backend().await;
    // The test's runtime has one thread: the publisher's tasks record to this recorder too.
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    tokio::join!(
        publish_turns_later(&*queue, 0),
        publish_turns_later(&*queue, 1),
        publish_turns_later(&*queue, 2),
        publish_turns_later(&*queue, 3),
    );
    let pipelines = RecordedMetrics::of(&snapshotter).histogram(
        fastapihooks_core::metrics::GROUP_COMMIT_BATCH_REQUESTS,
        &[("op", "redis.publish")],
    );
    assert_eq!(pipelines, vec![4.0], "publishes per pipeline");
    assert_eq!(queue.depth().await.unwrap(), 4, "every publish is queued");
}

//! `fastapihooks start` on a Redis queue: the real binary as a child process, the machine's
//! Redis (`FASTAPIHOOKS_TEST_REDIS`, a key prefix per test), the store in a SQLite file of the
//! test's own, a real receiver on 127.0.0.1.
#![cfg(all(feature = "redis", feature = "sqlite"))]

mod support;

use std::time::{Duration, Instant};

use fastapihooks_core::{
    Event, Queue as _, RedisBackend, RedisConfig, SqlStore, Store, Subscription, WorkerConfig,
};
use fastapihooks_testkit::{
    Receiver, Reply, TestKeys, events, eventually, expected_pairs, redis_url, tally,
};
use support::{Sidecar, reported};

const WAIT: Duration = Duration::from_secs(60);

/// One test's queue (its own key prefix, deleted on drop), store and subscriptions.
struct Setup {
    redis: String,
    /// The test's key prefix; its keys are deleted when dropped.
    keys: TestKeys,
    store_url: String,
    subscriptions: Vec<Subscription>,
    publisher: RedisBackend,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn new(redis: String, subscriber_urls: &[String]) -> Self {
        let keys = TestKeys::new(&redis, "cli");
        let dir = tempfile::tempdir().unwrap();
        let store_url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("store.db").display()
        );
        let store = SqlStore::connect(&store_url).await.unwrap();
        let mut subscriptions = Vec::new();
        for url in subscriber_urls {
            let subscription = Subscription::new("*", url).unwrap();
            store.add_subscription(subscription.clone()).await.unwrap();
            subscriptions.push(subscription);
        }
        store.connection().clone().close().await.unwrap();
        let publisher = RedisBackend::connect(RedisConfig::new(&redis).key_prefix(keys.prefix()))
            .await
            .unwrap();
        Self {
            redis,
            keys,
            store_url,
            subscriptions,
            publisher,
            _dir: dir,
        }
    }

    /// `fastapihooks start` arguments for this test's queue and store, then `extra`; a flag in
    /// `extra` replaces its default here.
    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "--queue",
            &self.redis,
            "--key-prefix",
            self.keys.prefix(),
            "--store",
            &self.store_url,
            "--allow-loopback",
            // The machine's Redis runs without the append-only file.
            "--allow-volatile-redis",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (flag, value) in [
            ("--signing-secret", "test-secret"),
            ("--http-timeout", "1s"),
            ("--visibility-timeout", "3s"),
            ("--retry-schedule", "200ms,400ms,800ms,1s,1s,1s,1s,1s,1s,1s"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    async fn publish(&self, events: &[Event]) {
        for chunk in events.chunks(500) {
            self.publisher.publish_many(chunk).await.unwrap();
        }
    }

    /// Tasks currently leased: pending entries of the consumer group.
    async fn leased(&self) -> u64 {
        self.keys.leased().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_killed_mid_delivery_loses_nothing_and_repeats_at_most_what_was_in_flight() {
    let Some(redis) = redis_url("redis crash test").await else {
        return;
    };
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(2))).await;
    let setup = Setup::new(redis, &[receiver.url("a"), receiver.url("b")]).await;
    let events = events(2_000);
    let expected = expected_pairs(&events, &setup.subscriptions);
    setup.publish(&events).await;
    let (concurrency, tasks_in_flight) = (16, 32);
    let args = setup.args(&[
        "--concurrency",
        &concurrency.to_string(),
        "--tasks-in-flight",
        &tasks_in_flight.to_string(),
    ]);

    let started = Instant::now();
    let mut first = Sidecar::start(&args);
    let mut most_leased = 0;
    while receiver.distinct() < expected.len() / 4 && started.elapsed() < WAIT {
        most_leased = most_leased.max(setup.leased().await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        receiver.distinct() >= expected.len() / 4,
        "the first sidecar delivered only {} of {}",
        receiver.distinct(),
        expected.len()
    );
    first.kill();
    let at_kill = receiver.distinct();
    let killed_after = started.elapsed();

    let restarted = Instant::now();
    let second = Sidecar::start(&args);
    let all = eventually(WAIT, || receiver.distinct() >= expected.len()).await;
    let mut drained = false;
    for _ in 0..250 {
        if setup.publisher.depth().await.unwrap() == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_time = restarted.elapsed();
    second.terminate();
    let (clean_exit, stdout) = second.exit(Duration::from_secs(20)).await;

    let t = tally(&receiver, &expected);
    eprintln!(
        "REDIS CRASH: {} events, {} (event, subscription) pairs expected, {} received before the SIGKILL at {killed_after:?}, lost {}, duplicated ids {} ({} extra requests), unexpected {}, drained {drain_time:?} after the restart; max in flight {}, most tasks leased at once {most_leased} (concurrency {concurrency}); second sidecar: {}",
        events.len(),
        t.expected,
        at_kill,
        t.lost,
        t.duplicated_ids,
        t.extra_requests,
        t.unexpected,
        receiver.max_in_flight(),
        stdout.trim()
    );
    assert!(
        at_kill < expected.len(),
        "the kill came after the work was done"
    );
    assert!(all && t.lost == 0, "lost {} deliveries", t.lost);
    assert!(drained, "the queue still holds tasks");
    assert_eq!(t.unexpected, 0);
    // A delivery may repeat only if its task was running at the kill: sent, or waiting to
    // send, and not yet recorded and settled.
    assert!(
        t.extra_requests <= tasks_in_flight,
        "only deliveries whose task ran at the kill may repeat: {} extra requests, --tasks-in-flight {tasks_in_flight}",
        t.extra_requests
    );
    assert!(
        receiver.max_in_flight() <= concurrency,
        "{} requests in flight at once, above --concurrency {concurrency}",
        receiver.max_in_flight()
    );
    // What runs never exceeds --tasks-in-flight; what is leased is that plus at most one
    // lease batch waiting for a task slot: leased ahead, never started before a slot is free.
    let waiting = tasks_in_flight.min(WorkerConfig::default().lease_batch);
    assert!(
        most_leased <= (tasks_in_flight + waiting) as u64,
        "{most_leased} leased at once, above --tasks-in-flight {tasks_in_flight} plus a lease batch waiting ({waiting})"
    );
    assert!(clean_exit, "the restarted sidecar exited with an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_everything_once_it_is_up() {
    let Some(redis) = redis_url("redis receiver down").await else {
        return;
    };
    let addr = Receiver::reserve_port().await;
    let url = format!("http://{addr}/down");
    let setup = Setup::new(redis, std::slice::from_ref(&url)).await;
    let events = events(50);
    let expected = expected_pairs(&events, &setup.subscriptions);
    setup.publish(&events).await;
    let sidecar = Sidecar::start(&setup.args(&["--concurrency", "8"]));

    // Long enough for every delivery to fail at least twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let receiver = Receiver::replying_on(addr, Reply::ok()).await;
    let all = eventually(WAIT, || receiver.distinct() >= expected.len()).await;
    sidecar.terminate();
    let (clean_exit, stdout) = sidecar.exit(Duration::from_secs(20)).await;

    let t = tally(&receiver, &expected);
    assert!(all && t.lost == 0, "lost {} of {}", t.lost, t.expected);
    assert_eq!(t.extra_requests, 0, "a delivery was sent twice");
    assert!(
        reported(&stdout, "retried") >= expected.len() as u64,
        "every delivery failed while the receiver was down: {stdout}"
    );
    assert_eq!(reported(&stdout, "dead-lettered"), 0, "{stdout}");
    assert!(clean_exit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_leasing_and_drains_the_deliveries_in_flight() {
    let Some(redis) = redis_url("redis sigterm").await else {
        return;
    };
    // Each delivery takes 700 ms; the drain deadline leaves room for them.
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(700))).await;
    let setup = Setup::new(redis, &[receiver.url("slow")]).await;
    let events = events(40);
    setup.publish(&events).await;
    let sidecar = Sidecar::start(&setup.args(&["--concurrency", "4", "--drain-deadline", "20s"]));

    assert!(eventually(WAIT, || receiver.in_flight() >= 2).await);
    sidecar.terminate();
    let terminated_with = receiver.arrived();
    let (clean_exit, stdout) = sidecar.exit(Duration::from_secs(20)).await;

    assert!(clean_exit, "{stdout}");
    assert_eq!(reported(&stdout, "abandoned"), 0, "{stdout}");
    assert_eq!(
        receiver.answered(),
        receiver.arrived(),
        "every request sent before the stop was answered before the sidecar exited"
    );
    assert_eq!(
        reported(&stdout, "delivered"),
        receiver.answered() as u64,
        "each answered request was settled as delivered: {stdout}"
    );
    assert!(
        receiver.arrived() <= terminated_with + 4,
        "leasing stopped at SIGTERM: at most the in-flight slots ran on"
    );
    // What was not leased is still queued for the next sidecar.
    assert!(setup.publisher.depth().await.unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_carries_on_after_redis_loses_the_queue_keys() {
    let Some(redis) = redis_url("redis data loss").await else {
        return;
    };
    let receiver = Receiver::ok().await;
    let setup = Setup::new(redis, &[receiver.url("a")]).await;
    let sidecar = Sidecar::start(&setup.args(&["--concurrency", "8"]));
    let before = events(20);
    setup.publish(&before).await;
    assert!(eventually(WAIT, || receiver.distinct() >= 20).await);

    // What a Redis restart without persistence looks like to this queue (its keys only).
    let client = redis::Client::open(setup.redis.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys = RedisConfig::new(&setup.redis)
        .key_prefix(setup.keys.prefix())
        .keys();
    redis::cmd("DEL")
        .arg(&keys)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let after = events(20);
    setup.publish(&after).await;
    let carried_on = eventually(WAIT, || receiver.distinct() >= 40).await;
    sidecar.terminate();
    let (clean_exit, _) = sidecar.exit(Duration::from_secs(20)).await;

    let all: Vec<Event> = before.into_iter().chain(after).collect();
    let t = tally(&receiver, &expected_pairs(&all, &setup.subscriptions));
    assert!(carried_on && t.lost == 0, "lost {} of 40", t.lost);
    assert_eq!(t.extra_requests, 0);
    assert!(clean_exit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_without_waiting_for_the_drain() {
    let Some(redis) = redis_url("redis second sigterm").await else {
        return;
    };
    // Deliveries that outlast the test: only a forced exit ends the sidecar in time.
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_secs(60))).await;
    let setup = Setup::new(redis, &[receiver.url("stuck")]).await;
    setup.publish(&events(4)).await;
    let sidecar = Sidecar::start(&setup.args(&[
        "--http-timeout",
        "50s",
        "--visibility-timeout",
        "55s",
        "--drain-deadline",
        "40s",
    ]));
    assert!(eventually(WAIT, || receiver.in_flight() >= 1).await);
    sidecar.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sidecar.terminate();
    let (status, stdout) = sidecar.exit_status(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(130), "{status:?} {stdout}");
    assert!(
        !stdout.contains("stopped:"),
        "it did not wait to report: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_reads_the_append_only_setting_the_server_reports() {
    let Some(redis) = redis_url("redis persistence").await else {
        return;
    };
    let setup = Setup::new(redis, &[]).await;
    let client = redis::Client::open(setup.redis.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let answer: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query_async(&mut conn)
        .await
        .unwrap();
    let persistence = setup.publisher.persistence().await.unwrap();
    assert_eq!(
        persistence.aof,
        Some(answer["appendonly"] == "yes"),
        "{persistence} against {answer:?}"
    );
    assert_eq!(persistence.is_durable(), answer["appendonly"] == "yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refuses_a_redis_without_the_append_only_file() {
    let Some(redis) = redis_url("redis volatile").await else {
        return;
    };
    let setup = Setup::new(redis, &[]).await;
    let persistence = setup.publisher.persistence().await.unwrap();
    if persistence.is_durable() {
        eprintln!(
            "start_refuses_a_redis_without_the_append_only_file: SKIPPED: this Redis persists \
             ({persistence}); the refusal needs one that does not"
        );
        return;
    }
    let args: Vec<String> = setup
        .args(&[])
        .into_iter()
        .filter(|arg| arg != "--allow-volatile-redis")
        .collect();
    let sidecar = Sidecar::start_capturing(&args);
    let (status, stdout, stderr) = sidecar.exit_capturing(Duration::from_secs(30)).await;
    let stderr = String::from_utf8_lossy(&stderr);

    assert_eq!(status.code(), Some(1), "{stderr}");
    for part in [
        "will lose every queued event on a restart",
        "appendonly yes",
        "appendfsync everysec",
        "--allow-volatile-redis",
    ] {
        assert!(stderr.contains(part), "{part:?} missing from: {stderr}");
    }
    assert!(!stdout.contains("stopped:"), "it ran: {stdout}");
}

//! The worker processing received webhooks (`Task::Process`) from the real Redis: retried under
//! the inbox's policy, dead-lettered past it, and never run by a sidecar that has no processor.
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fastapihooks_core::backend::{ProcessTask, Task};
use fastapihooks_core::inbox::{
    Inbox, InboxEntry, InboxProcessing, InboxProcessor, InboxStatus, NewInboxEntry, ProcessError,
    Received,
};
use fastapihooks_core::{MemoryStore, Queue, Worker, WorkerConfig, WorkerReport};
use fastapihooks_testkit::{TestKeys, engine, eventually_async, quick_retries, redis_url};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

/// Fails the first `failures` attempts, then succeeds; counts every call.
#[derive(Debug, Default)]
struct FailFirst {
    failures: u32,
    calls: AtomicU32,
}

#[async_trait]
impl InboxProcessor for FailFirst {
    async fn process(&self, _entry: &InboxEntry) -> Result<(), ProcessError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call < self.failures {
            return Err(ProcessError::new(format!("failure {}", call + 1)));
        }
        Ok(())
    }
}

async fn received(inbox: &MemoryStore, id: &str) -> InboxEntry {
    let new = NewInboxEntry {
        source: "partner".into(),
        external_id: id.into(),
        headers: vec![],
        body: Bytes::from_static(b"{}"),
        ordering: None,
    };
    match inbox.receive(new).await.unwrap() {
        Received::New(entry) => entry,
        Received::Duplicate(entry) => panic!("{} is not new", entry.id),
    }
}

fn run<Q: Queue>(worker: Worker<Q>) -> (CancellationToken, tokio::task::JoinHandle<WorkerReport>) {
    let stop = CancellationToken::new();
    (stop.clone(), tokio::spawn(worker.run(stop)))
}

async fn status_becomes(inbox: &MemoryStore, entry: &InboxEntry, status: InboxStatus) -> bool {
    eventually_async(WAIT, || async {
        inbox
            .get_inbox_entry(&entry.id)
            .await
            .unwrap()
            .unwrap()
            .status
            == status
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_processing_is_retried_through_redis_until_it_succeeds() {
    let test = "a_failed_processing_is_retried_through_redis_until_it_succeeds";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let keys = TestKeys::new(&url, "inbox-retry");
    let queue = keys.backend().await;
    let inbox = Arc::new(MemoryStore::new());
    let processor = Arc::new(FailFirst {
        failures: 2,
        ..FailFirst::default()
    });
    let processing = InboxProcessing::new(inbox.clone(), processor.clone())
        .retry(quick_retries(3, Duration::from_millis(20)))
        .timeout(Duration::from_secs(2));
    let entry = received(&inbox, "1").await;
    queue
        .enqueue(&[Task::from(ProcessTask::new(entry.id.clone()))])
        .await
        .unwrap();
    let (stop, worker) =
        run(Worker::for_inbox(queue.clone(), processing, WorkerConfig::default()).unwrap());
    assert!(status_becomes(&inbox, &entry, InboxStatus::Processed).await);
    stop.cancel();
    let report = worker.await.unwrap();
    assert_eq!((report.processed, report.retried), (1, 2));
    assert_eq!(processor.calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        inbox
            .get_inbox_entry(&entry.id)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        3
    );
    assert_eq!(queue.depth().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processing_that_keeps_failing_is_a_dead_letter_with_its_reason() {
    let test = "a_processing_that_keeps_failing_is_a_dead_letter_with_its_reason";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let keys = TestKeys::new(&url, "inbox-dead");
    let queue = keys.backend().await;
    let inbox = Arc::new(MemoryStore::new());
    let processor = Arc::new(FailFirst {
        failures: u32::MAX,
        ..FailFirst::default()
    });
    let processing = InboxProcessing::new(inbox.clone(), processor)
        .retry(quick_retries(1, Duration::from_millis(20)))
        .timeout(Duration::from_secs(2));
    let entry = received(&inbox, "1").await;
    queue
        .enqueue(&[Task::from(ProcessTask::new(entry.id.clone()))])
        .await
        .unwrap();
    let (stop, worker) =
        run(Worker::for_inbox(queue.clone(), processing, WorkerConfig::default()).unwrap());
    assert!(status_becomes(&inbox, &entry, InboxStatus::Dead).await);
    stop.cancel();
    assert_eq!(worker.await.unwrap().dead_lettered, 1);
    let dead = inbox.get_inbox_entry(&entry.id).await.unwrap().unwrap();
    assert_eq!(dead.last_error.as_deref(), Some("failure 2"));
    assert_eq!(queue.dead_letters().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_without_a_processor_dead_letters_a_process_task_and_the_entry_stays_received() {
    let test =
        "a_sidecar_without_a_processor_dead_letters_a_process_task_and_the_entry_stays_received";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let keys = TestKeys::new(&url, "inbox-sidecar");
    let queue = keys.backend().await;
    let inbox = Arc::new(MemoryStore::new());
    let entry = received(&inbox, "1").await;
    queue
        .enqueue(&[Task::from(ProcessTask::new(entry.id.clone()))])
        .await
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let sidecar = Worker::new(
        queue.clone(),
        engine(store, quick_retries(0, Duration::ZERO)),
        WorkerConfig::default(),
    )
    .unwrap();
    let (stop, worker) = run(sidecar);
    let dead = eventually_async(WAIT, || async { queue.dead_letters().await.unwrap() == 1 }).await;
    assert!(dead, "the process task was dead-lettered");
    stop.cancel();
    assert_eq!(worker.await.unwrap().processed, 0);
    let kept = inbox.get_inbox_entry(&entry.id).await.unwrap().unwrap();
    assert_eq!(kept.status, InboxStatus::Received, "replayable");
}

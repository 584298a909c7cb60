//! Idle latency of the durable path, commit → arrival: the sidecar already running and idle,
//! single events published one at a time, `sizes.idle_pace_ms` apart, to 1 subscriber; per
//! event, from the moment its publish returned (`XADD` answered, or the outbox transaction
//! committed) to its arrival at the receiver.

use std::time::Duration;

use fastapihooks_core::{DeliveryId, Event};
use serde::Serialize;

use super::Sizes;
use super::accounting::{Accounting, account};
use super::part::Pinning;
use super::receiver::Receiver;
use super::sidecar_part::Sidecar;
use crate::durable::env::DurableEnv;
use crate::durable::history::{self, History};
use crate::durable::{QueueKind, Services};
use crate::wire::{EVENT_NAME, WorkerCounts, order};

/// How long the sidecar is left to settle into its idle lease loop before the first event.
const SETTLE: Duration = Duration::from_millis(300);

/// The idle latency of one queue.
#[derive(Clone, Debug, Serialize)]
pub struct IdleLatency {
    /// The queue.
    pub queue: QueueKind,
    /// Events published, one at a time.
    pub events: usize,
    /// Pause after each publish (ms).
    pub pace_ms: u64,
    /// Every delivery, by id; its latencies are commit → arrival.
    pub accounting: Accounting,
    /// Every delivery in the store.
    pub history: History,
    /// What the worker counted.
    pub worker: WorkerCounts,
}

impl IdleLatency {
    /// Whether nothing was lost, at the receiver or in the store, and nothing abandoned.
    pub fn exact(&self) -> bool {
        self.accounting.exact()
            && self.history.exact(self.accounting.expected)
            && self.worker.abandoned == 0
    }
}

/// Measures the idle latency of each queue, once (`sizes.idle_events` samples each).
pub async fn measure(
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
    services: &Services,
) -> anyhow::Result<Vec<IdleLatency>> {
    let mut results = Vec::new();
    for &queue in QueueKind::ALL {
        eprintln!(
            "sidecar idle latency: {} · {} single events, {} ms apart",
            queue.name(),
            sizes.idle_events,
            sizes.idle_pace_ms
        );
        let env = DurableEnv::create(queue, services).await?;
        let result = trickle(&env, receiver, pinning, sizes).await;
        env.remove().await;
        results.push(result?);
    }
    Ok(results)
}

/// Starts the sidecar on an empty queue, publishes the events one by one, stops it, counts.
async fn trickle(
    env: &DurableEnv,
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
) -> anyhow::Result<IdleLatency> {
    let subscription = env
        .subscribe(1, &receiver.hook_url())
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no subscription made"))?;
    receiver.reset().await?;
    let sidecar = Sidecar::start(env, pinning, sizes.concurrency).await?;
    tokio::time::sleep(SETTLE).await;
    let mut expected = Vec::with_capacity(sizes.idle_events);
    for i in 0..sizes.idle_events {
        let event = Event::new(EVENT_NAME, &order(i as u64))?;
        let id = DeliveryId::for_event(event.id(), &subscription).to_string();
        let committed_ns = env.publish_one(event).await?;
        expected.push((id, committed_ns));
        tokio::time::sleep(Duration::from_millis(sizes.idle_pace_ms)).await;
    }
    receiver
        .wait_for(
            expected.len() as u64,
            Duration::from_secs(60),
            Duration::from_secs(15),
        )
        .await?;
    let done = sidecar.stop().await?;
    let accounting = account(&expected, &receiver.arrivals().await?, true);
    let history = history::read(env.store(), &expected).await?;
    Ok(IdleLatency {
        queue: env.kind(),
        events: expected.len(),
        pace_ms: sizes.idle_pace_ms,
        accounting,
        history,
        worker: done.worker,
    })
}

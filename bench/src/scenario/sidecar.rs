//! Sidecar throughput, the durable path: with 1, 10 and 1,000 subscriptions stored in
//! PostgreSQL, a backlog of deliveries is queued first (Redis Streams or the PostgreSQL
//! outbox), then the sidecar part starts on core 0 and drains it into the receiver on core 1.
//! Every delivery is counted at the receiver by id, and found delivered in the store.

use std::time::{Duration, Instant};

use fastapihooks_core::{DeliveryId, Event};
use serde::Serialize;

use super::accounting::{Accounting, account};
use super::delivery::per_second;
use super::part::Pinning;
use super::receiver::Receiver;
use super::sidecar_part::Sidecar;
use super::{Sizes, median_by};
use crate::durable::env::DurableEnv;
use crate::durable::history::{self, History};
use crate::durable::{QueueKind, Services};
use crate::proc_stats::{idle_percent, machine_cpu_ticks, on_this_machine, service_cpu_ms};
use crate::wire::{EVENT_NAME, WorkerCounts, order};

/// One run of one row.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// Delivered / (last arrival − first arrival), per second.
    pub deliveries_per_s: f64,
    /// Ms from the sidecar process's start to the first arrival (connecting to PostgreSQL and
    /// the queue included).
    pub first_arrival_ms: f64,
    /// Ms from the process's start to its worker running.
    pub ready_ms: f64,
    /// Ms the conductor took to queue the backlog (`publish_many` batches).
    pub publish_ms: f64,
    /// Ms from telling the sidecar to stop to its report: the lease call in progress ends (up
    /// to the queue's 1 s block), then what is in flight drains.
    pub stop_ms: f64,
    /// CPU time of the sidecar process per delivery (µs), from its worker's start to its stop.
    pub cpu_us_per_delivery: f64,
    /// CPU time of this machine's PostgreSQL per delivery (µs), over the same span (`None`
    /// when PostgreSQL is elsewhere).
    pub postgres_cpu_us_per_delivery: Option<f64>,
    /// The same for this machine's Redis.
    pub redis_cpu_us_per_delivery: Option<f64>,
    /// WAL records the PostgreSQL server wrote per delivery over the same span: the store's
    /// (and the outbox's) writes, counted — unlike CPU time, the same on a slow or a busy
    /// machine (`None` before PostgreSQL 14).
    pub wal_records_per_delivery: Option<f64>,
    /// The share of this machine's CPU (every core) idle from the sidecar's start to the last
    /// arrival, in percent: high while the machine is busy with nothing else, the durable path
    /// waits on itself rather than works (`None` without `/proc/stat`).
    pub machine_idle_percent: Option<f64>,
    /// Peak RSS of the sidecar process (KiB).
    pub peak_rss_kib: u64,
    /// Allocations the sidecar process made per delivery over the same span as its CPU time
    /// (`--features count-allocations`): unlike CPU time, steady on a noisy machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocations_per_delivery: Option<f64>,
    /// Every delivery at the receiver, by id (latencies: from the sidecar's start).
    pub accounting: Accounting,
    /// Every delivery in the store.
    pub history: History,
    /// What the worker counted.
    pub worker: WorkerCounts,
}

impl Run {
    /// Whether nothing was lost, at the receiver or in the store, and nothing abandoned.
    pub fn exact(&self) -> bool {
        self.accounting.exact()
            && self.history.exact(self.accounting.expected)
            && self.worker.abandoned == 0
    }
}

/// One row: a queue and a subscriber count.
#[derive(Clone, Debug, Serialize)]
pub struct RowResult {
    /// The queue.
    pub queue: QueueKind,
    /// Subscriptions of the event.
    pub subscribers: usize,
    /// Events queued per run.
    pub events: usize,
    /// The median run (by deliveries/s).
    pub median: Run,
    /// Every run.
    pub runs: Vec<Run>,
}

/// Measures each queue with 1, 10 and 1,000 subscribers, `sizes.repeat` times each.
pub async fn measure(
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
    services: &Services,
) -> anyhow::Result<Vec<RowResult>> {
    let mut results = Vec::new();
    for &queue in QueueKind::ALL {
        for subscribers in [1usize, 10, 1000] {
            let events = (sizes.sidecar_deliveries / subscribers).max(1);
            let mut runs = Vec::new();
            for round in 0..sizes.repeat {
                eprintln!(
                    "sidecar: {} · {subscribers} subscribers · {events} events queued (run {}/{})",
                    queue.name(),
                    round + 1,
                    sizes.repeat
                );
                let env = DurableEnv::create(queue, services).await?;
                let run = drain_backlog(&env, receiver, pinning, sizes, subscribers, events).await;
                env.remove().await;
                runs.push(run?);
            }
            if let Some(median) = median_by(&runs, |r| r.deliveries_per_s) {
                results.push(RowResult {
                    queue,
                    subscribers,
                    events,
                    median,
                    runs,
                });
            }
        }
    }
    Ok(results)
}

/// Queues `events` events for `subscribers` subscriptions, starts the sidecar, waits for the
/// receiver to count them all, stops the sidecar and reads the store.
async fn drain_backlog(
    env: &DurableEnv,
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
    subscribers: usize,
    events: usize,
) -> anyhow::Result<Run> {
    let subscription_ids = env.subscribe(subscribers, &receiver.hook_url()).await?;
    let events: Vec<Event> = (0..events)
        .map(|i| Event::new(EVENT_NAME, &order(i as u64)))
        .collect::<Result<_, _>>()?;
    let ids: Vec<String> = events
        .iter()
        .flat_map(|event| {
            subscription_ids
                .iter()
                .map(|s| DeliveryId::for_event(event.id(), s).to_string())
        })
        .collect();
    let publishing = Instant::now();
    env.publish_backlog(&events).await?;
    let publish_ms = publishing.elapsed().as_secs_f64() * 1e3;
    receiver.reset().await?;
    let sidecar = Sidecar::start(env, pinning, sizes.concurrency).await?;
    let services_before = ServicesCpu::read(env);
    let wal_before = env.wal_records().await;
    let machine_before = machine_cpu_ticks();
    let (spawned_ns, ready_ms) = (sidecar.spawned_ns, sidecar.ready_ms());
    receiver
        .wait_for(
            ids.len() as u64,
            Duration::from_secs(300),
            Duration::from_secs(15),
        )
        .await?;
    let machine_idle_percent = idle_percent(machine_before, machine_cpu_ticks());
    let stopping = Instant::now();
    let done = sidecar.stop().await?;
    let services = ServicesCpu::read(env).since(&services_before);
    let wal = wal_before
        .zip(env.wal_records().await)
        .map(|(before, after)| (after - before) as f64);
    let stop_ms = stopping.elapsed().as_secs_f64() * 1e3;
    // Stopped and drained: what has not arrived will not.
    let arrivals = receiver.arrivals().await?;
    let expected: Vec<(String, u64)> = ids.into_iter().map(|id| (id, spawned_ns)).collect();
    let accounting = account(&expected, &arrivals, true);
    let first_ns = arrivals.iter().map(|a| a.at_ns).min().unwrap_or(0);
    let delivered = accounting.delivered.max(1) as f64;
    let us_per_delivery = |ms: f64| ms * 1e3 / delivered;
    let history = history::read(env.store(), &expected).await?;
    Ok(Run {
        deliveries_per_s: per_second(accounting.delivered, first_ns, accounting.last_arrival_ns),
        first_arrival_ms: first_ns.saturating_sub(spawned_ns) as f64 / 1e6,
        ready_ms,
        publish_ms,
        stop_ms,
        cpu_us_per_delivery: us_per_delivery(done.cpu_ms),
        postgres_cpu_us_per_delivery: services.postgres_ms.map(us_per_delivery),
        redis_cpu_us_per_delivery: services.redis_ms.map(us_per_delivery),
        wal_records_per_delivery: wal.map(|records| records / delivered),
        machine_idle_percent,
        peak_rss_kib: done.peak_rss_kib,
        allocations_per_delivery: done.allocations.map(|n| n as f64 / delivered),
        accounting,
        history,
        worker: done.worker,
    })
}

/// The CPU this machine's PostgreSQL and Redis have used (ms), for those of the run's services
/// that run here.
struct ServicesCpu {
    postgres_ms: Option<f64>,
    redis_ms: Option<f64>,
}

impl ServicesCpu {
    fn read(env: &DurableEnv) -> Self {
        let place = env.place();
        let here = |url: &Option<String>, comm: &str| {
            url.as_deref()
                .filter(|url| on_this_machine(url))
                .and_then(|_| service_cpu_ms(comm))
        };
        Self {
            postgres_ms: here(&place.postgres, "postgres"),
            redis_ms: here(&place.redis, "redis-server"),
        }
    }

    fn since(&self, before: &Self) -> Self {
        let delta = |after: Option<f64>, before: Option<f64>| Some(after? - before?);
        Self {
            postgres_ms: delta(self.postgres_ms, before.postgres_ms),
            redis_ms: delta(self.redis_ms, before.redis_ms),
        }
    }
}

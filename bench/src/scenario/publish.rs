//! Publishing into Redis, alone: what the hook's publish costs a route per event, without the
//! route. The `publish` part, on the service's core, publishes `sizes.publish_events` events into
//! a fresh Redis queue from 1, 8 and 32 tasks at once (one in flight per task, as a request
//! awaits its publish); the conductor then counts the queue's tasks, which must equal the
//! publishes acknowledged.
//!
//! The route-cost table's Redis row measures the same publish inside a route whose requests
//! also wait on PostgreSQL: there the CPU per request moves with how many requests the closed
//! loop keeps in flight, and with how often a core wakes from idle. Here the publishers are the
//! only load, so the figure per publish is the library's work plus the round trips it shares.

use std::time::Duration;

use serde::Serialize;

use super::part::{Part, Pinning, SERVER_CORE};
use super::{Sizes, median_by};
use crate::durable::env::DurableEnv;
use crate::durable::{QueueKind, Services};
use crate::wire::PublishDone;

/// Tasks publishing at once, one row each.
pub const PUBLISHERS: &[usize] = &[1, 8, 32];

/// One run of one row.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// Publishes acknowledged per second.
    pub publishes_per_s: f64,
    /// CPU of the publishing process per publish (µs).
    pub cpu_us_per_publish: f64,
    /// Publishes acknowledged.
    pub published: u64,
    /// Publishes that failed (must be 0).
    pub failed: u64,
    /// Tasks in the queue afterwards (must equal `published`).
    pub queued: u64,
}

impl Run {
    /// Every event published once, and found in the queue.
    pub fn exact(&self, events: usize) -> bool {
        self.failed == 0 && self.published == events as u64 && self.queued == self.published
    }
}

/// The runs of a row and their median (by CPU per publish).
#[derive(Clone, Debug, Serialize)]
pub struct RowResult {
    /// Tasks publishing at once.
    pub publishers: usize,
    /// Events per run.
    pub events: usize,
    /// The median run.
    pub median: Run,
    /// Every run.
    pub runs: Vec<Run>,
}

/// Measures every row `sizes.repeat` times, interleaved, each run in a Redis queue of its own.
pub async fn measure(
    pinning: Pinning,
    sizes: &Sizes,
    services: &Services,
) -> anyhow::Result<Vec<RowResult>> {
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); PUBLISHERS.len()];
    for round in 0..sizes.repeat {
        for (&publishers, runs) in PUBLISHERS.iter().zip(runs.iter_mut()) {
            eprintln!(
                "publish into Redis: {publishers} at once, {} events (run {}/{})",
                sizes.publish_events,
                round + 1,
                sizes.repeat
            );
            let env = DurableEnv::create(QueueKind::Redis, services).await?;
            let run = measure_in(&env, pinning, publishers, sizes.publish_events).await;
            env.remove().await;
            runs.push(run?);
        }
    }
    Ok(PUBLISHERS
        .iter()
        .zip(runs)
        .filter_map(|(&publishers, runs)| {
            Some(RowResult {
                publishers,
                events: sizes.publish_events,
                median: median_by(&runs, |r| r.cpu_us_per_publish)?,
                runs,
            })
        })
        .collect())
}

async fn measure_in(
    env: &DurableEnv,
    pinning: Pinning,
    publishers: usize,
    events: usize,
) -> anyhow::Result<Run> {
    let mut args = vec!["publish".to_owned()];
    args.extend(env.place().to_args());
    args.extend([
        "--publishers".to_owned(),
        publishers.to_string(),
        "--events".to_owned(),
        events.to_string(),
    ]);
    let part = Part::start("publish", pinning, SERVER_CORE, &args)?;
    let done: PublishDone = part.finish(Duration::from_secs(300)).await?;
    Ok(Run {
        publishes_per_s: done.published as f64 / done.secs.max(f64::EPSILON),
        cpu_us_per_publish: done.cpu_ms * 1e3 / done.published.max(1) as f64,
        published: done.published,
        failed: done.failed,
        queued: env.queued().await?,
    })
}

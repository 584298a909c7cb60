//! The publishing side alone: `--publishers` tasks publishing the route's event into the run's
//! Redis queue through `Backend::publish`, one after the other each, as that many hooked
//! requests in flight would — no HTTP, no handler, no database. What a route pays per event
//! for the hook's publish, on a core of its own.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use clap::Args;
use fastapihooks::{Backend, Event};

use crate::durable::place::Place;
use crate::proc_stats::own_cpu_ms;
use crate::wire::{EVENT_NAME, PublishDone, order};

/// Arguments of the `publish` part.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The run's Redis queue.
    #[command(flatten)]
    place: Place,
    /// Tasks publishing at once.
    #[arg(long)]
    publishers: usize,
    /// Events to publish in all (split evenly over the tasks).
    #[arg(long)]
    events: usize,
}

/// Publishes and reports.
pub fn run(args: PublishArgs) -> anyhow::Result<()> {
    // The default runtime, as the `app` part: one worker under `taskset -c 0`.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(publish(args))
}

async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.publishers > 0, "--publishers must be at least 1");
    let queue = Arc::new(args.place.redis_queue().await?);
    // The route's answer, the event's payload (the layer takes the response's bytes as they are).
    let body = Bytes::from(serde_json::to_vec(&order(1))?);
    let (started, cpu_before) = (Instant::now(), own_cpu_ms());
    let mut publishers = tokio::task::JoinSet::new();
    for n in 0..args.publishers {
        // The first `events % publishers` tasks publish one more.
        let share = args.events / args.publishers + usize::from(n < args.events % args.publishers);
        let (queue, body) = (queue.clone(), body.clone());
        publishers.spawn(async move {
            let (mut published, mut failed) = (0u64, 0u64);
            for _ in 0..share {
                let published_ok = match Event::from_json_bytes(EVENT_NAME, body.clone()) {
                    Ok(event) => queue.publish(event).await.is_ok(),
                    Err(_) => false,
                };
                if published_ok {
                    published += 1;
                } else {
                    failed += 1;
                }
            }
            (published, failed)
        });
    }
    let (mut published, mut failed) = (0, 0);
    while let Some(counts) = publishers.join_next().await {
        let (ok, not) = counts?;
        published += ok;
        failed += not;
    }
    super::report(&PublishDone {
        published,
        failed,
        secs: started.elapsed().as_secs_f64(),
        cpu_ms: own_cpu_ms() - cpu_before,
    })
}

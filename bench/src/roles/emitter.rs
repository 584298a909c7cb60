//! Emits events through the hooks as fast as the backend takes them, then drains: the
//! delivery-throughput and fan-out measurements. Writes the id of every delivery it expects, with
//! the time its event was emitted, for the conductor's accounting.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use fastapihooks::DeliveryId;

use crate::backends::{BackendKind, subscriptions};
use crate::proc_stats::{own_cpu_ms, own_peak_rss_kib, unix_ns};
use crate::wire::{EVENT_NAME, EmitDone, order};

/// Arguments of the `emit` part.
#[derive(Debug, Args)]
pub struct EmitArgs {
    /// The backend.
    #[arg(long, value_enum, default_value = "background")]
    backend: BackendKind,
    /// Subscriptions of the event (all at the receiver).
    #[arg(long)]
    subscribers: usize,
    /// Events to emit.
    #[arg(long)]
    events: usize,
    /// Pause after each event (0: emit back to back).
    #[arg(long, default_value_t = 0)]
    pace_ms: u64,
    /// The receiver's URL.
    #[arg(long)]
    receiver: String,
    /// Delivery attempts in flight at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Deliveries the `MemoryStore` history keeps (its default).
    #[arg(long, default_value_t = fastapihooks::MemoryStore::DEFAULT_MAX_DELIVERIES)]
    history: usize,
    /// Where to write `<delivery id>\t<emitted unix ns>` lines.
    #[arg(long)]
    ids_out: PathBuf,
}

/// Emits, drains, writes the expected ids and reports.
pub fn run(args: EmitArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // On a worker, like a handler that emits: `block_on` would run the loop on the main
    // thread and every publish would wake the worker across threads.
    runtime.block_on(async { tokio::spawn(emit(args)).await? })
}

async fn emit(args: EmitArgs) -> anyhow::Result<()> {
    let subscriptions = subscriptions(args.subscribers, &args.receiver)?;
    let hooks = args
        .backend
        .hooks(&subscriptions, args.concurrency, args.history)?;
    let subscription_ids: Vec<_> = subscriptions.into_iter().map(|s| s.id).collect();
    let mut emitted = Vec::with_capacity(args.events);
    let mut failures = 0;
    let cpu_before = own_cpu_ms();
    let allocations_before = crate::allocator::allocations();
    let started_ns = unix_ns();
    for i in 0..args.events {
        let emitted_ns = unix_ns();
        match hooks.emit(EVENT_NAME, &order(i as u64)).await {
            Ok(event) => emitted.push((event.id().clone(), emitted_ns)),
            Err(e) => {
                failures += 1;
                eprintln!("emit: event {i} not accepted: {e}");
            }
        }
        if args.pace_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.pace_ms)).await;
        }
    }
    let report = hooks.shutdown(Duration::from_secs(120)).await?;
    let drained_ns = unix_ns();
    let cpu_ms = own_cpu_ms() - cpu_before;
    let allocations = crate::allocator::allocations()
        .zip(allocations_before)
        .map(|(after, before)| after - before);
    // The expected delivery ids, computed outside the measured CPU time.
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args.ids_out)?);
    for (event_id, emitted_ns) in &emitted {
        for subscription_id in &subscription_ids {
            let id = DeliveryId::for_event(event_id, subscription_id);
            writeln!(out, "{id}\t{emitted_ns}")?;
        }
    }
    out.flush()?;
    super::report(&EmitDone {
        events: args.events - failures,
        publish_failures: failures,
        started_ns,
        drained_ns,
        cpu_ms,
        peak_rss_kib: own_peak_rss_kib(),
        abandoned: report.abandoned,
        allocations,
    })
}

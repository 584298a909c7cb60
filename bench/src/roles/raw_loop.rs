//! The physical limit: a plain reqwest keep-alive POST loop to the same receiver at the same
//! concurrency — no signing, no queue, no store. Request `i` carries id `raw_<i>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;

use crate::proc_stats::{own_cpu_ms, own_peak_rss_kib, unix_ns};
use crate::wire::{ID_HEADER, RawLoopDone, order};

/// Arguments of the `raw-loop` part.
#[derive(Debug, Args)]
pub struct RawLoopArgs {
    /// The receiver's URL.
    #[arg(long)]
    url: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Requests to send.
    #[arg(long)]
    requests: u64,
    /// Gives up after this long.
    #[arg(long, default_value_t = 120)]
    max_secs: u64,
}

/// Runs the loop and reports.
pub fn run(args: RawLoopArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(post_loop(args))
}

async fn post_loop(args: RawLoopArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let body = Bytes::from(serde_json::to_vec(&order(1))?);
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.max_secs);
    let cpu_before = own_cpu_ms();
    let allocations_before = crate::allocator::allocations();
    let started_ns = unix_ns();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, body, next, ok, failed) = (
            client.clone(),
            body.clone(),
            next.clone(),
            ok.clone(),
            failed.clone(),
        );
        let (url, total) = (args.url.clone(), args.requests);
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() > deadline {
                    return;
                }
                let sent = client
                    .post(&url)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header(ID_HEADER, format!("raw_{i}"))
                    .body(body.clone())
                    .send()
                    .await;
                let answered = match sent {
                    Ok(response) => {
                        let success = response.status().is_success();
                        success && response.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                if answered { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while workers.join_next().await.is_some() {}
    super::report(&RawLoopDone {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        started_ns,
        finished_ns: unix_ns(),
        cpu_ms: own_cpu_ms() - cpu_before,
        peak_rss_kib: own_peak_rss_kib(),
        allocations: crate::allocator::allocations()
            .zip(allocations_before)
            .map(|(after, before)| after - before),
    })
}

//! `fastapihooks-bench`: what a hook costs a route, and how fast deliveries go against the
//! physical limit of the machine.
//!
//! ```sh
//! cargo run --release -p fastapihooks-bench            # the full run (a few minutes)
//! cargo run --release -p fastapihooks-bench -- --quick # completion and counts only (< 60 s)
//! ```
//!
//! One binary plays every part. Without a subcommand it is the *conductor*: it starts the other
//! parts as child processes of itself, pinned with `taskset` (the code under test on core 0, the
//! load generator and the receiver on core 1), reads the one JSON line each prints, and writes
//! the markdown table and the JSON report. The parts:
//!
//! - `app`: the axum service under test, with the route unhooked or hooked (route cost) — hooked
//!   in process, or publishing to Redis or the PostgreSQL outbox (its orders then written to
//!   PostgreSQL, unhooked likewise, for a fair comparison);
//! - `emit`: a process that emits events through the hooks (delivery throughput, fan-out);
//! - `inbox-app`: the receiving side under test, `POST /webhooks/shop` as `InboxRoute` (verify,
//!   store in the inbox in SQLite or the run's PostgreSQL schema, queue, 200), or only
//!   verifying (`--only receive`; no inbox worker runs);
//! - `raw-loop`: a plain reqwest keep-alive POST loop, the physical limit;
//! - `receive`: the fast receiver, verifying signatures and counting deliveries by id;
//! - `load`: the HTTP/1.1 load generator;
//! - `publish`: tasks publishing into a Redis queue and nothing else (what the hook's publish
//!   costs a route, without the route; with the route-cost rows);
//! - `sidecar`: the core's `Worker` draining the Redis queue or the PostgreSQL outbox, the
//!   history in PostgreSQL (the durable path: `--only sidecar`; with the route-cost rows in
//!   PostgreSQL it needs PostgreSQL and Redis, see `--postgres` and `--redis`, or skip them all
//!   with `--without-services`). Each of its runs has a schema and a Redis key prefix of its
//!   own, removed at its end.

mod allocator;
mod backends;
mod conductor;
mod durable;
mod proc_stats;
mod report;
mod roles;
mod scenario;
mod wire;

use clap::{Parser, Subcommand};

/// Benchmarks of fastapihooks (see BENCHMARKS.md).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    part: Option<Part>,
    #[command(flatten)]
    run: conductor::RunArgs,
}

#[derive(Debug, Subcommand)]
enum Part {
    /// The axum service under test (started by the conductor).
    #[command(hide = true)]
    App(roles::app::AppArgs),
    /// The receiving side under test (started by the conductor).
    #[command(hide = true)]
    InboxApp(roles::inbox_app::InboxAppArgs),
    /// Emits events through the hooks (started by the conductor).
    #[command(hide = true)]
    Emit(roles::emitter::EmitArgs),
    /// The plain reqwest POST loop (started by the conductor).
    #[command(hide = true)]
    RawLoop(roles::raw_loop::RawLoopArgs),
    /// The counting receiver (started by the conductor).
    #[command(hide = true)]
    Receive(roles::receiver::ReceiveArgs),
    /// The load generator (started by the conductor).
    #[command(hide = true)]
    Load(roles::load::LoadArgs),
    /// The sidecar draining a durable queue (started by the conductor).
    #[command(hide = true)]
    Sidecar(roles::sidecar::SidecarArgs),
    /// Publishes into a Redis queue, nothing else (started by the conductor).
    #[command(hide = true)]
    Publish(roles::publisher::PublishArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Logs only when asked (`RUST_LOG=fastapihooks_core=info`): an installed subscriber costs.
    // The sidecar part installs the logger of `fastapihooks start` itself, as the sidecar does.
    let sidecar = matches!(cli.part, Some(Part::Sidecar(_)));
    if std::env::var_os("RUST_LOG").is_some() && !sidecar {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match cli.part {
        None => conductor::run(cli.run),
        Some(Part::App(args)) => roles::app::run(args),
        Some(Part::InboxApp(args)) => roles::inbox_app::run(args),
        Some(Part::Emit(args)) => roles::emitter::run(args),
        Some(Part::RawLoop(args)) => roles::raw_loop::run(args),
        Some(Part::Receive(args)) => roles::receiver::run(args),
        Some(Part::Load(args)) => roles::load::run(args),
        Some(Part::Sidecar(args)) => roles::sidecar::run(args),
        Some(Part::Publish(args)) => roles::publisher::run(args),
    }
}

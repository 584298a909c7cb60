//! The service under test: `POST /orders` answering the order as JSON, unhooked or hooked —
//! through the in-process backend, or publishing to a durable queue (Redis, the PostgreSQL
//! outbox) that a sidecar drains after the run. With `--postgres`, the handler writes each order
//! as a row in the run's schema first ([`super::orders`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::MethodRouter;
use clap::{Args, ValueEnum};
use fastapihooks::{Backend, Hooks, SqlBackend};

use super::orders;
use crate::backends::{BackendKind, subscriptions};
use crate::durable::QueueKind;
use crate::durable::place::Place;
use crate::proc_stats::{own_cpu_ms, own_peak_rss_kib};
use crate::wire::{AppDone, EVENT_NAME, Listening};

/// Whether the route is hooked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// The bare handler.
    Unhooked,
    /// The same handler under `hooks.hook("order.created")`.
    Hooked,
}

/// Arguments of the `app` part.
#[derive(Debug, Args)]
pub struct AppArgs {
    /// Unhooked or hooked.
    #[arg(long, value_enum)]
    mode: Mode,
    /// The in-process backend of the hooked route (unless `--queue`).
    #[arg(long, value_enum, default_value = "background")]
    backend: BackendKind,
    /// Hooked: publish to this durable queue instead (the subscriptions are in the sidecar's
    /// store; the app only publishes). `outbox` makes the hook transactional: the order row and
    /// the event's row commit together.
    #[arg(long, value_enum)]
    queue: Option<QueueKind>,
    /// The run's schema (orders written there with `--postgres`) and Redis queue.
    #[command(flatten)]
    place: Place,
    /// Subscriptions of the event (all at the receiver).
    #[arg(long, default_value_t = 1)]
    subscribers: usize,
    /// The receiver's URL.
    #[arg(long, default_value = "http://127.0.0.1:9/hook")]
    receiver: String,
    /// Delivery attempts in flight at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Deliveries the `MemoryStore` history keeps (its default).
    #[arg(long, default_value_t = fastapihooks::MemoryStore::DEFAULT_MAX_DELIVERIES)]
    history: usize,
}

/// Serves until stdin closes, then drains deliveries and reports its cost.
pub fn run(args: AppArgs) -> anyhow::Result<()> {
    // The default runtime: one worker per core it may run on (one, under `taskset -c 0`).
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(args))
}

async fn serve(args: AppArgs) -> anyhow::Result<()> {
    let (route, hooks) = route(&args).await?;
    let app = Router::new().route("/orders", route);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    super::report(&Listening {
        addr: listener.local_addr()?.to_string(),
    })?;
    axum::serve(listener, app)
        .with_graceful_shutdown(super::stdin_closed())
        .await?;
    let abandoned = match hooks {
        Some(hooks) => hooks.shutdown(Duration::from_secs(120)).await?.abandoned,
        None => 0,
    };
    super::report(&AppDone {
        cpu_ms: own_cpu_ms(),
        peak_rss_kib: own_peak_rss_kib(),
        abandoned,
    })
}

/// The `/orders` route the arguments describe, and its hooks when hooked.
async fn route(args: &AppArgs) -> anyhow::Result<(MethodRouter, Option<Hooks>)> {
    let store = args.place.store().await?;
    let db = store.as_ref().map(|s| s.connection().clone());
    Ok(match (args.mode, args.queue) {
        (Mode::Unhooked, _) => (orders::route(db), None),
        (Mode::Hooked, None) => {
            let subscriptions = subscriptions(args.subscribers, &args.receiver)?;
            let hooks = args
                .backend
                .hooks(&subscriptions, args.concurrency, args.history)?;
            let route = orders::route(db).layer(hooks.hook(EVENT_NAME)?);
            (route, Some(hooks))
        }
        (Mode::Hooked, Some(QueueKind::Redis)) => {
            let hooks = Hooks::publisher(args.place.redis_queue().await?).build()?;
            let route = orders::route(db).layer(hooks.hook(EVENT_NAME)?);
            (route, Some(hooks))
        }
        (Mode::Hooked, Some(QueueKind::Outbox)) => {
            let store = store.context("the outbox route needs --postgres and --schema")?;
            let outbox = Arc::new(SqlBackend::for_store(&store));
            let hooks = Hooks::shared_publisher(outbox.clone() as Arc<dyn Backend>).build()?;
            let hook = hooks.hook(EVENT_NAME)?.in_transaction(&outbox);
            (orders::route_in_hook_transaction().layer(hook), Some(hooks))
        }
    })
}

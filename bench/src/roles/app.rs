//! The service under test: `POST /orders` answering the order as JSON, unhooked or hooked.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::backends::{BackendKind, subscriptions};
use crate::proc_stats::{own_cpu_ms, own_peak_rss_kib};
use crate::wire::{AppDone, EVENT_NAME, Listening, order};

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
    /// The backend of the hooked route.
    #[arg(long, value_enum, default_value = "background")]
    backend: BackendKind,
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

static NEXT_ORDER: AtomicU64 = AtomicU64::new(1);

/// The handler of both variants: it knows nothing about webhooks.
async fn create_order(Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let id = NEXT_ORDER.fetch_add(1, Ordering::Relaxed);
    let mut answer = order(id);
    answer["order"] = body;
    (StatusCode::CREATED, Json(answer))
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
    let (app, hooks) = match args.mode {
        Mode::Unhooked => (Router::new().route("/orders", post(create_order)), None),
        Mode::Hooked => {
            let subscriptions = subscriptions(args.subscribers, &args.receiver)?;
            let hooks = args
                .backend
                .hooks(&subscriptions, args.concurrency, args.history)?;
            let route = post(create_order).layer(hooks.hook(EVENT_NAME)?);
            (Router::new().route("/orders", route), Some(hooks))
        }
    };
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

//! The fast receiver: verifies each request's `sha256=` signature and records its delivery id,
//! arrival time and verdict. The conductor reads the totals (`GET /count`), the records
//! (`GET /ids`: `<id>\t<arrival unix ns>\t<v|x|->` lines) and clears them (`POST /reset`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use fastapihooks::signing::verify_sha256_hex;

use crate::proc_stats::{own_cpu_ms, unix_ns};
use crate::wire::{ID_HEADER, Listening, ReceiverCount, SECRET, SIGNATURE_HEADER, Signature};

/// Arguments of the `receive` part.
#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// Records kept at most (a bound on memory; past it requests are still counted).
    #[arg(long, default_value_t = 5_000_000)]
    max_records: usize,
}

#[derive(Default)]
struct Received {
    count: AtomicU64,
    records: Mutex<Vec<(String, u64, Signature)>>,
    max_records: usize,
}

/// Serves until stdin closes.
pub fn run(args: ReceiveArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(args))
}

async fn serve(args: ReceiveArgs) -> anyhow::Result<()> {
    let state = Arc::new(Received {
        max_records: args.max_records,
        ..Received::default()
    });
    let app = Router::new()
        .route("/hook", post(receive))
        .route("/count", get(count))
        .route("/ids", get(ids))
        .route("/reset", post(reset))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    super::report(&Listening {
        addr: listener.local_addr()?.to_string(),
    })?;
    axum::serve(listener, app)
        .with_graceful_shutdown(super::stdin_closed())
        .await?;
    Ok(())
}

async fn receive(
    State(state): State<Arc<Received>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let arrived = unix_ns();
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = match header(SIGNATURE_HEADER) {
        None => Signature::Absent,
        Some(value) => match verify_sha256_hex(SECRET.as_bytes(), &body, value) {
            Ok(()) => Signature::Valid,
            Err(_) => Signature::Invalid,
        },
    };
    let id = header(ID_HEADER).unwrap_or("").to_owned();
    state.count.fetch_add(1, Ordering::Relaxed);
    let mut records = state.records.lock().unwrap_or_else(PoisonError::into_inner);
    if records.len() < state.max_records {
        records.push((id, arrived, signature));
    }
    match signature {
        Signature::Invalid => StatusCode::UNAUTHORIZED,
        Signature::Absent | Signature::Valid => StatusCode::NO_CONTENT,
    }
}

async fn count(State(state): State<Arc<Received>>) -> Json<ReceiverCount> {
    Json(ReceiverCount {
        received: state.count.load(Ordering::Relaxed),
        cpu_ms: own_cpu_ms(),
    })
}

async fn ids(State(state): State<Arc<Received>>) -> String {
    let records = state.records.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = String::with_capacity(records.len() * 48);
    for (id, arrived, signature) in records.iter() {
        out.push_str(id);
        out.push('\t');
        out.push_str(&arrived.to_string());
        out.push('\t');
        out.push(signature.letter());
        out.push('\n');
    }
    out
}

async fn reset(State(state): State<Arc<Received>>) -> StatusCode {
    state
        .records
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    state.count.store(0, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

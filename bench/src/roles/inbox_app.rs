//! The receiving side under test: `POST /webhooks/shop` as [`InboxRoute`] — the Standard
//! Webhooks signature verified over the raw body, the webhook stored once in the inbox (keyed on
//! `webhook-id`), its processing queued on the inbox's queue (the SQL outbox's inbox table),
//! then 200 — with the inbox and its queue in SQLite (`--sqlite`) or in the run's PostgreSQL
//! schema (`--postgres`, `--schema`). Or, `--mode verify-only`, the same endpoint only
//! verifying (`Verified<serde_json::Value>`, 200): what storing adds.
//!
//! No inbox worker runs: what is measured is the acknowledgement. The conductor migrates the
//! database before and counts its rows after.

use std::sync::Arc;

use anyhow::Context;
use axum::http::StatusCode;
use axum::routing::{post, post_service};
use axum::{Extension, Router};
use clap::{Args, ValueEnum};
use fastapihooks::inbox::key;
use fastapihooks::receive::{InboxRoute, Verified, WebhookVerifier};
use fastapihooks::signing::{SignatureScheme, Verifier};
use fastapihooks::{OutboxTable, Secret, SqlBackend, SqlStore, SqlStoreOptions};

use crate::durable::place::Place;
use crate::proc_stats::{own_cpu_ms, own_peak_rss_kib};
use crate::wire::{INBOX_PATH, INBOX_SECRET, INBOX_SOURCE, InboxAppDone, Listening};

/// What the endpoint does with a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InboxMode {
    /// `Verified<serde_json::Value>` answering 200: no inbox.
    VerifyOnly,
    /// `InboxRoute`: verify, store, queue, 200.
    Inbox,
}

/// Arguments of the `inbox-app` part.
#[derive(Debug, Args)]
pub struct InboxAppArgs {
    /// Only verify, or receive into the inbox.
    #[arg(long, value_enum)]
    mode: InboxMode,
    /// The inbox in this SQLite database (`sqlite://…?mode=rwc`), migrated by the conductor.
    #[arg(long)]
    sqlite: Option<String>,
    /// Or in the run's PostgreSQL schema (migrated by the conductor).
    #[command(flatten)]
    place: Place,
}

/// Serves until stdin closes, then reports its cost.
pub fn run(args: InboxAppArgs) -> anyhow::Result<()> {
    // The default runtime, as the `app` part: one worker per core it may run on.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(args))
}

async fn serve(args: InboxAppArgs) -> anyhow::Result<()> {
    let verifier = WebhookVerifier::new(
        Verifier::new(SignatureScheme::StandardWebhooks).secret(Secret::new(INBOX_SECRET)?),
    );
    let (app, store) = match args.mode {
        InboxMode::VerifyOnly => {
            let app = Router::new()
                .route(INBOX_PATH, post(verified))
                .layer(Extension(verifier));
            (app, None)
        }
        InboxMode::Inbox => {
            let store = Arc::new(inbox(&args).await?);
            let queue = Arc::new(SqlBackend::for_store(&store).on_table(OutboxTable::Inbox));
            let route = InboxRoute::new(
                INBOX_SOURCE,
                verifier,
                key::standard_webhooks(),
                store.clone(),
                queue,
            );
            let app = Router::new().route(INBOX_PATH, post_service(route));
            (app, Some(store))
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let startup_cpu_ms = own_cpu_ms();
    super::report(&Listening {
        addr: listener.local_addr()?.to_string(),
    })?;
    axum::serve(listener, app)
        .with_graceful_shutdown(super::stdin_closed())
        .await?;
    super::report(&InboxAppDone {
        cpu_ms: own_cpu_ms(),
        startup_cpu_ms,
        peak_rss_kib: own_peak_rss_kib(),
    })?;
    // After the report: SQLite checkpoints its WAL as the last connection closes.
    if let Some(store) = store {
        let _ = store.connection().clone().close().await;
    }
    Ok(())
}

/// The verify-only baseline: the body verified and parsed, nothing stored.
async fn verified(Verified(_webhook): Verified<serde_json::Value>) -> StatusCode {
    StatusCode::OK
}

/// The inbox the arguments name, refusing a database whose migrations are not applied (the
/// conductor applies them, so the app's CPU is the route's alone).
async fn inbox(args: &InboxAppArgs) -> anyhow::Result<SqlStore> {
    let store = match &args.sqlite {
        // SqlStore's defaults: WAL, a 5 s busy timeout, 10 pooled connections.
        Some(url) => SqlStoreOptions::new(url)
            .run_migrations(false)
            .connect()
            .await
            .with_context(|| format!("the inbox in {url}"))?,
        None => args
            .place
            .store()
            .await?
            .context("the inbox needs --sqlite, or --postgres and --schema")?,
    };
    let pending = store.pending_migrations().await?;
    anyhow::ensure!(pending.is_empty(), "migrations not applied: {pending:?}");
    Ok(store)
}

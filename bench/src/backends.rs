//! The in-process backends a benchmark row can use: the emitting process drains them itself.
//! Adding one is a variant here, its construction in [`BackendKind::hooks`], and its name in
//! the conductor's list of rows. The durable queues a sidecar drains (Redis, the PostgreSQL
//! outbox) are in [`durable`](crate::durable).

use anyhow::Context;
use clap::ValueEnum;
use fastapihooks::prelude::*;
use fastapihooks::{Emitter, Hooks};
use serde::Serialize;

use crate::wire::{EVENT_NAME, SECRET};

/// How events travel from the route to the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// In-process tokio tasks (`BackgroundTaskBackend`): delivery shares the service's core.
    Background,
}

impl BackendKind {
    /// Every backend the harness knows, in table order.
    pub const ALL: &'static [BackendKind] = &[BackendKind::Background];

    /// The name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Background => "background",
        }
    }

    /// Hooks delivering to `subscriptions` (kept in code, like the quickstart's), signed
    /// `sha256=` with [`SECRET`], at most `concurrency` attempts in flight, the delivery history
    /// in a `MemoryStore` keeping `history` deliveries (its default: 10,000).
    pub fn hooks(
        self,
        subscriptions: &[Subscription],
        concurrency: usize,
        history: usize,
    ) -> anyhow::Result<Hooks> {
        let mut builder = Emitter::builder()
            // The receiver is on 127.0.0.1: the SSRF guard refuses loopback unless told.
            .http(HttpConfig::default().allow_loopback())
            .secret(Secret::new(SECRET)?)
            .store(MemoryStore::with_max_deliveries(history))
            .background(BackgroundConfig {
                concurrency,
                ..BackgroundConfig::default()
            });
        for subscription in subscriptions {
            builder = builder.subscriber(subscription.clone());
        }
        let emitter = match self {
            BackendKind::Background => builder.build()?,
        };
        Ok(Hooks::from(emitter))
    }
}

/// `count` subscriptions of [`EVENT_NAME`] at `receiver_url`, each with its own id.
pub fn subscriptions(count: usize, receiver_url: &str) -> anyhow::Result<Vec<Subscription>> {
    (0..count)
        .map(|_| Subscription::new(EVENT_NAME, receiver_url).context("the receiver's url"))
        .collect()
}

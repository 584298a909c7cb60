//! The conductor's handle on the sidecar part, on the service core.

use std::time::Duration;

use super::part::{Part, Pinning, SERVER_CORE};
use crate::durable::env::DurableEnv;
use crate::proc_stats::unix_ns;
use crate::wire::{SidecarDone, SidecarReady};

/// A running sidecar.
pub struct Sidecar {
    part: Part,
    /// Unix ns just before the process was started.
    pub spawned_ns: u64,
    /// What it said once connected.
    pub ready: SidecarReady,
}

impl Sidecar {
    /// Starts the sidecar of `env` with `concurrency` requests in flight, and waits until it is
    /// connected and its worker about to run.
    pub async fn start(
        env: &DurableEnv,
        pinning: Pinning,
        concurrency: usize,
    ) -> anyhow::Result<Self> {
        let spawned_ns = unix_ns();
        let mut part = Part::start(
            "sidecar",
            pinning,
            SERVER_CORE,
            &env.sidecar_args(concurrency),
        )?;
        let ready: SidecarReady = part.next(Duration::from_secs(30)).await?;
        Ok(Self {
            part,
            spawned_ns,
            ready,
        })
    }

    /// Ms from the start of the process to its worker running.
    pub fn ready_ms(&self) -> f64 {
        self.ready.ready_ns.saturating_sub(self.spawned_ns) as f64 / 1e6
    }

    /// Tells it to stop (stdin closed): it stops leasing, drains what is in flight (within the
    /// worker's 30 s drain deadline) and reports.
    pub async fn stop(self) -> anyhow::Result<SidecarDone> {
        self.part.finish(Duration::from_secs(60)).await
    }
}

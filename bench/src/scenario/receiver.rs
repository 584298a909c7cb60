//! The conductor's handle on the receiver part.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::part::{LOAD_CORE, Part, Pinning};
use crate::wire::{Listening, ReceiverCount, Signature};

/// One request the receiver recorded.
#[derive(Clone, Debug)]
pub struct Arrival {
    /// The delivery id it carried.
    pub id: String,
    /// When it arrived (unix ns).
    pub at_ns: u64,
    /// Its signature's verdict.
    pub signature: Signature,
}

/// The receiver, running on the load core.
pub struct Receiver {
    part: Part,
    base: String,
    http: reqwest::Client,
}

impl Receiver {
    /// Starts the receiver part and waits until it listens.
    pub async fn start(pinning: Pinning) -> anyhow::Result<Self> {
        let mut part = Part::start("receive", pinning, LOAD_CORE, &["receive".to_owned()])?;
        let listening: Listening = part.next(Duration::from_secs(30)).await?;
        Ok(Self {
            part,
            base: format!("http://{}", listening.addr),
            http: reqwest::Client::new(),
        })
    }

    /// The URL subscriptions point at.
    pub fn hook_url(&self) -> String {
        format!("{}/hook", self.base)
    }

    /// Forgets everything received so far.
    pub async fn reset(&self) -> anyhow::Result<()> {
        self.http
            .post(format!("{}/reset", self.base))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// The running totals.
    pub async fn count(&self) -> anyhow::Result<ReceiverCount> {
        Ok(self
            .http
            .get(format!("{}/count", self.base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Waits until `expected` requests have arrived, or `within` has passed, or the count has not
    /// moved for `stalled`; returns the count reached.
    pub async fn wait_for(
        &self,
        expected: u64,
        within: Duration,
        stalled: Duration,
    ) -> anyhow::Result<u64> {
        let deadline = Instant::now() + within;
        let (mut last, mut moved_at) = (u64::MAX, Instant::now());
        loop {
            let now = self.count().await?.received;
            if now >= expected || Instant::now() >= deadline {
                return Ok(now);
            }
            if now != last {
                (last, moved_at) = (now, Instant::now());
            } else if moved_at.elapsed() >= stalled {
                return Ok(now);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every request recorded since the last reset.
    pub async fn arrivals(&self) -> anyhow::Result<Vec<Arrival>> {
        let text = self
            .http
            .get(format!("{}/ids", self.base))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        text.lines()
            .map(|line| {
                let mut fields = line.split('\t');
                let (Some(id), Some(at), Some(sig)) = (fields.next(), fields.next(), fields.next())
                else {
                    anyhow::bail!("bad receiver line {line:?}");
                };
                Ok(Arrival {
                    id: id.to_owned(),
                    at_ns: at.parse().context("arrival time")?,
                    signature: Signature::from_letter(sig).context("signature letter")?,
                })
            })
            .collect()
    }

    /// Stops the receiver.
    pub async fn stop(self) {
        self.part.stop().await;
    }
}

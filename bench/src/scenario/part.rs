//! A part: this same binary started as a child process, optionally pinned to one core with
//! `taskset`, talking JSON lines on stdout. Dropping a part kills it (by its PID).

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A running child part.
pub struct Part {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// Where parts run: pinned to cores (`taskset -c`), or wherever the scheduler likes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pinning {
    /// `taskset -c <core>`.
    Pinned,
    /// No pinning (taskset missing, or `--no-pin`).
    Unpinned,
}

/// The core of the code under test.
pub const SERVER_CORE: usize = 0;
/// The core of the load generator and the receiver.
pub const LOAD_CORE: usize = 1;

impl Part {
    /// Starts `fastapihooks-bench <args>` on `core`.
    pub fn start(
        name: &str,
        pinning: Pinning,
        core: usize,
        args: &[String],
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("the benchmark's own path")?;
        let mut command = match pinning {
            Pinning::Pinned => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(exe);
                c
            }
            Pinning::Unpinned => Command::new(exe),
        };
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the {name} part"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("the part's stdout")?;
        Ok(Self {
            name: name.to_owned(),
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        })
    }

    /// Reads the next JSON line, waiting at most `within`.
    pub async fn next<T: DeserializeOwned>(&mut self, within: Duration) -> anyhow::Result<T> {
        let line = tokio::time::timeout(within, self.stdout.next_line())
            .await
            .with_context(|| format!("the {} part said nothing within {within:?}", self.name))??;
        let Some(line) = line else {
            bail!("the {} part exited without reporting", self.name);
        };
        serde_json::from_str(&line)
            .with_context(|| format!("the {} part's report: {line}", self.name))
    }

    /// Closes its stdin (the signal to stop), reads its final report and waits for it to exit.
    /// Past `within` it is killed.
    pub async fn finish<T: DeserializeOwned>(mut self, within: Duration) -> anyhow::Result<T> {
        self.stdin.take();
        let report = self.next(within).await;
        if report.is_err() {
            let _ = self.child.kill().await;
        }
        let report = report?;
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .with_context(|| format!("the {} part did not exit", self.name))??;
        Ok(report)
    }
}

impl Part {
    /// Closes its stdin (the signal to stop) and waits for it to exit; kills it past 10 s.
    pub async fn stop(mut self) {
        self.stdin.take();
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Whether `taskset` can pin processes here.
pub fn taskset_works() -> bool {
    std::process::Command::new("taskset")
        .args(["-c", "0", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

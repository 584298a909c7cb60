//! What only the CLI's tests share, because it needs the `fastapihooks` binary of this package
//! (`CARGO_BIN_EXE_fastapihooks` exists only in this package's own tests): the binary run as a
//! command ([`fastapihooks`], its `--json` output read with [`json`]) or as a sidecar child
//! process ([`Sidecar`], its closing line read with [`reported`], what reached a receiver
//! checked with [`once_each`]), and an application's SQLite database ([`SqliteApp`]) with
//! history written into it as the engine would ([`record_delivery`]). A test file adds its own
//! `impl SqliteApp` block for what only it writes or runs. The receiver, `eventually`, the
//! services (or a skip), the fixtures and the delivery accounting come from
//! `fastapihooks_testkit`.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fastapihooks_core::{
    AttemptOutcome, Delivery, DeliveryStatus, Event, SqlStore, Store as _, Subscription,
};
use fastapihooks_testkit::fixtures::attempt;
use serde_json::Value;

/// The longest a command, or a wait for what it did, may take.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A subscriber URL nothing is ever sent to (the test drains no queue, or queues nothing).
pub(crate) const NOWHERE: &str = "https://receiver.example/hooks";

/// The real `fastapihooks` binary, run as a command: none of its settings come from the
/// environment (each test passes the flags it means), and it is killed after [`WAIT`].
pub(crate) fn fastapihooks() -> assert_cmd::Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("fastapihooks");
    for var in [
        "FASTAPIHOOKS_DATABASE_URL",
        "FASTAPIHOOKS_QUEUE_URL",
        "FASTAPIHOOKS_REDIS_KEY_PREFIX",
        "FASTAPIHOOKS_POSTGRES_SCHEMA",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd.timeout(WAIT);
    cmd
}

/// Runs `cmd` with `--json`, expecting exit code `code`, and parses its stdout as JSON.
pub(crate) fn json(cmd: &mut assert_cmd::Command, code: i32) -> Value {
    let out = cmd.arg("--json").assert().code(code);
    let stdout = &out.get_output().stdout;
    serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(stdout)))
}

/// Writes a delivery's history into `store` as the engine would: `d` as it was made, then an
/// attempt for each of `outcomes` (numbered from 1) at `changed`, the last leaving it `status`.
/// With no outcomes it stays as it was made.
pub(crate) async fn record_delivery(
    store: &SqlStore,
    mut d: Delivery,
    outcomes: &[AttemptOutcome],
    status: DeliveryStatus,
    changed: DateTime<Utc>,
) -> Delivery {
    store
        .record_deliveries(std::slice::from_ref(&d))
        .await
        .unwrap();
    for (i, outcome) in outcomes.iter().enumerate() {
        let number = u32::try_from(i + 1).unwrap();
        d.attempts = number;
        d.updated_at = changed;
        if i + 1 == outcomes.len() {
            d.status = status;
            d.next_attempt_at = None;
        }
        store
            .record_attempt(&d, &attempt(&d, number, outcome.clone()))
            .await
            .unwrap();
    }
    d
}

/// A sidecar's stderr read through a pipe: what came so far, and the thread reading it.
type Captured = (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>);

/// The real `fastapihooks start`, as a child process. Killed (SIGKILL) when dropped.
pub(crate) struct Sidecar {
    child: Child,
    /// What it wrote to stderr so far, when started with [`Sidecar::start_capturing`].
    stderr: Option<Captured>,
}

impl Sidecar {
    /// Starts `fastapihooks start <args>`, logging warnings and errors to the test's stderr.
    pub(crate) fn start(args: &[String]) -> Self {
        Self::spawn(args, false)
    }

    /// Like [`start`](Self::start), with its stderr read through a pipe (as a log collector
    /// would) and kept for [`stderr`](Self::stderr).
    pub(crate) fn start_capturing(args: &[String]) -> Self {
        Self::spawn(args, true)
    }

    fn spawn(args: &[String], capture: bool) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fastapihooks"))
            .arg("start")
            .args(args)
            .env(
                "FASTAPIHOOKS_LOG_LEVEL",
                std::env::var("TEST_SIDECAR_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if capture {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("start the fastapihooks binary");
        // Read as it comes, so a chatty sidecar never blocks on a full pipe.
        let stderr = child.stderr.take().map(|mut pipe| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&buffer);
            let reader = std::thread::spawn(move || {
                use std::io::Read;
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            });
            (buffer, reader)
        });
        Self { child, stderr }
    }

    /// The base URL (`http://ADDR`) of the port the sidecar logs as `<line>ADDR` (e.g.
    /// `operator port listening on http://`), once it is there; its stderr must be captured.
    pub(crate) async fn listening(&self, line: &str) -> String {
        let addr =
            fastapihooks_testkit::eventually(WAIT, || listening_on(&self.stderr(), line)).await;
        match addr {
            Some(addr) => format!("http://{addr}"),
            None => panic!(
                "no `{line}…` line: {}",
                String::from_utf8_lossy(&self.stderr())
            ),
        }
    }

    /// What a [`start_capturing`](Self::start_capturing) sidecar wrote to stderr so far.
    pub(crate) fn stderr(&self) -> Vec<u8> {
        let (buffer, _) = self.stderr.as_ref().expect("started with start_capturing");
        buffer.lock().unwrap().clone()
    }

    /// Waits for the exit like [`exit_status`](Self::exit_status), then returns everything the
    /// sidecar wrote to stderr too (it must have been started with
    /// [`start_capturing`](Self::start_capturing)).
    pub(crate) async fn exit_capturing(
        mut self,
        within: Duration,
    ) -> (std::process::ExitStatus, String, Vec<u8>) {
        let (buffer, reader) = self.stderr.take().expect("started with start_capturing");
        let (status, stdout) = self.exit_status(within).await;
        reader.join().unwrap();
        let stderr = buffer.lock().unwrap().clone();
        (status, stdout, stderr)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process stops where it is, mid-delivery.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the sidecar");
        self.child.wait().expect("reap the sidecar");
    }

    /// SIGTERM: the sidecar should stop leasing and drain.
    pub(crate) fn terminate(&self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    }

    /// SIGTERM, then waits up to `within` for a clean exit (a panic otherwise); returns what it
    /// printed on stdout.
    pub(crate) async fn stop(self, within: Duration) -> String {
        self.terminate();
        let (ok, stdout) = self.exit(within).await;
        assert!(ok, "the sidecar did not exit cleanly: {stdout}");
        stdout
    }

    /// Waits up to `within` for the process to exit; returns whether it succeeded and what it
    /// printed on stdout. Panics (after killing it) if it is still running.
    pub(crate) async fn exit(self, within: Duration) -> (bool, String) {
        let (status, stdout) = self.exit_status(within).await;
        (status.success(), stdout)
    }

    /// Like [`exit`](Self::exit), with the exit status itself.
    pub(crate) async fn exit_status(
        mut self,
        within: Duration,
    ) -> (std::process::ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stdout = String::new();
                if let Some(mut out) = self.child.stdout.take() {
                    use std::io::Read;
                    out.read_to_string(&mut stdout).unwrap();
                }
                return (status, stdout);
            }
            if start.elapsed() > within {
                self.kill();
                panic!("the sidecar did not exit within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A number from the sidecar's closing line, e.g. `delivered` from `stopped: …, delivered 12, …`.
pub(crate) fn reported(stdout: &str, what: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("stopped:"))
        .unwrap_or_else(|| panic!("no closing line in {stdout:?}"));
    line.split(", ")
        .find_map(|part| {
            part.trim_start_matches("stopped: ")
                .strip_prefix(what)
                .map(|n| n.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {what:?} in {line:?}"))
}

/// What a receiver's [`counts`](fastapihooks_testkit::Receiver::counts) are when each of `ids`
/// arrived exactly once and nothing else did.
pub(crate) fn once_each<'a>(
    ids: impl IntoIterator<Item = &'a fastapihooks_core::DeliveryId>,
) -> std::collections::HashMap<String, usize> {
    ids.into_iter().map(|id| (id.to_string(), 1)).collect()
}

/// An application's SQLite database holding its outbox and the store, in a temporary directory
/// of the test's own, with subscriptions to the given URLs.
#[cfg(feature = "sqlite")]
pub(crate) struct SqliteApp {
    pub(crate) url: String,
    pub(crate) store: fastapihooks_core::SqlStore,
    pub(crate) outbox: fastapihooks_core::SqlBackend,
    pub(crate) subscriptions: Vec<Subscription>,
    _dir: tempfile::TempDir,
}

#[cfg(feature = "sqlite")]
impl SqliteApp {
    pub(crate) async fn new(subscriptions: Vec<Subscription>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
        let store = fastapihooks_core::SqlStore::connect(&url).await.unwrap();
        for subscription in &subscriptions {
            store.add_subscription(subscription.clone()).await.unwrap();
        }
        let outbox = fastapihooks_core::SqlBackend::for_store(&store);
        Self {
            url,
            store,
            outbox,
            subscriptions,
            _dir: dir,
        }
    }

    /// A database with one subscription, to every event, pointing at `url`.
    pub(crate) async fn with_subscriber(url: &str) -> Self {
        Self::new(vec![Subscription::new("*", url).unwrap()]).await
    }

    /// The first subscription, as it was added.
    pub(crate) fn subscription(&self) -> &Subscription {
        self.subscriptions.first().expect("a subscription")
    }

    pub(crate) async fn status(&self, id: &fastapihooks_core::DeliveryId) -> DeliveryStatus {
        self.store.get_delivery(id).await.unwrap().unwrap().status
    }

    /// Tasks in the outbox.
    pub(crate) async fn depth(&self) -> u64 {
        use fastapihooks_core::Queue as _;
        self.outbox.depth().await.unwrap()
    }

    /// `fastapihooks <args> --database <this database>`.
    pub(crate) fn run(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = fastapihooks();
        cmd.args(args).args(["--database", &self.url]);
        cmd
    }

    /// Runs `args` with `--json`, expecting success, and parses the output.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
        json(&mut self.run(args), 0)
    }

    pub(crate) async fn publish(&self, events: &[Event]) {
        self.outbox.publish_many(events).await.unwrap();
    }

    /// `fastapihooks start` arguments draining this outbox quickly, then `extra`.
    pub(crate) fn args(&self, extra: &[&str]) -> Vec<String> {
        [
            "--queue",
            &self.url,
            "--http-timeout",
            "1s",
            "--visibility-timeout",
            "3s",
            "--poll-interval",
            "50ms",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
    }
}

/// The address after `line` in `stderr`, once it is there.
fn listening_on(stderr: &[u8], line: &str) -> Option<std::net::SocketAddr> {
    let text = String::from_utf8_lossy(stderr);
    let (_, after) = text.split_once(line)?;
    let addr: String = after
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || ".:[]".contains(*c))
        .collect();
    addr.parse().ok()
}

//! `replay-figures`: the three figures of the "replay / retry window" issue, measured with the
//! real pieces — the release `fastapihooks start` sidecar, Redis on 127.0.0.1:6379, the SQL
//! store in an SQLite file, and a counting receiver on 127.0.0.1 in this process.
//!
//! ```sh
//! cargo build --release -p fastapihooks-cli
//! cargo build --release -p fastapihooks-bench --bin replay-figures
//! target/release/replay-figures --markdown bench/REPLAY_FIGURES.md   # ~15 minutes
//! ```
//!
//! 1. **outage**: `--events` events published; the receiver's port refuses connections for the
//!    first `--outage-secs` after the sidecar starts, then answers 200. Default retry schedule.
//! 2. **flaky**: `--events` events; the receiver answers 503 to a random half of the requests
//!    (seeded with `--seed`). Default retry schedule.
//! 3. **replay**: `--dead-letters` dead letters made with `--retry-schedule none` against a
//!    receiver answering 503; then the receiver answers 200, a sidecar with the default flags
//!    runs, and [`Replay::matching`] replays every dead letter in bulk.
//!
//! Each figure has a Redis key prefix of its own (`figures-<ulid>-<figure>`), deleted at the
//! end (only keys under that prefix), and an SQLite file, the sidecar's stdout and its stderr
//! (its log) in the run directory, which is kept for inspection. A JSON line per figure goes to
//! stdout, then a human summary; progress goes to stderr.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use clap::{Parser, ValueEnum};
use fastapihooks_core::{
    Backend, DeliveryQuery, DeliveryStatus, Event, RedisBackend, RedisConfig, Replay, SqlStore,
    Store, Subscription,
};
use http::{HeaderMap, StatusCode};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// The figures of the replay / retry window issue (see bench/REPLAY_FIGURES.md).
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Which figures to measure, in order (default: all three).
    #[arg(long, value_enum, value_delimiter = ',')]
    figures: Vec<FigureName>,
    /// Redis (must be on 127.0.0.1).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// The sidecar binary.
    #[arg(long, default_value = "target/release/fastapihooks")]
    sidecar: PathBuf,
    /// Events published in figures 1 and 2.
    #[arg(long, default_value_t = 3000)]
    events: usize,
    /// Dead letters made and replayed in figure 3.
    #[arg(long, default_value_t = 10_000)]
    dead_letters: usize,
    /// Figure 1: seconds the receiver's port refuses connections after the sidecar starts.
    #[arg(long, default_value_t = 60)]
    outage_secs: u64,
    /// Figures 1 and 2: the checkpoints, in seconds after the sidecar started.
    #[arg(long, value_delimiter = ',', default_value = "60,360")]
    checkpoints: Vec<u64>,
    /// Figures 1 and 2: the run ends at this many seconds (a last checkpoint), or as soon as
    /// everything is delivered after the last checkpoint.
    #[arg(long, default_value_t = 420)]
    bound_secs: u64,
    /// Figure 3: the longest wait for the dead letters, and for the replayed deliveries.
    #[arg(long, default_value_t = 300)]
    replay_bound_secs: u64,
    /// Seed of the flaky receiver's coin.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where the SQLite files and the sidecar's logs go (default: a new directory in the
    /// system's temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Write the results table (markdown) to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum FigureName {
    Outage,
    Flaky,
    Replay,
}

impl FigureName {
    fn as_str(self) -> &'static str {
        match self {
            Self::Outage => "outage",
            Self::Flaky => "flaky",
            Self::Replay => "replay",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The receiver.

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Answer {
    Ok = 0,
    /// 503 for a random half, 200 otherwise.
    Flaky = 1,
    /// 503 always.
    Unavailable = 2,
}

#[derive(Clone, Copy, Debug, Default)]
struct IdTally {
    requests: u32,
    ok: u32,
}

#[derive(Debug, Default)]
struct Tally {
    ids: HashMap<String, IdTally>,
    requests: u64,
    ok_requests: u64,
    no_id: u64,
    /// Ids answered 200 at least once.
    ok_ids: usize,
    first_ok: Option<Instant>,
    last_ok: Option<Instant>,
}

#[derive(Debug)]
struct Receiver {
    answer: AtomicU8,
    coin: Mutex<fastrand::Rng>,
    tally: Mutex<Tally>,
}

impl Receiver {
    fn new(answer: Answer, seed: u64) -> Arc<Self> {
        Arc::new(Self {
            answer: AtomicU8::new(answer as u8),
            coin: Mutex::new(fastrand::Rng::with_seed(seed)),
            tally: Mutex::default(),
        })
    }

    fn set(&self, answer: Answer) {
        self.answer.store(answer as u8, Ordering::SeqCst);
    }

    fn answers_ok(&self) -> bool {
        match self.answer.load(Ordering::SeqCst) {
            0 => true,
            1 => self.coin.lock().unwrap().bool(),
            _ => false,
        }
    }

    fn snapshot(&self) -> ReceiverCounts {
        let t = self.tally.lock().unwrap();
        ReceiverCounts {
            delivered_ids: t.ok_ids,
            ids_seen: t.ids.len(),
            requests: t.requests,
            ok_requests: t.ok_requests,
            requests_without_id: t.no_id,
        }
    }

    /// How many ids were seen how many times (requests), and answered 200 how many times.
    fn histograms(&self) -> (BTreeMap<u32, usize>, BTreeMap<u32, usize>) {
        let t = self.tally.lock().unwrap();
        let mut requests = BTreeMap::new();
        let mut ok = BTreeMap::new();
        for c in t.ids.values() {
            *requests.entry(c.requests).or_default() += 1;
            *ok.entry(c.ok).or_default() += 1;
        }
        (requests, ok)
    }

    /// Up to `max` ids whose request count is not `expected`, and how many there are.
    fn ids_not_seen(&self, expected: u32, max: usize) -> (usize, Vec<(String, u32)>) {
        let t = self.tally.lock().unwrap();
        let mut odd: Vec<_> = t
            .ids
            .iter()
            .filter(|(_, c)| c.requests != expected)
            .map(|(id, c)| (id.clone(), c.requests))
            .collect();
        odd.sort();
        let n = odd.len();
        odd.truncate(max);
        (n, odd)
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
struct ReceiverCounts {
    /// Distinct delivery ids answered 200 at least once.
    delivered_ids: usize,
    /// Distinct delivery ids seen at all.
    ids_seen: usize,
    requests: u64,
    ok_requests: u64,
    requests_without_id: u64,
}

/// The delivery id: fastapihooks' header (the sidecar's default sha256 scheme), else Standard
/// Webhooks'.
fn delivery_id(headers: &HeaderMap) -> Option<String> {
    ["x-fastapihooks-id", "webhook-id"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, _body: Bytes) -> StatusCode {
    let ok = r.answers_ok();
    let now = Instant::now();
    let mut guard = r.tally.lock().unwrap();
    let t = &mut *guard;
    t.requests += 1;
    if ok {
        t.ok_requests += 1;
        t.first_ok.get_or_insert(now);
        t.last_ok = Some(now);
    }
    match delivery_id(&headers) {
        None => t.no_id += 1,
        Some(id) => {
            let c = t.ids.entry(id).or_default();
            c.requests += 1;
            if ok {
                if c.ok == 0 {
                    t.ok_ids += 1;
                }
                c.ok += 1;
            }
        }
    }
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// A running receiver server.
struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn serve(listener: TcpListener, receiver: Arc<Receiver>) -> Server {
    let app = Router::new().fallback(hook).with_state(receiver);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Server { stop, task }
}

impl Server {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// A port on 127.0.0.1 nothing listens on (bound, then released): connections are refused.
fn reserve_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Binds `port` on 127.0.0.1, trying again for up to 5 s.
async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    let mut last = None;
    for _ in 0..100 {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last.unwrap()).with_context(|| format!("binding 127.0.0.1:{port}"))
}

// ---------------------------------------------------------------------------------------------
// The sidecar.

struct Sidecar {
    child: Child,
    started: Instant,
    stdout: PathBuf,
    stderr: PathBuf,
    command: String,
}

#[derive(Debug, Serialize)]
struct SidecarExit {
    exit_code: Option<i32>,
    killed: bool,
    /// Its summary line ("stopped: fanned out …").
    stdout: String,
    log: String,
    log_lines: usize,
    log_warn: usize,
    log_error: usize,
}

impl Sidecar {
    fn spawn(
        bin: &Path,
        redis: &str,
        prefix: &str,
        store_url: &str,
        extra: &[&str],
        dir: &Path,
        name: &str,
    ) -> anyhow::Result<Self> {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.log"));
        let mut args: Vec<&str> = vec![
            "start",
            "--queue",
            redis,
            "--key-prefix",
            prefix,
            "--store",
            store_url,
            "--allow-volatile-redis",
            "--allow-loopback",
            "--unsigned",
        ];
        args.extend_from_slice(extra);
        let command = format!("{} {}", bin.display(), args.join(" "));
        let child = Command::new(bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout)?)
            .stderr(File::create(&stderr)?)
            // Whatever goes wrong in this program, the sidecar does not outlive it.
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        progress(&format!(
            "sidecar {name} started (pid {:?}): {command}",
            child.id()
        ));
        Ok(Self {
            child,
            started: Instant::now(),
            stdout,
            stderr,
            command,
        })
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Fails if the sidecar has exited.
    fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            let tail: Vec<_> = log.lines().rev().take(20).collect();
            bail!(
                "the sidecar exited early ({status}); its log ends:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// SIGTERM by pid, then SIGKILL if it has not exited within 30 s.
    async fn stop(mut self) -> anyhow::Result<SidecarExit> {
        let mut killed = false;
        if self.child.try_wait()?.is_none() {
            if let Some(pid) = self.child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
                .await
                .is_err()
            {
                progress("the sidecar did not exit within 30 s of SIGTERM: SIGKILL");
                self.child.kill().await?;
                killed = true;
            }
        }
        let status = self.child.wait().await?;
        let stdout = std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .trim()
            .to_owned();
        let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        Ok(SidecarExit {
            exit_code: status.code(),
            killed,
            stdout,
            log: self.stderr.display().to_string(),
            log_lines: log.lines().count(),
            log_warn: log.lines().filter(|l| l.contains(" WARN ")).count(),
            log_error: log.lines().filter(|l| l.contains(" ERROR ")).count(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// One figure's surroundings: its Redis prefix, its store, its queue.

struct Env {
    prefix: String,
    store_url: String,
    store: SqlStore,
    queue: Arc<RedisBackend>,
    redis: String,
    dir: PathBuf,
}

impl Env {
    async fn new(args: &Args, run: &str, dir: &Path, figure: FigureName) -> anyhow::Result<Self> {
        let prefix = format!("figures-{run}-{}", figure.as_str());
        let db = dir.join(format!("{}.db", figure.as_str()));
        let store_url = format!("sqlite://{}?mode=rwc", db.display());
        // Connects and applies the migrations (the sidecar insists they are applied).
        let store = SqlStore::connect(&store_url)
            .await
            .with_context(|| format!("store {store_url}"))?;
        let queue = RedisBackend::connect(RedisConfig::new(&args.redis).key_prefix(&prefix))
            .await
            .context("Redis")?;
        Ok(Self {
            prefix,
            store_url,
            store,
            queue: Arc::new(queue),
            redis: args.redis.clone(),
            dir: dir.to_owned(),
        })
    }

    async fn subscribe(&self, port: u16) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{port}/hook");
        self.store
            .add_subscription(Subscription::new("*", &url)?)
            .await?;
        Ok(())
    }

    /// Publishes `n` events in batches of 500; returns how long it took.
    async fn publish(&self, name: &str, n: usize) -> anyhow::Result<Duration> {
        let clock = Instant::now();
        let mut batch = Vec::with_capacity(500);
        for i in 0..n {
            batch.push(Event::new(name, &json!({ "n": i }))?);
            if batch.len() == 500 || i + 1 == n {
                self.queue.publish_many(&batch).await?;
                batch.clear();
            }
        }
        Ok(clock.elapsed())
    }

    /// The store's deliveries by status.
    async fn counts(&self) -> anyhow::Result<StoreCounts> {
        let rows = self
            .store
            .connection()
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT status, COUNT(*) AS n FROM fastapihooks_deliveries GROUP BY status",
            ))
            .await?;
        let mut c = StoreCounts::default();
        for row in rows {
            let status: String = row.try_get("", "status")?;
            let n: i64 = row.try_get("", "n")?;
            let n = n as u64;
            c.total += n;
            match status.as_str() {
                "pending" => c.pending += n,
                "delivered" => c.delivered += n,
                "failed" => c.failed += n,
                "dead" => c.dead += n,
                other => bail!("unknown delivery status {other:?}"),
            }
        }
        Ok(c)
    }

    fn spawn_sidecar(&self, args: &Args, extra: &[&str], name: &str) -> anyhow::Result<Sidecar> {
        Sidecar::spawn(
            &args.sidecar,
            &self.redis,
            &self.prefix,
            &self.store_url,
            extra,
            &self.dir,
            name,
        )
    }

    /// Deletes the keys under this figure's prefix, and only those; returns how many.
    async fn cleanup(&self) -> anyhow::Result<usize> {
        let client = redis::Client::open(self.redis.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let head = format!("{{{}}}:", self.prefix);
        let mut keys: Vec<String> = RedisConfig::new(&self.redis)
            .key_prefix(&self.prefix)
            .keys()
            .to_vec();
        let mut cursor = 0u64;
        for _ in 0..100_000 {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{head}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            keys.extend(found);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        let mut deleted = 0usize;
        for key in keys.iter().filter(|k| k.starts_with(&head)) {
            let n: usize = redis::cmd("DEL").arg(key).query_async(&mut conn).await?;
            deleted += n;
        }
        Ok(deleted)
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
struct StoreCounts {
    total: u64,
    pending: u64,
    delivered: u64,
    failed: u64,
    dead: u64,
}

#[derive(Clone, Debug, Serialize)]
struct Checkpoint {
    label: String,
    /// Seconds since the sidecar started.
    at_s: f64,
    receiver: ReceiverCounts,
    store: StoreCounts,
    /// Events published but not fanned out into the store yet.
    not_fanned_out: i64,
}

async fn checkpoint(
    label: &str,
    env: &Env,
    receiver: &Receiver,
    sidecar: &Sidecar,
    events: usize,
) -> anyhow::Result<Checkpoint> {
    let at_s = sidecar.elapsed().as_secs_f64();
    let store = env.counts().await?;
    let receiver = receiver.snapshot();
    let c = Checkpoint {
        label: label.to_owned(),
        at_s: round(at_s, 1),
        receiver,
        store,
        not_fanned_out: events as i64 - store.total as i64,
    };
    progress(&format!(
        "[{label} t={:.1}s] receiver: {} ids delivered ({} requests, {} answered 200); store: \
         delivered {}, pending {}, dead {}, failed {}, not fanned out {}",
        c.at_s,
        c.receiver.delivered_ids,
        c.receiver.requests,
        c.receiver.ok_requests,
        c.store.delivered,
        c.store.pending,
        c.store.dead,
        c.store.failed,
        c.not_fanned_out
    ));
    Ok(c)
}

/// Sleeps until `at` after the sidecar started, checking every second that it still runs and
/// sampling the counts every `sample` into `timeline`.
async fn wait_until(
    at: Duration,
    env: &Env,
    receiver: &Receiver,
    sidecar: &mut Sidecar,
    events: usize,
    timeline: &mut Vec<Checkpoint>,
) -> anyhow::Result<()> {
    const SAMPLE: Duration = Duration::from_secs(30);
    let mut next_sample = timeline
        .last()
        .map(|c| Duration::from_secs_f64(c.at_s) + SAMPLE)
        .unwrap_or(SAMPLE);
    // At most one iteration per second up to the deadline (plus one).
    for _ in 0..=at.as_secs() + 1 {
        let now = sidecar.elapsed();
        if now >= at {
            return Ok(());
        }
        sidecar.check_running()?;
        if now >= next_sample {
            timeline.push(checkpoint("sample", env, receiver, sidecar, events).await?);
            next_sample += SAMPLE;
        }
        tokio::time::sleep((at - now).min(Duration::from_secs(1))).await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Figures 1 and 2.

#[derive(Debug, Serialize)]
struct RetryWindowFigure {
    figure: FigureName,
    events: usize,
    receiver: String,
    retry_schedule: &'static str,
    sidecar_command: String,
    publish_s: f64,
    checkpoints: Vec<Checkpoint>,
    timeline: Vec<Checkpoint>,
    /// Seconds after the sidecar started of the first and the last 200.
    first_delivery_at_s: Option<f64>,
    last_delivery_at_s: Option<f64>,
    /// Ids answered 200 more than once (a delivery sent again after it was delivered).
    ids_delivered_twice: usize,
    /// Requests per delivery id: how many ids got 1, 2, 3, … requests.
    requests_per_id: BTreeMap<u32, usize>,
    sidecar: SidecarExit,
    redis_keys_deleted: usize,
}

async fn retry_window(
    args: &Args,
    run: &str,
    dir: &Path,
    figure: FigureName,
) -> anyhow::Result<RetryWindowFigure> {
    let env = Env::new(args, run, dir, figure).await?;
    let result = retry_window_in(args, &env, figure).await;
    let deleted = env.cleanup().await;
    let mut result = result?;
    result.redis_keys_deleted = deleted?;
    Ok(result)
}

async fn retry_window_in(
    args: &Args,
    env: &Env,
    figure: FigureName,
) -> anyhow::Result<RetryWindowFigure> {
    let events = args.events;
    let (receiver, description) = match figure {
        FigureName::Outage => (
            Receiver::new(Answer::Ok, args.seed),
            format!(
                "down (connection refused) for the first {} s, then 200",
                args.outage_secs
            ),
        ),
        _ => (
            Receiver::new(Answer::Flaky, args.seed),
            format!(
                "503 to a random 50 % of requests (seed {}), else 200",
                args.seed
            ),
        ),
    };
    let port = reserve_port()?;
    env.subscribe(port).await?;
    // The flaky receiver is up from the start; the outage's binds the port after the outage.
    let mut server = match figure {
        FigureName::Outage => None,
        _ => Some(serve(bind(port).await?, receiver.clone())),
    };
    let publish = env
        .publish(&format!("figure.{}", figure.as_str()), events)
        .await?;
    progress(&format!(
        "{}: {events} events published in {:.2}s; receiver on 127.0.0.1:{port}: {description}",
        figure.as_str(),
        publish.as_secs_f64()
    ));
    let mut sidecar = env.spawn_sidecar(args, &[], figure.as_str())?;
    let measured = async {
        let mut checkpoints = Vec::new();
        let mut timeline = Vec::new();
        let mut marks: Vec<(Duration, String)> = args
            .checkpoints
            .iter()
            .map(|s| (Duration::from_secs(*s), format!("{s}s")))
            .collect();
        if figure == FigureName::Outage {
            marks.push((Duration::from_secs(args.outage_secs), "up".to_owned()));
        }
        marks.sort();
        for (at, label) in marks {
            wait_until(at, env, &receiver, &mut sidecar, events, &mut timeline).await?;
            if label == "up" {
                // The counts just before the receiver comes up.
                checkpoints
                    .push(checkpoint("receiver up", env, &receiver, &sidecar, events).await?);
                server = Some(serve(bind(port).await?, receiver.clone()));
                progress(&format!("receiver up on 127.0.0.1:{port}"));
            } else {
                checkpoints.push(checkpoint(&label, env, &receiver, &sidecar, events).await?);
            }
        }
        // Then until everything is delivered, or the bound.
        let bound = Duration::from_secs(args.bound_secs);
        for _ in 0..=args.bound_secs + 1 {
            if sidecar.elapsed() >= bound {
                break;
            }
            let done = receiver.snapshot().delivered_ids >= events
                && env.counts().await?.delivered >= events as u64;
            if done {
                break;
            }
            let until = (sidecar.elapsed() + Duration::from_secs(1)).min(bound);
            wait_until(until, env, &receiver, &mut sidecar, events, &mut timeline).await?;
        }
        checkpoints.push(checkpoint("end", env, &receiver, &sidecar, events).await?);
        anyhow::Ok((checkpoints, timeline))
    }
    .await;
    let started = sidecar.started;
    let command = sidecar.command.clone();
    let exit = sidecar.stop().await?;
    if let Some(server) = server {
        server.shutdown().await;
    }
    let (checkpoints, timeline) = measured?;
    let (requests_per_id, ok_per_id) = receiver.histograms();
    let (first_ok, last_ok) = {
        let t = receiver.tally.lock().unwrap();
        (t.first_ok, t.last_ok)
    };
    let since = |i: Option<Instant>| i.map(|i| round((i - started).as_secs_f64(), 1));
    Ok(RetryWindowFigure {
        figure,
        events,
        receiver: description,
        retry_schedule: "default (standard-webhooks)",
        sidecar_command: command,
        publish_s: round(publish.as_secs_f64(), 2),
        checkpoints,
        timeline,
        first_delivery_at_s: since(first_ok),
        last_delivery_at_s: since(last_ok),
        ids_delivered_twice: ok_per_id.range(2..).map(|(_, n)| n).sum(),
        requests_per_id,
        sidecar: exit,
        redis_keys_deleted: 0,
    })
}

// ---------------------------------------------------------------------------------------------
// Figure 3.

#[derive(Debug, Serialize)]
struct ReplayFigure {
    figure: FigureName,
    dead_letters: usize,
    /// Making the dead letters: the sidecar with `--retry-schedule none`, receiver 503.
    make: Value,
    replay_summary: Value,
    /// The `Replay::matching` call.
    replay_call_s: f64,
    replays_per_s: f64,
    /// From the start of the replay call until the receiver had every id answered 200.
    all_delivered_s: Option<f64>,
    deliveries_per_s: Option<f64>,
    receiver: ReceiverCounts,
    store: StoreCounts,
    /// Requests per delivery id: how many ids got 1, 2, 3, … requests (2 expected for all).
    requests_per_id: BTreeMap<u32, usize>,
    ids_not_seen_twice: usize,
    ids_not_seen_twice_examples: Vec<(String, u32)>,
    sidecar_command: String,
    sidecar: SidecarExit,
    redis_keys_deleted: usize,
}

async fn replay(args: &Args, run: &str, dir: &Path) -> anyhow::Result<ReplayFigure> {
    let env = Env::new(args, run, dir, FigureName::Replay).await?;
    let result = replay_in(args, &env).await;
    let deleted = env.cleanup().await;
    let mut result = result?;
    result.redis_keys_deleted = deleted?;
    Ok(result)
}

async fn replay_in(args: &Args, env: &Env) -> anyhow::Result<ReplayFigure> {
    let n = args.dead_letters;
    let bound = Duration::from_secs(args.replay_bound_secs);
    let receiver = Receiver::new(Answer::Unavailable, args.seed);
    let listener = bind(0).await?;
    let port = listener.local_addr()?.port();
    let server = serve(listener, receiver.clone());
    env.subscribe(port).await?;
    let result = async {
        // 1. The dead letters.
        let mut maker = env.spawn_sidecar(args, &["--retry-schedule", "none"], "replay-make")?;
        let maker_command = maker.command.clone();
        let publish = env.publish("figure.replay", n).await?;
        progress(&format!(
            "replay: {n} events published in {:.2}s; receiver on 127.0.0.1:{port} answers 503",
            publish.as_secs_f64()
        ));
        let made = async {
            let mut last = StoreCounts::default();
            for i in 0..(bound.as_millis() / 200) {
                last = env.counts().await?;
                if last.dead >= n as u64 {
                    return anyhow::Ok((maker.elapsed(), last));
                }
                maker.check_running()?;
                if i % 25 == 0 {
                    progress(&format!(
                        "making dead letters: t={:.1}s {last:?}",
                        maker.elapsed().as_secs_f64()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            bail!(
                "after {bound:?}, {} of {n} dead letters: {last:?}",
                last.dead
            )
        }
        .await;
        let maker_exit = maker.stop().await?;
        let (made_in, made_counts) = made?;
        progress(&format!(
            "{n} dead letters in {:.1}s; maker sidecar: {}",
            made_in.as_secs_f64(),
            maker_exit.stdout
        ));
        let make = json!({
            "sidecar_command": maker_command,
            "publish_s": round(publish.as_secs_f64(), 2),
            "all_dead_s": round(made_in.as_secs_f64(), 1),
            "store": made_counts,
            "receiver": receiver.snapshot(),
            "sidecar": maker_exit,
        });

        // 2. The replay, the receiver answering 200, a sidecar with the default flags running.
        receiver.set(Answer::Ok);
        let mut sidecar = env.spawn_sidecar(args, &[], "replay")?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        sidecar.check_running()?;
        let store: Arc<dyn Store> = Arc::new(env.store.clone());
        let queue: Arc<dyn Backend> = env.queue.clone();
        progress("replaying every dead letter");
        let clock = Instant::now();
        let replayed = Replay::new(store, queue)
            .matching(&DeliveryQuery::status(DeliveryStatus::Dead), |_| {})
            .await;
        let call = clock.elapsed();
        let measured = async {
            let summary = replayed?;
            progress(&format!(
                "replay call: {:.2}s, {summary:?}",
                call.as_secs_f64()
            ));
            let mut all_delivered = None;
            for i in 0..(bound.as_millis() / 50) {
                if receiver.snapshot().delivered_ids >= n {
                    all_delivered = Some(clock.elapsed());
                    break;
                }
                if i % 100 == 0 {
                    sidecar.check_running()?;
                    progress(&format!(
                        "replay: t={:.1}s receiver {:?}",
                        clock.elapsed().as_secs_f64(),
                        receiver.snapshot()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Then until the store has recorded them all (bounded), and a few seconds more for
            // a late duplicate to show.
            let mut store = env.counts().await?;
            for _ in 0..300 {
                if store.delivered >= n as u64 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                store = env.counts().await?;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            let store = env.counts().await?;
            anyhow::Ok((summary, all_delivered, store))
        }
        .await;
        let command = sidecar.command.clone();
        let exit = sidecar.stop().await?;
        let (summary, all_delivered, store) = measured?;
        let (requests_per_id, _) = receiver.histograms();
        let (odd, examples) = receiver.ids_not_seen(2, 20);
        let call_s = call.as_secs_f64();
        Ok(ReplayFigure {
            figure: FigureName::Replay,
            dead_letters: n,
            make,
            replay_summary: serde_json::to_value(summary)?,
            replay_call_s: round(call_s, 2),
            replays_per_s: round(summary.sent_again() as f64 / call_s, 0),
            all_delivered_s: all_delivered.map(|d| round(d.as_secs_f64(), 2)),
            deliveries_per_s: all_delivered.map(|d| round(n as f64 / d.as_secs_f64(), 0)),
            receiver: receiver.snapshot(),
            store,
            requests_per_id,
            ids_not_seen_twice: odd,
            ids_not_seen_twice_examples: examples,
            sidecar_command: command,
            sidecar: exit,
            redis_keys_deleted: 0,
        })
    }
    .await;
    server.shutdown().await;
    result
}

// ---------------------------------------------------------------------------------------------

fn seconds(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"))
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn progress(line: &str) {
    eprintln!("[replay-figures] {line}");
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(mut args: Args) -> anyhow::Result<()> {
    if !(args.redis.starts_with("redis://127.0.0.1:") || args.redis == "redis://127.0.0.1") {
        bail!("--redis must be on 127.0.0.1 (got {})", args.redis);
    }
    if !args.sidecar.is_file() {
        bail!(
            "{}: no sidecar binary; build it with `cargo build --release -p fastapihooks-cli`",
            args.sidecar.display()
        );
    }
    if args.figures.is_empty() {
        args.figures = vec![FigureName::Outage, FigureName::Flaky, FigureName::Replay];
    }
    let run = ulid::Ulid::new().to_string().to_lowercase();
    let dir = match &args.work_dir {
        Some(d) => d.join(format!("figures-{run}")),
        None => std::env::temp_dir().join(format!("figures-{run}")),
    };
    std::fs::create_dir_all(&dir)?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    progress(&format!("run {run}; files in {}", dir.display()));

    let mut windows = Vec::new();
    let mut replays = Vec::new();
    for figure in args.figures.clone() {
        match figure {
            FigureName::Outage | FigureName::Flaky => {
                let f = retry_window(&args, &run, &dir, figure).await?;
                println!("{}", serde_json::to_string(&f)?);
                windows.push(f);
            }
            FigureName::Replay => {
                let f = replay(&args, &run, &dir).await?;
                println!("{}", serde_json::to_string(&f)?);
                replays.push(f);
            }
        }
    }
    let table = markdown(&command, &dir, &windows, &replays);
    println!("\n{table}");
    if let Some(path) = &args.markdown {
        std::fs::write(path, &table).with_context(|| path.display().to_string())?;
        progress(&format!("table written to {}", path.display()));
    }
    Ok(())
}

fn markdown(
    command: &str,
    dir: &Path,
    windows: &[RetryWindowFigure],
    replays: &[ReplayFigure],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Command: `{command}`  ");
    let _ = writeln!(s, "Files (stores, sidecar logs): `{}`\n", dir.display());
    for f in windows {
        let _ = writeln!(
            s,
            "### {} — {} events, receiver {}, retry schedule {}\n",
            f.figure.as_str(),
            f.events,
            f.receiver,
            f.retry_schedule
        );
        let _ = writeln!(s, "Sidecar: `{}`\n", f.sidecar_command);
        let _ = writeln!(
            s,
            "| checkpoint | t (s) | delivered ids at receiver | requests at receiver | store delivered | store pending | store dead | store failed | not fanned out |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for c in &f.checkpoints {
            let _ = writeln!(
                s,
                "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
                c.label,
                c.at_s,
                c.receiver.delivered_ids,
                c.receiver.requests,
                c.store.delivered,
                c.store.pending,
                c.store.dead,
                c.store.failed,
                c.not_fanned_out
            );
        }
        let _ = writeln!(
            s,
            "\nFirst 200 at {} s, last at {} s after the sidecar started; ids answered 200 \
             more than once: {}; requests per id (requests: ids): {:?}; sidecar exit: {}, \
             `{}`; log lines {} (WARN {}, ERROR {}).\n",
            seconds(f.first_delivery_at_s),
            seconds(f.last_delivery_at_s),
            f.ids_delivered_twice,
            f.requests_per_id,
            f.sidecar
                .exit_code
                .map_or_else(|| "signal".to_owned(), |c| c.to_string()),
            f.sidecar.stdout,
            f.sidecar.log_lines,
            f.sidecar.log_warn,
            f.sidecar.log_error
        );
    }
    for f in replays {
        let _ = writeln!(
            s,
            "### replay — {} dead letters replayed in bulk (`Replay::matching`, status dead)\n",
            f.dead_letters
        );
        let _ = writeln!(
            s,
            "Dead letters made by: `{}` (all dead after {} s)  ",
            f.make["sidecar_command"].as_str().unwrap_or(""),
            f.make["all_dead_s"]
        );
        let _ = writeln!(s, "Replayed while running: `{}`\n", f.sidecar_command);
        let _ = writeln!(s, "| measure | value |");
        let _ = writeln!(s, "|---|---:|");
        let _ = writeln!(s, "| replay call | {:.2} s |", f.replay_call_s);
        let _ = writeln!(s, "| replays enqueued / s | {} |", f.replays_per_s);
        let _ = writeln!(
            s,
            "| replay start → receiver has every id | {} |",
            f.all_delivered_s
                .map(|x| format!("{x:.2} s"))
                .unwrap_or_else(|| "not reached".to_owned())
        );
        let _ = writeln!(
            s,
            "| deliveries / s end to end | {} |",
            f.deliveries_per_s
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".to_owned())
        );
        let _ = writeln!(
            s,
            "| replay summary | queued {}, resumed {}, already pending {}, delivered {}, subscription disabled {}, not found {} |",
            f.replay_summary["queued"],
            f.replay_summary["resumed"],
            f.replay_summary["already_pending"],
            f.replay_summary["delivered"],
            f.replay_summary["subscription_disabled"],
            f.replay_summary["not_found"]
        );
        let _ = writeln!(
            s,
            "| ids at receiver (answered 200) | {} of {} ({} requests) |",
            f.receiver.delivered_ids, f.dead_letters, f.receiver.requests
        );
        let _ = writeln!(
            s,
            "| requests per id (requests: ids) | {:?} |",
            f.requests_per_id
        );
        let _ = writeln!(
            s,
            "| ids not seen exactly twice | {} |",
            f.ids_not_seen_twice
        );
        let _ = writeln!(
            s,
            "| store after | delivered {}, pending {}, dead {}, failed {} |",
            f.store.delivered, f.store.pending, f.store.dead, f.store.failed
        );
        let _ = writeln!(
            s,
            "| sidecar | exit {}, `{}`; log lines {} (WARN {}, ERROR {}) |\n",
            f.sidecar
                .exit_code
                .map_or_else(|| "signal".to_owned(), |c| c.to_string()),
            f.sidecar.stdout,
            f.sidecar.log_lines,
            f.sidecar.log_warn,
            f.sidecar.log_error
        );
    }
    s
}

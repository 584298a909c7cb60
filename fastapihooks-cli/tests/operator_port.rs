//! `fastapihooks start --metrics-addr`: the operator port of the real binary — `/metrics` after
//! known deliveries, `/healthz`, `/readyz` when the queue or the store cannot be reached (cut off
//! by a TCP proxy of the test's own in front of the machine's service: nothing shared is
//! stopped) — and the periodic progress line as JSON.
#![cfg(feature = "sqlite")]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use fastapihooks_testkit::{Receiver, Reply, events, eventually, eventually_async};
use serde_json::Value;
use support::{Sidecar, SqliteApp, WAIT};

/// What the sidecar logs once its operator port listens.
const LISTENING: &str = "operator port listening on http://";

/// Starts `fastapihooks start <args> --metrics-addr 127.0.0.1:0 --log-level info`, its stderr
/// captured, and waits for the address it logs.
async fn with_operator_port(args: Vec<String>) -> (Sidecar, String) {
    let mut args = args;
    args.extend(["--metrics-addr", "127.0.0.1:0", "--log-level", "info"].map(String::from));
    let sidecar = Sidecar::start_capturing(&args);
    let base = sidecar.listening(LISTENING).await;
    (sidecar, base)
}

/// `GET url`: the status and the body.
async fn get(url: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// `GET {base}/readyz`: the status and the JSON body.
async fn readyz(base: &str) -> (u16, Value) {
    let (status, body) = get(&format!("{base}/readyz")).await;
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, json)
}

/// Waits for `/readyz` to answer `status`; returns its last answer.
async fn readyz_until(base: &str, status: u16) -> (u16, Value) {
    let mut last = None;
    let reached = eventually_async(WAIT, async || {
        let answer = readyz(base).await;
        let done = answer.0 == status;
        last = Some(answer);
        done
    })
    .await;
    let last = last.expect("/readyz was asked");
    assert!(reached, "/readyz never answered {status}: {last:?}");
    last
}

/// The sum of the values of the Prometheus text samples named `name` whose labels include every
/// `key="value"` of `labels`; `None` when there is none.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let has_labels = labels
            .iter()
            .all(|l| series_labels.split(',').any(|s| s == *l));
        if series_name == name && has_labels {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap();
        }
    }
    found
}

/// A TCP proxy on 127.0.0.1 to a service, that the test can cut: then the connections through
/// it drop and new ones are refused, as when the service's host goes away — while the service
/// itself, shared with other tests, goes on.
struct Proxy {
    addr: SocketAddr,
    cut: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `target` (`host:port`).
    async fn to(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, mut cut_off) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    // Returning drops the listener and aborts every connection.
                    _ = &mut cut_off => return,
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        let target = target.clone();
                        connections.spawn(async move {
                            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                        });
                    }
                }
            }
        });
        Self {
            addr,
            cut: Some(cut),
            task,
        }
    }

    /// `url` with its host and port replaced by this proxy's, and the proxy to its own.
    async fn in_front_of(url: &str) -> (Self, String) {
        let mut through = url::Url::parse(url).unwrap();
        let target = format!(
            "{}:{}",
            through.host_str().unwrap(),
            through.port_or_known_default().unwrap()
        );
        let proxy = Self::to(target).await;
        through.set_host(Some("127.0.0.1")).unwrap();
        through.set_port(Some(proxy.addr.port())).unwrap();
        (proxy, through.to_string())
    }

    /// Drops every connection through the proxy and stops listening.
    async fn cut(mut self) {
        let _ = self.cut.take().unwrap().send(());
        let _ = (&mut self.task).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `--queue` the app's SQLite outbox, quick timings, signed, deliveries to loopback allowed,
/// then `extra`.
fn outbox_args(app: &SqliteApp, extra: &[&str]) -> Vec<String> {
    let mut args = app.args(&["--signing-secret", "test-secret", "--allow-loopback"]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_deliveries_made() {
    let receiver = Receiver::ok().await;
    let app = SqliteApp::with_subscriber(&receiver.url("a")).await;
    let (sidecar, base) = with_operator_port(outbox_args(&app, &[])).await;
    let n = 7;
    app.publish(&events(n)).await;
    assert!(
        eventually(WAIT, || receiver.distinct() >= n).await,
        "{} of {n} delivered",
        receiver.distinct()
    );

    // Counted once each attempt has its answer: scraped until they are all in.
    let mut text = String::new();
    let counted = eventually_async(WAIT, async || {
        let (status, body) = get(&format!("{base}/metrics")).await;
        assert_eq!(status, 200, "{body}");
        text = body;
        sample(
            &text,
            "fastapihooks_deliveries_total",
            &[r#"outcome="delivered""#],
        ) == Some(n as f64)
    })
    .await;
    assert!(counted, "{text}");
    assert_eq!(
        sample(&text, "fastapihooks_attempt_duration_seconds_count", &[]),
        Some(n as f64),
        "{text}"
    );
    assert!(
        text.contains("fastapihooks_attempt_duration_seconds_bucket{"),
        "a histogram with buckets, not a summary: {text}"
    );
    drop(sidecar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_the_process_is_up() {
    let app = SqliteApp::new(vec![]).await;
    let (sidecar, base) = with_operator_port(outbox_args(&app, &[])).await;
    assert_eq!(get(&format!("{base}/healthz")).await, (200, "ok\n".into()));
    let stdout = sidecar.stop(WAIT).await;
    assert!(stdout.starts_with("stopped:"), "{stdout}");
    let after = reqwest::get(format!("{base}/healthz")).await;
    assert!(after.is_err(), "still answering after the exit: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_200_with_every_check_ok_while_the_sidecar_works() {
    let app = SqliteApp::new(vec![]).await;
    let (sidecar, base) = with_operator_port(outbox_args(&app, &[])).await;
    let (_, body) = readyz_until(&base, 200).await;
    assert_eq!(
        body,
        serde_json::json!({
            "status": "ready",
            "checks": {"queue": "ok", "store": "ok", "worker": "ok"},
        })
    );
    drop(sidecar);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_naming_the_store_when_it_cannot_be_reached() {
    use fastapihooks_testkit::TempSchema;
    let Some(schema) = TempSchema::create("readyz naming the store").await else {
        return;
    };
    // The store's tables, made directly; the sidecar reaches them through the proxy only.
    let store = fastapihooks_core::SqlStoreOptions::new(schema.url())
        .postgres_schema(schema.name())
        .max_connections(1)
        .connect()
        .await
        .unwrap();
    store.connection().clone().close().await.unwrap();
    let (proxy, store_url) = Proxy::in_front_of(schema.url()).await;
    let queue = SqliteApp::new(vec![]).await;
    let args = outbox_args(
        &queue,
        &["--store", &store_url, "--postgres-schema", schema.name()],
    );
    let (sidecar, base) = with_operator_port(args).await;
    readyz_until(&base, 200).await;

    proxy.cut().await;
    let (_, body) = readyz_until(&base, 503).await;
    assert_eq!(body["status"], "unready", "{body}");
    assert_ne!(body["checks"]["store"], "ok", "{body}");
    assert_eq!(body["checks"]["queue"], "ok", "{body}");
    drop(sidecar);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_naming_the_queue_when_it_cannot_be_reached() {
    use fastapihooks_testkit::{TestKeys, redis_url};
    let Some(redis) = redis_url("readyz naming the queue").await else {
        return;
    };
    let keys = TestKeys::new(&redis, "readyz");
    let (proxy, queue_url) = Proxy::in_front_of(&redis).await;
    let store = SqliteApp::new(vec![]).await;
    let args = [
        "--queue",
        &queue_url,
        "--key-prefix",
        keys.prefix(),
        "--store",
        &store.url,
        "--unsigned",
        // The machine's Redis runs without the append-only file.
        "--allow-volatile-redis",
        "--http-timeout",
        "1s",
        "--visibility-timeout",
        "3s",
    ]
    .map(String::from)
    .to_vec();
    let (sidecar, base) = with_operator_port(args).await;
    readyz_until(&base, 200).await;

    proxy.cut().await;
    let (_, body) = readyz_until(&base, 503).await;
    assert_eq!(body["status"], "unready", "{body}");
    assert_ne!(body["checks"]["queue"], "ok", "{body}");
    assert_eq!(body["checks"]["store"], "ok", "{body}");
    drop(sidecar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_progress_line_parses_with_the_counts_delivered() {
    let receiver = Receiver::ok().await;
    let app = SqliteApp::with_subscriber(&receiver.url("a")).await;
    let args = outbox_args(
        &app,
        &[
            "--log-format",
            "json",
            "--log-level",
            "info",
            "--progress-every",
            "1s",
        ],
    );
    let sidecar = Sidecar::start_capturing(&args);
    let n = 5;
    app.publish(&events(n)).await;
    assert!(eventually(WAIT, || receiver.distinct() >= n).await);

    // The deliveries may straddle two lines: their counts add up to n.
    let delivered_in = |stderr: &[u8]| -> (u64, Vec<Value>) {
        let lines: Vec<Value> = String::from_utf8_lossy(stderr)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .filter(|line: &Value| {
                line["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("progress:"))
            })
            .collect();
        let delivered = lines
            .iter()
            .map(|l| l["fields"]["delivered"].as_u64().unwrap())
            .sum();
        (delivered, lines)
    };
    let all_counted = eventually(WAIT, || delivered_in(&sidecar.stderr()).0 >= n as u64).await;
    let (delivered, lines) = delivered_in(&sidecar.stderr());
    assert!(all_counted && delivered == n as u64, "{lines:#?}");
    let line = &lines[0]["fields"];
    assert_eq!(line["level"], Value::Null, "level is outside the fields");
    assert_eq!(lines[0]["level"], "INFO");
    for field in [
        "delivered_per_second",
        "retried",
        "dead_lettered",
        "in_flight",
        "queue_depth",
    ] {
        assert!(line[field].is_number(), "{field} in {line}");
    }
    assert_eq!(line["dead_lettered"], 0, "{line}");
    drop(sidecar);
}

/// The README's metric table is `fastapihooks_core::metrics::ALL` (checked in the core's
/// tests); this checks that `/metrics` serves that catalogue: every `fastapihooks_` family it
/// serves is in it, with its type, its help text and no label it does not list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_served_are_the_catalogues_names_types_help_and_labels() {
    use fastapihooks_core::metrics::{MetricSpec, SUBSCRIPTION_LABEL};
    let receiver = Receiver::ok().await;
    let app = SqliteApp::with_subscriber(&receiver.url("a")).await;
    let (sidecar, base) =
        with_operator_port(outbox_args(&app, &["--metrics-per-subscription"])).await;
    let n = 3;
    app.publish(&events(n)).await;
    let mut text = String::new();
    let counted = eventually_async(WAIT, async || {
        text = get(&format!("{base}/metrics")).await.1;
        sample(&text, "fastapihooks_deliveries_total", &[]) == Some(n as f64)
    })
    .await;
    assert!(counted, "{text}");

    let mut families = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let spec = MetricSpec::find(name)
                .unwrap_or_else(|| panic!("{name} is served but not in the catalogue"));
            assert_eq!(kind, spec.kind.as_str(), "{name}'s type");
            families += 1;
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            let spec = MetricSpec::find(name).unwrap();
            assert!(
                help.starts_with(spec.description),
                "{name}'s help is not the catalogue's description: {help}"
            );
        } else if let Some((series, _)) = line.split_once('{') {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    series
                        .strip_suffix(s)
                        .filter(|f| MetricSpec::find(f).is_some())
                })
                .unwrap_or(series);
            let spec = MetricSpec::find(family).unwrap_or_else(|| panic!("{line}"));
            let labels = line[series.len() + 1..].split('}').next().unwrap();
            for label in labels.split(',').filter_map(|l| l.split_once('=')) {
                let known = spec.labels.contains(&label.0)
                    || label.0 == SUBSCRIPTION_LABEL && spec.per_subscription
                    || label.0 == "le" && family != series;
                assert!(
                    known,
                    "{family} served with label {} not in the catalogue",
                    label.0
                );
            }
        }
    }
    assert!(families >= 5, "only {families} families served: {text}");
    let subscription = app.subscription().id.to_string();
    assert!(
        text.contains(&format!(r#"subscription="{subscription}""#)),
        "--metrics-per-subscription labels the deliveries: {text}"
    );
    drop(sidecar);
}

/// `start` arguments draining `app`'s outbox with an HTTP timeout long enough for a slow
/// receiver (the default lease outlives it), then `extra`.
fn slow_receiver_args(app: &SqliteApp, extra: &[&str]) -> Vec<String> {
    [
        "--queue",
        &app.url,
        "--http-timeout",
        "30s",
        "--poll-interval",
        "50ms",
        "--signing-secret",
        "test-secret",
        "--allow-loopback",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

/// While a delivery's request is out, `/metrics` shows it in flight — one request, one task —
/// and nothing once it is answered and settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_request_in_flight_and_its_task() {
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_secs(2))).await;
    let app = SqliteApp::with_subscriber(&receiver.url("a")).await;
    let (sidecar, base) = with_operator_port(slow_receiver_args(&app, &[])).await;
    app.publish(&events(1)).await;
    assert!(
        eventually(WAIT, || receiver.in_flight() == 1).await,
        "the delivery reached the receiver"
    );
    let (_, during) = get(&format!("{base}/metrics")).await;
    let settled = eventually_async(WAIT, async || {
        let (_, text) = get(&format!("{base}/metrics")).await;
        sample(&text, "fastapihooks_worker_tasks_in_flight", &[]) == Some(0.0)
    })
    .await;
    let (_, after) = get(&format!("{base}/metrics")).await;
    sidecar.terminate();
    let (exit, _, _) = sidecar.exit_capturing(WAIT).await;

    let in_flight = |text: &str| {
        (
            sample(text, "fastapihooks_attempts_in_flight", &[]),
            sample(text, "fastapihooks_worker_tasks_in_flight", &[]),
        )
    };
    assert_eq!(in_flight(&during), (Some(1.0), Some(1.0)), "{during}");
    assert!(settled, "the task never ended");
    assert_eq!(in_flight(&after), (Some(0.0), Some(0.0)), "{after}");
    assert!(exit.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_draining_while_the_sidecar_drains_and_metrics_still_answer() {
    // A receiver slow enough that the drain lasts while the test looks.
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_secs(4))).await;
    let app = SqliteApp::with_subscriber(&receiver.url("a")).await;
    let args = slow_receiver_args(&app, &["--drain-deadline", "60s"]);
    let (sidecar, base) = with_operator_port(args).await;
    app.publish(&events(1)).await;
    assert!(
        eventually(WAIT, || receiver.in_flight() == 1).await,
        "the delivery reached the receiver"
    );
    let (status, ready) = readyz(&base).await;
    assert_eq!(status, 200, "{ready}");

    sidecar.terminate();
    let (status, ready) = readyz_until(&base, 503).await;
    assert_eq!(status, 503, "{ready}");
    let worker = ready["checks"]["worker"].as_str().unwrap_or_default();
    assert!(worker.starts_with("draining"), "{ready}");
    assert_eq!(receiver.answered(), 0, "still draining: {ready}");
    let (status, _) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200, "/metrics answers during the drain");

    let (exit, _, stderr) = sidecar.exit_capturing(WAIT).await;
    assert!(
        exit.success(),
        "exits once drained: {exit}: {}",
        String::from_utf8_lossy(&stderr)
    );
    assert_eq!(
        receiver.distinct(),
        1,
        "the delivery in flight was finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_waiting_on_a_slow_receiver_logs_its_tasks_in_flight_not_idle() {
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_secs(4))).await;
    let app = SqliteApp::with_subscriber(&receiver.url("a")).await;
    let args = slow_receiver_args(
        &app,
        &[
            "--log-format",
            "json",
            "--log-level",
            "info",
            "--progress-every",
            "500ms",
        ],
    );
    let sidecar = Sidecar::start_capturing(&args);
    app.publish(&events(1)).await;
    // Each line from the first one that counts the delivery in flight, until its answer.
    let lines_since_in_flight = |stderr: &[u8]| -> Vec<Value> {
        let lines: Vec<Value> = String::from_utf8_lossy(stderr)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect();
        let first = lines.iter().position(|l| l["fields"]["in_flight"] == 1);
        first.map_or_else(Vec::new, |at| lines[at..].to_vec())
    };
    let two_ticks = eventually(WAIT, || {
        lines_since_in_flight(&sidecar.stderr())
            .iter()
            .filter(|l| l["fields"]["in_flight"] == 1)
            .count()
            >= 2
    })
    .await;
    let lines = lines_since_in_flight(&sidecar.stderr());
    assert!(
        two_ticks,
        "no two progress lines with 1 in flight: {lines:#?}"
    );
    assert_eq!(receiver.answered(), 0, "still waiting on the receiver");
    let idle = lines.iter().find(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("idle"))
    });
    assert!(
        idle.is_none(),
        "idle while a delivery is in flight: {idle:?}"
    );
    drop(sidecar);
}

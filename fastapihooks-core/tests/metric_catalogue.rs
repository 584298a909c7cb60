//! The metric catalogue (`fastapihooks_core::metrics::ALL`) is the truth about the metrics: the
//! README's table is generated from it, what the code records is in it under the kind, unit and
//! labels it says, and known work is counted as it happened. Real receivers on 127.0.0.1; the
//! metrics go to a recorder of the test's own thread (a current-thread runtime runs every task
//! of the test on it), never to a global one.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fastapihooks_core::metrics::{self, ALL, MetricKind, MetricSpec, SUBSCRIPTION_LABEL, Unit};
use fastapihooks_core::{Emitter, HttpConfig, MemoryStore, Store, Subscription};
use fastapihooks_testkit::{Receiver, RecordedMetrics, Reply, quick_retries};
use metrics_util::MetricKind as RecordedKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

const BEGIN: &str = "<!-- metrics:begin -->";
const END: &str = "<!-- metrics:end -->";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_readme_table_is_the_catalogue() {
    let expected = metrics::markdown_table();
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README.md");
    let table = readme
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(table, _)| table.trim());
    let Some(table) = table else {
        panic!(
            "README.md has no metric table between `{BEGIN}` and `{END}`; paste this one:\n\n{BEGIN}\n{expected}{END}\n"
        );
    };
    assert!(
        table == expected.trim(),
        "README.md's metric table is not the catalogue's (fastapihooks_core::metrics::ALL); \
         replace what is between the markers with:\n\n{BEGIN}\n{expected}{END}\n"
    );
}

#[test]
fn names_are_unique_and_follow_the_conventions() {
    let mut seen = HashSet::new();
    for spec in ALL {
        let name = spec.name;
        assert!(seen.insert(name), "{name} is in the catalogue twice");
        assert!(name.starts_with("fastapihooks_"), "{name}: the prefix");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{name}: lower snake case"
        );
        assert!(!spec.description.is_empty(), "{name}: a description");
        match spec.kind {
            MetricKind::Counter => {
                assert!(name.ends_with("_total"), "{name}: a counter ends in _total");
                assert_eq!(spec.unit, Unit::Count, "{name}: a counter counts");
            }
            MetricKind::Gauge | MetricKind::Histogram => {
                assert!(
                    !name.ends_with("_total"),
                    "{name}: only counters end in _total"
                )
            }
        }
        assert_eq!(
            spec.unit == Unit::Seconds,
            name.ends_with("_seconds"),
            "{name}: a time is in seconds and says so; nothing else ends in _seconds"
        );
        for other_unit in ["millis", "micros", "_ms", "_us", "minutes", "hours"] {
            assert!(!name.contains(other_unit), "{name}: base units only");
        }
        if spec.kind == MetricKind::Histogram {
            let unit = name.rsplit('_').next().unwrap();
            assert!(
                unit == "seconds" || (spec.unit == Unit::Count && unit.ends_with('s')),
                "{name}: a histogram ends in its unit (seconds, or the plural of what it counts)"
            );
            assert!(
                !spec.buckets.is_empty(),
                "{name}: buckets to export it with"
            );
            assert!(
                spec.buckets.windows(2).all(|w| w[0] < w[1]),
                "{name}: buckets ascend"
            );
        } else {
            assert!(
                spec.buckets.is_empty(),
                "{name}: buckets are for histograms"
            );
        }
        let labels: HashSet<_> = spec.labels.iter().collect();
        assert_eq!(labels.len(), spec.labels.len(), "{name}: a label twice");
        for label in spec.labels {
            assert!(
                label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}: label {label}"
            );
            assert_ne!(
                *label, SUBSCRIPTION_LABEL,
                "{name}: the subscription label is opt-in, never always there"
            );
        }
        assert_eq!(MetricSpec::find(name), Some(spec));
    }
    assert_eq!(MetricSpec::find("fastapihooks_nothing_total"), None);
}

/// The name constants of `src/metrics.rs`, by constant: `(QUEUE_DEPTH, fastapihooks_queue_depth)`.
fn name_constants() -> Vec<(String, String)> {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/metrics.rs"))
            .unwrap();
    source
        .lines()
        .filter_map(|line| line.strip_prefix("pub const "))
        .filter_map(|rest| {
            let (constant, value) = rest.split_once(": &str = \"")?;
            let value = value.strip_suffix("\";")?;
            value
                .starts_with("fastapihooks_")
                .then(|| (constant.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Whether `source` names `constant` (as a whole word).
fn names(source: &str, constant: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    source.match_indices(constant).any(|(at, _)| {
        let before = source[..at].chars().next_back();
        let after = source[at + constant.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Every recording names its metric by the catalogue's constant, and every constant is in the
/// catalogue and recorded somewhere.
#[test]
fn recording_sites_name_metrics_by_the_catalogue_constants() {
    let constants = name_constants();
    assert_eq!(
        constants.len(),
        ALL.len(),
        "one name constant per catalogue entry"
    );
    for (constant, name) in &constants {
        assert!(
            MetricSpec::find(name).is_some(),
            "{constant} = {name} is not in ALL"
        );
    }
    // The library crates record; the sidecar binary samples the queue gauges.
    let mut files = Vec::new();
    for dir in [
        "fastapihooks-core/src",
        "fastapihooks-axum/src",
        "fastapihooks-cli/src",
    ] {
        rust_files(&workspace().join(dir), &mut files);
    }
    let mut used = BTreeSet::new();
    for file in files.iter().filter(|f| !f.ends_with("src/metrics.rs")) {
        let source = std::fs::read_to_string(file).unwrap();
        for mac in ["counter!(", "gauge!(", "histogram!("] {
            for (at, _) in source.match_indices(mac) {
                let named_by_literal = source[at + mac.len()..].trim_start().starts_with('"');
                let line = source[..at].lines().count();
                assert!(
                    !named_by_literal,
                    "{}:{line}: a metric named by a string literal; use its constant in \
                     fastapihooks_core::metrics",
                    file.display(),
                );
            }
        }
        // The delivery and attempt metrics are recorded through `metrics::delivery`, which
        // adds the opt-in subscription label.
        let through_delivery = source.contains("metrics::delivery::");
        for (constant, _) in &constants {
            let by_delivery = [
                "DELIVERIES_TOTAL",
                "RETRIES_TOTAL",
                "ATTEMPT_DURATION_SECONDS",
            ]
            .contains(&constant.as_str());
            if names(&source, constant) || through_delivery && by_delivery {
                used.insert(constant.clone());
            }
        }
    }
    let unused: Vec<_> = constants
        .iter()
        .map(|(c, _)| c.as_str())
        .filter(|c| !used.contains(*c))
        .collect();
    assert!(
        unused.is_empty(),
        "in the catalogue, recorded nowhere: {unused:?}"
    );
}

/// Every metric recorded is in the catalogue, under the kind, labels, unit and description the
/// catalogue gives it.
fn check_against_the_catalogue(recorded: &RecordedMetrics, per_subscription: bool) {
    for ((name, labels), metric) in &recorded.metrics {
        let spec = MetricSpec::find(name)
            .unwrap_or_else(|| panic!("{name} is recorded but not in the catalogue"));
        let kind = match spec.kind {
            MetricKind::Counter => RecordedKind::Counter,
            MetricKind::Gauge => RecordedKind::Gauge,
            MetricKind::Histogram => RecordedKind::Histogram,
        };
        assert_eq!(metric.kind, kind, "{name}: recorded as another kind");
        let mut expected: BTreeSet<&str> = spec.labels.iter().copied().collect();
        if per_subscription && spec.per_subscription {
            expected.insert(SUBSCRIPTION_LABEL);
        }
        let got: BTreeSet<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(got, expected, "{name}: labels");
        assert_eq!(metric.unit, Some(spec.unit.to_metrics()), "{name}: unit");
        assert_eq!(
            metric.description.as_deref(),
            Some(spec.description),
            "{name}: description"
        );
    }
}

fn http() -> HttpConfig {
    let mut http = HttpConfig::default().allow_loopback();
    http.timeout = Duration::from_secs(2);
    http.connect_timeout = Duration::from_secs(1);
    http
}

/// Known work through the in-process emitter: three `order.created` fanned out to two
/// subscriptions each and delivered; one `invoice.paid` whose endpoint answers 500, retried
/// twice, then dead — which announces `fastapihooks.delivery.dead` to a fourth subscription;
/// one event refused for its size.
#[tokio::test]
async fn every_metric_recorded_is_in_the_catalogue_and_named_as_it_says() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    metrics::describe();

    let receiver = Receiver::scripted(|path, _| match path {
        "/fail" => Reply::status(500),
        _ => Reply::ok(),
    })
    .await;
    let store = MemoryStore::new();
    for (filter, path) in [
        ("order.*", "/a"),
        ("order.*", "/b"),
        ("invoice.*", "/fail"),
        ("fastapihooks.delivery.dead", "/ops"),
    ] {
        store
            .add_subscription(receiver.subscription(filter, path))
            .await
            .unwrap();
    }
    let emitter = Emitter::builder()
        .store(store)
        .http(http())
        .retry(quick_retries(2, Duration::from_millis(10)))
        .max_payload_bytes(1024)
        .unsigned()
        .build()
        .unwrap();
    for n in 0..3 {
        emitter
            .emit("order.created", &serde_json::json!({ "n": n }))
            .await
            .unwrap();
    }
    emitter
        .emit("invoice.paid", &serde_json::json!({ "n": 3 }))
        .await
        .unwrap();
    let too_large = emitter.emit("order.created", &"x".repeat(2048)).await;
    assert!(too_large.is_err(), "refused for its size");

    let got = receiver
        .wait_until(|r| r.iter().any(|r| r.path == "/ops"))
        .await;
    let at = |path: &str| got.iter().filter(|r| r.path == path).count();
    assert_eq!(
        (at("/a"), at("/b"), at("/fail"), at("/ops")),
        (3, 3, 3, 1),
        "what the receiver got"
    );
    // Every task ends (the announcement's delivery is recorded) before the snapshot.
    let report = emitter.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.abandoned, 0);

    let recorded = RecordedMetrics::of(&snapshotter);
    check_against_the_catalogue(&recorded, false);
    let expected: BTreeSet<&str> = [
        metrics::EVENTS_PUBLISHED_TOTAL,
        metrics::PUBLISH_DURATION_SECONDS,
        metrics::PUBLISH_ERRORS_TOTAL,
        metrics::FANOUT_SUBSCRIPTIONS,
        metrics::FANOUT_DURATION_SECONDS,
        metrics::DELIVERIES_PLANNED_TOTAL,
        metrics::ATTEMPT_DURATION_SECONDS,
        metrics::ATTEMPTS_IN_FLIGHT,
        metrics::DELIVERIES_TOTAL,
        metrics::RETRIES_TOTAL,
        metrics::OPS_EVENTS_TOTAL,
    ]
    .into();
    assert_eq!(recorded.names(), expected, "the metrics this work records");

    let published =
        |event: &str| recorded.counter(metrics::EVENTS_PUBLISHED_TOTAL, &[("event", event)]);
    assert_eq!(published("order.created"), 3);
    assert_eq!(published("invoice.paid"), 1);
    assert_eq!(
        recorded.counter(
            metrics::PUBLISH_ERRORS_TOTAL,
            &[("reason", "payload_too_large")]
        ),
        1
    );
    let publishes = recorded.histogram(metrics::PUBLISH_DURATION_SECONDS, &[]);
    assert_eq!(publishes.len(), 4, "one per event the backend was handed");
    assert!(
        publishes.iter().all(|s| (0.0..10.0).contains(s)),
        "{publishes:?}"
    );

    // Fan-out: three orders to two subscriptions, the invoice to one, its announcement to one.
    let mut sizes = recorded.histogram(metrics::FANOUT_SUBSCRIPTIONS, &[]);
    sizes.sort_by(f64::total_cmp);
    assert_eq!(sizes, [1.0, 1.0, 2.0, 2.0, 2.0]);
    assert_eq!(
        recorded
            .histogram(metrics::FANOUT_DURATION_SECONDS, &[])
            .len(),
        5
    );
    assert_eq!(recorded.counter(metrics::DELIVERIES_PLANNED_TOTAL, &[]), 8);

    // Attempts: 6 orders and the announcement at once, the invoice 1 + 2 retries.
    let delivered = recorded.counter(metrics::DELIVERIES_TOTAL, &[("outcome", "delivered")]);
    assert_eq!(delivered, 7);
    assert_eq!(
        recorded.counter(metrics::DELIVERIES_TOTAL, &[("outcome", "dead")]),
        1
    );
    assert_eq!(recorded.counter(metrics::RETRIES_TOTAL, &[]), 2);
    let attempts = recorded.histogram(metrics::ATTEMPT_DURATION_SECONDS, &[]);
    assert_eq!(attempts.len(), 10);
    assert!(
        attempts.iter().all(|s| (0.0..10.0).contains(s)),
        "{attempts:?}"
    );
    match recorded.get(metrics::ATTEMPTS_IN_FLIGHT, &[]).value {
        DebugValue::Gauge(v) => assert_eq!(v.into_inner(), 0.0, "none left in flight"),
        ref other => panic!("{other:?}"),
    }
    assert_eq!(
        recorded.counter(
            metrics::OPS_EVENTS_TOTAL,
            &[("event", "fastapihooks.delivery.dead")]
        ),
        1
    );
}

/// With the opt-in, the delivery and attempt metrics carry the subscription's id; the others
/// do not change.
#[tokio::test]
async fn metrics_per_subscription_label_the_delivery_and_attempt_metrics_when_asked() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);
    metrics::describe();

    let receiver = Receiver::scripted(|path, _| match path {
        "/fail" => Reply::status(500),
        _ => Reply::ok(),
    })
    .await;
    let ok = receiver.subscription("order.*", "/ok");
    let failing: Subscription = receiver.subscription("order.*", "/fail");
    let (ok_id, failing_id) = (ok.id.to_string(), failing.id.to_string());
    let emitter = Emitter::builder()
        .subscriber(ok)
        .subscriber(failing)
        .http(http())
        .retry(quick_retries(1, Duration::from_millis(10)))
        .metrics_per_subscription(true)
        .unsigned()
        .build()
        .unwrap();
    emitter
        .emit("order.created", &serde_json::json!({}))
        .await
        .unwrap();
    receiver
        .wait_until(|r| r.iter().filter(|r| r.path == "/fail").count() == 2)
        .await;
    emitter.shutdown(Duration::from_secs(10)).await.unwrap();

    let recorded = RecordedMetrics::of(&snapshotter);
    check_against_the_catalogue(&recorded, true);
    let sub = SUBSCRIPTION_LABEL;
    assert_eq!(
        recorded.counter(
            metrics::DELIVERIES_TOTAL,
            &[("outcome", "delivered"), (sub, &ok_id)]
        ),
        1
    );
    assert_eq!(
        recorded.counter(
            metrics::DELIVERIES_TOTAL,
            &[("outcome", "dead"), (sub, &failing_id)]
        ),
        1
    );
    assert_eq!(
        recorded.counter(metrics::RETRIES_TOTAL, &[(sub, &failing_id)]),
        1
    );
    assert_eq!(
        recorded
            .histogram(metrics::ATTEMPT_DURATION_SECONDS, &[(sub, &ok_id)])
            .len(),
        1
    );
    assert_eq!(
        recorded
            .histogram(metrics::ATTEMPT_DURATION_SECONDS, &[(sub, &failing_id)])
            .len(),
        2
    );
    assert_eq!(
        recorded.counter(metrics::DELIVERIES_PLANNED_TOTAL, &[]),
        2,
        "fan-out is not per subscription"
    );
}

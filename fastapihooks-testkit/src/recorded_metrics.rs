//! [`RecordedMetrics`]: what a `metrics_util` debugging recorder got, read back by name and
//! labels — for tests that assert on the metrics known work records.

use std::collections::{BTreeMap, BTreeSet};

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, Snapshotter};

/// One metric as recorded: its kind, unit, description and value.
#[derive(Debug)]
pub struct RecordedMetric {
    /// Counter, gauge or histogram, as recorded.
    pub kind: MetricKind,
    /// The unit it was described with, if any.
    pub unit: Option<metrics::Unit>,
    /// The description it was described with, if any.
    pub description: Option<String>,
    /// Its value at the snapshot.
    pub value: DebugValue,
}

/// A snapshot of a recorder: per metric key (name and sorted labels), the metric.
///
/// ```
/// use fastapihooks_testkit::RecordedMetrics;
/// use metrics_util::debugging::DebuggingRecorder;
///
/// let recorder = DebuggingRecorder::new();
/// let snapshotter = recorder.snapshotter();
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("jobs_total", "kind" => "a").increment(2);
/// });
/// let recorded = RecordedMetrics::of(&snapshotter);
/// assert_eq!(recorded.counter("jobs_total", &[("kind", "a")]), 2);
/// ```
#[derive(Debug)]
pub struct RecordedMetrics {
    /// Every metric recorded, by name and labels (sorted by label name).
    pub metrics: BTreeMap<(String, Vec<(String, String)>), RecordedMetric>,
}

impl RecordedMetrics {
    /// What `snapshotter`'s recorder holds now.
    pub fn of(snapshotter: &Snapshotter) -> Self {
        let metrics = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, unit, description, value)| {
                let mut labels: Vec<(String, String)> = key
                    .key()
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                labels.sort();
                let name = key.key().name().to_owned();
                let metric = RecordedMetric {
                    kind: key.kind(),
                    unit,
                    description: description.map(|d| d.to_string()),
                    value,
                };
                ((name, labels), metric)
            })
            .collect();
        Self { metrics }
    }

    /// The names recorded.
    pub fn names(&self) -> BTreeSet<&str> {
        self.metrics.keys().map(|(name, _)| name.as_str()).collect()
    }

    /// The metric of `name` with exactly these labels; panics, listing what was recorded, if
    /// there is none.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> &RecordedMetric {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        let key = (name.to_owned(), labels);
        self.metrics.get(&key).unwrap_or_else(|| {
            panic!(
                "{key:?} not recorded; recorded: {:?}",
                self.metrics.keys().collect::<Vec<_>>()
            )
        })
    }

    /// A counter's value; panics if the metric is not a counter.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.get(name, labels).value {
            DebugValue::Counter(n) => n,
            ref other => panic!("{name} is a {other:?}, not a counter"),
        }
    }

    /// A histogram's samples, in the order recorded; panics if the metric is not a histogram.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        match &self.get(name, labels).value {
            DebugValue::Histogram(values) => values.iter().map(|v| v.into_inner()).collect(),
            other => panic!("{name} is a {other:?}, not a histogram"),
        }
    }
}

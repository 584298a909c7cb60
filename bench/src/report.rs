//! The report: the machine, the figures, the targets — as a markdown table and as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::scenario::{Sizes, delivery, fan_out, idle_latency, median_by, route_cost, sidecar};

mod durable;
mod publish;
mod receive;

/// What the run ran on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// Cores available to the run.
    pub nproc: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// `MemTotal` from /proc/meminfo, in MiB.
    pub memory_mib: u64,
    /// /proc/loadavg when the run started.
    pub load_average_start: String,
    /// /proc/loadavg when it ended.
    pub load_average_end: String,
    /// Whether parts were pinned to cores with `taskset`.
    pub pinned: bool,
}

impl Machine {
    /// Reads /proc (`nproc`: the cores of the machine, counted before any pinning).
    pub fn probe(nproc: usize, pinned: bool) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            nproc,
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
                .unwrap_or_else(|| "unknown".to_owned()),
            memory_mib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib / 1024),
            load_average_start: load_average(),
            load_average_end: String::new(),
            pinned,
        }
    }
}

/// The first three fields of /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One target of the issue and whether the run met it.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// What is measured.
    pub what: String,
    /// The requirement, as written.
    pub required: String,
    /// The figure.
    pub measured: String,
    /// Met or not.
    pub met: bool,
}

/// Everything one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// The sizes used.
    pub sizes: Sizes,
    /// `--quick` or the full run.
    pub quick: bool,
    /// Route cost rows.
    pub route_cost: Vec<route_cost::RowResult>,
    /// The hook's publish into Redis alone, by publishers at once.
    pub publish: Vec<crate::scenario::publish::RowResult>,
    /// Receiving rows: the receive route's cost, the inbox in SQLite and PostgreSQL.
    pub receive: Vec<crate::scenario::receive::RowResult>,
    /// Delivery throughput rows.
    pub delivery: Vec<delivery::RowResult>,
    /// Fan-out results.
    pub fan_out: Vec<fan_out::FanOut>,
    /// The durable path: sidecar throughput rows (Redis queue, PostgreSQL outbox).
    pub sidecar: Vec<sidecar::RowResult>,
    /// The durable path: idle latency, commit → arrival.
    pub sidecar_idle_latency: Vec<idle_latency::IdleLatency>,
    /// The targets.
    pub targets: Vec<Target>,
}

impl Report {
    /// A report of `machine` with nothing measured yet.
    pub fn new(machine: Machine, sizes: Sizes, quick: bool) -> Self {
        Self {
            machine,
            sizes,
            quick,
            route_cost: Vec::new(),
            publish: Vec::new(),
            receive: Vec::new(),
            delivery: Vec::new(),
            fan_out: Vec::new(),
            sidecar: Vec::new(),
            sidecar_idle_latency: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Compares the figures with the targets.
    pub fn judge(&mut self) {
        let mut targets = Vec::new();
        for row in self.route_cost.iter().filter(|r| !r.row.is_unhooked()) {
            if let (Some(base), Some(by_cpu)) = (self.unhooked(&row.row), self.cpu_ratio(row)) {
                // Both must hold: the throughput ratio flatters the hooked route when the
                // unhooked one did not saturate its core; the CPU ratio is the one at saturation.
                let ratio = row.median.requests_per_s / base.requests_per_s;
                targets.push(Target {
                    what: format!("hooked/unhooked req/s, {}", row.label),
                    required: "≥ 0.50".into(),
                    measured: format!("{ratio:.2} (by CPU {by_cpu:.2})"),
                    met: ratio >= 0.5 && by_cpu >= 0.5,
                });
            }
            let mib = row.median.server_peak_rss_kib as f64 / 1024.0;
            targets.push(Target {
                what: format!("peak RSS of the hooked server, {}", row.label),
                required: "≤ 25 MiB".into(),
                measured: format!("{mib:.1} MiB"),
                met: mib <= 25.0,
            });
        }
        for row in &self.delivery {
            targets.push(Target {
                what: format!(
                    "deliveries/s vs raw reqwest loop, {} subscriber(s), {}",
                    row.subscribers,
                    row.backend.name()
                ),
                required: "≥ 85 %".into(),
                measured: format!("{:.0} %", row.ratio * 100.0),
                met: row.ratio >= 0.85,
            });
        }
        for f in &self.fan_out {
            targets.push(Target {
                what: format!("1 event → 1,000 subscribers, cold, {}", f.backend.name()),
                required: "≤ 1 s".into(),
                measured: format!("{:.0} ms", f.cold_ms),
                met: f.cold_ms <= 1000.0,
            });
            if let Some(warm) = f.warm_median_ms {
                targets.push(Target {
                    what: format!("1 event → 1,000 subscribers, warm, {}", f.backend.name()),
                    required: "≤ 1 s".into(),
                    measured: format!("{warm:.0} ms"),
                    met: warm <= 1000.0,
                });
            }
        }
        self.targets = targets;
    }

    /// Counts that must hold whatever the timings: nothing lost, nothing failed.
    pub fn count_failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for row in &self.route_cost {
            for run in &row.runs {
                if run.failed > 0 {
                    failures.push(format!(
                        "route cost, {}: {} failed requests",
                        row.label, run.failed
                    ));
                }
                if !run.deliveries.exact() {
                    failures.push(format!(
                        "route cost, {}: deliveries {:?}",
                        row.label, run.deliveries
                    ));
                }
            }
        }
        self.publish_failures(&mut failures);
        self.receive_failures(&mut failures);
        for row in &self.delivery {
            for (side, runs) in [
                ("ours", &row.ours_runs),
                ("raw reqwest loop", &row.raw_runs),
                ("raw hyper loop", &row.raw_hyper_runs),
            ] {
                for run in runs {
                    if !run.accounting.exact() || run.refused_or_abandoned > 0 {
                        failures.push(format!(
                            "delivery, {} subscribers, {side}: {:?}, refused or abandoned {}",
                            row.subscribers, run.accounting, run.refused_or_abandoned
                        ));
                    }
                }
            }
        }
        for f in &self.fan_out {
            if !f.accounting.exact() {
                failures.push(format!("fan-out: {:?}", f.accounting));
            }
        }
        for row in &self.sidecar {
            for run in row.runs.iter().filter(|r| !r.exact()) {
                failures.push(format!(
                    "sidecar, {}, {} subscribers: {:?}, store {:?}, worker {:?}",
                    row.queue.name(),
                    row.subscribers,
                    run.accounting,
                    run.history,
                    run.worker
                ));
            }
        }
        for l in self.sidecar_idle_latency.iter().filter(|l| !l.exact()) {
            failures.push(format!(
                "sidecar idle latency, {}: {:?}, store {:?}, worker {:?}",
                l.queue.name(),
                l.accounting,
                l.history,
                l.worker
            ));
        }
        failures
    }

    /// The markdown tables.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(
            md,
            "Machine: {} × {}, {} MiB; load average {} at start, {} at end; {}; {} run{} per figure (median){}.\n",
            m.nproc,
            m.cpu_model,
            m.memory_mib,
            m.load_average_start,
            m.load_average_end,
            if m.pinned {
                "service on core 0, load generator and receiver on core 1"
            } else {
                "NOT pinned"
            },
            self.sizes.repeat,
            if self.sizes.repeat == 1 { "" } else { "s" },
            if self.quick {
                " — QUICK MODE: counts only, the timings mean nothing"
            } else {
                ""
            },
        );
        if !self.route_cost.is_empty() {
            self.route_cost_table(&mut md);
        }
        self.publish_table(&mut md);
        self.receive_table(&mut md);
        if !self.delivery.is_empty() {
            self.delivery_table(&mut md);
        }
        self.durable_tables(&mut md);
        if !self.fan_out.is_empty() {
            md.push_str("\n### 1 event → 1,000 subscribers\n\n");
            md.push_str("| backend | all delivered, cold | all delivered, warm (median) | per event (ms) | lost |\n|---|--:|--:|---|--:|\n");
            for f in &self.fan_out {
                let _ = writeln!(
                    md,
                    "| {} | {:.0} ms | {} | {} | {} |",
                    f.backend.name(),
                    f.cold_ms,
                    f.warm_median_ms
                        .map_or("–".to_owned(), |w| format!("{w:.0} ms")),
                    f.all_delivered_ms
                        .iter()
                        .map(|v| format!("{v:.0}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    f.accounting.lost
                );
            }
        }
        if !self.targets.is_empty() {
            md.push_str("\n### Targets\n\n| target | required | measured | |\n|---|---|--:|---|\n");
            for t in &self.targets {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    t.what,
                    t.required,
                    t.measured,
                    if t.met { "met" } else { "**missed**" }
                );
            }
        }
        md
    }

    /// The median run of the unhooked route a hooked row compares with: the one doing the same
    /// database work.
    fn unhooked(&self, row: &route_cost::Row) -> Option<&route_cost::Run> {
        self.route_cost
            .iter()
            .find(|r| r.row.is_unhooked() && r.row.orders_in_postgres == row.orders_in_postgres)
            .map(|r| &r.median)
    }

    /// The CPU ratio of each round: the unhooked route's CPU per request over this row's, both
    /// from the same round (the rows run one after the other within a round). Empty for an
    /// unhooked row.
    fn round_cpu_ratios(&self, row: &route_cost::RowResult) -> Vec<f64> {
        let Some(base) = self.route_cost.iter().find(|r| {
            r.row.is_unhooked() && r.row.orders_in_postgres == row.row.orders_in_postgres
        }) else {
            return Vec::new();
        };
        if row.row.is_unhooked() {
            return Vec::new();
        }
        base.runs
            .iter()
            .zip(&row.runs)
            .map(|(b, r)| b.server_cpu_us_per_request / r.server_cpu_us_per_request)
            .collect()
    }

    /// A hooked row's CPU ratio to the unhooked route: the median of its rounds' ratios (each
    /// round pairs the two runs made minutes apart at most, so the machine's drift cancels
    /// within it), or with a single run (or for the unhooked row itself), the median runs'.
    /// `None` without an unhooked row to compare with.
    fn cpu_ratio(&self, row: &route_cost::RowResult) -> Option<f64> {
        let rounds = self.round_cpu_ratios(row);
        if rounds.is_empty() {
            let base = self.unhooked(&row.row)?;
            return Some(base.server_cpu_us_per_request / row.median.server_cpu_us_per_request);
        }
        median_by(&rounds, |x| *x)
    }

    fn route_cost_table(&self, md: &mut String) {
        md.push_str("### Route cost (POST /orders, service on 1 core)\n\n");
        if self.route_cost.iter().any(|r| r.row.orders_in_postgres) {
            md.push_str("Rows \"order in PostgreSQL\" write each order as a row (begin, insert, commit; the outbox route: the hook's transaction, with the event's row) and compare with the unhooked route doing the same; their events are drained by the sidecar after the window (\"drain after load\" includes its start).\n\n");
        }
        md.push_str("\"× unhooked by CPU\" is the median of the rounds' ratios; in brackets, the ratio within each round (the unhooked run and this row's, minutes apart at most).\n\n");
        md.push_str("| route | req/s (min–max) | × unhooked | p50 | p99 | service CPU/request | × unhooked by CPU (each round) | service peak RSS | deliveries (lost) | drain after load | load core busy |\n");
        md.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for r in &self.route_cost {
            let run = &r.median;
            let base = self.unhooked(&r.row).map(|b| b.requests_per_s);
            let _ = writeln!(
                md,
                "| {} | {:.0} ({}) | {} | {} µs | {} µs | {:.1} µs | {} | {:.1} MiB | {} ({}) | {:.1} s | {:.0} % |",
                r.label,
                run.requests_per_s,
                spread(r.runs.iter().map(|x| x.requests_per_s)),
                base.map_or("–".to_owned(), |b| format!(
                    "{:.2}",
                    run.requests_per_s / b
                )),
                run.p50_us,
                run.p99_us,
                run.server_cpu_us_per_request,
                self.cpu_ratio(r).map_or("–".to_owned(), |ratio| {
                    let rounds = self.round_cpu_ratios(r);
                    if rounds.len() < 2 {
                        format!("{ratio:.2}")
                    } else {
                        let rounds: Vec<_> = rounds.iter().map(|x| format!("{x:.2}")).collect();
                        format!("{ratio:.2} ({})", rounds.join(", "))
                    }
                }),
                run.server_peak_rss_kib as f64 / 1024.0,
                run.deliveries.delivered,
                run.deliveries.lost,
                run.drain_secs,
                run.load_core_busy * 100.0,
            );
        }
    }

    fn delivery_table(&self, md: &mut String) {
        md.push_str("\n### Delivery throughput (emit → verified at the receiver)\n\n");
        md.push_str("| backend | subscribers × events | ours deliveries/s | raw reqwest loop /s | ours / raw (each round) | raw hyper loop /s | ours / hyper | ours CPU/delivery | reqwest / hyper CPU/request | ours peak RSS | latency p50 / p99 | delivered (lost) |\n");
        md.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for r in &self.delivery {
            let _ = writeln!(
                md,
                "| {} | {} × {} | {:.0} | {:.0} | {:.0} % ({}) | {:.0} | {:.0} % | {:.1} µs | {:.1} / {:.1} µs | {:.1} MiB | {:.0} / {:.0} ms | {} ({}) |",
                r.backend.name(),
                r.subscribers,
                r.events,
                r.ours.deliveries_per_s,
                r.raw.deliveries_per_s,
                r.ratio * 100.0,
                r.round_ratios
                    .iter()
                    .map(|x| format!("{:.0}", x * 100.0))
                    .collect::<Vec<_>>()
                    .join(", "),
                r.raw_hyper.deliveries_per_s,
                r.hyper_ratio * 100.0,
                r.ours.cpu_us_per_delivery,
                r.raw.cpu_us_per_delivery,
                r.raw_hyper.cpu_us_per_delivery,
                r.ours.peak_rss_kib as f64 / 1024.0,
                r.ours.accounting.latency_p50_ms,
                r.ours.accounting.latency_p99_ms,
                r.ours.accounting.delivered,
                r.ours.accounting.lost,
            );
        }
    }
}

/// `min–max` of the runs' figures.
fn spread(values: impl Iterator<Item = f64>) -> String {
    spread_to(values, 0)
}

/// `min–max` of the runs' figures, with `decimals` after the point.
fn spread_to(values: impl Iterator<Item = f64>, decimals: usize) -> String {
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    format!("{min:.decimals$}–{max:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::BackendKind;

    fn run(requests_per_s: f64, server_cpu_us_per_request: f64) -> route_cost::Run {
        route_cost::Run {
            requests_per_s,
            p50_us: 0,
            p99_us: 0,
            failed: 0,
            server_cpu_us_per_request,
            server_peak_rss_kib: 0,
            load_core_busy: 0.0,
            deliveries: Default::default(),
            drain_secs: 0.0,
        }
    }

    fn row(backend: Option<BackendKind>, runs: Vec<route_cost::Run>) -> route_cost::RowResult {
        route_cost::RowResult {
            row: route_cost::Row {
                backend,
                queue: None,
                subscribers: usize::from(backend.is_some()),
                orders_in_postgres: false,
                sidecar_waiting: false,
            },
            label: String::new(),
            median: median_by(&runs, |r| r.requests_per_s).expect("runs"),
            runs,
        }
    }

    fn report(route_cost: Vec<route_cost::RowResult>) -> Report {
        let mut report = Report::new(Machine::probe(2, false), Sizes::quick(), true);
        report.route_cost = route_cost;
        report
    }

    #[test]
    fn a_hooked_routes_cpu_ratio_is_the_median_of_its_rounds_not_of_its_median_run() {
        let unhooked = row(
            None,
            vec![run(100.0, 10.0), run(100.0, 10.0), run(100.0, 10.0)],
        );
        // Rounds 0.8, 0.5 and 0.9; the median run by requests/s is the 0.5 one.
        let hooked = row(
            Some(BackendKind::Background),
            vec![run(10.0, 12.5), run(20.0, 20.0), run(30.0, 10.0 / 0.9)],
        );
        let report = report(vec![unhooked, hooked.clone()]);
        let ratio = report
            .cpu_ratio(&hooked)
            .expect("an unhooked row to compare with");
        assert!((ratio - 0.8).abs() < 1e-9, "{ratio}");
    }
}

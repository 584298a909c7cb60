//! The markdown of the durable path: the sidecar's throughput beside the in-process rows of
//! the same run, and its idle latency commit → arrival.

use std::fmt::Write as _;

use super::{Report, spread};

impl Report {
    /// The durable path's tables (nothing when it was not measured).
    pub(super) fn durable_tables(&self, md: &mut String) {
        if !self.sidecar.is_empty() {
            self.sidecar_table(md);
        }
        if !self.sidecar_idle_latency.is_empty() {
            self.idle_latency_table(md);
        }
    }

    /// Per subscriber count: the in-process row (the background backend, from the delivery
    /// table, when measured in this run), then each queue drained by the sidecar.
    fn sidecar_table(&self, md: &mut String) {
        md.push_str(
            "\n### Durable path: the sidecar draining a queued backlog (history in PostgreSQL)\n\n",
        );
        md.push_str(&format!(
            "{} deliveries queued before the sidecar starts (in-process: emitted while it delivers); \
             sidecar deliveries/s = delivered / (last − first arrival), in-process = delivered / \
             (last arrival − first emit). CPU and RSS: the sidecar process (in-process: the \
             emitting process). PostgreSQL / Redis CPU: what this machine's `postgres` and \
             `redis-server` processes used per delivery while the sidecar ran (– when the \
             service is elsewhere); they share the machine with the sidecar and the receiver. \
             WAL records: what the PostgreSQL server wrote per delivery over the same span, a \
             count of the store's writes that does not move with the machine's speed. Machine \
             idle: the share of every core's time idle from the sidecar's start to the last \
             arrival — what the durable path left unused while it waited on itself.\n\n",
            self.sizes.sidecar_deliveries
        ));
        md.push_str("| path | subscribers × events | deliveries/s (min–max) | × in-process | start → first arrival | CPU/delivery | PostgreSQL / Redis CPU/delivery | WAL records/delivery | machine idle | peak RSS | in store: delivered / expected | delivered (lost) |\n");
        md.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for subscribers in [1usize, 10, 1000] {
            let in_process = self.delivery.iter().find(|r| r.subscribers == subscribers);
            if let Some(r) = in_process {
                let _ = writeln!(
                    md,
                    "| in-process · {} | {} × {} | {:.0} ({}) | 1.00 | – | {:.1} µs | – | – | – | {:.1} MiB | – (MemoryStore) | {} ({}) |",
                    r.backend.name(),
                    r.subscribers,
                    r.events,
                    r.ours.deliveries_per_s,
                    spread(r.ours_runs.iter().map(|x| x.deliveries_per_s)),
                    r.ours.cpu_us_per_delivery,
                    r.ours.peak_rss_kib as f64 / 1024.0,
                    r.ours.accounting.delivered,
                    r.ours.accounting.lost,
                );
            }
            for row in self.sidecar.iter().filter(|r| r.subscribers == subscribers) {
                let run = &row.median;
                let _ = writeln!(
                    md,
                    "| {} | {} × {} | {:.0} ({}) | {} | {:.0} ms | {:.1} µs | {} / {} | {} | {} | {:.1} MiB | {} / {} | {} ({}) |",
                    row.queue.label(),
                    row.subscribers,
                    row.events,
                    run.deliveries_per_s,
                    spread(row.runs.iter().map(|x| x.deliveries_per_s)),
                    in_process.map_or("–".to_owned(), |r| format!(
                        "{:.2}",
                        run.deliveries_per_s / r.ours.deliveries_per_s
                    )),
                    run.first_arrival_ms,
                    run.cpu_us_per_delivery,
                    micros(run.postgres_cpu_us_per_delivery),
                    micros(run.redis_cpu_us_per_delivery),
                    run.wal_records_per_delivery
                        .map_or("–".to_owned(), |n| format!("{n:.1}")),
                    run.machine_idle_percent
                        .map_or("–".to_owned(), |p| format!("{p:.0} %")),
                    run.peak_rss_kib as f64 / 1024.0,
                    run.history.delivered,
                    run.accounting.expected,
                    run.accounting.delivered,
                    run.accounting.lost,
                );
            }
        }
    }

    fn idle_latency_table(&self, md: &mut String) {
        md.push_str("\n### Durable path: idle latency, commit → arrival (sidecar running and idle, 1 subscriber)\n\n");
        md.push_str("| path | single events (pace) | p50 | p99 | max | in store: delivered / expected | delivered (lost) |\n");
        md.push_str("|---|--:|--:|--:|--:|--:|--:|\n");
        for l in &self.sidecar_idle_latency {
            let a = &l.accounting;
            let _ = writeln!(
                md,
                "| {} | {} ({} ms apart) | {:.1} ms | {:.1} ms | {:.1} ms | {} / {} | {} ({}) |",
                l.queue.label(),
                l.events,
                l.pace_ms,
                a.latency_p50_ms,
                a.latency_p99_ms,
                a.latency_max_ms,
                l.history.delivered,
                a.expected,
                a.delivered,
                a.lost,
            );
        }
    }
}

/// `12.3 µs`, or `–` when not measured.
fn micros(us: Option<f64>) -> String {
    us.map_or("–".to_owned(), |us| format!("{us:.1} µs"))
}

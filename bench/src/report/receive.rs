//! The markdown of the receiving rows: webhooks acknowledged by `InboxRoute` with the inbox in
//! SQLite and PostgreSQL, beside the endpoint only verifying; and their exact counts.

use std::fmt::Write as _;

use super::{Report, spread};
use crate::scenario::receive::{Run, Storage};

impl Report {
    /// The receiving table (nothing when it was not measured).
    pub(super) fn receive_table(&self, md: &mut String) {
        if self.receive.is_empty() {
            return;
        }
        md.push_str("\n### Receiving: the receive route's cost (POST /webhooks/shop, service on 1 core)\n\n");
        md.push_str(
            "Each request a new webhook (its own `webhook-id`, Standard Webhooks-signed by the load \
             generator as it is sent; \"duplicates\": every request the same id), answered 200 once \
             verified, stored in the inbox and its processing queued on the inbox's queue; no inbox \
             worker runs. SQLite: a file in the run's temp directory, `SqlStore`'s defaults (WAL, \
             10 connections, 5 s busy timeout); PostgreSQL: the run's schema, 10 connections. \
             Service CPU is the endpoint's process while it served, from listening to shutdown \
             (SQLite's work included, the PostgreSQL server's not). After each run the inbox's rows and its queue's are counted: each must \
             equal the 200s counted by the load generator.\n\n",
        );
        md.push_str("| route | req/s acknowledged (min–max) | × verify only | p50 | p99 | service CPU/request | × verify only by CPU | service peak RSS | 200s | inbox rows | queue rows | failed | load CPU/request | load core busy |\n");
        md.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        let base = self
            .receive
            .iter()
            .find(|r| r.row.storage == Storage::VerifyOnly)
            .map(|r| &r.median);
        for r in &self.receive {
            let run = &r.median;
            let rows = |n: Option<u64>| match (n, run.expected_rows) {
                (None, _) => "–".to_owned(),
                (Some(n), Some(e)) if n == e => n.to_string(),
                (Some(n), e) => format!("**{n} ≠ {}**", e.unwrap_or(0)),
            };
            let _ = writeln!(
                md,
                "| {} | {:.0} ({}) | {} | {} µs | {} µs | {:.1} µs | {} | {:.1} MiB | {} | {} | {} | {} | {:.1} µs | {:.0} % |",
                r.label,
                run.requests_per_s,
                spread(r.runs.iter().map(|x| x.requests_per_s)),
                base.map_or("–".to_owned(), |b: &Run| format!(
                    "{:.2}",
                    run.requests_per_s / b.requests_per_s
                )),
                run.p50_us,
                run.p99_us,
                run.app_cpu_us_per_request,
                base.map_or("–".to_owned(), |b: &Run| format!(
                    "{:.2}",
                    b.app_cpu_us_per_request / run.app_cpu_us_per_request
                )),
                run.app_peak_rss_kib as f64 / 1024.0,
                run.acknowledged,
                rows(run.inbox_rows),
                rows(run.queue_rows),
                run.failed,
                run.load_cpu_us_per_request,
                run.load_core_busy * 100.0,
            );
        }
    }

    /// The receiving runs whose counts are not exact.
    pub(super) fn receive_failures(&self, failures: &mut Vec<String>) {
        for row in &self.receive {
            for run in row.runs.iter().filter(|r| !r.exact()) {
                failures.push(format!(
                    "receive, {}: {} acknowledged, {} failed, inbox rows {:?}, queue rows {:?}, \
                     expected {:?}",
                    row.label,
                    run.acknowledged,
                    run.failed,
                    run.inbox_rows,
                    run.queue_rows,
                    run.expected_rows
                ));
            }
        }
    }
}

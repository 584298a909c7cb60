//! The markdown of the publishing rows (the hook's publish into Redis, without the route), and
//! their exact counts.

use std::fmt::Write as _;

use super::{Report, spread, spread_to};

impl Report {
    /// The publishing table (nothing when it was not measured).
    pub(super) fn publish_table(&self, md: &mut String) {
        if self.publish.is_empty() {
            return;
        }
        md.push_str("\n### Publishing into Redis, without the route (1 core)\n\n");
        md.push_str(
            "The hook's publish alone: tasks on the service's core each publishing the route's \
             event through `RedisBackend::publish` and awaiting its acknowledgement before the \
             next, as that many requests in flight would. Concurrent publishes share one \
             pipeline. Afterwards the queue's tasks are counted: each must be a publish \
             acknowledged.\n\n",
        );
        md.push_str("| publishers at once | events | publishes/s (min–max) | CPU/publish (min–max) | queued | failed |\n");
        md.push_str("|--:|--:|--:|--:|--:|--:|\n");
        for r in &self.publish {
            let run = &r.median;
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} ({}) | {:.2} µs ({}) | {} | {} |",
                r.publishers,
                r.events,
                run.publishes_per_s,
                spread(r.runs.iter().map(|x| x.publishes_per_s)),
                run.cpu_us_per_publish,
                spread_to(r.runs.iter().map(|x| x.cpu_us_per_publish), 2),
                run.queued,
                run.failed,
            );
        }
    }

    /// A publish that failed, or a queue holding other than what was acknowledged.
    pub(super) fn publish_failures(&self, failures: &mut Vec<String>) {
        for r in &self.publish {
            for run in r.runs.iter().filter(|run| !run.exact(r.events)) {
                failures.push(format!(
                    "publish into Redis, {} at once: {} of {} acknowledged, {} failed, {} queued",
                    r.publishers, run.published, r.events, run.failed, run.queued
                ));
            }
        }
    }
}

//! What `deliveries replay` prints: a line per named delivery and a summary line for people, or
//! one JSON object for scripts. Outcomes are coloured on a terminal: sent again green, nothing to
//! do yellow, left alone red.

use std::io::Write;

use fastapihooks_core::{DeliveryId, DeliveryStatus, ReplayOutcome, ReplaySummary};
use serde::Serialize;

use super::table::{Cell, Colour};

/// A named delivery and what its replay came to.
#[derive(Debug, Serialize)]
pub struct OutcomeView {
    id: String,
    /// [`ReplayOutcome::as_str`]: `queued`, `resumed`, `already_pending`, `delivered`,
    /// `subscription_disabled` or `not_found`.
    outcome: &'static str,
    #[serde(skip)]
    colour: Colour,
}

impl OutcomeView {
    /// The view of `id`'s replay.
    pub fn new(id: &DeliveryId, outcome: ReplayOutcome) -> Self {
        Self {
            id: id.to_string(),
            outcome: outcome.as_str(),
            colour: colour(outcome),
        }
    }
}

/// A named delivery in a dry run: its status now and whether a replay would send it again.
#[derive(Debug, Serialize)]
pub struct PlanView {
    id: String,
    /// Its status now; `null` when no delivery has the id.
    status: Option<DeliveryStatus>,
    would_replay: bool,
    /// What a replay would come to (`queued` when it would replay; `resumed` is not told
    /// apart from `already_pending` without queuing).
    expected: &'static str,
    #[serde(skip)]
    reason: &'static str,
    #[serde(skip)]
    colour: Colour,
}

impl PlanView {
    /// The view of `id`, now in `status` (`None`: not found), whose replay would come to
    /// `expected`.
    pub fn new(id: &DeliveryId, status: Option<DeliveryStatus>, expected: ReplayOutcome) -> Self {
        let would_replay = matches!(expected, ReplayOutcome::Queued | ReplayOutcome::Resumed);
        Self {
            id: id.to_string(),
            status,
            would_replay,
            expected: expected.as_str(),
            reason: reason(expected),
            colour: colour(expected),
        }
    }

    /// Whether a replay would send it again.
    pub fn would_replay(&self) -> bool {
        self.would_replay
    }
}

/// `deliveries replay --json` with ids.
#[derive(Debug, Serialize)]
pub struct IdsReport<'a> {
    /// Always `false` here (a dry run prints an [`IdsPlan`]).
    pub dry_run: bool,
    /// Each id, in the order given.
    pub deliveries: &'a [OutcomeView],
    /// The counts.
    pub summary: ReplaySummary,
}

/// `deliveries replay --dry-run --json` with ids.
#[derive(Debug, Serialize)]
pub struct IdsPlan<'a> {
    /// Always `true` here.
    pub dry_run: bool,
    /// Each id, in the order given.
    pub deliveries: &'a [PlanView],
    /// How many of them a replay would send again.
    pub would_replay: u64,
}

/// `deliveries replay --json` with filters (or `--all`).
#[derive(Debug, Serialize)]
pub struct BulkReport {
    /// Always `false` here.
    pub dry_run: bool,
    /// The counts.
    pub summary: ReplaySummary,
}

/// `deliveries replay --dry-run --json` with filters (or `--all`).
#[derive(Debug, Serialize)]
pub struct BulkPlan {
    /// Always `true` here.
    pub dry_run: bool,
    /// How many deliveries match and have a status a replay sends again.
    pub would_replay: u64,
}

/// The summary line: `replayed 120 (queued 118, resumed 2); already pending 3; delivered, not
/// resent 0; subscription disabled 0; not found 0`.
pub fn summary_line(s: &ReplaySummary) -> String {
    format!(
        "replayed {} (queued {}, resumed {}); already pending {}; delivered, not resent {}; \
         subscription disabled {}; not found {}",
        s.sent_again(),
        s.queued,
        s.resumed,
        s.already_pending,
        s.delivered,
        s.subscription_disabled,
        s.not_found
    )
}

/// One line per named delivery, `dlv_…  queued`, then the summary line.
pub fn outcomes(
    out: &mut dyn Write,
    views: &[OutcomeView],
    summary: &ReplaySummary,
    colour: bool,
) -> std::io::Result<()> {
    for v in views {
        let outcome = Cell::coloured(v.outcome, v.colour).render(colour);
        writeln!(out, "{}  {outcome}", v.id)?;
    }
    writeln!(out, "{}", summary_line(summary))
}

/// One line per named delivery, `dlv_…  dead  would replay`, then how many would be replayed.
pub fn plan(out: &mut dyn Write, views: &[PlanView], colour: bool) -> std::io::Result<()> {
    for v in views {
        let status = v.status.map_or("-", DeliveryStatus::as_str);
        let what = if v.would_replay {
            "would replay".to_owned()
        } else {
            format!("would not replay: {}", v.reason)
        };
        let what = Cell::coloured(what, v.colour).render(colour);
        writeln!(out, "{}  {status}  {what}", v.id)?;
    }
    let n = views.iter().filter(|v| v.would_replay).count();
    writeln!(
        out,
        "would replay {n} of {} (dry run: nothing changed)",
        views.len()
    )
}

/// The line of a dry run with filters.
pub fn bulk_plan(out: &mut dyn Write, would_replay: u64) -> std::io::Result<()> {
    writeln!(
        out,
        "would replay {would_replay} (dry run: nothing changed)"
    )
}

/// Sent again green, nothing to do yellow, left alone red.
fn colour(outcome: ReplayOutcome) -> Colour {
    match outcome {
        ReplayOutcome::Queued | ReplayOutcome::Resumed => Colour::Green,
        ReplayOutcome::AlreadyPending | ReplayOutcome::Delivered => Colour::Yellow,
        _ => Colour::Red,
    }
}

/// Why a dry run would not replay a delivery, for people.
fn reason(outcome: ReplayOutcome) -> &'static str {
    match outcome {
        ReplayOutcome::AlreadyPending => "already pending",
        ReplayOutcome::Delivered => "delivered (--force resends it)",
        ReplayOutcome::SubscriptionDisabled => "its subscription is disabled",
        ReplayOutcome::NotFound => "not found",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_names_every_count() {
        let mut s = ReplaySummary::default();
        s.queued = 118;
        s.resumed = 2;
        s.already_pending = 3;
        assert_eq!(
            summary_line(&s),
            "replayed 120 (queued 118, resumed 2); already pending 3; delivered, not resent 0; \
             subscription disabled 0; not found 0"
        );
    }

    #[test]
    fn a_dry_run_line_says_why_a_delivery_would_not_be_replayed() {
        let id = DeliveryId::new();
        let views = [
            PlanView::new(&id, Some(DeliveryStatus::Dead), ReplayOutcome::Queued),
            PlanView::new(
                &id,
                Some(DeliveryStatus::Delivered),
                ReplayOutcome::Delivered,
            ),
            PlanView::new(&id, None, ReplayOutcome::NotFound),
        ];
        let mut out = Vec::new();
        plan(&mut out, &views, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(&format!("{id}  dead  would replay\n")),
            "{text}"
        );
        assert!(
            text.contains("delivered  would not replay: delivered (--force"),
            "{text}"
        );
        assert!(
            text.contains(&format!("{id}  -  would not replay: not found")),
            "{text}"
        );
        assert!(
            text.ends_with("would replay 1 of 3 (dry run: nothing changed)\n"),
            "{text}"
        );
    }
}

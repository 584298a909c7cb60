//! Endpoint health: a subscription whose endpoint has only failed for a sustained period is
//! disabled, durably, with the reason and the time — instead of its deliveries retrying into a
//! void for ever.
//!
//! Every attempt that does not deliver adds to the subscription's failure streak
//! ([`EndpointHealth`], kept in the store); one that delivers ends it. When a streak is both
//! long enough (the [`HealthPolicy`]'s `min_failures`) and old enough (`disable_after`), the
//! subscription is disabled ([`Disabled`]). A `410 Gone` still disables at once.
//!
//! Nothing is dropped: deliveries queued for a disabled subscription are recorded as `failed`
//! ("not sent: subscription disabled", no request made), and stay replayable.
//! `fastapihooks subscriptions enable sub_… --replay` (or [`Store::set_enabled`] then a
//! [`Replay`](crate::replay::Replay) of its dead letters since the streak began) brings them
//! back. Events published while a subscription is disabled are not fanned out to it.
//!
//! [`Store::set_enabled`]: crate::Store::set_enabled

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// When a failing endpoint is disabled.
///
/// ```
/// use std::time::Duration;
/// use fastapihooks_core::health::HealthPolicy;
/// let policy = HealthPolicy::default();
/// assert_eq!(policy.disable_after, Some(Duration::from_secs(24 * 3600)));
/// assert_eq!(policy.min_failures, 10);
/// assert_eq!(HealthPolicy::never().disable_after, None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// How long an endpoint must have failed without a single success; `None` never disables.
    /// Default one day: long enough that a deploy or a night's outage never disables anyone,
    /// short enough that a dead endpoint stops costing retries.
    pub disable_after: Option<Duration>,
    /// How many failed attempts the streak must count too, so an endpoint that receives one
    /// event a day is not disabled on a single failure. Default 10.
    pub min_failures: u32,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            disable_after: Some(Duration::from_secs(24 * 3600)),
            min_failures: 10,
        }
    }
}

impl HealthPolicy {
    /// Never disables a subscription (a 410 Gone still does).
    pub fn never() -> Self {
        Self {
            disable_after: None,
            min_failures: 0,
        }
    }

    /// Disables after `after` of failures and at least `min_failures` failed attempts.
    pub fn disable_after(after: Duration, min_failures: u32) -> Self {
        Self {
            disable_after: Some(after),
            min_failures,
        }
    }

    /// Whether a streak this long, seen at `now`, disables its subscription.
    pub fn disables(&self, health: &EndpointHealth, now: DateTime<Utc>) -> bool {
        let (Some(after), Some(since)) = (self.disable_after, health.failing_since) else {
            return false;
        };
        let failing_for = (now - since).to_std().unwrap_or_default();
        health.failures >= self.min_failures.max(1) && failing_for >= after
    }
}

/// A subscription's failure streak: failed attempts since its last success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointHealth {
    /// When the first failure of the streak happened; `None` when the last attempt delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Failed attempts in the streak.
    #[serde(default)]
    pub failures: u32,
}

impl EndpointHealth {
    /// No failure since the last success.
    pub fn is_healthy(&self) -> bool {
        self.failures == 0
    }

    /// The streak after one more attempt at `at`: a delivered one ends it.
    pub fn after(self, delivered: bool, at: DateTime<Utc>) -> Self {
        if delivered {
            return Self::default();
        }
        Self {
            failing_since: Some(self.failing_since.unwrap_or(at)),
            failures: self.failures.saturating_add(1),
        }
    }
}

/// Why and when a subscription was disabled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disabled {
    /// For a human: what happened (`endpoint failing since …: 12 failed attempts`, `410 Gone`).
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streak(failures: u32, hours_ago: i64, now: DateTime<Utc>) -> EndpointHealth {
        EndpointHealth {
            failing_since: Some(now - chrono::Duration::hours(hours_ago)),
            failures,
        }
    }

    #[test]
    fn a_streak_disables_only_when_both_long_and_old_enough() {
        let now = Utc::now();
        let policy = HealthPolicy::default();
        assert!(policy.disables(&streak(10, 24, now), now));
        assert!(
            !policy.disables(&streak(9, 48, now), now),
            "too few failures"
        );
        assert!(!policy.disables(&streak(500, 23, now), now), "too recent");
        assert!(!HealthPolicy::never().disables(&streak(500, 500, now), now));
    }

    #[test]
    fn a_delivered_attempt_ends_the_streak_and_a_failure_keeps_its_start() {
        let start = Utc::now();
        let later = start + chrono::Duration::minutes(5);
        let health = EndpointHealth::default()
            .after(false, start)
            .after(false, later);
        assert_eq!(health.failing_since, Some(start));
        assert_eq!(health.failures, 2);
        assert!(health.after(true, later).is_healthy());
    }
}

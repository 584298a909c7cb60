//! [`RetryPolicy`] (when to try again) and [`Verdict`] (what an attempt's result means).
//!
//! Two presets: [`RetryPolicy::standard_webhooks`], a schedule that spans more than a day (the
//! sidecar's default: an endpoint down for hours still gets its events), and the short
//! [`RetryPolicy::default`] of fastapihooks (the in-process backend's: its retries live in
//! memory, so a long schedule would only hold them there until the process stops). A policy
//! reads and writes as text (`standard-webhooks`, `1s,10s,1m`) and as JSON (the store).

mod text;
mod verdict;

use std::time::Duration;

pub use verdict::{Verdict, parse_retry_after};

use crate::error::{Error, Result};

/// When a failed delivery is tried again.
///
/// The default mirrors fastapihooks: 3 retries after 1 s, 2 s, 4 s (doubling, capped at 60 s),
/// each with ±25 % jitter so that a receiver coming back up is not hit by every retry at once.
///
/// ```
/// use std::time::Duration;
/// use fastapihooks_core::RetryPolicy;
///
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.max_retries(), 3);
/// let d = policy.delay(1, None).unwrap();
/// assert!(d >= Duration::from_millis(750) && d <= Duration::from_millis(1250));
/// assert!(policy.delay(4, None).is_none()); // exhausted
///
/// // An explicit schedule, e.g. for tests:
/// let fast = RetryPolicy::schedule([Duration::from_millis(10), Duration::from_millis(20)]);
/// assert_eq!(fast.delay(2, None), Some(Duration::from_millis(20)));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    delays: Delays,
    jitter: f64,
    max_delay: Duration,
}

#[derive(Clone, Debug, PartialEq)]
enum Delays {
    Exponential { retries: u32, base: Duration },
    Schedule(Vec<Duration>),
}

/// The least a schedule lets a receiver's `Retry-After` ask for.
const RETRY_AFTER_FLOOR: Duration = Duration::from_secs(3600);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::exponential(3, Duration::from_secs(1))
    }
}

impl RetryPolicy {
    /// `retries` retries after `base`, `2 × base`, `4 × base`, ... (capped at 60 s unless
    /// [`max_delay`](Self::max_delay) says otherwise), with ±25 % jitter.
    pub fn exponential(retries: u32, base: Duration) -> Self {
        Self {
            delays: Delays::Exponential { retries, base },
            jitter: 0.25,
            max_delay: Duration::from_secs(60),
        }
    }

    /// Exactly these delays, one per retry, without jitter (add some with
    /// [`jitter`](Self::jitter)). A receiver's `Retry-After` is honoured up to the longest of
    /// them, or an hour when they are all shorter ([`max_delay`](Self::max_delay) sets another
    /// bound): a receiver may ask for a pause, not park a delivery for years.
    pub fn schedule(delays: impl IntoIterator<Item = Duration>) -> Self {
        let delays: Vec<Duration> = delays.into_iter().collect();
        let longest = delays.iter().copied().max().unwrap_or(Duration::ZERO);
        let max_delay = longest.max(RETRY_AFTER_FLOOR);
        Self {
            delays: Delays::Schedule(delays),
            jitter: 0.0,
            max_delay,
        }
    }

    /// The schedule the Standard Webhooks specification recommends, and the sidecar's default:
    /// the first attempt at once, then retries after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
    /// 10 h, each ±20 % — about 28 hours in all, so a receiver that is down for a day still
    /// gets every event. `Retry-After` is honoured up to 10 h.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastapihooks_core::RetryPolicy;
    /// let policy = RetryPolicy::standard_webhooks();
    /// assert_eq!(policy.max_retries(), 7);
    /// let first = policy.delay(1, None).unwrap();
    /// assert!(first >= Duration::from_secs(4) && first <= Duration::from_secs(6));
    /// ```
    pub fn standard_webhooks() -> Self {
        let minute = 60;
        let hour = 60 * minute;
        Self {
            jitter: 0.2,
            ..Self::schedule(
                [
                    5,
                    5 * minute,
                    30 * minute,
                    2 * hour,
                    5 * hour,
                    10 * hour,
                    10 * hour,
                ]
                .map(Duration::from_secs),
            )
        }
    }

    /// No retries: the first failure is final.
    pub fn none() -> Self {
        Self::schedule([])
    }

    /// Caps every delay, `Retry-After` included.
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.max_delay = max;
        self
    }

    /// Jitter as a fraction of the delay, from 0 (none) to 1 (±100 %).
    pub fn jitter(mut self, fraction: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(Error::InvalidConfig {
                field: "retry.jitter",
                reason: format!("{fraction} is not between 0 and 1"),
            });
        }
        self.jitter = fraction;
        Ok(self)
    }

    /// How many retries follow the first attempt.
    pub fn max_retries(&self) -> u32 {
        match &self.delays {
            Delays::Exponential { retries, .. } => *retries,
            Delays::Schedule(v) => u32::try_from(v.len()).unwrap_or(u32::MAX),
        }
    }

    /// The longest delay the policy will wait.
    pub fn max_delay_value(&self) -> Duration {
        self.max_delay
    }

    /// The jitter, as a fraction of each delay.
    pub fn jitter_value(&self) -> f64 {
        self.jitter
    }

    /// The total of the un-jittered delays: how long a delivery is retried for, at most (not
    /// counting the attempts themselves or a longer `Retry-After`).
    pub fn window(&self) -> Duration {
        (1..=self.max_retries())
            .map(|retry| self.backoff(retry).min(self.max_delay))
            .fold(Duration::ZERO, Duration::saturating_add)
    }

    fn backoff(&self, retry: u32) -> Duration {
        match &self.delays {
            Delays::Exponential { base, .. } => {
                let factor = 2u32.checked_pow(retry - 1).unwrap_or(u32::MAX);
                base.checked_mul(factor).unwrap_or(Duration::MAX)
            }
            Delays::Schedule(v) => v[(retry - 1) as usize],
        }
    }

    /// The wait before retry number `retry` (1-based), or `None` when the policy is exhausted.
    /// A receiver's `Retry-After` is honoured when it asks for longer than the backoff, capped
    /// by the policy's maximum delay.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if retry == 0 || retry > self.max_retries() {
            return None;
        }
        let backoff = self.jittered(self.backoff(retry).min(self.max_delay));
        Some(match retry_after {
            Some(asked) if asked > backoff => asked.min(self.max_delay),
            _ => backoff,
        })
    }

    fn jittered(&self, d: Duration) -> Duration {
        if self.jitter == 0.0 {
            return d;
        }
        let spread = (fastrand::f64() * 2.0 - 1.0) * self.jitter;
        d.mul_f64(1.0 + spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_doubles_within_jitter() {
        let p = RetryPolicy::default();
        for (retry, base_ms) in [(1u32, 1000f64), (2, 2000.0), (3, 4000.0)] {
            for _ in 0..50 {
                let d = p.delay(retry, None).unwrap().as_secs_f64() * 1000.0;
                assert!(
                    d >= base_ms * 0.75 - 1.0 && d <= base_ms * 1.25 + 1.0,
                    "{d}"
                );
            }
        }
        assert_eq!(p.delay(4, None), None);
        assert_eq!(p.delay(0, None), None);
    }

    #[test]
    fn exponential_delays_are_capped() {
        let p = RetryPolicy::exponential(20, Duration::from_secs(1))
            .jitter(0.0)
            .unwrap();
        assert_eq!(p.delay(20, None), Some(Duration::from_secs(60)));
    }

    #[test]
    fn retry_after_wins_when_longer_and_is_capped() {
        let p =
            RetryPolicy::schedule([Duration::from_millis(10)]).max_delay(Duration::from_secs(5));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600))),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            p.delay(1, Some(Duration::ZERO)),
            Some(Duration::from_millis(10))
        );
    }

    #[test]
    fn the_standard_webhooks_schedule_spans_more_than_a_day_within_its_jitter() {
        let p = RetryPolicy::standard_webhooks();
        let expected = [5u64, 300, 1800, 7200, 18_000, 36_000, 36_000];
        for (retry, secs) in (1u32..).zip(expected) {
            for _ in 0..50 {
                let d = p.delay(retry, None).unwrap().as_secs_f64();
                let secs = secs as f64;
                assert!(
                    d >= secs * 0.8 - 0.001 && d <= secs * 1.2 + 0.001,
                    "{retry}: {d}"
                );
            }
        }
        assert_eq!(p.delay(8, None), None);
        assert!(
            p.window() > Duration::from_secs(24 * 3600),
            "{:?}",
            p.window()
        );
    }

    /// A receiver cannot park a delivery for decades with `Retry-After: 999999999`.
    #[test]
    fn a_schedule_caps_retry_after_at_its_longest_delay_or_an_hour() {
        let p = RetryPolicy::schedule([Duration::from_secs(1), Duration::from_secs(30)]);
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(120))),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(999_999_999))),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            RetryPolicy::standard_webhooks().delay(1, Some(Duration::from_secs(999_999_999))),
            Some(Duration::from_secs(36_000))
        );
    }

    #[test]
    fn jitter_out_of_range_is_an_error() {
        assert!(RetryPolicy::default().jitter(1.5).is_err());
        assert!(RetryPolicy::default().jitter(-0.1).is_err());
    }
}

//! [`RetryPolicy`] (when to try again) and [`Verdict`] (what an attempt's result means).

use std::time::Duration;

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

    /// Exactly these delays, one per retry, without jitter.
    pub fn schedule(delays: impl IntoIterator<Item = Duration>) -> Self {
        Self {
            delays: Delays::Schedule(delays.into_iter().collect()),
            jitter: 0.0,
            max_delay: Duration::MAX,
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

    /// The wait before retry number `retry` (1-based), or `None` when the policy is exhausted.
    /// A receiver's `Retry-After` is honoured when it asks for longer than the backoff, capped
    /// by the policy's maximum delay.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if retry == 0 || retry > self.max_retries() {
            return None;
        }
        let backoff = match &self.delays {
            Delays::Exponential { base, .. } => {
                let factor = 2u32.checked_pow(retry - 1).unwrap_or(u32::MAX);
                base.checked_mul(factor).unwrap_or(Duration::MAX)
            }
            Delays::Schedule(v) => v[(retry - 1) as usize],
        };
        let backoff = self.jittered(backoff.min(self.max_delay));
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

/// What the result of one attempt means for its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx: done.
    Delivered,
    /// Worth another try (408, 425, 429, 5xx, connect errors, timeouts); the receiver's
    /// `Retry-After`, when it sent one.
    Retry {
        /// The receiver's requested wait.
        retry_after: Option<Duration>,
    },
    /// Refused for good (other 4xx, 3xx, a blocked address); 410 Gone also disables the
    /// subscription.
    Reject {
        /// Whether the subscription should be disabled (410 Gone).
        disable_subscription: bool,
    },
}

impl Verdict {
    /// Classifies an HTTP status code.
    pub fn for_status(status: u16, retry_after: Option<Duration>) -> Self {
        match status {
            200..=299 => Verdict::Delivered,
            408 | 425 | 429 | 500..=599 => Verdict::Retry { retry_after },
            410 => Verdict::Reject {
                disable_subscription: true,
            },
            _ => Verdict::Reject {
                disable_subscription: false,
            },
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
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
    fn jitter_out_of_range_is_an_error() {
        assert!(RetryPolicy::default().jitter(1.5).is_err());
        assert!(RetryPolicy::default().jitter(-0.1).is_err());
    }

    #[test]
    fn statuses_are_classified_as_the_design_says() {
        assert_eq!(Verdict::for_status(200, None), Verdict::Delivered);
        assert_eq!(Verdict::for_status(204, None), Verdict::Delivered);
        for s in [408, 425, 429, 500, 502, 503, 599] {
            assert!(
                matches!(Verdict::for_status(s, None), Verdict::Retry { .. }),
                "{s}"
            );
        }
        assert_eq!(
            Verdict::for_status(410, None),
            Verdict::Reject {
                disable_subscription: true
            }
        );
        for s in [301, 302, 400, 401, 403, 404, 422] {
            assert_eq!(
                Verdict::for_status(s, None),
                Verdict::Reject {
                    disable_subscription: false
                },
                "{s}"
            );
        }
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}

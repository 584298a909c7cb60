//! [`Verdict`]: what an attempt's result means for its delivery, and `Retry-After`.

use std::time::Duration;

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

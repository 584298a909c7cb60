//! A [`RetryPolicy`] as text (flags, tables) and as JSON (stores).
//!
//! Text: a preset name (`standard-webhooks`, `fastapihooks`, `none`) or delays separated by
//! commas (`5s,1m,1h`), optionally followed by a jitter (`5s,1m,1h ±20%`, or `+-20%`). JSON:
//! `{"schedule_ms": [..], "jitter": 0.2, "max_delay_ms": ..}` or `{"exponential": {"retries":
//! 3, "base_ms": 1000}, "jitter": 0.25, "max_delay_ms": 60000}`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Delays, RetryPolicy};
use crate::error::{Error, Result};

impl FromStr for RetryPolicy {
    type Err = Error;

    /// ```
    /// use std::time::Duration;
    /// use fastapihooks_core::RetryPolicy;
    /// assert_eq!("standard-webhooks".parse::<RetryPolicy>().unwrap(), RetryPolicy::standard_webhooks());
    /// let p: RetryPolicy = "1s, 1m ±10%".parse().unwrap();
    /// assert_eq!(p.max_retries(), 2);
    /// assert_eq!(p.jitter_value(), 0.1);
    /// assert!("1s,soon".parse::<RetryPolicy>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidRetryPolicy {
            input: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        match trimmed {
            "standard-webhooks" | "standard_webhooks" | "standard" => {
                return Ok(Self::standard_webhooks());
            }
            "fastapihooks" | "default" => return Ok(Self::default()),
            "none" => return Ok(Self::none()),
            _ => {}
        }
        let (list, jitter) = match trimmed
            .rsplit_once(['±', '~'])
            .or_else(|| trimmed.rsplit_once("+-"))
        {
            Some((list, jitter)) => (list, Some(jitter.trim())),
            None => (trimmed, None),
        };
        let delays = list
            .split(',')
            .map(|d| {
                humantime::parse_duration(d.trim())
                    .map_err(|e| invalid(format!("{:?} is not a duration ({e})", d.trim())))
            })
            .collect::<Result<Vec<_>>>()?;
        let policy = Self::schedule(delays);
        match jitter {
            None => Ok(policy),
            Some(jitter) => {
                let percent: f64 = jitter
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse().ok())
                    .ok_or_else(|| invalid(format!("{jitter:?} is not a jitter such as 20%")))?;
                policy
                    .jitter(percent / 100.0)
                    .map_err(|_| invalid(format!("jitter {percent}% is not between 0% and 100%")))
            }
        }
    }
}

impl fmt::Display for RetryPolicy {
    /// A preset by its name, a schedule as its delays and jitter (`5s, 1m ±20%`), an exponential
    /// policy as `3 retries from 1s, doubling, at most 1m ±25%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::standard_webhooks() {
            return f.write_str("standard-webhooks");
        }
        if *self == Self::default() {
            return f.write_str("fastapihooks");
        }
        if *self == Self::none() {
            return f.write_str("none");
        }
        let human = |d: Duration| humantime::format_duration(d).to_string();
        match &self.delays {
            Delays::Schedule(delays) => {
                let list: Vec<String> = delays.iter().map(|d| human(*d)).collect();
                f.write_str(&list.join(", "))?;
            }
            Delays::Exponential { retries, base } => write!(
                f,
                "{retries} retries from {}, doubling, at most {}",
                human(*base),
                human(self.max_delay)
            )?,
        }
        if self.jitter > 0.0 {
            write!(f, " ±{}%", (self.jitter * 100.0).round())?;
        }
        Ok(())
    }
}

/// How a [`RetryPolicy`] is written to a store.
#[derive(Serialize, Deserialize)]
struct PolicyRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule_ms: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exponential: Option<ExponentialRepr>,
    jitter: f64,
    max_delay_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct ExponentialRepr {
    retries: u32,
    base_ms: u64,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Serialize for RetryPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (schedule_ms, exponential) = match &self.delays {
            Delays::Schedule(delays) => (Some(delays.iter().map(|d| ms(*d)).collect()), None),
            Delays::Exponential { retries, base } => (
                None,
                Some(ExponentialRepr {
                    retries: *retries,
                    base_ms: ms(*base),
                }),
            ),
        };
        PolicyRepr {
            schedule_ms,
            exponential,
            jitter: self.jitter,
            max_delay_ms: ms(self.max_delay),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for RetryPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let repr = PolicyRepr::deserialize(d)?;
        let policy = match (repr.schedule_ms, repr.exponential) {
            (Some(delays), None) => Self::schedule(delays.into_iter().map(Duration::from_millis)),
            (None, Some(e)) => Self::exponential(e.retries, Duration::from_millis(e.base_ms)),
            _ => {
                return Err(D::Error::custom(
                    "a retry policy has either `schedule_ms` or `exponential`",
                ));
            }
        };
        policy
            .max_delay(Duration::from_millis(repr.max_delay_ms))
            .jitter(repr.jitter)
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_read_and_print_by_name() {
        for (name, policy) in [
            ("standard-webhooks", RetryPolicy::standard_webhooks()),
            ("fastapihooks", RetryPolicy::default()),
            ("none", RetryPolicy::none()),
        ] {
            assert_eq!(name.parse::<RetryPolicy>().unwrap(), policy);
            assert_eq!(policy.to_string(), name);
        }
    }

    #[test]
    fn a_schedule_reads_with_its_jitter_and_prints_back() {
        let p: RetryPolicy = "5s,1m, 2h +-20%".parse().unwrap();
        assert_eq!(p.max_retries(), 3);
        assert_eq!(p.jitter_value(), 0.2);
        assert_eq!(p.to_string(), "5s, 1m, 2h ±20%");
        assert_eq!(p.to_string().parse::<RetryPolicy>().unwrap(), p);
    }

    #[test]
    fn bad_text_is_refused_saying_what_and_why() {
        for bad in ["", "5s,", "5 parsecs", "5s ±200%", "5s ±lots"] {
            let err = bad.parse::<RetryPolicy>().unwrap_err();
            assert!(
                matches!(err, Error::InvalidRetryPolicy { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn every_kind_of_policy_round_trips_through_json() {
        for policy in [
            RetryPolicy::standard_webhooks(),
            RetryPolicy::default(),
            RetryPolicy::none(),
            RetryPolicy::exponential(5, Duration::from_millis(250))
                .max_delay(Duration::from_secs(9))
                .jitter(0.1)
                .unwrap(),
        ] {
            let json = serde_json::to_string(&policy).unwrap();
            assert_eq!(
                serde_json::from_str::<RetryPolicy>(&json).unwrap(),
                policy,
                "{json}"
            );
        }
    }

    #[test]
    fn stored_json_with_a_bad_jitter_is_refused() {
        let json = r#"{"schedule_ms":[1000],"jitter":3.0,"max_delay_ms":1000}"#;
        assert!(serde_json::from_str::<RetryPolicy>(json).is_err());
    }
}

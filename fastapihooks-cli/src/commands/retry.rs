//! `--retry-schedule`, as `start` and `subscriptions add|update` read it: a preset name
//! (`standard-webhooks`, `fastapihooks`, `none`) or delays such as `5s,1m,1h`, optionally with
//! a jitter (`5s,1m,1h ±10%`). A list without one gets [`DEFAULT_JITTER_PERCENT`]: retries of
//! many deliveries that failed together then do not all come back at the same instant.

use fastapihooks_core::RetryPolicy;

/// The jitter a delay list gets when it names none.
pub const DEFAULT_JITTER_PERCENT: u32 = 20;

/// Reads a `--retry-schedule` value.
pub fn retry_policy(text: &str) -> Result<RetryPolicy, fastapihooks_core::Error> {
    let policy: RetryPolicy = text.parse()?;
    let names_jitter = text.contains(['±', '~']) || text.contains("+-");
    let is_list = text.contains(|c: char| c.is_ascii_digit());
    if is_list && !names_jitter {
        return policy.jitter(f64::from(DEFAULT_JITTER_PERCENT) / 100.0);
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delay_list_gains_the_default_jitter_unless_it_names_one() {
        assert_eq!(retry_policy("1s,10s").unwrap().jitter_value(), 0.2);
        assert_eq!(retry_policy("1s,10s ±0%").unwrap().jitter_value(), 0.0);
        assert_eq!(retry_policy("1s,10s ±5%").unwrap().jitter_value(), 0.05);
    }

    #[test]
    fn presets_keep_their_own_jitter() {
        assert_eq!(
            retry_policy("standard-webhooks").unwrap(),
            RetryPolicy::standard_webhooks()
        );
        assert_eq!(
            retry_policy("fastapihooks").unwrap(),
            RetryPolicy::default()
        );
    }
}

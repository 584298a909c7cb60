//! [`SqlOutboxConfig`]: lease length and polling of [`SqlBackend`](super::SqlBackend).

use std::time::Duration;

use crate::error::{Error, Result};

/// How [`SqlBackend`](super::SqlBackend) leases from its outbox table. (Which table is the
/// backend's: [`SqlBackend::on_table`](super::SqlBackend::on_table).)
///
/// ```
/// use std::time::Duration;
/// use fastapihooks_core::backend::SqlOutboxConfig;
/// let config = SqlOutboxConfig::default().visibility_timeout(Duration::from_secs(30));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct SqlOutboxConfig {
    /// How long a lease lasts before another sidecar may take the task over. Must exceed the
    /// HTTP timeout (checked when the worker starts). Default 60 s.
    pub visibility_timeout: Duration,
    /// When the outbox holds nothing due, how often a lease call looks again. Default 200 ms.
    pub poll_interval: Duration,
    /// The longest a lease call waits for work before it returns an empty batch. Default 1 s.
    pub block: Duration,
}

impl Default for SqlOutboxConfig {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(200),
            block: Duration::from_secs(1),
        }
    }
}

impl SqlOutboxConfig {
    /// Sets the visibility timeout.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout;
        self
    }

    /// Checks that the settings make sense.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.poll_interval.is_zero() || self.poll_interval > self.block {
            return invalid(
                "outbox.poll_interval",
                "must be greater than zero and at most the block time",
            );
        }
        if self.block >= self.visibility_timeout {
            return invalid("outbox.block", "must be less than the visibility timeout");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_interval_of_zero_is_rejected_with_its_field_named() {
        let config = SqlOutboxConfig {
            poll_interval: Duration::ZERO,
            ..SqlOutboxConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("outbox.poll_interval"), "{err}");
    }

    #[test]
    fn the_block_time_must_stay_below_the_visibility_timeout() {
        let config = SqlOutboxConfig::default().visibility_timeout(Duration::from_secs(1));
        assert!(config.validate().is_err());
    }
}

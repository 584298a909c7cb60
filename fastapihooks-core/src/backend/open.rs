//! [`OpenFlag`]: whether a durable queue still accepts events — the shutdown of the Redis and
//! SQL queues, written once.

use std::sync::atomic::{AtomicBool, Ordering};

use super::ShutdownReport;
use crate::error::{Error, Result};

/// Open until [`close`](Self::close)d, for good. A durable queue keeps nothing in flight
/// itself (what was published is in Redis or the database), so closing is all its shutdown
/// does; every publish checks the flag first.
#[derive(Debug, Default)]
pub(super) struct OpenFlag {
    closed: AtomicBool,
}

impl OpenFlag {
    /// `Ok` while open; [`Error::ShutDown`] once closed.
    pub(super) fn check(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::ShutDown)
        } else {
            Ok(())
        }
    }

    /// Stops accepting events: what [`Backend::shutdown`](super::Backend::shutdown) of a durable
    /// queue reports — nothing abandoned.
    pub(super) fn close(&self) -> ShutdownReport {
        self.closed.store(true, Ordering::Release);
        ShutdownReport::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_until_closed_then_closed_for_good() {
        let flag = OpenFlag::default();
        assert!(flag.check().is_ok());
        assert_eq!(flag.close(), ShutdownReport::default());
        assert!(matches!(flag.check(), Err(Error::ShutDown)));
        flag.close();
        assert!(matches!(flag.check(), Err(Error::ShutDown)));
    }
}

//! [`RedisConfig`] and the key layout it implies.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// Where and how [`RedisBackend`](super::RedisBackend) keeps its queue.
///
/// Every key starts with `{key_prefix}:` (the braces make it a Redis Cluster hash tag, so all of
/// one queue's keys live in one slot, as its Lua scripts require):
///
/// | key | type | holds |
/// |---|---|---|
/// | `{prefix}:tasks` | stream + consumer group `group` | published events to fan out, ready or leased (the group's pending entries) |
/// | `{prefix}:deliveries` | stream + consumer group `group` | delivery tasks (from fan-outs, due retries, replays), ready or leased: leased before `tasks`, so an event's deliveries never wait behind the fan-out of the whole backlog |
/// | `{prefix}:retries` | sorted set | tasks waiting for a retry, scored by due time (ms, Redis clock) |
/// | `{prefix}:dead` | stream (capped at `dead_letter_max_len`) | dead letters: `task`, `reason` |
/// | `{prefix}:replays` | sorted set | the replayed runs queued (`delivery:run`), scored by time, kept 30 days: a run is queued once |
///
/// Several applications share one Redis by giving each its own prefix.
///
/// ```
/// use fastapihooks_core::backend::RedisConfig;
/// let config = RedisConfig::new("redis://127.0.0.1:6379").key_prefix("shop");
/// assert_eq!(config.tasks_key(), "{shop}:tasks");
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone)]
pub struct RedisConfig {
    /// The server, e.g. `redis://127.0.0.1:6379` or `rediss://user:pass@host/0`.
    pub url: String,
    /// What every key of this queue starts with. Default `fastapihooks`.
    pub key_prefix: String,
    /// The consumer group all sidecars of this queue join. Default `fastapihooks`.
    pub group: String,
    /// This process's consumer name in the group; unique per sidecar. Default: `consumer-` and a
    /// ULID.
    pub consumer: String,
    /// How long a lease lasts before another sidecar may take the task over (`XAUTOCLAIM`).
    /// Must exceed the HTTP timeout (checked when the worker starts). Default 60 s.
    pub visibility_timeout: Duration,
    /// The longest a lease call waits for work (`XREADGROUP BLOCK`). Default 1 s.
    pub block: Duration,
    /// The dead-letter stream is trimmed to about this many entries (the store keeps the full
    /// history). Default 100,000.
    pub dead_letter_max_len: usize,
    /// How long a command may take before it counts as failed. Default 5 s.
    pub response_timeout: Duration,
    /// A consumer (a sidecar) that holds no lease and has not been seen for this long is removed
    /// from the group, so stopped sidecars do not pile up. Must exceed the visibility timeout.
    /// Default 1 h.
    pub forget_consumers_after: Duration,
}

impl RedisConfig {
    /// The defaults, against `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: "fastapihooks".to_owned(),
            group: "fastapihooks".to_owned(),
            consumer: format!("consumer-{}", ulid::Ulid::new()),
            visibility_timeout: Duration::from_secs(60),
            block: Duration::from_secs(1),
            dead_letter_max_len: 100_000,
            response_timeout: Duration::from_secs(5),
            forget_consumers_after: Duration::from_secs(3600),
        }
    }

    /// Sets the key prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets the visibility timeout.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout;
        self
    }

    /// Sets the consumer name.
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = name.into();
        self
    }

    /// The stream of ready and leased tasks.
    pub fn tasks_key(&self) -> String {
        format!("{{{}}}:tasks", self.key_prefix)
    }

    /// The stream of ready and leased delivery tasks, leased before [`tasks_key`](Self::tasks_key)'s.
    pub fn deliveries_key(&self) -> String {
        format!("{{{}}}:deliveries", self.key_prefix)
    }

    /// The sorted set of tasks waiting for a retry.
    pub fn retries_key(&self) -> String {
        format!("{{{}}}:retries", self.key_prefix)
    }

    /// The dead-letter stream.
    pub fn dead_key(&self) -> String {
        format!("{{{}}}:dead", self.key_prefix)
    }

    /// The sorted set of replayed runs already queued.
    pub fn replays_key(&self) -> String {
        format!("{{{}}}:replays", self.key_prefix)
    }

    /// Every key this queue may create, for cleanup and inspection.
    pub fn keys(&self) -> [String; 5] {
        [
            self.tasks_key(),
            self.deliveries_key(),
            self.retries_key(),
            self.dead_key(),
            self.replays_key(),
        ]
    }

    /// Checks that the settings make sense.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        for (field, value) in [
            ("redis.key_prefix", &self.key_prefix),
            ("redis.group", &self.group),
            ("redis.consumer", &self.consumer),
        ] {
            if value.is_empty() || value.len() > 200 {
                return invalid(field, "must be 1 to 200 characters");
            }
            if value.contains(['{', '}']) || value.chars().any(char::is_whitespace) {
                return invalid(field, "must not contain braces or whitespace");
            }
        }
        if self.block.is_zero() || self.block >= self.visibility_timeout {
            return invalid(
                "redis.block",
                "must be greater than zero and less than the visibility timeout",
            );
        }
        if self.forget_consumers_after <= self.visibility_timeout {
            return invalid(
                "redis.forget_consumers_after",
                "must be greater than the visibility timeout",
            );
        }
        if self.response_timeout.is_zero() {
            return invalid("redis.response_timeout", "must be greater than zero");
        }
        if self.dead_letter_max_len == 0 {
            return invalid("redis.dead_letter_max_len", "must be at least 1");
        }
        Ok(())
    }

    /// The URL with any password replaced, for logs and `Debug`.
    pub fn redacted_url(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            Ok(url) => url.to_string(),
            Err(_) => "<unparseable URL>".to_owned(),
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("key_prefix", &self.key_prefix)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("visibility_timeout", &self.visibility_timeout)
            .field("block", &self.block)
            .field("dead_letter_max_len", &self.dead_letter_max_len)
            .field("response_timeout", &self.response_timeout)
            .field("forget_consumers_after", &self.forget_consumers_after)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let c = RedisConfig::new("redis://h").key_prefix("app1");
        assert_eq!(
            c.keys(),
            [
                "{app1}:tasks",
                "{app1}:deliveries",
                "{app1}:retries",
                "{app1}:dead",
                "{app1}:replays"
            ]
            .map(String::from)
        );
    }

    #[test]
    fn a_prefix_with_braces_is_rejected_with_its_field_named() {
        let err = RedisConfig::new("redis://h")
            .key_prefix("a{b}")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("redis.key_prefix"), "{err}");
    }

    #[test]
    fn block_must_stay_below_the_visibility_timeout() {
        let mut c = RedisConfig::new("redis://h").visibility_timeout(Duration::from_secs(1));
        c.block = Duration::from_secs(1);
        assert!(c.validate().is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = RedisConfig::new("redis://user:hunter2@h:6379/0");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("h:6379"), "{shown}");
    }

    #[test]
    fn each_config_gets_its_own_consumer_name() {
        assert_ne!(
            RedisConfig::new("redis://h").consumer,
            RedisConfig::new("redis://h").consumer
        );
    }
}

//! The one shared HTTP client and its limits.

use std::time::Duration;

use crate::error::{Error, Result};

/// Limits of the delivery HTTP client.
///
/// One client is built per engine and shared by every delivery: connections to a subscriber are
/// kept alive and reused. Redirects are never followed (a 3xx is a failed delivery): a redirect
/// would carry a signed payload to a URL nobody subscribed.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Time allowed to open a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Time allowed for the whole request and response. Default 10 s.
    pub timeout: Duration,
    /// How much of a response body is read into the attempt's excerpt. Default 64 KiB.
    pub max_response_bytes: usize,
    /// Idle keep-alive connections kept per host. Default 100, the background backend's default
    /// concurrency: with fewer, a subscriber that takes `concurrency` attempts at once sees the
    /// connections past this number closed after each attempt and opened again for the next.
    pub pool_max_idle_per_host: usize,
    /// The `User-Agent` header. Default `fastapihooks/<version>`.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            pool_max_idle_per_host: 100,
            user_agent: concat!("fastapihooks/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl HttpConfig {
    /// Checks that the limits make sense.
    pub fn validate(&self) -> Result<()> {
        if self.timeout.is_zero() {
            return Err(Error::InvalidConfig {
                field: "http.timeout",
                reason: "must be greater than zero".into(),
            });
        }
        if self.connect_timeout.is_zero() || self.connect_timeout > self.timeout {
            return Err(Error::InvalidConfig {
                field: "http.connect_timeout",
                reason: format!(
                    "{:?} must be greater than zero and at most the total timeout {:?}",
                    self.connect_timeout, self.timeout
                ),
            });
        }
        Ok(())
    }

    /// Builds the client.
    pub fn build_client(&self) -> Result<reqwest::Client> {
        self.validate()?;
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(self.user_agent.clone())
            .build()
            .map_err(Error::HttpClient)
    }
}

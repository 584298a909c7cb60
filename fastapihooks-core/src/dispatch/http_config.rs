//! [`HttpConfig`]: the limits of the delivery HTTP client, and which addresses it may reach.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::Resolve;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::guard::{AddressPolicy, AllowHint};
use crate::error::{Error, Result};

/// Limits of the delivery HTTP client, and which addresses it may reach.
///
/// One client is built per engine and shared by every delivery: connections to a subscriber are
/// kept alive and reused. Redirects are never followed (a 3xx is a failed delivery): a redirect
/// would carry a signed payload to a URL nobody subscribed. Deliveries connect to subscribers
/// directly, never through a proxy: `HTTP_PROXY`, `HTTPS_PROXY` and the like are not read (a
/// proxy resolves the target itself, out of the guard's sight). `https` URLs are verified against
/// Mozilla's root certificates (`webpki-roots`), HTTP/2 is used where the server offers it.
///
/// The SSRF guard is on by default: loopback, private, link-local and other non-global
/// addresses are refused (see [`BLOCKED_RANGES`](super::BLOCKED_RANGES)). Tests and a local
/// quickstart that deliver to `127.0.0.1` say so:
///
/// ```
/// use fastapihooks_core::HttpConfig;
/// let local = HttpConfig::default().allow_loopback();
/// let office = HttpConfig::default().allow_network("10.20.0.0/16").unwrap();
/// let strict = HttpConfig::default().https_only(true);
/// # let _ = (local, office, strict);
/// ```
#[derive(Clone)]
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
    /// Refuse plain-`http` subscription URLs. Default `false`.
    pub https_only: bool,
    /// Which addresses deliveries may connect to. Default: global addresses only.
    pub address_policy: AddressPolicy,
    /// Send a W3C `traceparent` header with each attempt (the event's trace, a new span id),
    /// so a receiver that traces joins the sender's trace. Default `false`: a trace id tells a
    /// receiver something about the sender it may not need to know.
    pub send_traceparent: bool,
    pub(super) resolver: Option<Arc<dyn Resolve>>,
    /// Certificate authorities trusted besides Mozilla's roots, checked as they were added.
    pub(super) root_certificates: rustls::RootCertStore,
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("pool_max_idle_per_host", &self.pool_max_idle_per_host)
            .field("user_agent", &self.user_agent)
            .field("https_only", &self.https_only)
            .field("address_policy", &self.address_policy)
            .field("send_traceparent", &self.send_traceparent)
            .field("custom_resolver", &self.resolver.is_some())
            .field("root_certificates", &self.root_certificates.len())
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            pool_max_idle_per_host: 100,
            user_agent: concat!("fastapihooks/", env!("CARGO_PKG_VERSION")).to_owned(),
            https_only: false,
            address_policy: AddressPolicy::default(),
            send_traceparent: false,
            resolver: None,
            root_certificates: rustls::RootCertStore::empty(),
        }
    }
}

impl HttpConfig {
    /// Lets deliveries reach loopback (`127.0.0.0/8`, `::1`): for tests and a local
    /// quickstart.
    pub fn allow_loopback(mut self) -> Self {
        self.address_policy = self.address_policy.allow_loopback();
        self
    }

    /// Lets deliveries reach one network the guard would refuse, in CIDR form
    /// (`10.20.0.0/16`) or as one address.
    pub fn allow_network(mut self, cidr: &str) -> Result<Self> {
        self.address_policy = self.address_policy.allow_network(cidr)?;
        Ok(self)
    }

    /// Turns the SSRF guard off: every address, private or not, may be reached. For development
    /// only; in production list the networks with [`allow_network`](Self::allow_network).
    pub fn allow_private_networks(mut self) -> Self {
        self.address_policy = self.address_policy.allow_private_networks();
        self
    }

    /// How the guard's refusals say to allow an address: through this Rust API (the default),
    /// or through the flags of `fastapihooks start` ([`AllowHint::CliFlags`], which the sidecar
    /// sets).
    pub fn allow_hint(mut self, hint: AllowHint) -> Self {
        self.address_policy = self.address_policy.allow_hint(hint);
        self
    }

    /// Refuses plain-`http` URLs when `true`.
    pub fn https_only(mut self, enabled: bool) -> Self {
        self.https_only = enabled;
        self
    }

    /// Resolves host names with `resolver` (e.g. hickory) instead of the system resolver; the
    /// guard still filters every answer.
    pub fn resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Trusts the certificate authorities in `pem` (one or more `-----BEGIN CERTIFICATE-----`
    /// blocks) for `https` subscribers, besides Mozilla's roots: for subscribers on a private
    /// network whose certificates an internal CA issued.
    ///
    /// ```
    /// use fastapihooks_core::HttpConfig;
    /// let not_pem = HttpConfig::default().add_root_certificates_pem(b"not a certificate");
    /// assert!(not_pem.unwrap_err().to_string().contains("http.root_certificates"));
    /// ```
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidConfig {
            field: "http.root_certificates",
            reason,
        };
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("the PEM could not be read: {e}")))?;
        if certificates.is_empty() {
            return Err(invalid(
                "no `-----BEGIN CERTIFICATE-----` block in the PEM".into(),
            ));
        }
        for certificate in certificates {
            self.root_certificates
                .add(certificate)
                .map_err(|e| invalid(format!("a certificate cannot be a root: {e}")))?;
        }
        Ok(self)
    }

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

    /// Checks what can be checked of a URL before any connection: the scheme when
    /// `https_only`, and a literal IP host against the address policy. Host names are checked
    /// as they resolve, inside the client.
    pub fn check_url(&self, url: &url::Url) -> Result<()> {
        if self.https_only && url.scheme() != "https" {
            return Err(Error::HttpsRequired {
                url: url.as_str().to_owned(),
            });
        }
        self.address_policy.check_url(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_only_refuses_plain_http_urls_and_names_them() {
        let config = HttpConfig::default().https_only(true);
        let url = url::Url::parse("http://example.com/hook").unwrap();
        let err = config.check_url(&url).unwrap_err();
        assert!(matches!(&err, Error::HttpsRequired { url } if url == "http://example.com/hook"));
        let secure = url::Url::parse("https://example.com/hook").unwrap();
        assert!(config.check_url(&secure).is_ok());
    }

    #[test]
    fn the_allow_hint_reaches_refusals_of_literal_addresses() {
        let url = url::Url::parse("http://10.1.2.3/").unwrap();
        let cli = HttpConfig::default().allow_hint(AllowHint::CliFlags);
        let Err(err @ Error::BlockedAddress { .. }) = cli.check_url(&url) else {
            panic!("10.1.2.3 was not refused");
        };
        assert!(
            err.to_string().contains("--allow-network 10.1.2.3"),
            "{err}"
        );
        let rust = HttpConfig::default().check_url(&url).unwrap_err();
        assert!(rust.to_string().contains(".allow_network("), "{rust}");
    }

    #[test]
    fn the_guard_is_on_by_default() {
        let url = url::Url::parse("http://127.0.0.1:8080/").unwrap();
        assert!(matches!(
            HttpConfig::default().check_url(&url),
            Err(Error::BlockedAddress { .. })
        ));
        assert!(
            HttpConfig::default()
                .allow_loopback()
                .check_url(&url)
                .is_ok()
        );
    }
}

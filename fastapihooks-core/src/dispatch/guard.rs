//! The SSRF guard: which addresses a delivery may connect to.
//!
//! A webhook sender POSTs to URLs its users type, so without a guard a subscription to
//! `http://169.254.169.254/` or `http://10.0.0.5:6379/` is a way into the private network. The
//! guard is on by default and works where the address is chosen, not before it:
//!
//! - host names are resolved by [`GuardedResolver`], plugged into the HTTP client, which drops
//!   every refused address from the answer before the client connects. The client connects only
//!   to addresses the guard saw, so there is no gap between check and connect that DNS
//!   rebinding could use;
//! - literal IP hosts (which the client never hands to a resolver) are checked by
//!   [`AddressPolicy::check_url`] before the request is made;
//! - IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`) IPv6 addresses are judged as
//!   the IPv4 address they carry.
//!
//! Decimal, hex and octal IPv4 spellings (`http://2130706433/`, `http://0x7f000001/`,
//! `http://0177.0.0.1/`) are normalized by the URL parser into `127.0.0.1` before the guard sees
//! them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::error::{Error, Result};

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len))
}

const fn v6(segments: [u16; 8], len: u8) -> IpNet {
    let [a, b, c, d, e, f, g, h] = segments;
    IpNet::V6(Ipv6Net::new_assert(
        Ipv6Addr::new(a, b, c, d, e, f, g, h),
        len,
    ))
}

/// The ranges refused by default, each with what it is. Checked after canonicalization, so an
/// IPv4-mapped or NAT64 address meets the IPv4 rows.
pub const BLOCKED_RANGES: &[(IpNet, &str)] = &[
    (
        v4(0, 0, 0, 0, 8),
        "\"this network\", incl. unspecified 0.0.0.0",
    ),
    (v4(10, 0, 0, 0, 8), "private network (RFC 1918)"),
    (v4(100, 64, 0, 0, 10), "carrier-grade NAT (RFC 6598)"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (
        v4(169, 254, 0, 0, 16),
        "link-local, incl. cloud metadata 169.254.169.254",
    ),
    (v4(172, 16, 0, 0, 12), "private network (RFC 1918)"),
    (v4(192, 0, 0, 0, 24), "IETF protocol assignments"),
    (v4(192, 0, 2, 0, 24), "documentation (TEST-NET-1)"),
    (v4(192, 88, 99, 0, 24), "6to4 relay anycast"),
    (v4(192, 168, 0, 0, 16), "private network (RFC 1918)"),
    (v4(198, 18, 0, 0, 15), "benchmarking (RFC 2544)"),
    (v4(198, 51, 100, 0, 24), "documentation (TEST-NET-2)"),
    (v4(203, 0, 113, 0, 24), "documentation (TEST-NET-3)"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (
        v4(240, 0, 0, 0, 4),
        "reserved, incl. broadcast 255.255.255.255",
    ),
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "IPv6 unspecified"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "IPv6 loopback"),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "deprecated IPv4-compatible IPv6",
    ),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "local-use NAT64"),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignments (Teredo, benchmarking, ORCHID)",
    ),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (
        v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
        "6to4 (carries an IPv4 address)",
    ),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "segment routing SIDs",
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "unique local (private)",
    ),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (deprecated)",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

const NAT64: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);

/// The address the guard judges: the IPv4 address an IPv4-mapped (`::ffff:0:0/96`) or NAT64
/// (`64:ff9b::/96`) IPv6 address carries, any other address as it is.
///
/// ```
/// use std::net::IpAddr;
/// use fastapihooks_core::dispatch::canonical_ip;
/// let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
/// assert_eq!(canonical_ip(mapped), "127.0.0.1".parse::<IpAddr>().unwrap());
/// ```
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(mapped) = v6.to_ipv4_mapped() {
                IpAddr::V4(mapped)
            } else if NAT64.contains(&v6) {
                let [.., a, b, c, d] = v6.octets();
                IpAddr::V4(Ipv4Addr::new(a, b, c, d))
            } else {
                IpAddr::V6(v6)
            }
        }
        v4 => v4,
    }
}

/// Why the guard refused an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The address refused, canonicalized.
    pub address: IpAddr,
    /// The blocked range it fell in.
    pub range: IpNet,
    /// What that range is.
    pub reason: &'static str,
}

impl Refusal {
    fn into_error(self, host: &str, hint: AllowHint) -> Error {
        Error::BlockedAddress {
            host: host.to_owned(),
            address: self.address,
            range: self.range,
            reason: self.reason,
            hint,
        }
    }
}

/// How a refusal of the guard tells its reader to allow the address: in the terms of the place
/// the guard is configured in. The code that builds the [`HttpConfig`](super::HttpConfig) knows
/// where that is; the refusal ([`Error::BlockedAddress`]) is read far from it, in an attempt's
/// message or a log line.
///
/// ```
/// use fastapihooks_core::dispatch::AllowHint;
/// let address = "169.254.169.254".parse().unwrap();
/// let range = "169.254.0.0/16".parse().unwrap();
/// assert!(AllowHint::RustApi.how_to_allow(&address, &range).contains(".allow_network(\"169.254.0.0/16\")"));
/// assert!(AllowHint::CliFlags.how_to_allow(&address, &range).contains("--allow-network 169.254.0.0/16"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AllowHint {
    /// Name the Rust API: `HttpConfig::default().allow_network(..)`. The default.
    #[default]
    RustApi,
    /// Name the flags of `fastapihooks start`: `--allow-network`, `--allow-loopback`.
    CliFlags,
}

impl AllowHint {
    /// What to change so that deliveries may reach `address`, which lies in the blocked
    /// `range`: one sentence, starting in lower case.
    pub fn how_to_allow(&self, address: &IpAddr, range: &IpNet) -> String {
        let loopback = canonical_ip(*address).is_loopback();
        match self {
            AllowHint::RustApi if loopback => format!(
                "to deliver there, allow it with HttpConfig::default().allow_loopback() \
                 (development only) or HttpConfig::default().allow_network(\"{range}\")"
            ),
            AllowHint::RustApi => format!(
                "to deliver there, allow it with HttpConfig::default().allow_network(\"{range}\") \
                 (or, in development only, HttpConfig::default().allow_private_networks())"
            ),
            AllowHint::CliFlags if loopback => format!(
                "to deliver there, start the sidecar with --allow-loopback (development only; env \
                 FASTAPIHOOKS_ALLOW_LOOPBACK=true), or --allow-network {range}"
            ),
            AllowHint::CliFlags => format!(
                "to deliver there, start the sidecar with --allow-network {address} (or the whole \
                 range, --allow-network {range}; env FASTAPIHOOKS_ALLOW_NETWORK)"
            ),
        }
    }
}

/// Which addresses deliveries may connect to: every global address, nothing in
/// [`BLOCKED_RANGES`] unless an allowed network covers it.
///
/// ```
/// use fastapihooks_core::dispatch::AddressPolicy;
/// let policy = AddressPolicy::default();
/// assert!(policy.check("93.184.215.14".parse().unwrap()).is_ok());
/// assert!(policy.check("169.254.169.254".parse().unwrap()).is_err());
/// let dev = AddressPolicy::default().allow_network("127.0.0.0/8").unwrap();
/// assert!(dev.check("127.0.0.1".parse().unwrap()).is_ok());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow_all: bool,
    allowed: Vec<IpNet>,
    hint: AllowHint,
}

impl AddressPolicy {
    /// How its refusals say to allow an address. Default [`AllowHint::RustApi`].
    pub fn allow_hint(mut self, hint: AllowHint) -> Self {
        self.hint = hint;
        self
    }

    /// The [`allow_hint`](Self::allow_hint) in use.
    pub fn hint(&self) -> AllowHint {
        self.hint
    }

    /// Allows every address, private ones included: the guard is off. For development only.
    pub fn allow_private_networks(mut self) -> Self {
        self.allow_all = true;
        self
    }

    /// Allows the loopback networks `127.0.0.0/8` and `::1/128`: what tests and a local
    /// quickstart need, and nothing more.
    pub fn allow_loopback(mut self) -> Self {
        self.allowed.push(v4(127, 0, 0, 0, 8));
        self.allowed.push(v6([0, 0, 0, 0, 0, 0, 0, 1], 128));
        self
    }

    /// Allows one network given in CIDR form (`10.1.0.0/16`, `fd00::/8`) or as one address.
    pub fn allow_network(mut self, cidr: &str) -> Result<Self> {
        let net = cidr
            .parse::<IpNet>()
            .or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| Error::InvalidConfig {
                field: "http.allow_network",
                reason: format!("{cidr:?} is neither a CIDR network (10.0.0.0/8) nor an address"),
            })?;
        self.allowed.push(net.trunc());
        Ok(self)
    }

    /// Whether the guard is off ([`allow_private_networks`](Self::allow_private_networks)).
    pub fn allows_everything(&self) -> bool {
        self.allow_all
    }

    /// The networks allowed despite the blocklist.
    pub fn allowed_networks(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Whether a delivery may connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> std::result::Result<(), Refusal> {
        let canonical = canonical_ip(ip);
        if self.allow_all
            || self
                .allowed
                .iter()
                .any(|net| net.contains(&ip) || net.contains(&canonical))
        {
            return Ok(());
        }
        match BLOCKED_RANGES
            .iter()
            .find(|(net, _)| net.contains(&canonical))
        {
            Some(&(range, reason)) => Err(Refusal {
                address: canonical,
                range,
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Checks a URL whose host is a literal IP address (the HTTP client resolves nothing for
    /// those, so the resolver cannot filter them). Host names pass here and are checked as they
    /// resolve.
    pub fn check_url(&self, url: &Url) -> Result<()> {
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        self.check(ip)
            .map_err(|r| r.into_error(url.host_str().unwrap_or_default(), self.hint))
    }
}

/// A DNS resolver that only hands the HTTP client addresses the [`AddressPolicy`] allows.
///
/// Names are resolved by the system resolver (`getaddrinfo`, through tokio) unless another
/// resolver is given; either way the answer is filtered here. When every address of a name is
/// refused, resolution fails with [`Error::BlockedAddress`] naming the first one.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
    inner: Option<Arc<dyn Resolve>>,
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("policy", &self.policy)
            .field("custom_resolver", &self.inner.is_some())
            .finish()
    }
}

impl GuardedResolver {
    /// Filters the system resolver's answers through `policy`.
    pub fn new(policy: AddressPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
            inner: None,
        }
    }

    /// Filters the answers of `inner` (e.g. a hickory resolver) instead.
    pub fn with_resolver(policy: AddressPolicy, inner: Arc<dyn Resolve>) -> Self {
        Self {
            policy: Arc::new(policy),
            inner: Some(inner),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let inner = self.inner.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let answer: Vec<SocketAddr> = match inner {
                Some(resolver) => resolver.resolve(name).await?.collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let mut refused = None;
            let mut allowed = Vec::with_capacity(answer.len());
            for addr in answer {
                match policy.check(addr.ip()) {
                    Ok(()) => allowed.push(addr),
                    Err(r) => {
                        tracing::debug!(%host, address = %r.address, range = %r.range, "SSRF guard dropped a resolved address");
                        refused.get_or_insert(r);
                    }
                }
            }
            if allowed.is_empty() {
                let err: BoxError = match refused {
                    Some(r) => Box::new(r.into_error(&host, policy.hint)),
                    None => format!("{host} resolved to no address").into(),
                };
                return Err(err);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The guard's refusal somewhere in an error's source chain, if it is there.
pub(crate) fn find_blocked<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e Error> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(found @ Error::BlockedAddress { .. }) = err.downcast_ref::<Error>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_listed_range_is_refused_by_default() {
        let policy = AddressPolicy::default();
        for blocked in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "2001:db8::1",
            "2001::1",
            "2002:7f00:1::",
            "3fff::1",
            "ff02::1",
            "fec0::1",
            "100::1",
            "64:ff9b:1::1",
        ] {
            assert!(policy.check(ip(blocked)).is_err(), "{blocked}");
        }
    }

    #[test]
    fn global_addresses_pass() {
        let policy = AddressPolicy::default();
        for global in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "64:ff9b::808:808",
        ] {
            assert!(policy.check(ip(global)).is_ok(), "{global}");
        }
    }

    #[test]
    fn ipv4_mapped_and_nat64_addresses_are_judged_as_their_ipv4_address() {
        let policy = AddressPolicy::default();
        for (v6, v4) in [
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("::ffff:a9fe:a9fe", "169.254.169.254"),
            ("64:ff9b::10.0.0.1", "10.0.0.1"),
        ] {
            let refusal = policy.check(ip(v6)).unwrap_err();
            assert_eq!(refusal.address, ip(v4));
        }
    }

    #[test]
    fn an_allowed_network_overrides_the_blocklist_for_it_only() {
        let policy = AddressPolicy::default()
            .allow_network("10.1.0.0/16")
            .unwrap();
        assert!(policy.check(ip("10.1.2.3")).is_ok());
        assert!(policy.check(ip("::ffff:10.1.2.3")).is_ok());
        assert!(policy.check(ip("10.2.0.1")).is_err());
    }

    #[test]
    fn allow_loopback_allows_loopback_and_nothing_else() {
        let policy = AddressPolicy::default().allow_loopback();
        for ok in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert!(policy.check(ip(ok)).is_ok(), "{ok}");
        }
        for refused in ["0.0.0.0", "10.0.0.1", "169.254.169.254", "::"] {
            assert!(policy.check(ip(refused)).is_err(), "{refused}");
        }
    }

    #[test]
    fn allow_private_networks_turns_the_guard_off() {
        let policy = AddressPolicy::default().allow_private_networks();
        assert!(policy.allows_everything());
        assert!(policy.check(ip("169.254.169.254")).is_ok());
    }

    #[test]
    fn a_bad_allowed_network_is_a_config_error_naming_it() {
        let err = AddressPolicy::default()
            .allow_network("10.0.0.0/33")
            .unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/33"), "{err}");
        assert!(AddressPolicy::default().allow_network("10.0.0.7").is_ok());
    }

    #[test]
    fn a_refusal_names_the_address_its_range_and_how_to_allow_it() {
        let url = Url::parse("http://169.254.169.254/latest/meta-data").unwrap();
        let message = AddressPolicy::default()
            .check_url(&url)
            .unwrap_err()
            .to_string();
        for part in [
            "169.254.169.254",
            "169.254.0.0/16",
            "allow_network(\"169.254.0.0/16\")",
            "allow_private_networks()",
        ] {
            assert!(message.contains(part), "{part} missing from: {message}");
        }
    }

    #[test]
    fn a_refusal_explained_for_the_cli_names_the_sidecar_flags_not_the_rust_api() {
        let policy = AddressPolicy::default().allow_hint(AllowHint::CliFlags);
        let metadata = Url::parse("http://169.254.169.254/").unwrap();
        let message = policy.check_url(&metadata).unwrap_err().to_string();
        assert!(
            message.contains("--allow-network 169.254.169.254"),
            "{message}"
        );
        assert!(!message.contains("HttpConfig"), "{message}");
        let loopback = Url::parse("http://[::ffff:127.0.0.1]:8080/").unwrap();
        let message = policy.check_url(&loopback).unwrap_err().to_string();
        assert!(message.contains("--allow-loopback"), "{message}");
    }

    #[test]
    fn host_names_are_left_to_the_resolver() {
        let url = Url::parse("http://localhost/").unwrap();
        assert!(AddressPolicy::default().check_url(&url).is_ok());
    }
}

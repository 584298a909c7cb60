//! Warnings for a subscription URL the sidecar's SSRF guard will refuse: its literal address, or
//! the addresses its host name resolves to now, in a range the guard blocks. The subscription is
//! saved all the same (the sidecar may run with `--allow-network`, DNS may change); the warning
//! says so before the first delivery fails.

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use fastapihooks_core::dispatch::{AddressPolicy, AllowHint, Refusal};
use url::{Host, Url};

/// How long a DNS answer is waited for.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes a `warning: …` line to `err` for each reason the guard (with its default settings)
/// would refuse deliveries to `url`. Never fails: a name that does not resolve is a warning too.
pub async fn warn_if_refused(url: &Url, err: &mut dyn Write) {
    for warning in warnings(url).await {
        let _ = writeln!(err, "warning: {warning}");
    }
}

async fn warnings(url: &Url) -> Vec<String> {
    let policy = AddressPolicy::default().allow_hint(AllowHint::CliFlags);
    let host = match url.host() {
        Some(Host::Ipv4(ip)) => return literal(url, &policy, IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => return literal(url, &policy, IpAddr::V6(ip)),
        Some(Host::Domain(host)) => host.to_owned(),
        None => return Vec::new(),
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let answer = tokio::time::timeout(
        LOOKUP_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    .unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {LOOKUP_TIMEOUT:?}"),
        ))
    });
    let addresses: Vec<IpAddr> = match answer {
        Ok(addrs) => {
            let mut ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
            ips.dedup();
            ips
        }
        Err(e) => {
            return vec![format!(
                "{url}: cannot resolve {host} now ({e}); deliveries fail until it resolves, and \
                 the sidecar's SSRF guard then checks every address it resolves to"
            )];
        }
    };
    let refused: Vec<Refusal> = addresses
        .iter()
        .filter_map(|ip| policy.check(*ip).err())
        .collect();
    let Some(first) = refused.first() else {
        return Vec::new();
    };
    let listed = refused
        .iter()
        .map(|r| format!("{} ({}, {})", r.address, r.range, r.reason))
        .collect::<Vec<_>>()
        .join(", ");
    let consequence = if refused.len() == addresses.len() {
        "deliveries to it will fail"
    } else {
        "the sidecar will connect only to its other addresses"
    };
    vec![format!(
        "{url}: {host} resolves to {listed}, which the sidecar's SSRF guard refuses by default: \
         {consequence}; {}",
        AllowHint::CliFlags.how_to_allow(&first.address, &first.range)
    )]
}

fn literal(url: &Url, policy: &AddressPolicy, ip: IpAddr) -> Vec<String> {
    match policy.check(ip) {
        Ok(()) => Vec::new(),
        Err(r) => vec![format!(
            "{url}: address {} is in {} ({}), which the sidecar's SSRF guard refuses by default: \
             deliveries to it will fail; {}",
            r.address,
            r.range,
            r.reason,
            AllowHint::CliFlags.how_to_allow(&r.address, &r.range)
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn warn(url: &str) -> Vec<String> {
        warnings(&Url::parse(url).unwrap()).await
    }

    #[tokio::test]
    async fn a_public_literal_address_gets_no_warning() {
        assert!(warn("https://93.184.215.14/hooks").await.is_empty());
    }

    #[tokio::test]
    async fn a_blocked_literal_address_names_its_range_and_the_flag() {
        let w = warn("http://10.1.2.3:8080/h").await;
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("10.0.0.0/8"), "{w:?}");
        assert!(w[0].contains("--allow-network 10.1.2.3"), "{w:?}");
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_a_warning_of_its_own() {
        let w = warn("https://no-such-host.invalid/h").await;
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("cannot resolve no-such-host.invalid"),
            "{w:?}"
        );
    }
}

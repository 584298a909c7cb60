//! No TLS to a PostgreSQL server on this machine unless the URL asks for it.
//!
//! The PostgreSQL driver's default (`sslmode=prefer`, as libpq's) takes TLS whenever the server
//! offers it — on a loopback connection too, where the bytes never leave the machine and TLS
//! protects nothing. There it costs: the sidecar writes every TLS record with a system call of
//! its own, and the server decrypts every statement (BENCHMARKS.md, session 9). So a URL whose
//! host is `localhost`, `127.0.0.0/8` or `::1`, and that says nothing about TLS (`sslmode`) or
//! about where to connect instead (`host`), gets `sslmode=disable`. Any `sslmode` in the URL is
//! kept as it is: `sslmode=prefer` restores the driver's default, `require` and above demand
//! TLS.

use std::borrow::Cow;
use std::net::IpAddr;

/// `url`, with `sslmode=disable` added when it names PostgreSQL on this machine and leaves TLS
/// unsaid (see the [module docs](self)); otherwise `url` unchanged.
pub(super) fn without_tls_on_loopback(url: &str) -> Cow<'_, str> {
    let Ok(parsed) = url::Url::parse(url) else {
        // Not ours to judge: the driver reports what is wrong with it.
        return Cow::Borrowed(url);
    };
    let postgres = matches!(parsed.scheme(), "postgres" | "postgresql");
    let said = parsed
        .query_pairs()
        .any(|(key, _)| key == "sslmode" || key == "host");
    if !postgres || said || parsed.fragment().is_some() || !is_loopback(&parsed) {
        return Cow::Borrowed(url);
    }
    let separator = if parsed.query().is_some() { '&' } else { '?' };
    tracing::debug!(
        "PostgreSQL on this machine: connecting without TLS (sslmode=disable; put an sslmode in the URL to choose)"
    );
    Cow::Owned(format!("{url}{separator}sslmode=disable"))
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        // A `postgres:` URL's host is opaque to the URL parser: an IPv4 address comes as a
        // name.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::without_tls_on_loopback as effective;

    #[test]
    fn a_loopback_server_without_sslmode_is_reached_without_tls() {
        for (url, expected) in [
            (
                "postgres://app@127.0.0.1:5432/app",
                "postgres://app@127.0.0.1:5432/app?sslmode=disable",
            ),
            (
                "postgresql://app@localhost/app?application_name=x",
                "postgresql://app@localhost/app?application_name=x&sslmode=disable",
            ),
            (
                "postgres://app@[::1]:5432/app",
                "postgres://app@[::1]:5432/app?sslmode=disable",
            ),
            (
                "postgres://app@127.0.0.53/app",
                "postgres://app@127.0.0.53/app?sslmode=disable",
            ),
        ] {
            assert_eq!(effective(url), expected);
        }
    }

    #[test]
    fn an_sslmode_in_the_url_is_kept_as_it_is() {
        for url in [
            "postgres://app@127.0.0.1/app?sslmode=prefer",
            "postgres://app@localhost/app?sslmode=require",
        ] {
            assert_eq!(effective(url), url);
        }
    }

    #[test]
    fn another_machine_a_host_parameter_or_another_database_is_left_alone() {
        for url in [
            "postgres://app@db.internal:5432/app",
            "postgres://app@10.0.0.5/app",
            "postgres://app@localhost/app?host=/var/run/postgresql",
            "mysql://root@127.0.0.1:3306/app",
            "sqlite://fastapihooks.db?mode=rwc",
            "not a url",
        ] {
            assert_eq!(effective(url), url);
        }
    }
}

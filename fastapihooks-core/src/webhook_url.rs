//! [`WebhookUrl`]: where a subscription's deliveries go — validated once, when made.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Result};

/// A URL deliveries can be POSTed to: absolute `http` or `https`, with a host, without
/// credentials (they belong in the subscription's [`Auth`](crate::Auth)) or a fragment, at most
/// [`MAX_URL_LEN`] bytes once normalized. The only way to make one is to parse it, so a
/// subscription's URL is always valid. Reads as a [`Url`] (`Deref`).
///
/// ```
/// use fastapihooks_core::subscription::WebhookUrl;
/// let url = WebhookUrl::parse("https://example.com/hooks").unwrap();
/// assert_eq!(url.host_str(), Some("example.com"));
/// assert!(WebhookUrl::parse("ftp://example.com").is_err());
/// assert!("https://user:pw@example.com".parse::<WebhookUrl>().is_err());
/// ```
#[derive(Clone)]
pub struct WebhookUrl {
    url: Url,
    /// The same URL as an HTTP request target, made once: an attempt clones it (a few reference
    /// counts) instead of parsing the URL again.
    uri: http::Uri,
}

impl WebhookUrl {
    /// Parses and validates `input` (see the type's docs); the error names the input and why.
    pub fn parse(input: &str) -> Result<Self> {
        let url = parse(input)?;
        let uri =
            http::Uri::from_maybe_shared(bytes::Bytes::copy_from_slice(url.as_str().as_bytes()))
                .map_err(|e| Error::InvalidUrl {
                    url: input.to_owned(),
                    reason: format!("it cannot be the target of an HTTP request: {e}"),
                })?;
        Ok(Self { url, uri })
    }

    /// The URL.
    pub fn as_url(&self) -> &Url {
        &self.url
    }

    /// The URL as the target of a request.
    pub(crate) fn as_uri(&self) -> &http::Uri {
        &self.uri
    }
}

// The URL says it all: the request target is the same URL in another type.
impl PartialEq for WebhookUrl {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

impl Eq for WebhookUrl {}

impl std::hash::Hash for WebhookUrl {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.url.hash(state);
    }
}

impl Deref for WebhookUrl {
    type Target = Url;
    fn deref(&self) -> &Url {
        &self.url
    }
}

impl FromStr for WebhookUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.url.as_str(), f)
    }
}

impl From<WebhookUrl> for Url {
    fn from(url: WebhookUrl) -> Url {
        url.url
    }
}

impl Serialize for WebhookUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.url.as_str())
    }
}

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The longest accepted webhook URL.
pub const MAX_URL_LEN: usize = 2048;

fn parse(input: &str) -> Result<Url> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: input.to_owned(),
        reason: reason.to_owned(),
    };
    if input.len() > MAX_URL_LEN {
        return Err(invalid("it is longer than 2048 bytes"));
    }
    let url = Url::parse(input).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(&format!(
            "scheme `{}` is not supported; use http or https",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(invalid("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials in the URL are not allowed; use the subscription's auth",
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("a fragment (#...) is never sent; remove it"));
    }
    // Normalization (punycode for international names, percent-encoding) can lengthen a URL:
    // the form that is stored and read back must fit too.
    if url.as_str().len() > MAX_URL_LEN {
        return Err(invalid(
            "it is longer than 2048 bytes once normalized (punycode, percent-encoding)",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_url(input: &str) -> Result<WebhookUrl> {
        WebhookUrl::parse(input)
    }

    #[test]
    fn the_request_target_is_the_url_as_normalized() {
        for input in [
            "http://127.0.0.1:3001/hook",
            "https://example.com/a/b?c=d&e=%20f",
            "http://[::1]:8080/x",
            "https://bücher.example/pfad?q=ü",
        ] {
            let url = parse_url(input).unwrap();
            assert_eq!(url.as_uri().to_string(), url.as_url().as_str(), "{input}");
        }
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host() {
        for ok in ["http://127.0.0.1:3001/hook", "https://example.com/a?b=c"] {
            assert!(parse_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "example.com/hook",
            "ftp://example.com",
            "file:///etc/passwd",
            "http://user:pw@example.com",
            "https://example.com/#frag",
            "javascript:alert(1)",
            "",
        ] {
            let err = parse_url(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{bad}");
        }
    }

    /// Regression (found by the `url_subscription` fuzz target): a URL under the limit as typed
    /// but over it once normalized was accepted, then refused when read back from a store.
    #[test]
    fn a_url_over_the_limit_once_normalized_is_refused() {
        let typed = format!(
            "https://{}.example/{}",
            "b\u{fc}cher.".repeat(150),
            "\u{fc}".repeat(300)
        );
        assert!(typed.len() <= MAX_URL_LEN);
        let err = parse_url(&typed).unwrap_err();
        assert!(err.to_string().contains("once normalized"), "{err}");
    }

    #[test]
    fn an_accepted_url_reads_back_as_stored() {
        let url = parse_url("https://b\u{fc}cher.example/\u{fc}?q=\u{e9}").unwrap();
        assert_eq!(parse_url(url.as_str()).unwrap(), url);
    }
}

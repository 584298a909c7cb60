//! Parsers for subscription fields given on the command line. Each rejects bad input with the
//! core's typed error, which clap prints next to the flag it came from.

use fastapihooks_core::subscription::WebhookUrl;
use fastapihooks_core::{Auth, EventFilter, Secret, SubscriptionId};

/// `--event`: `order.created`, `order.*` or `*`.
pub fn event_filter(s: &str) -> Result<EventFilter, fastapihooks_core::Error> {
    s.parse()
}

/// `--url`: absolute http(s) with a host.
pub fn webhook_url(s: &str) -> Result<WebhookUrl, fastapihooks_core::Error> {
    WebhookUrl::parse(s)
}

/// A subscription id, `sub_…`.
pub fn subscription_id(s: &str) -> Result<SubscriptionId, fastapihooks_core::Error> {
    s.parse()
}

/// `--secret`.
pub fn secret(s: &str) -> Result<Secret, fastapihooks_core::Error> {
    Secret::new(s)
}

/// `--bearer TOKEN`.
pub fn bearer(s: &str) -> Result<Auth, fastapihooks_core::Error> {
    Ok(Auth::Bearer {
        token: Secret::new(s)?,
    })
}

/// `--basic USER:PASSWORD`.
pub fn basic(s: &str) -> Result<Auth, String> {
    let (username, password) = s
        .split_once(':')
        .ok_or("expected USER:PASSWORD (a colon between them)")?;
    if username.is_empty() {
        return Err("the user name before the colon is empty".into());
    }
    Ok(Auth::Basic {
        username: username.to_owned(),
        password: Secret::new(password).map_err(|e| e.to_string())?,
    })
}

/// `--header NAME:VALUE`, such as `X-Api-Key:abc`.
pub fn header(s: &str) -> Result<Auth, String> {
    let (name, value) = s
        .split_once(':')
        .ok_or("expected NAME:VALUE (a colon between them)")?;
    let value = Secret::new(value.trim_start()).map_err(|e| e.to_string())?;
    Auth::header(name.trim(), value).map_err(|e| e.to_string())
}

/// `--metadata`: one JSON value.
pub fn metadata(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not valid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let Auth::Basic { username, password } = basic("me:pa:ss").unwrap() else {
            panic!("not basic")
        };
        assert_eq!((username.as_str(), password.expose()), ("me", "pa:ss"));
        assert!(basic("no-colon").is_err());
        assert!(basic(":pw").is_err());
    }

    #[test]
    fn header_credentials_reject_engine_headers() {
        assert!(header("X-Api-Key: abc").is_ok());
        let err = header("Content-Type:text/plain").unwrap_err();
        assert!(err.contains("Content-Type"), "{err}");
    }
}

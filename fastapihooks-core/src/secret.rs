//! [`Secret`]: a signing secret or credential that never prints its value.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;

use crate::error::{Error, Result};

/// A secret string: a signing key, a bearer token, a password.
///
/// `Debug` and `Display` print `Secret(***)`, so a secret cannot leak through logs, `{:?}` of a
/// subscription or an error message. Read it with [`Secret::expose`] where it is really needed.
///
/// ```
/// use fastapihooks_core::Secret;
/// let s = Secret::new("It's a Secret to Everybody").unwrap();
/// assert_eq!(format!("{s:?}"), "Secret(***)");
/// assert_eq!(s.expose(), "It's a Secret to Everybody");
/// assert!(Secret::new("").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// The longest secret accepted, in bytes.
    pub const MAX_LEN: usize = 1024;

    /// Wraps a secret, rejecting an empty or oversized one, or one with control characters
    /// (which could not travel in a header or a config file intact).
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        if value.is_empty() {
            return Err(Error::InvalidSecret {
                reason: "it is empty",
            });
        }
        if value.len() > Self::MAX_LEN {
            return Err(Error::InvalidSecret {
                reason: "it is longer than 1024 bytes",
            });
        }
        if value.chars().any(char::is_control) {
            return Err(Error::InvalidSecret {
                reason: "it contains control characters",
            });
        }
        Ok(Self(value.into()))
    }

    /// A new random secret in the Standard Webhooks form: `whsec_` and 32 random bytes in base64,
    /// from the operating system's CSPRNG. Usable by every signing scheme.
    pub fn generate() -> Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| Error::InvalidSecret {
            reason: "the operating system's random source failed",
        })?;
        Self::new(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        ))
    }

    /// The secret's value. Handle with care: this is the only way to read it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Secret::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2").unwrap();
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }

    #[test]
    fn control_characters_are_rejected() {
        assert!(Secret::new("a\r\nb").is_err());
    }

    #[test]
    fn generated_secrets_are_distinct_standard_webhooks_keys() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("whsec_"));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&a.expose()[6..])
            .unwrap();
        assert_eq!(raw.len(), 32);
    }
}

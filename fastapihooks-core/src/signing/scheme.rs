//! [`SignatureScheme`]: the built-in schemes by name, as a subscription stores its choice.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Sha256Hex, Signer, StandardWebhooks};
use crate::error::{Error, Result};

static SHA256_HEX: Sha256Hex = Sha256Hex::new();
static STANDARD_WEBHOOKS: StandardWebhooks = StandardWebhooks;

/// A built-in signature scheme, by name: what a [`Subscription`](crate::Subscription) stores
/// to override the emitter's signer (`"sha256_hex"` or `"standard_webhooks"` in JSON and in SQL
/// columns).
///
/// ```
/// use fastapihooks_core::signing::SignatureScheme;
/// let scheme: SignatureScheme = "standard_webhooks".parse().unwrap();
/// assert_eq!(scheme, SignatureScheme::StandardWebhooks);
/// assert_eq!(scheme.to_string(), "standard_webhooks");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureScheme {
    /// [`Sha256Hex`] with its default `X-Fastapihooks-*` header names.
    Sha256Hex,
    /// [`StandardWebhooks`].
    StandardWebhooks,
}

impl SignatureScheme {
    /// Every scheme.
    pub const ALL: [SignatureScheme; 2] = [Self::Sha256Hex, Self::StandardWebhooks];

    /// The name stored in JSON and in SQL columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256Hex => "sha256_hex",
            Self::StandardWebhooks => "standard_webhooks",
        }
    }

    /// The signer that implements the scheme.
    pub fn signer(self) -> &'static dyn Signer {
        match self {
            Self::Sha256Hex => &SHA256_HEX,
            Self::StandardWebhooks => &STANDARD_WEBHOOKS,
        }
    }
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignatureScheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|scheme| scheme.as_str() == s)
            .ok_or_else(|| Error::UnknownSignatureScheme {
                input: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_round_trip_through_their_names() {
        for scheme in SignatureScheme::ALL {
            assert_eq!(scheme.as_str().parse::<SignatureScheme>().unwrap(), scheme);
            let json = serde_json::to_string(&scheme).unwrap();
            assert_eq!(json, format!("\"{}\"", scheme.as_str()));
        }
        assert!("hmac".parse::<SignatureScheme>().is_err());
    }
}

//! Signing deliveries and verifying them on the receiving side.
//!
//! One [`Signer`] per scheme: [`Sha256Hex`] (the default, fastapihooks- and GitHub-compatible:
//! GitHub's is `Sha256Hex` with the `X-Hub-Signature-256` header), [`StandardWebhooks`], and
//! [`Stripe`] (`Stripe-Signature: t=…,v1=…`) for receiving Stripe's webhooks. The same types verify, so senders, receivers, tests and the CLI share
//! one implementation ([`Verifier`]); every comparison is constant-time. A subscription can pick
//! its own [`SignatureScheme`] over the emitter's signer.

mod scheme;
mod sha256_hex;
mod standard_webhooks;
mod stripe;
mod verify;
mod verify_error;

use std::fmt;
use std::time::Duration;

use http::HeaderMap;

pub use scheme::SignatureScheme;
pub use sha256_hex::{Sha256Hex, sign_sha256_hex, verify_sha256_hex};
pub use standard_webhooks::StandardWebhooks;
pub use stripe::Stripe;
pub use verify::Verifier;
pub use verify_error::VerifyError;

use crate::secret::Secret;

/// What is signed: the message a delivery carries.
#[derive(Clone, Copy, Debug)]
pub struct SignInput<'a> {
    /// The delivery id (`dlv_…`), the same on every retry.
    pub delivery_id: &'a str,
    /// The event name.
    pub event_name: &'a str,
    /// Unix seconds when this attempt was signed.
    pub timestamp: i64,
    /// The exact body bytes sent.
    pub body: &'a [u8],
}

/// A signature scheme: adds its headers to an outgoing delivery, and checks them on a received
/// one.
///
/// `secrets` are ordered newest first; during a rotation a scheme may sign with several.
pub trait Signer: Send + Sync + fmt::Debug {
    /// Adds the scheme's headers (id, event, timestamp and, when `secrets` is not empty, the
    /// signature) to `headers`.
    fn sign(&self, input: &SignInput<'_>, secrets: &[&Secret], headers: &mut HeaderMap);

    /// Checks a received request: `Ok` if a signature in `headers` matches `body` under one of
    /// the candidate `secrets` and, where the scheme signs a timestamp, that timestamp lies within
    /// `tolerance` of now.
    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        secrets: &[&Secret],
        tolerance: Duration,
    ) -> Result<(), VerifyError>;
}

/// A shared signer signs as the one it shares (so an `Arc<dyn Signer>` from a configuration can
/// be handed to anything that takes a `Signer`).
impl<S: Signer + ?Sized> Signer for std::sync::Arc<S> {
    fn sign(&self, input: &SignInput<'_>, secrets: &[&Secret], headers: &mut HeaderMap) {
        (**self).sign(input, secrets, headers);
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        secrets: &[&Secret],
        tolerance: Duration,
    ) -> Result<(), VerifyError> {
        (**self).verify(headers, body, secrets, tolerance)
    }
}

/// The tolerance receivers allow between a signed timestamp and their clock: 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

pub(crate) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, VerifyError> {
    let value = headers
        .get(name)
        .ok_or_else(|| VerifyError::MissingHeader {
            name: name.to_owned(),
        })?;
    // UTF-8 rather than `to_str`'s visible ASCII: a signer may send any value `HeaderValue`
    // takes (non-ASCII included), and what was signed must read back the same.
    std::str::from_utf8(value.as_bytes()).map_err(|_| VerifyError::MalformedHeader {
        name: name.to_owned(),
        reason: "not UTF-8",
    })
}

//! [`VerifyError`]: why a received webhook's signature was not accepted.

use std::time::Duration;

/// Why verification refused a request (receiver side: [`Verifier`](super::Verifier),
/// [`verify_sha256_hex`](super::verify_sha256_hex), [`Signer::verify`](super::Signer::verify)).
///
/// Its own type, apart from the sender's [`Error`](crate::Error): a receiver matches on
/// these few cases (and answers 400 for a malformed request, 401 otherwise) without meeting
/// store or queue failures. Messages name headers, never secrets or expected signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A signature header the scheme needs is absent.
    #[error("missing header {name}")]
    MissingHeader {
        /// The header name.
        name: String,
    },
    /// A signature or timestamp header that cannot be parsed.
    #[error("malformed header {name}: {reason}")]
    MalformedHeader {
        /// The header name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No signature in the request matches any of the candidate secrets.
    #[error("signature does not match the payload and secret")]
    BadSignature,
    /// The signed timestamp lies further in the past than the tolerance.
    #[error("timestamp {timestamp} is too old (tolerance {tolerance:?})")]
    TimestampTooOld {
        /// The signed unix timestamp.
        timestamp: i64,
        /// The accepted skew.
        tolerance: Duration,
    },
    /// The signed timestamp lies further in the future than the tolerance.
    #[error("timestamp {timestamp} is too far in the future (tolerance {tolerance:?})")]
    TimestampTooNew {
        /// The signed unix timestamp.
        timestamp: i64,
        /// The accepted skew.
        tolerance: Duration,
    },
    /// The verifier was given no secret to check against.
    #[error("no candidate secret to verify with: add one with Verifier::secret")]
    NoSecrets,
}

//! [`Verifier`]: checking a received delivery, the one implementation receivers, tests, examples
//! and the CLI share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use super::VerifyError;
use super::{DEFAULT_TOLERANCE, SignatureScheme, Signer};
use crate::error::Result;
use crate::secret::Secret;

/// Checks the signature of a received delivery: one scheme, one or more candidate secrets (all
/// accepted, for a receiver in the middle of a rotation), and a timestamp tolerance (default 5
/// minutes, both directions) where the scheme signs a timestamp.
///
/// Comparisons are constant-time. Errors are a [`VerifyError`]: missing or malformed header,
/// bad signature, timestamp too old or too new.
///
/// ```
/// use http::HeaderMap;
/// use fastapihooks_core::Secret;
/// use fastapihooks_core::signing::{SignInput, SignatureScheme, Verifier};
///
/// let secret = Secret::generate()?;
/// let body = br#"{"id":1}"#;
/// // What the sender does:
/// let mut headers = HeaderMap::new();
/// SignatureScheme::StandardWebhooks.signer().sign(
///     &SignInput { delivery_id: "dlv_1", event_name: "order.created",
///                  timestamp: chrono::Utc::now().timestamp(), body },
///     &[&secret],
///     &mut headers,
/// );
/// // What the receiver does:
/// let verifier = Verifier::new(SignatureScheme::StandardWebhooks).secret(secret);
/// verifier.verify(&headers, body)?;
/// assert!(verifier.verify(&headers, b"tampered").is_err());
/// # Ok::<(), fastapihooks_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    signer: Arc<dyn Signer>,
    secrets: Vec<Secret>,
    tolerance: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("signer", &self.signer)
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Verifier {
    /// A verifier of a built-in scheme, with no secret yet.
    pub fn new(scheme: SignatureScheme) -> Self {
        Self::with_signer(Arc::new(SchemeSigner(scheme)))
    }

    /// A verifier of any scheme, e.g. a [`Sha256Hex`](super::Sha256Hex) with renamed headers.
    pub fn with_signer(signer: Arc<dyn Signer>) -> Self {
        Self {
            signer,
            secrets: Vec::new(),
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Adds a candidate secret; a signature under any candidate is accepted.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Adds several candidate secrets.
    pub fn secrets(mut self, secrets: impl IntoIterator<Item = Secret>) -> Self {
        self.secrets.extend(secrets);
        self
    }

    /// How far a signed timestamp may lie from this machine's clock, either way. Default 5
    /// minutes.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// `Ok` if `headers` carry a signature of `body` under one of the candidate secrets, with a
    /// timestamp within the tolerance.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        if self.secrets.is_empty() {
            return Err(VerifyError::NoSecrets);
        }
        let candidates: Vec<&Secret> = self.secrets.iter().collect();
        self.signer
            .verify(headers, body, &candidates, self.tolerance)
    }
}

/// A built-in scheme's static signer behind an `Arc<dyn Signer>`.
#[derive(Debug)]
struct SchemeSigner(SignatureScheme);

impl Signer for SchemeSigner {
    fn sign(&self, input: &super::SignInput<'_>, secrets: &[&Secret], headers: &mut HeaderMap) {
        self.0.signer().sign(input, secrets, headers)
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        secrets: &[&Secret],
        tolerance: Duration,
    ) -> Result<(), VerifyError> {
        self.0.signer().verify(headers, body, secrets, tolerance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{Sha256Hex, SignInput};

    fn secret(s: &str) -> Secret {
        Secret::new(s).unwrap()
    }

    fn signed(scheme: SignatureScheme, secrets: &[&Secret], timestamp: i64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        scheme.signer().sign(
            &SignInput {
                delivery_id: "dlv_01HZY2Q4Z8N3V5W7X9Y1Z3A5B7",
                event_name: "order.created",
                timestamp,
                body: b"{}",
            },
            secrets,
            &mut headers,
        );
        headers
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn both_schemes_verify_what_they_signed() {
        let s = secret("whsec_dmVyaWZpZXJ2ZXJpZmllcg==");
        for scheme in SignatureScheme::ALL {
            let headers = signed(scheme, &[&s], now());
            Verifier::new(scheme)
                .secret(s.clone())
                .verify(&headers, b"{}")
                .unwrap();
        }
    }

    #[test]
    fn any_candidate_secret_is_accepted() {
        let (old, new) = (secret("old-secret"), secret("new-secret"));
        for scheme in SignatureScheme::ALL {
            let headers = signed(scheme, &[&old], now());
            Verifier::new(scheme)
                .secrets([new.clone(), old.clone()])
                .verify(&headers, b"{}")
                .unwrap();
        }
    }

    #[test]
    fn a_wrong_secret_is_a_bad_signature() {
        for scheme in SignatureScheme::ALL {
            let headers = signed(scheme, &[&secret("right")], now());
            let err = Verifier::new(scheme)
                .secret(secret("wrong"))
                .verify(&headers, b"{}")
                .unwrap_err();
            assert!(matches!(err, VerifyError::BadSignature), "{scheme}: {err}");
        }
    }

    #[test]
    fn the_default_tolerance_is_five_minutes_both_ways() {
        let s = secret("whsec_dG9sZXJhbmNldG9sZXJhbmNl");
        let verifier = Verifier::new(SignatureScheme::StandardWebhooks).secret(s.clone());
        for ok in [now() - 290, now() + 290] {
            verifier
                .verify(&signed(SignatureScheme::StandardWebhooks, &[&s], ok), b"{}")
                .unwrap();
        }
        let old = signed(SignatureScheme::StandardWebhooks, &[&s], now() - 310);
        assert!(matches!(
            verifier.verify(&old, b"{}"),
            Err(VerifyError::TimestampTooOld { .. })
        ));
        let new = signed(SignatureScheme::StandardWebhooks, &[&s], now() + 310);
        assert!(matches!(
            verifier.verify(&new, b"{}"),
            Err(VerifyError::TimestampTooNew { .. })
        ));
    }

    #[test]
    fn a_verifier_without_secrets_says_so() {
        let headers = signed(SignatureScheme::Sha256Hex, &[&secret("s")], now());
        let err = Verifier::new(SignatureScheme::Sha256Hex)
            .verify(&headers, b"{}")
            .unwrap_err();
        assert_eq!(err, VerifyError::NoSecrets);
    }

    #[test]
    fn a_custom_signer_verifies_with_its_own_header_names() {
        let github = Sha256Hex::new()
            .signature_header("X-Hub-Signature-256")
            .unwrap();
        let s = secret("It's a Secret to Everybody");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-hub-signature-256",
            http::HeaderValue::from_static(
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            ),
        );
        Verifier::with_signer(Arc::new(github))
            .secret(s)
            .verify(&headers, b"Hello, World!")
            .unwrap();
    }

    #[test]
    fn debug_output_counts_secrets_without_showing_them() {
        let verifier = Verifier::new(SignatureScheme::Sha256Hex).secret(secret("hunter2"));
        let debug = format!("{verifier:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("secrets: 1"), "{debug}");
    }
}

//! What the receiving commands (`verify`, `listen`) share: `--scheme` (how a received request is
//! signed), `--secret` (one or more candidates, for a rotation) and `--tolerance`, turned into
//! the core's [`Verifier`] — the same checks an axum receiver's `Verified<T>` makes.
//!
//! `start`'s `--signature-scheme` is for sending and only names the schemes this crate signs
//! with; receiving also checks GitHub's and Stripe's.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use fastapihooks_core::Secret;
use fastapihooks_core::signing::{
    Sha256Hex, Signer, StandardWebhooks, Stripe, Verifier, VerifyError,
};

use crate::commands::subscriptions::fields;

/// GitHub's signature header (`sha256=<hex>`, the scheme of `X-Fastapihooks-Signature`).
const GITHUB_SIGNATURE: &str = "X-Hub-Signature-256";

/// `--scheme`: how a received request is signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ReceiveScheme {
    /// `X-Fastapihooks-Signature: sha256=<hex HMAC-SHA256 of the body>`, as `fastapihooks start`
    /// and the library sign by default (no timestamp is signed, so --tolerance does not apply).
    #[default]
    Sha256,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`;
    /// a `whsec_<base64>` secret is base64-decoded to its key.
    StandardWebhooks,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` (no timestamp).
    Github,
    /// Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>`; the `whsec_…` endpoint secret is
    /// used as written.
    Stripe,
}

impl ReceiveScheme {
    /// The scheme's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::StandardWebhooks => "standard-webhooks",
            Self::Github => "github",
            Self::Stripe => "stripe",
        }
    }

    /// The core signer that checks the scheme.
    pub fn signer(self) -> Arc<dyn Signer> {
        match self {
            Self::Sha256 => Arc::new(Sha256Hex::new()),
            Self::StandardWebhooks => Arc::new(StandardWebhooks),
            Self::Github => match Sha256Hex::new().signature_header(GITHUB_SIGNATURE) {
                Ok(github) => Arc::new(github),
                // A constant, valid header name: renaming to it cannot fail.
                Err(_) => unreachable!("{GITHUB_SIGNATURE} is a valid header name"),
            },
            Self::Stripe => Arc::new(Stripe),
        }
    }

    /// A hint to add to a refusal, when the secrets make a common mistake likely: a Standard
    /// Webhooks secret without its `whsec_` prefix is used as raw bytes, which no sender
    /// following the specification signs with.
    pub fn hint(self, error: &VerifyError, secrets: &[Secret]) -> Option<&'static str> {
        let raw = secrets.iter().any(|s| !s.expose().starts_with("whsec_"));
        (self == Self::StandardWebhooks && *error == VerifyError::BadSignature && raw).then_some(
            "a Standard Webhooks secret is normally `whsec_<base64>`: without the prefix it \
             is used as raw bytes, not decoded",
        )
    }
}

/// `--secret` and `--tolerance`, flattened into `verify` and `listen`.
#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// A secret the sender signs with. Repeat it during a rotation: a signature under any of
    /// them is accepted.
    #[arg(
        long = "secret",
        value_name = "SECRET",
        value_parser = fields::secret,
        env = "FASTAPIHOOKS_SECRET",
        hide_env_values = true
    )]
    pub secrets: Vec<Secret>,
    /// How far a signed timestamp may lie from this machine's clock, either way (schemes that
    /// sign one: standard-webhooks, stripe).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        value_parser = humantime::parse_duration
    )]
    pub tolerance: Duration,
}

impl ReceiveArgs {
    /// The verifier of `scheme` with these secrets and tolerance, or `None` without a secret.
    pub fn verifier(&self, scheme: ReceiveScheme) -> Option<Verifier> {
        (!self.secrets.is_empty()).then(|| {
            Verifier::with_signer(scheme.signer())
                .secrets(self.secrets.iter().cloned())
                .tolerance(self.tolerance)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastapihooks_core::signing::DEFAULT_TOLERANCE;
    use http::HeaderMap;

    #[test]
    fn github_checks_its_published_vector() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
                .parse()
                .unwrap(),
        );
        let args = ReceiveArgs {
            secrets: vec![Secret::new("It's a Secret to Everybody").unwrap()],
            tolerance: DEFAULT_TOLERANCE,
        };
        let verifier = args.verifier(ReceiveScheme::Github).unwrap();
        verifier.verify(&headers, b"Hello, World!").unwrap();
        assert_eq!(
            verifier.verify(&headers, b"Hello, World?"),
            Err(VerifyError::BadSignature)
        );
        assert!(matches!(
            args.verifier(ReceiveScheme::Sha256)
                .unwrap()
                .verify(&headers, b"Hello, World!"),
            Err(VerifyError::MissingHeader { .. })
        ));
    }

    #[test]
    fn no_secret_is_no_verifier() {
        let args = ReceiveArgs {
            secrets: Vec::new(),
            tolerance: DEFAULT_TOLERANCE,
        };
        assert!(args.verifier(ReceiveScheme::Stripe).is_none());
    }
}

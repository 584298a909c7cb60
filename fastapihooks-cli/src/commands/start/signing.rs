//! How `start` signs deliveries: `--signature-scheme` and the header-name flags, checked so that
//! receivers can verify what is sent (no reserved or repeated header name, a `whsec_` key for
//! Standard Webhooks).

use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use clap::ValueEnum;
use fastapihooks_core::Secret;
use fastapihooks_core::signing::{Sha256Hex, Signer, StandardWebhooks};

use super::StartArgs;

/// `--signature-scheme`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SignatureSchemeArg {
    /// `X-Fastapihooks-Signature: sha256=<hex HMAC-SHA256 of the body>` (fastapihooks- and
    /// GitHub-compatible); header names set with `--signature-header` and the like.
    #[default]
    Sha256,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`;
    /// the secret must be a `whsec_<base64>` key.
    StandardWebhooks,
}

/// Header names the delivery itself needs: a signature header may not take one.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "host",
    "transfer-encoding",
    "user-agent",
];

impl StartArgs {
    /// The signer `--signature-scheme` and the header flags describe.
    pub(super) fn signer(&self, secret: Option<&Secret>) -> anyhow::Result<Arc<dyn Signer>> {
        let headers = [
            (
                "--signature-header",
                &self.signature_header,
                "x-fastapihooks-signature",
            ),
            ("--event-header", &self.event_header, "x-fastapihooks-event"),
            ("--id-header", &self.id_header, "x-fastapihooks-id"),
            (
                "--timestamp-header",
                &self.timestamp_header,
                "x-fastapihooks-timestamp",
            ),
        ];
        match self.signature_scheme {
            SignatureSchemeArg::StandardWebhooks => {
                if let Some((flag, _, _)) = headers.iter().find(|(_, name, _)| name.is_some()) {
                    anyhow::bail!(
                        "{flag} cannot be used with --signature-scheme standard-webhooks: that \
                         scheme's header names are fixed by its specification (webhook-id, \
                         webhook-timestamp, webhook-signature), and receivers look for exactly \
                         those; header names can be chosen with --signature-scheme sha256"
                    );
                }
                if let Some(secret) = secret {
                    check_standard_webhooks_secret(secret)?;
                }
                Ok(Arc::new(StandardWebhooks))
            }
            SignatureSchemeArg::Sha256 => {
                let mut taken: Vec<(&str, String)> = Vec::new();
                for (flag, name, default) in &headers {
                    let name = name.as_deref().unwrap_or(default);
                    let lower = name.to_ascii_lowercase();
                    if RESERVED_HEADERS.contains(&lower.as_str()) {
                        anyhow::bail!(
                            "{flag} {name}: the delivery needs that header for itself; choose \
                             another name"
                        );
                    }
                    if let Some((other, _)) = taken.iter().find(|(_, n)| *n == lower) {
                        anyhow::bail!(
                            "{flag} {name}: {other} already names that header; each header \
                             needs a name of its own"
                        );
                    }
                    taken.push((flag, lower));
                }
                let mut signer = Sha256Hex::new();
                if let Some(name) = &self.signature_header {
                    signer = signer
                        .signature_header(name)
                        .with_context(|| format!("--signature-header {name}"))?;
                }
                if let Some(name) = &self.event_header {
                    signer = signer
                        .event_header(name)
                        .with_context(|| format!("--event-header {name}"))?;
                }
                if let Some(name) = &self.id_header {
                    signer = signer
                        .id_header(name)
                        .with_context(|| format!("--id-header {name}"))?;
                }
                if let Some(name) = &self.timestamp_header {
                    signer = signer
                        .timestamp_header(name)
                        .with_context(|| format!("--timestamp-header {name}"))?;
                }
                Ok(Arc::new(signer))
            }
        }
    }
}

/// Standard Webhooks receivers take the key from a `whsec_<base64>` secret: any other secret
/// would sign with a key no receiver derives. (The core signs a secret without the prefix with
/// its raw bytes, and one whose base64 is broken likewise, which no receiver reproduces.)
fn check_standard_webhooks_secret(secret: &Secret) -> anyhow::Result<()> {
    const HOW: &str = "make one with e.g. `echo whsec_$(openssl rand -base64 32)`";
    let Some(encoded) = secret.expose().strip_prefix("whsec_") else {
        anyhow::bail!(
            "--signing-secret: --signature-scheme standard-webhooks needs a `whsec_<base64>` \
             secret (Standard Webhooks receivers base64-decode what follows `whsec_` to get the \
             key, so another secret would not verify); {HOW}"
        );
    };
    match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(()),
        _ => anyhow::bail!(
            "--signing-secret: what follows `whsec_` is not a base64 key, so Standard Webhooks \
             receivers could not verify the signatures; {HOW}"
        ),
    }
}

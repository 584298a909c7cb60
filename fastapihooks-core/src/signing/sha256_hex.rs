//! The default scheme: `X-Fastapihooks-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use super::VerifyError;
use super::{SignInput, Signer, header_str};
use crate::error::{Error, Result};
use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of the raw body, hex-encoded, as fastapihooks and GitHub send it.
///
/// Headers: `X-Fastapihooks-Event`, `X-Fastapihooks-Id` (the delivery id),
/// `X-Fastapihooks-Timestamp` and, when a secret is set, `X-Fastapihooks-Signature`. Every name
/// can be changed, e.g. to GitHub's `X-Hub-Signature-256`. During a secret rotation it signs with
/// the newest secret only (this format carries one signature).
///
/// The timestamp is not covered by this signature, so verification does not check it; use
/// [`StandardWebhooks`](super::StandardWebhooks) when receivers need replay protection.
///
/// ```
/// use fastapihooks_core::signing::Sha256Hex;
/// let github = Sha256Hex::new().signature_header("X-Hub-Signature-256").unwrap();
/// # let _ = github;
/// ```
#[derive(Clone, Debug)]
pub struct Sha256Hex {
    signature: HeaderName,
    event: HeaderName,
    id: HeaderName,
    timestamp: HeaderName,
}

impl Default for Sha256Hex {
    fn default() -> Self {
        Self::new()
    }
}

fn header_name(name: &str) -> Result<HeaderName> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::InvalidHeader {
        name: name.to_owned(),
        reason: "not a valid HTTP header name",
    })
}

impl Sha256Hex {
    /// The scheme with the `X-Fastapihooks-*` header names.
    pub const fn new() -> Self {
        Self {
            signature: HeaderName::from_static("x-fastapihooks-signature"),
            event: HeaderName::from_static("x-fastapihooks-event"),
            id: HeaderName::from_static("x-fastapihooks-id"),
            timestamp: HeaderName::from_static("x-fastapihooks-timestamp"),
        }
    }

    /// Renames the signature header.
    pub fn signature_header(mut self, name: &str) -> Result<Self> {
        self.signature = header_name(name)?;
        Ok(self)
    }

    /// Renames the event-name header.
    pub fn event_header(mut self, name: &str) -> Result<Self> {
        self.event = header_name(name)?;
        Ok(self)
    }

    /// Renames the delivery-id header.
    pub fn id_header(mut self, name: &str) -> Result<Self> {
        self.id = header_name(name)?;
        Ok(self)
    }

    /// Renames the timestamp header.
    pub fn timestamp_header(mut self, name: &str) -> Result<Self> {
        self.timestamp = header_name(name)?;
        Ok(self)
    }
}

fn mac(secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(body);
    mac
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
///
/// ```
/// use fastapihooks_core::signing::sign_sha256_hex;
/// // GitHub's documented example.
/// assert_eq!(
///     sign_sha256_hex(b"It's a Secret to Everybody", b"Hello, World!"),
///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
/// );
/// ```
pub fn sign_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let mut buf = [0u8; SIGNATURE_LEN];
    signature_into(secret, body, &mut buf).to_owned()
}

/// `sha256=` and 64 hexadecimal digits.
const SIGNATURE_LEN: usize = 7 + 64;

/// The signature written into `buf`: no allocation until the header value is made.
fn signature_into<'b>(secret: &[u8], body: &[u8], buf: &'b mut [u8; SIGNATURE_LEN]) -> &'b str {
    buf[..7].copy_from_slice(b"sha256=");
    let digest = mac(secret, body).finalize().into_bytes();
    // 32 bytes always fill 64 digits exactly: the encoding cannot fail.
    let _ = hex::encode_to_slice(digest, &mut buf[7..]);
    // Every byte is ASCII: the prefix and hexadecimal digits.
    std::str::from_utf8(buf).unwrap_or_default()
}

/// Checks a `sha256=<hex>` header value against `body` and `secret`, in constant time.
pub fn verify_sha256_hex(
    secret: &[u8],
    body: &[u8],
    header_value: &str,
) -> Result<(), VerifyError> {
    let malformed = |reason| VerifyError::MalformedHeader {
        name: "signature".to_owned(),
        reason,
    };
    let hex_sig = header_value
        .trim()
        .strip_prefix("sha256=")
        .ok_or_else(|| malformed("expected `sha256=<hex>`"))?;
    let mut raw = [0u8; 32];
    hex::decode_to_slice(hex_sig, &mut raw)
        .map_err(|_| malformed("expected 64 hexadecimal digits after `sha256=`"))?;
    mac(secret, body)
        .verify_slice(&raw)
        .map_err(|_| VerifyError::BadSignature)
}

impl Signer for Sha256Hex {
    fn sign(&self, input: &SignInput<'_>, secrets: &[&Secret], headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(input.event_name) {
            headers.insert(self.event.clone(), v);
        }
        if let Ok(v) = HeaderValue::from_str(input.delivery_id) {
            headers.insert(self.id.clone(), v);
        }
        headers.insert(self.timestamp.clone(), HeaderValue::from(input.timestamp));
        if let Some(secret) = secrets.first() {
            let mut buf = [0u8; SIGNATURE_LEN];
            let sig = signature_into(secret.expose().as_bytes(), input.body, &mut buf);
            if let Ok(v) = HeaderValue::from_str(sig) {
                headers.insert(self.signature.clone(), v);
            }
        }
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        secrets: &[&Secret],
        _tolerance: Duration,
    ) -> Result<(), VerifyError> {
        let value = header_str(headers, self.signature.as_str())?;
        let mut last = VerifyError::BadSignature;
        for secret in secrets {
            match verify_sha256_hex(secret.expose().as_bytes(), body, value) {
                Ok(()) => return Ok(()),
                Err(VerifyError::MalformedHeader { reason, .. }) => {
                    return Err(VerifyError::MalformedHeader {
                        name: self.signature.as_str().to_owned(),
                        reason,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITHUB_SECRET: &[u8] = b"It's a Secret to Everybody";
    const GITHUB_SIG: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_documented_vector() {
        assert_eq!(sign_sha256_hex(GITHUB_SECRET, b"Hello, World!"), GITHUB_SIG);
        verify_sha256_hex(GITHUB_SECRET, b"Hello, World!", GITHUB_SIG).unwrap();
    }

    #[test]
    fn a_changed_body_or_secret_fails_verification() {
        assert!(matches!(
            verify_sha256_hex(GITHUB_SECRET, b"Hello, World?", GITHUB_SIG),
            Err(VerifyError::BadSignature)
        ));
        assert!(matches!(
            verify_sha256_hex(b"other", b"Hello, World!", GITHUB_SIG),
            Err(VerifyError::BadSignature)
        ));
    }

    #[test]
    fn malformed_signatures_are_told_apart_from_wrong_ones() {
        for bad in [
            "757107ea",
            "sha256=zz",
            "sha256=",
            "sha1=abc",
            &GITHUB_SIG[..70],
        ] {
            assert!(
                matches!(
                    verify_sha256_hex(GITHUB_SECRET, b"Hello, World!", bad),
                    Err(VerifyError::MalformedHeader { .. })
                ),
                "{bad}"
            );
        }
    }

    fn signed_headers(scheme: &Sha256Hex, secret: &Secret, body: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let input = SignInput {
            delivery_id: "dlv_01HZY2Q4Z8N3V5W7X9Y1Z3A5B7",
            event_name: "order.created",
            timestamp: 1_700_000_000,
            body,
        };
        scheme.sign(&input, &[secret], &mut headers);
        headers
    }

    #[test]
    fn sign_sets_all_headers_and_verify_accepts_them() {
        let scheme = Sha256Hex::new();
        let secret = Secret::new("k").unwrap();
        let headers = signed_headers(&scheme, &secret, b"{}");
        assert_eq!(headers["x-fastapihooks-event"], "order.created");
        assert_eq!(
            headers["x-fastapihooks-id"],
            "dlv_01HZY2Q4Z8N3V5W7X9Y1Z3A5B7"
        );
        assert_eq!(headers["x-fastapihooks-timestamp"], "1700000000");
        scheme
            .verify(&headers, b"{}", &[&secret], Duration::ZERO)
            .unwrap();
    }

    #[test]
    fn header_names_are_configurable() {
        let scheme = Sha256Hex::new()
            .signature_header("X-Hub-Signature-256")
            .unwrap();
        let secret = Secret::new("k").unwrap();
        let headers = signed_headers(&scheme, &secret, b"{}");
        assert!(headers.contains_key("x-hub-signature-256"));
        assert!(!headers.contains_key("x-fastapihooks-signature"));
        assert!(Sha256Hex::new().signature_header("bad name").is_err());
    }

    #[test]
    fn verify_tries_every_candidate_secret() {
        let scheme = Sha256Hex::new();
        let new = Secret::new("new").unwrap();
        let old = Secret::new("old").unwrap();
        let headers = signed_headers(&scheme, &old, b"x");
        scheme
            .verify(&headers, b"x", &[&new, &old], Duration::ZERO)
            .unwrap();
        assert!(matches!(
            scheme.verify(&headers, b"x", &[&new], Duration::ZERO),
            Err(VerifyError::BadSignature)
        ));
    }

    #[test]
    fn a_missing_signature_header_is_named() {
        let err = Sha256Hex::new()
            .verify(&HeaderMap::new(), b"", &[], Duration::ZERO)
            .unwrap_err();
        assert!(
            matches!(&err, VerifyError::MissingHeader { name } if name == "x-fastapihooks-signature")
        );
    }
}

//! The [Standard Webhooks](https://www.standardwebhooks.com/) scheme:
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;

use super::VerifyError;
use super::{SignInput, Signer, header_str};
use crate::error::Result;
use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";

/// Standard Webhooks signatures: `webhook-id`, `webhook-timestamp` and `webhook-signature`, the
/// latter holding one `v1,<base64>` per secret during a rotation (space-separated).
///
/// Secrets in the `whsec_<base64>` form are decoded to their key bytes; any other secret is used
/// as raw bytes. [`Secret::generate`] makes `whsec_` secrets.
///
/// ```
/// use std::time::Duration;
/// use fastapihooks_core::{Secret, signing::{SignInput, Signer, StandardWebhooks}};
///
/// let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
/// assert_eq!(
///     StandardWebhooks.signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#),
///     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/// );
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct StandardWebhooks;

/// The HMAC of `id.timestamp.body` under the secret's key: the base64 after `whsec_` decoded
/// (on the stack when it fits, as every generated secret does), else the secret's bytes.
fn mac(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let s = secret.expose();
    let mut decoded = [0u8; 96];
    let longer: Vec<u8>;
    let key: &[u8] = match s.strip_prefix("whsec_") {
        Some(b64) => match B64.decode_slice(b64, &mut decoded) {
            Ok(n) => &decoded[..n],
            Err(base64::DecodeSliceError::OutputSliceTooSmall) => match B64.decode(b64) {
                Ok(bytes) => {
                    longer = bytes;
                    &longer
                }
                Err(_) => s.as_bytes(),
            },
            Err(base64::DecodeSliceError::DecodeError(_)) => s.as_bytes(),
        },
        None => s.as_bytes(),
    };
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    // An i64 has at most 20 characters: written on the stack.
    let mut digits = [0u8; 20];
    let mut cursor = std::io::Cursor::new(&mut digits[..]);
    let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{timestamp}"));
    let written = cursor.position() as usize;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(&digits[..written]);
    mac.update(b".");
    mac.update(body);
    mac
}

/// Appends `v1,<base64>` to `out`.
fn push_signature(out: &mut String, secret: &Secret, id: &str, timestamp: i64, body: &[u8]) {
    out.push_str("v1,");
    let digest = mac(secret, id, timestamp, body).finalize().into_bytes();
    B64.encode_string(digest, out);
}

impl StandardWebhooks {
    /// One `v1,<base64>` signature.
    pub fn signature(&self, secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut out = String::with_capacity(SIGNATURE_LEN);
        push_signature(&mut out, secret, id, timestamp, body);
        out
    }
}

/// `v1,` and the 44 base64 characters of a SHA-256 HMAC.
const SIGNATURE_LEN: usize = 3 + 44;

impl Signer for StandardWebhooks {
    fn sign(&self, input: &SignInput<'_>, secrets: &[&Secret], headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(input.delivery_id) {
            headers.insert(ID, v);
        }
        headers.insert(TIMESTAMP, HeaderValue::from(input.timestamp));
        if !secrets.is_empty() {
            // `v1,<base64>` per secret, space-separated, written into one buffer that becomes
            // the header value without a copy.
            let mut value = String::with_capacity(secrets.len() * SIGNATURE_LEN + secrets.len());
            for (i, secret) in secrets.iter().enumerate() {
                if i > 0 {
                    value.push(' ');
                }
                push_signature(
                    &mut value,
                    secret,
                    input.delivery_id,
                    input.timestamp,
                    input.body,
                );
            }
            if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
                headers.insert(SIGNATURE, v);
            }
        }
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        secrets: &[&Secret],
        tolerance: Duration,
    ) -> Result<(), VerifyError> {
        let id = header_str(headers, ID)?;
        let ts_raw = header_str(headers, TIMESTAMP)?;
        let sig_header = header_str(headers, SIGNATURE)?;
        let timestamp: i64 = ts_raw
            .trim()
            .parse()
            .map_err(|_| VerifyError::MalformedHeader {
                name: TIMESTAMP.to_owned(),
                reason: "expected unix seconds",
            })?;
        check_timestamp(timestamp, tolerance)?;
        let mut candidates = Vec::new();
        for part in sig_header.split_whitespace() {
            let Some((version, sig)) = part.split_once(',') else {
                return Err(VerifyError::MalformedHeader {
                    name: SIGNATURE.to_owned(),
                    reason: "expected space-separated `v1,<base64>` entries",
                });
            };
            if let (true, Ok(raw)) = (version == "v1", B64.decode(sig)) {
                candidates.push(raw);
            }
        }
        if candidates.is_empty() {
            return Err(VerifyError::MalformedHeader {
                name: SIGNATURE.to_owned(),
                reason: "no `v1,<base64>` signature",
            });
        }
        let ok = secrets.iter().any(|secret| {
            let expected = mac(secret, id, timestamp, body);
            candidates
                .iter()
                .any(|c| expected.clone().verify_slice(c).is_ok())
        });
        if ok {
            Ok(())
        } else {
            Err(VerifyError::BadSignature)
        }
    }
}

/// `Ok` when a signed `timestamp` lies within `tolerance` of this machine's clock, either way.
pub(super) fn check_timestamp(timestamp: i64, tolerance: Duration) -> Result<(), VerifyError> {
    let now = chrono::Utc::now().timestamp();
    let tol = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if timestamp < now.saturating_sub(tol) {
        return Err(VerifyError::TimestampTooOld {
            timestamp,
            tolerance,
        });
    }
    if timestamp > now.saturating_add(tol) {
        return Err(VerifyError::TimestampTooNew {
            timestamp,
            tolerance,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `v1,` + base64 of HMAC-SHA256(`key`, `id.timestamp.body`), computed here from the spec.
    fn expected(key: &[u8], signed: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(signed);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn a_key_longer_than_the_stack_buffer_signs_with_all_its_decoded_bytes() {
        let key: Vec<u8> = (0..120u8).collect();
        let long = Secret::new(format!("whsec_{}", B64.encode(&key))).unwrap();
        assert_eq!(
            StandardWebhooks.signature(&long, "msg_1", 1614265330, b"{}"),
            expected(&key, b"msg_1.1614265330.{}")
        );
    }

    #[test]
    fn a_whsec_secret_that_is_not_base64_signs_with_its_own_bytes() {
        let raw = Secret::new("whsec_not*base64").unwrap();
        assert_eq!(
            StandardWebhooks.signature(&raw, "msg_1", -5, b"x"),
            expected(b"whsec_not*base64", b"msg_1.-5.x")
        );
    }

    fn secret(s: &str) -> Secret {
        Secret::new(s).unwrap()
    }

    #[test]
    fn spec_vector_one() {
        let sig = StandardWebhooks.signature(
            &secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn spec_vector_two() {
        let sig = StandardWebhooks.signature(
            &secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    fn signed(secrets: &[&Secret], timestamp: i64, body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        StandardWebhooks.sign(
            &SignInput {
                delivery_id: "dlv_x",
                event_name: "e",
                timestamp,
                body,
            },
            secrets,
            &mut h,
        );
        h
    }

    #[test]
    fn rotation_signs_with_every_secret_and_either_verifies() {
        let (new, old) = (
            secret("whsec_bmV3bmV3bmV3bmV3"),
            secret("whsec_b2xkb2xkb2xkb2xk"),
        );
        let now = chrono::Utc::now().timestamp();
        let h = signed(&[&new, &old], now, b"{}");
        assert_eq!(h[SIGNATURE].to_str().unwrap().split(' ').count(), 2);
        for s in [&new, &old] {
            StandardWebhooks
                .verify(&h, b"{}", &[s], Duration::from_secs(300))
                .unwrap();
        }
        let other = secret("whsec_b3RoZXJvdGhlcg==");
        assert!(matches!(
            StandardWebhooks.verify(&h, b"{}", &[&other], Duration::from_secs(300)),
            Err(VerifyError::BadSignature)
        ));
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused_both_ways() {
        let s = secret("whsec_a2V5a2V5a2V5");
        let now = chrono::Utc::now().timestamp();
        let tol = Duration::from_secs(300);
        let old = signed(&[&s], now - 600, b"{}");
        assert!(matches!(
            StandardWebhooks.verify(&old, b"{}", &[&s], tol),
            Err(VerifyError::TimestampTooOld { .. })
        ));
        let new = signed(&[&s], now + 600, b"{}");
        assert!(matches!(
            StandardWebhooks.verify(&new, b"{}", &[&s], tol),
            Err(VerifyError::TimestampTooNew { .. })
        ));
    }

    #[test]
    fn malformed_signature_headers_are_typed() {
        let s = secret("whsec_a2V5a2V5a2V5");
        let mut h = signed(&[&s], chrono::Utc::now().timestamp(), b"{}");
        h.insert(SIGNATURE, HeaderValue::from_static("garbage"));
        assert!(matches!(
            StandardWebhooks.verify(&h, b"{}", &[&s], DEFAULT),
            Err(VerifyError::MalformedHeader { .. })
        ));
        h.remove(TIMESTAMP);
        assert!(matches!(
            StandardWebhooks.verify(&h, b"{}", &[&s], DEFAULT),
            Err(VerifyError::MissingHeader { .. })
        ));
    }

    /// Regression (found by the `signature_verify` fuzz target): an id with non-ASCII
    /// characters was sent, but the verifier refused to read it back.
    #[test]
    fn a_non_ascii_id_that_was_signed_verifies() {
        let s = secret("whsec_a2V5a2V5a2V5");
        let mut h = HeaderMap::new();
        StandardWebhooks.sign(
            &SignInput {
                delivery_id: "msg_t\u{e9}st\u{29a}",
                event_name: "e",
                timestamp: chrono::Utc::now().timestamp(),
                body: b"{}",
            },
            &[&s],
            &mut h,
        );
        assert!(h.contains_key(ID));
        StandardWebhooks.verify(&h, b"{}", &[&s], DEFAULT).unwrap();
    }

    const DEFAULT: Duration = crate::signing::DEFAULT_TOLERANCE;
}

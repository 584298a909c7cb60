//! Stripe's scheme, for receiving Stripe's webhooks (and sending to receivers that expect it):
//! `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.body")>`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;

use super::VerifyError;
use super::standard_webhooks::check_timestamp;
use super::{SignInput, Signer, header_str};
use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

const SIGNATURE: &str = "stripe-signature";

/// Stripe signatures: one `Stripe-Signature` header holding the signing time `t` and one `v1`
/// signature per secret (Stripe sends several while an endpoint secret is being rolled). The
/// signed message is `"{t}.{raw body}"`; the key is the endpoint secret (`whsec_…`) as it is
/// written, not decoded. Verification accepts any `v1` under any candidate secret, ignores other
/// schemes in the header (`v0`), and checks `t` against the tolerance (Stripe's libraries use 5
/// minutes, the [`Verifier`](super::Verifier)'s default).
///
/// ```
/// use fastapihooks_core::Secret;
/// use fastapihooks_core::signing::{Stripe, Verifier};
/// use std::sync::Arc;
///
/// let secret = Secret::new("whsec_test_secret")?;
/// let body = br#"{"id":"evt_1","type":"charge.succeeded"}"#;
/// let now = chrono::Utc::now().timestamp();
/// let mut headers = http::HeaderMap::new();
/// headers.insert("stripe-signature", Stripe.header(&[&secret], now, body).parse().unwrap());
///
/// let verifier = Verifier::with_signer(Arc::new(Stripe)).secret(secret);
/// verifier.verify(&headers, body)?;
/// assert!(verifier.verify(&headers, b"{}").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Stripe;

fn mac(secret: &Secret, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = match HmacSha256::new_from_slice(secret.expose().as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

impl Stripe {
    /// The `Stripe-Signature` value for `body` signed at `timestamp`: `t=…` then one `v1=…`
    /// per secret.
    pub fn header(&self, secrets: &[&Secret], timestamp: i64, body: &[u8]) -> String {
        let mut value = format!("t={timestamp}");
        for secret in secrets {
            value.push_str(",v1=");
            value.push_str(&hex::encode(
                mac(secret, timestamp, body).finalize().into_bytes(),
            ));
        }
        value
    }
}

impl Signer for Stripe {
    fn sign(&self, input: &SignInput<'_>, secrets: &[&Secret], headers: &mut HeaderMap) {
        let value = self.header(secrets, input.timestamp, input.body);
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(SIGNATURE, v);
        }
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        secrets: &[&Secret],
        tolerance: Duration,
    ) -> Result<(), VerifyError> {
        let value = header_str(headers, SIGNATURE)?;
        let malformed = |reason| VerifyError::MalformedHeader {
            name: SIGNATURE.to_owned(),
            reason,
        };
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for item in value.split(',') {
            let (key, val) = item
                .trim()
                .split_once('=')
                .ok_or_else(|| malformed("expected `key=value` items"))?;
            match key {
                "t" => {
                    let t = val
                        .parse::<i64>()
                        .map_err(|_| malformed("`t` is not a unix timestamp"))?;
                    timestamp = Some(t);
                }
                "v1" => {
                    let mut raw = [0u8; 32];
                    hex::decode_to_slice(val, &mut raw)
                        .map_err(|_| malformed("`v1` is not 64 hexadecimal digits"))?;
                    signatures.push(raw);
                }
                _ => {} // other schemes (`v0`, test-mode extras) are not checked
            }
        }
        let timestamp = timestamp.ok_or_else(|| malformed("no `t=` timestamp"))?;
        if signatures.is_empty() {
            return Err(malformed("no `v1=` signature"));
        }
        check_timestamp(timestamp, tolerance)?;
        let ok = secrets.iter().any(|secret| {
            let expected = mac(secret, timestamp, body);
            signatures
                .iter()
                .any(|sig| expected.clone().verify_slice(sig).is_ok())
        });
        if ok {
            Ok(())
        } else {
            Err(VerifyError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::signing::Verifier;

    const SECRET: &str = "whsec_stripe_endpoint_secret";
    const BODY: &[u8] =
        br#"{"id":"evt_1NG8Du2eZvKYlo2C","object":"event","type":"charge.succeeded"}"#;

    /// Stripe's algorithm written out here, apart from the code under test: HMAC-SHA256 keyed
    /// with the secret's text over `"{t}.{body}"`, hex.
    fn independently_signed(secret: &str, t: i64, body: &[u8]) -> String {
        let mut message = t.to_string().into_bytes();
        message.push(b'.');
        message.extend_from_slice(body);
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&message);
        hex::encode(mac.finalize().into_bytes())
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("Stripe-Signature", value.parse().unwrap());
        headers
    }

    fn verifier(secrets: &[&str]) -> Verifier {
        Verifier::with_signer(Arc::new(Stripe))
            .secrets(secrets.iter().map(|s| Secret::new(*s).unwrap()))
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn an_independently_computed_signature_verifies() {
        let t = now();
        let v1 = independently_signed(SECRET, t, BODY);
        let value = format!(
            "t={t},v1={v1},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
        );
        verifier(&[SECRET]).verify(&headers(&value), BODY).unwrap();
    }

    #[test]
    fn the_header_it_writes_is_stripes() {
        let t = now();
        let secret = Secret::new(SECRET).unwrap();
        let expected = format!("t={t},v1={}", independently_signed(SECRET, t, BODY));
        assert_eq!(Stripe.header(&[&secret], t, BODY), expected);
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let t = now();
        let value = format!("t={t},v1={}", independently_signed(SECRET, t, BODY));
        let err = verifier(&[SECRET])
            .verify(&headers(&value), b"{}")
            .unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature), "{err}");
    }

    #[test]
    fn another_secret_is_refused() {
        let t = now();
        let value = format!("t={t},v1={}", independently_signed("whsec_other", t, BODY));
        let err = verifier(&[SECRET])
            .verify(&headers(&value), BODY)
            .unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature), "{err}");
    }

    #[test]
    fn a_signature_older_than_five_minutes_is_refused() {
        let t = now() - 301;
        let value = format!("t={t},v1={}", independently_signed(SECRET, t, BODY));
        let err = verifier(&[SECRET])
            .verify(&headers(&value), BODY)
            .unwrap_err();
        assert!(matches!(err, VerifyError::TimestampTooOld { .. }), "{err}");
    }

    #[test]
    fn during_a_roll_either_secret_verifies() {
        let t = now();
        // Stripe signs with both the old and the new secret while one is rolled.
        let value = format!(
            "t={t},v1={},v1={}",
            independently_signed("whsec_old", t, BODY),
            independently_signed("whsec_new", t, BODY)
        );
        verifier(&["whsec_new"])
            .verify(&headers(&value), BODY)
            .unwrap();
        verifier(&["whsec_old"])
            .verify(&headers(&value), BODY)
            .unwrap();
        // And a receiver holding both accepts a header signed with either alone.
        let only_new = format!("t={t},v1={}", independently_signed("whsec_new", t, BODY));
        verifier(&["whsec_old", "whsec_new"])
            .verify(&headers(&only_new), BODY)
            .unwrap();
    }

    #[test]
    fn a_header_without_a_timestamp_or_a_v1_is_malformed() {
        for value in ["v1=00", "t=1", "t=abc,v1=00", "garbage"] {
            let err = verifier(&[SECRET])
                .verify(&headers(value), BODY)
                .unwrap_err();
            assert!(
                matches!(err, VerifyError::MalformedHeader { .. }),
                "{value}: {err}"
            );
        }
    }

    #[test]
    fn a_missing_header_is_named() {
        let err = verifier(&[SECRET])
            .verify(&HeaderMap::new(), BODY)
            .unwrap_err();
        assert!(err.to_string().contains("stripe-signature"), "{err}");
    }
}

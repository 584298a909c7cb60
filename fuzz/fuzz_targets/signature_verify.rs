//! Signature headers from the wire: parsing and verification must never panic, and whatever a
//! scheme signs it must verify.
//!
//! Input: lines `webhook-id`, `webhook-timestamp`, `webhook-signature`,
//! `x-fastapihooks-signature`, secret; the rest is the body.
#![no_main]

use std::time::Duration;

use fastapihooks_core::Secret;
use fastapihooks_core::signing::{SignInput, SignatureScheme, Verifier, verify_sha256_hex};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn line<'a>(parts: &mut impl Iterator<Item = &'a [u8]>) -> &'a [u8] {
    parts.next().unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(6, |b| *b == b'\n');
    let fields = [
        ("webhook-id", line(&mut parts)),
        ("webhook-timestamp", line(&mut parts)),
        ("webhook-signature", line(&mut parts)),
        ("x-fastapihooks-signature", line(&mut parts)),
    ];
    let secret_raw = line(&mut parts);
    let body = line(&mut parts);

    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(name, v);
        }
    }
    let secret = std::str::from_utf8(secret_raw)
        .ok()
        .and_then(|s| Secret::new(s).ok())
        .unwrap_or_else(|| Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap());

    // Arbitrary headers: any result, no panic.
    for scheme in SignatureScheme::ALL {
        let _ = Verifier::new(scheme)
            .secret(secret.clone())
            .tolerance(Duration::from_secs(
                u64::from(body.first().copied().unwrap_or(0)) * 3600,
            ))
            .verify(&headers, body);
    }
    if let Ok(value) = std::str::from_utf8(fields[3].1) {
        let _ = verify_sha256_hex(secret.expose().as_bytes(), body, value);
    }

    // What is signed verifies, under the secret that signed it.
    let id = std::str::from_utf8(fields[0].1).unwrap_or("msg_fuzz");
    let now = chrono::Utc::now().timestamp();
    for scheme in SignatureScheme::ALL {
        let mut signed = HeaderMap::new();
        scheme.signer().sign(
            &SignInput {
                delivery_id: id,
                event_name: "fuzz.event",
                timestamp: now,
                body,
            },
            &[&secret],
            &mut signed,
        );
        if HeaderValue::from_str(id).is_err() {
            continue; // an id that cannot travel in a header is never sent
        }
        if let Err(e) = Verifier::new(scheme)
            .secret(secret.clone())
            .verify(&signed, body)
        {
            panic!("{scheme} did not verify its own signature: {e}");
        }
    }
});

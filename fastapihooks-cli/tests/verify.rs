//! `fastapihooks verify`: the real binary checks requests saved to a file (or given on stdin, or
//! as `--body` and `--header`), signed in the test with HMAC-SHA256 computed here, apart from
//! the core — and GitHub's published example.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tempfile::NamedTempFile;

/// GitHub's published example: this secret signs this body with this signature.
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITHUB_BODY: &[u8] = b"Hello, World!";
const GITHUB_SIGNATURE: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

/// A Standard Webhooks secret, and a second one for a rotation.
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WHSEC_NEW: &str = "whsec_bmV3LXN0YW5kYXJkLXdlYmhvb2tzLWtleS0zMmI=";

const BODY: &[u8] = br#"{"type":"order.created","data":{"id":42}}"#;

/// HMAC-SHA256 of `message` under `key`.
fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Now, in unix seconds.
fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

/// The Standard Webhooks headers of `body` signed by `secret` (`whsec_<base64 key>`) at `at`.
fn standard_webhooks(secret: &str, at: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
    let signed = [format!("{id}.{at}.").as_bytes(), body].concat();
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", at.to_string()),
        (
            "webhook-signature",
            format!("v1,{}", B64.encode(hmac(&key, &signed))),
        ),
    ]
}

/// A saved request: a request line, `headers` and a content type, a blank line, `body`; the
/// head's lines ending in `eol`.
fn saved(headers: &[(&str, String)], body: &[u8], eol: &str) -> Vec<u8> {
    let mut text = format!("POST /webhooks HTTP/1.1{eol}Content-Type: application/json{eol}");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}{eol}"));
    }
    text.push_str(eol);
    [text.as_bytes(), body].concat()
}

/// `bytes` in a file of the test's own.
fn file(bytes: &[u8]) -> NamedTempFile {
    let file = NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file
}

/// `fastapihooks verify <args>`, with no secret from the environment.
fn verify(args: &[&str]) -> assert_cmd::Command {
    let mut cmd = support::fastapihooks();
    cmd.env_remove("FASTAPIHOOKS_SECRET")
        .arg("verify")
        .args(args);
    cmd
}

/// Runs `cmd` expecting exit code `code`; returns its stdout and stderr.
fn outcome(cmd: &mut assert_cmd::Command, code: i32) -> (String, String) {
    let assert = cmd.assert().code(code);
    let output = assert.get_output();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// GitHub's example request, with `body`.
fn github_request(body: &[u8]) -> NamedTempFile {
    let headers = [("X-Hub-Signature-256", GITHUB_SIGNATURE.to_owned())];
    file(&saved(&headers, body, "\r\n"))
}

#[test]
fn githubs_published_example_verifies() {
    let request = github_request(GITHUB_BODY);
    let path = request.path().to_str().unwrap();
    let (stdout, _) = outcome(
        &mut verify(&["--scheme", "github", "--secret", GITHUB_SECRET, path]),
        0,
    );
    assert!(stdout.contains("verified"), "{stdout}");
}

#[test]
fn a_tampered_body_does_not_verify() {
    let request = github_request(b"Hello, World?");
    let path = request.path().to_str().unwrap();
    let (_, stderr) = outcome(
        &mut verify(&["--scheme", "github", "--secret", GITHUB_SECRET, path]),
        1,
    );
    assert!(stderr.contains("signature does not match"), "{stderr}");
}

#[test]
fn a_wrong_secret_does_not_verify() {
    let signature = format!("sha256={}", hex::encode(hmac(b"the-right-secret", BODY)));
    let request = file(&saved(
        &[("X-Fastapihooks-Signature", signature)],
        BODY,
        "\r\n",
    ));
    let path = request.path().to_str().unwrap();
    let (_, stderr) = outcome(
        &mut verify(&["--scheme", "sha256", "--secret", "a-wrong-secret", path]),
        1,
    );
    assert!(stderr.contains("signature does not match"), "{stderr}");
}

#[test]
fn a_standard_webhooks_timestamp_an_hour_old_does_not_verify_and_is_named() {
    let headers = standard_webhooks(WHSEC, now() - 3600, BODY);
    let request = file(&saved(&headers, BODY, "\r\n"));
    let path = request.path().to_str().unwrap();
    let (_, stderr) = outcome(
        &mut verify(&["--scheme", "standard-webhooks", "--secret", WHSEC, path]),
        1,
    );
    assert!(stderr.contains("timestamp"), "{stderr}");
    assert!(stderr.contains("too old"), "{stderr}");
}

#[test]
fn a_rotated_secret_verifies_when_the_second_secret_signed() {
    let headers = standard_webhooks(WHSEC_NEW, now(), BODY);
    let request = file(&saved(&headers, BODY, "\r\n"));
    let path = request.path().to_str().unwrap();
    let (stdout, _) = outcome(
        &mut verify(&[
            "--scheme",
            "standard-webhooks",
            "--secret",
            WHSEC,
            "--secret",
            WHSEC_NEW,
            path,
        ]),
        0,
    );
    assert!(stdout.contains("verified"), "{stdout}");
}

#[test]
fn an_unreadable_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-request.http");
    let (_, stderr) = outcome(
        &mut verify(&[
            "--scheme",
            "github",
            "--secret",
            GITHUB_SECRET,
            missing.to_str().unwrap(),
        ]),
        2,
    );
    assert!(stderr.contains("no-such-request.http"), "{stderr}");
}

#[test]
fn what_is_not_a_saved_request_exits_2() {
    let request = file(BODY);
    let path = request.path().to_str().unwrap();
    let (_, stderr) = outcome(
        &mut verify(&["--scheme", "github", "--secret", GITHUB_SECRET, path]),
        2,
    );
    assert!(stderr.contains("not a saved HTTP request"), "{stderr}");
}

#[test]
fn a_missing_signature_header_is_named() {
    let request = file(&saved(&[], GITHUB_BODY, "\r\n"));
    let path = request.path().to_str().unwrap();
    let (_, stderr) = outcome(
        &mut verify(&["--scheme", "github", "--secret", GITHUB_SECRET, path]),
        1,
    );
    assert!(
        stderr.contains("missing header x-hub-signature-256"),
        "{stderr}"
    );
}

#[test]
fn a_request_with_lf_lines_verifies_from_stdin() {
    let headers = standard_webhooks(WHSEC, now(), BODY);
    let (stdout, _) = outcome(
        verify(&["--scheme", "standard-webhooks", "--secret", WHSEC, "-"])
            .write_stdin(saved(&headers, BODY, "\n")),
        0,
    );
    assert!(stdout.contains("verified"), "{stdout}");
}

#[test]
fn a_body_with_a_final_newline_is_verified_as_it_is() {
    let body = b"{\"a\":1}\r\n\r\n";
    let signature = format!("sha256={}", hex::encode(hmac(b"secret", body)));
    let request = file(&saved(
        &[("X-Fastapihooks-Signature", signature)],
        body,
        "\n",
    ));
    let path = request.path().to_str().unwrap();
    outcome(
        &mut verify(&["--scheme", "sha256", "--secret", "secret", path]),
        0,
    );
}

#[test]
fn a_stripe_request_verifies() {
    let secret = "whsec_test_stripe_endpoint_secret";
    let at = now();
    let signed = [format!("{at}.").as_bytes(), BODY].concat();
    let header = format!(
        "t={at},v1={}",
        hex::encode(hmac(secret.as_bytes(), &signed))
    );
    let request = file(&saved(&[("Stripe-Signature", header)], BODY, "\r\n"));
    let path = request.path().to_str().unwrap();
    outcome(
        &mut verify(&["--scheme", "stripe", "--secret", secret, path]),
        0,
    );
}

#[test]
fn a_body_file_and_header_flags_verify() {
    let body = file(GITHUB_BODY);
    let header = format!("X-Hub-Signature-256: {GITHUB_SIGNATURE}");
    outcome(
        &mut verify(&[
            "--scheme",
            "github",
            "--secret",
            GITHUB_SECRET,
            "--body",
            body.path().to_str().unwrap(),
            "--header",
            &header,
        ]),
        0,
    );
}

#[test]
fn the_secret_can_come_from_the_environment() {
    let request = github_request(GITHUB_BODY);
    let path = request.path().to_str().unwrap();
    outcome(
        verify(&["--scheme", "github", path]).env("FASTAPIHOOKS_SECRET", GITHUB_SECRET),
        0,
    );
}

//! How `fastapihooks listen` prints a received request: a header line (time, method, path,
//! whether its signature verified — green or red on a terminal — and the status answered), what
//! a forward came to, the headers that matter to a webhook, then the body: JSON re-indented (its
//! keys and numbers as sent), other text as it is, anything else as a short hex dump.
//!
//! What a sender controls (path, header values, body) is printed with its control characters
//! escaped, so that a request cannot drive the terminal.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::HeaderMap;

use super::table::{Cell, Colour};
use super::time::{duration, size, timestamp};

/// The headers printed, in this order, when present: the content's, and each scheme's id,
/// event, timestamp and signature headers (this crate's, Standard Webhooks', GitHub's,
/// Stripe's).
pub const SHOWN_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "user-agent",
    "x-fastapihooks-id",
    "x-fastapihooks-event",
    "x-fastapihooks-timestamp",
    "x-fastapihooks-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-github-delivery",
    "x-github-event",
    "x-github-hook-id",
    "x-hub-signature-256",
    "stripe-signature",
];

/// Bytes of a binary body shown in hex.
const HEX_BYTES: usize = 64;

/// Whether a request's signature was checked, and how that went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It verified under this scheme (its name).
    Verified(&'static str),
    /// It was refused: why.
    Refused(String),
    /// Nothing was checked: no secret was given.
    Unchecked,
    /// It was not received (another path, another method): why.
    Ignored(String),
}

/// What forwarding a request came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forward {
    /// The URL answered with this status after this long.
    Answered {
        /// Where it was forwarded.
        url: String,
        /// The status answered.
        status: u16,
        /// How long the forward took.
        took: Duration,
    },
    /// The forward failed.
    Failed {
        /// Where it was forwarded.
        url: String,
        /// Why it failed.
        error: String,
    },
}

/// One received request, as printed.
#[derive(Debug)]
pub struct RequestView<'a> {
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// Its method.
    pub method: &'a str,
    /// Its path and query.
    pub target: &'a str,
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// Its body, as received (empty when it was not read).
    pub body: &'a [u8],
    /// Whether its signature verified.
    pub verdict: Verdict,
    /// What forwarding it came to, when it was forwarded.
    pub forward: Option<Forward>,
    /// The status answered to the sender.
    pub status: u16,
}

/// Writes `view`, coloured if `colour`, and a blank line after it.
pub fn request(out: &mut dyn Write, view: &RequestView<'_>, colour: bool) -> io::Result<()> {
    let verdict = match &view.verdict {
        Verdict::Verified(scheme) => Cell::coloured(format!("verified ({scheme})"), Colour::Green),
        Verdict::Refused(why) => Cell::coloured(format!("not verified: {why}"), Colour::Red),
        Verdict::Unchecked => Cell::coloured("not checked (no --secret)", Colour::Yellow),
        Verdict::Ignored(why) => Cell::coloured(format!("ignored: {why}"), Colour::Yellow),
    };
    writeln!(
        out,
        "{} {} {} {} -> {}",
        timestamp(view.at),
        clean(view.method),
        clean(view.target),
        verdict.render(colour),
        view.status
    )?;
    match &view.forward {
        Some(Forward::Answered { url, status, took }) => {
            writeln!(out, "  forwarded to {url}: {status} in {}", duration(*took))?
        }
        Some(Forward::Failed { url, error }) => {
            let failed = Cell::coloured(format!("forward to {url} failed: {error}"), Colour::Red);
            writeln!(out, "  {}", failed.render(colour))?;
        }
        None => {}
    }
    for name in SHOWN_HEADERS {
        for value in view.headers.get_all(*name) {
            let value = String::from_utf8_lossy(value.as_bytes());
            writeln!(out, "  {name}: {}", clean(&value))?;
        }
    }
    writeln!(out)?;
    for line in body(view.body).lines() {
        writeln!(out, "  {line}")?;
    }
    writeln!(out)
}

/// The body as printed (here and by `inbox show`): JSON re-indented, text as it is, else a size
/// and a hex dump.
pub fn body(body: &[u8]) -> String {
    if body.is_empty() {
        return "(no body)".to_owned();
    }
    let json = serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
    match std::str::from_utf8(body) {
        Ok(text) if json => clean(&pretty_json(text)),
        Ok(text) => clean(text),
        Err(_) => hex_dump(body),
    }
}

/// Valid JSON `text` re-indented by two spaces a level, its tokens (key order, numbers, string
/// escapes) as they are.
fn pretty_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let is_space = |c: &char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                while chars.next_if(is_space).is_some() {}
                let close = if c == '{' { '}' } else { ']' };
                out.push(c);
                if chars.next_if_eq(&close).is_some() {
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if is_space(&c) => {}
            c => out.push(c),
        }
    }
    out
}

/// `N bytes, not text`, then the first bytes in hex, 16 a line.
fn hex_dump(body: &[u8]) -> String {
    let mut out = format!("({}, not text", size(body.len()));
    if body.len() > HEX_BYTES {
        let _ = write!(out, "; the first {HEX_BYTES} bytes");
    }
    out.push(')');
    for (i, chunk) in body[..body.len().min(HEX_BYTES)].chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let _ = write!(out, "\n{:04x}  {}", i * 16, hex.join(" "));
    }
    out
}

/// `text` with its control characters but newlines and tabs escaped (`\u{1b}`): what a sender
/// controls, printed (here and by `inbox show`).
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_reindented_with_its_keys_in_order() {
        let text = r#"{"type":"order.created", "data":{"id":1.50,"tags":[],"s":"a,b:{\"c\"}"},"n":[1,{}]}"#;
        assert_eq!(
            body(text.as_bytes()),
            "{\n  \"type\": \"order.created\",\n  \"data\": {\n    \"id\": 1.50,\n    \"tags\": [],\n    \
             \"s\": \"a,b:{\\\"c\\\"}\"\n  },\n  \"n\": [\n    1,\n    {}\n  ]\n}"
        );
    }

    #[test]
    fn text_is_shown_as_is_and_control_characters_escaped() {
        assert_eq!(body(b"a=1&b=2\nnext"), "a=1&b=2\nnext");
        assert_eq!(body(b"\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(body(b""), "(no body)");
    }

    #[test]
    fn binary_is_a_size_and_a_hex_dump() {
        let dump = body(&[0xff; 100]);
        assert!(dump.starts_with("(100 B, not text; the first 64 bytes)\n0000  ff ff"));
        assert_eq!(dump.lines().count(), 5, "{dump}");
    }

    #[test]
    fn a_request_prints_its_line_forward_headers_and_body() {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("x-unrelated", "no".parse().unwrap());
        let view = RequestView {
            at: DateTime::parse_from_rfc3339("2026-12-02T09:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            method: "POST",
            target: "/hooks",
            headers: &headers,
            body: br#"{"a":1}"#,
            verdict: Verdict::Refused("missing header webhook-signature".into()),
            forward: Some(Forward::Failed {
                url: "http://127.0.0.1:1/".into(),
                error: "refused".into(),
            }),
            status: 401,
        };
        let mut out = Vec::new();
        request(&mut out, &view, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-12-02T09:00:00.000Z POST /hooks not verified: missing header \
             webhook-signature -> 401\n  forward to http://127.0.0.1:1/ failed: refused\n  \
             webhook-id: msg_1\n\n  {\n    \"a\": 1\n  }\n\n"
        );
        let mut out = Vec::new();
        request(&mut out, &view, true).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("\x1b[31mnot verified")
        );
    }
}

//! `fastapihooks verify`: checks the signature of a saved webhook request (headers and body) with
//! the core's [`Verifier`](fastapihooks_core::signing::Verifier), as a receiver would.
//!
//! ```text
//! fastapihooks verify --scheme github --secret "$GITHUB_SECRET" push.http
//! fastapihooks verify --scheme standard-webhooks --secret "$NEW" --secret "$OLD" - < request.http
//! fastapihooks verify --scheme sha256 --secret "$SECRET" --body body.json --header "X-Fastapihooks-Signature: sha256=…"
//! ```
//!
//! The request is read while the command line is parsed, so that a file that cannot be read or
//! is not a saved request is a command-line error (exit code 2, as for any bad argument), apart
//! from a signature that does not verify (exit code 1).

use std::io::{Read as _, Write};

use clap::{ArgGroup, Args};
use fastapihooks_core::signing::VerifyError;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::commands::receive_scheme::{ReceiveArgs, ReceiveScheme};

/// The exit codes, for `-h`.
const EXIT_CODES_SHORT: &str = "Exit codes: 0 verified, 1 not verified, 2 bad command line or unreadable request (see --help).";

/// The request format and the exit codes, for `--help`.
const LONG_HELP: &str = "\
The saved request (FILE, or `-` for stdin) is the raw HTTP/1.1 message, as an intercepting
proxy saves it:
  POST /webhooks HTTP/1.1          (optional request line)
  Content-Type: application/json   (header lines, `Name: value`)
  webhook-id: msg_…
                                   (a blank line)
  {\"type\":\"order.created\"}         (the body: every byte after the blank line, as sent)
Lines of the head may end in CRLF or LF; the body is taken exactly as it follows the blank line
(nothing trimmed: an editor that adds a final newline changes it). Instead of a file, give the
body with --body FILE and each header with --header 'Name: value'.

Exit codes:
  0  the signature verifies
  1  it does not; the reason is printed (a missing or malformed header, a signature that does
     not match the body and secrets, a timestamp outside --tolerance)
  2  the command line is wrong, or the request cannot be read (no such file, not a saved HTTP
     request, a bad --header)";

/// `verify` arguments.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_SHORT, after_long_help = LONG_HELP)]
#[command(mut_arg("secrets", |a| a.required(true)))]
#[command(group(ArgGroup::new("request").required(true).args(["file", "body"])))]
pub struct VerifyArgs {
    /// How the request is signed.
    #[arg(long, value_enum, value_name = "SCHEME")]
    scheme: ReceiveScheme,
    /// The secrets (--secret, repeatable) and the timestamp --tolerance.
    #[command(flatten)]
    receive: ReceiveArgs,
    /// The saved request: headers, a blank line, the body (see --help); `-` reads stdin.
    #[arg(value_name = "FILE", value_parser = saved_request, conflicts_with_all = ["body", "headers"])]
    file: Option<SavedRequest>,
    /// The body alone, read from FILE (`-`: stdin) exactly as it is; headers come with --header.
    #[arg(long, value_name = "FILE", value_parser = body_file)]
    body: Option<Body>,
    /// A request header, `Name: value` (repeat it), with --body.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = header_line, requires = "body")]
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// A request as saved: its headers and its body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedRequest {
    /// The headers, in their order (repeated ones kept).
    pub headers: HeaderMap,
    /// The body bytes, exactly as they followed the blank line.
    pub body: Vec<u8>,
}

/// The bytes of `--body FILE` (one value, not a list of bytes, to clap).
#[derive(Clone, Debug)]
struct Body(Vec<u8>);

/// Verifies the request and prints `verified`; fails (exit code 1) with the reason otherwise.
pub async fn run(args: VerifyArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let request = match (args.file, args.body) {
        (Some(request), _) => request,
        (None, Some(Body(body))) => {
            let mut headers = HeaderMap::new();
            for (name, value) in args.headers {
                headers.append(name, value);
            }
            SavedRequest { headers, body }
        }
        // clap requires one of them.
        (None, None) => anyhow::bail!("give a saved request (FILE) or --body"),
    };
    let scheme = args.scheme;
    let Some(verifier) = args.receive.verifier(scheme) else {
        anyhow::bail!("give the secret to verify with: --secret (or FASTAPIHOOKS_SECRET)");
    };
    match verifier.verify(&request.headers, &request.body) {
        Ok(()) => {
            writeln!(out, "verified ({} signature)", scheme.name())?;
            Ok(())
        }
        Err(e) => {
            let mut message = format!("not verified ({} signature): {e}", scheme.name());
            if let Some(hint) = scheme.hint(&e, &args.receive.secrets) {
                message.push_str(&format!(" ({hint})"));
            }
            // A body of another length than sent is the likely reason a signature does not match.
            let mismatch = length_mismatch(&request).filter(|_| e == VerifyError::BadSignature);
            if let Some(note) = mismatch {
                message.push_str(&format!(" ({note})"));
            }
            Err(anyhow::anyhow!(message))
        }
    }
}

/// When `Content-Length` disagrees with the body read: the likely reason a signature fails.
fn length_mismatch(request: &SavedRequest) -> Option<String> {
    let said: usize = request
        .headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let actual = request.body.len();
    (said != actual).then(|| {
        format!(
            "the body is {actual} bytes but Content-Length says {said}: was the saved request \
             edited, e.g. a newline added at its end?"
        )
    })
}

/// Reads `path` (`-`: stdin) whole.
fn read(path: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let result = if path == "-" {
        std::io::stdin().lock().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes))
    };
    match result {
        Ok(_) => Ok(bytes),
        Err(e) if path == "-" => Err(format!("cannot read stdin: {e}")),
        Err(e) => Err(format!("cannot read {path}: {e}")),
    }
}

/// FILE: reads and parses a saved request.
fn saved_request(path: &str) -> Result<SavedRequest, String> {
    parse(&read(path)?)
}

/// `--body FILE`.
fn body_file(path: &str) -> Result<Body, String> {
    read(path).map(Body)
}

/// `--header 'Name: value'`.
fn header_line(line: &str) -> Result<(HeaderName, HeaderValue), String> {
    header(line.as_bytes())
}

/// One `Name: value` line of a head.
fn header(line: &[u8]) -> Result<(HeaderName, HeaderValue), String> {
    let shown = String::from_utf8_lossy(line);
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| format!("`{shown}` is not a `Name: value` header line"))?;
    let name = HeaderName::from_bytes(line[..colon].trim_ascii())
        .map_err(|_| format!("`{shown}`: not a valid header name"))?;
    let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
        .map_err(|_| format!("`{shown}`: not a valid header value"))?;
    Ok((name, value))
}

/// Whether `line` is a request line: `METHOD TARGET HTTP/x`.
fn is_request_line(line: &[u8]) -> bool {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !method.is_empty()
        && method.iter().all(u8::is_ascii_uppercase)
        && !target.is_empty()
        && version.starts_with(b"HTTP/")
}

/// Parses a saved request: an optional request line, header lines, a blank line, the body. The
/// head's lines end in CRLF or LF; the body is every byte after the blank line. Headers ending
/// at the end of the input are a request without a body.
pub fn parse(bytes: &[u8]) -> Result<SavedRequest, String> {
    let mut request = SavedRequest::default();
    let mut rest = bytes;
    let mut first = true;
    loop {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => (&rest[..nl], &rest[nl + 1..]),
            None if rest.is_empty() && !first => return Ok(request),
            None => {
                return Err(
                    "not a saved HTTP request: expected header lines, a blank line, then the \
                     body (see --help)"
                        .to_owned(),
                );
            }
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            request.body = after.to_vec();
            return Ok(request);
        }
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            return Err("folded (continued) header lines are not supported".to_owned());
        }
        if !(first && is_request_line(line)) {
            let (name, value) = header(line)?;
            request.headers.append(name, value);
        }
        first = false;
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_every_byte_after_the_blank_line() {
        let saved =
            parse(b"POST /hooks HTTP/1.1\r\nContent-Type: text/plain\r\nX-A: 1\r\n\r\nbody\r\n\n")
                .unwrap();
        assert_eq!(saved.headers["content-type"], "text/plain");
        assert_eq!(saved.headers["x-a"], "1");
        assert_eq!(saved.body, b"body\r\n\n");
    }

    #[test]
    fn lf_heads_repeated_headers_and_no_request_line_are_read() {
        let saved = parse(b"X-A: 1\nX-A:  2 \n\n{}").unwrap();
        let values: Vec<_> = saved.headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(saved.body, b"{}");
        assert_eq!(parse(b"X-A: 1\n").unwrap().body, b"");
    }

    #[test]
    fn what_is_not_a_saved_request_is_refused() {
        for bad in [
            &b""[..],
            b"{\"a\":1}",
            b"{\"a\":1}\n",
            b"X-A: 1",
            b"X-A: 1\n continued\n\n",
            b"Bad Name: 1\n\n",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_request_line_is_only_taken_first() {
        assert!(is_request_line(b"POST /a?b=c HTTP/1.1"));
        assert!(!is_request_line(b"post /a HTTP/1.1"));
        assert!(!is_request_line(b"X-A: b c"));
        assert!(parse(b"X-A: 1\nPOST /a HTTP/1.1\n\n").is_err());
    }
}

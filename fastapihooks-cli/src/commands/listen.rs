//! `fastapihooks listen`: a local webhook receiver for development. Every POST is verified (with
//! `--secret`), printed, answered — and, with `--forward-to`, passed on to the application.
//!
//! ```text
//! fastapihooks listen --port 8787 --scheme standard-webhooks --secret "$WHSEC"
//! fastapihooks listen --port 8787 --scheme github --secret "$GITHUB_SECRET" --forward-to http://127.0.0.1:3000/webhooks/github
//! fastapihooks listen --port 0      # any free port, nothing verified (a warning says so)
//! ```
//!
//! A refused signature is answered 401 (`application/problem+json` that says nothing of why, as
//! an axum receiver answers; the reason is printed here), a body over `--max-body` 413. A verified
//! request is answered 204, or, when forwarded, with the forward's status and body (502 when the
//! forward fails). Runs until SIGTERM or SIGINT (Ctrl-C).

use std::future::IntoFuture as _;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use clap::Args;
use fastapihooks_axum::Problem;
use fastapihooks_axum::receive::{VerifyRejection, WebhookVerifier};
use fastapihooks_core::signing::Verifier;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use tokio::sync::mpsc;
use url::Url;

use crate::commands::receive_scheme::{ReceiveArgs, ReceiveScheme};
use crate::output::request::{self as view, Forward, RequestView, Verdict};
use crate::output::table::colour_enabled;
use crate::output::time::size;

/// How long a forward may take, answer included.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers not passed on by a forward: hop-by-hop ones, `Host` (the forward's own), the length
/// (the forward's client sets it) and `Accept-Encoding` (so that the answer, handed back to the
/// sender as it is, is not compressed for a client that did not ask).
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
];

/// What `listen` answers and prints, for `--help`.
const LONG_HELP: &str = "\
Every POST under --path is verified with --scheme and the --secret(s) and answered:
  401  its signature is missing, wrong or stale (problem+json; the reason is printed here)
  413  its body is over --max-body
  204  it verified (or nothing is checked: no --secret)
  with --forward-to, what the URL answered (status and body), or 502 when it cannot be reached
Each request is printed on stdout: a line with the time, method, path, the verification result
and the status answered; the webhook headers (content type, ids, events, timestamps,
signatures); then the body, JSON indented. Colours only on a terminal (not with NO_COLOR).

Exit codes: 0 stopped by SIGTERM or SIGINT (Ctrl-C), 1 could not listen (a port in use, a
non-loopback --host without --secret), 2 the command line is wrong.";

/// `listen` arguments.
#[derive(Debug, Args)]
#[command(after_long_help = LONG_HELP)]
pub struct ListenArgs {
    /// The address to listen on. Anything but a loopback address needs --secret, so that what
    /// the network can reach only prints and forwards signed requests.
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    host: String,
    /// The port to listen on; 0 picks a free one (printed at start).
    #[arg(long, value_name = "PORT", default_value_t = 8787)]
    port: u16,
    /// How requests are signed.
    #[arg(long, value_enum, value_name = "SCHEME", default_value_t = ReceiveScheme::Sha256)]
    scheme: ReceiveScheme,
    /// The secrets (--secret, repeatable; without one nothing is verified) and the timestamp
    /// --tolerance.
    #[command(flatten)]
    receive: ReceiveArgs,
    /// Pass each request received (not one refused) on to this URL — method, body and headers
    /// unchanged, but hop-by-hop ones — and answer the sender with its status and body.
    #[arg(long, value_name = "URL", value_parser = forward_url)]
    forward_to: Option<Url>,
    /// Receive only under this path (`/hooks`: `/hooks` and `/hooks/…`); others get 404.
    #[arg(long, value_name = "PATH", default_value = "/", value_parser = path_prefix)]
    path: String,
    /// The largest body read, in bytes; a larger one is answered 413.
    #[arg(long, value_name = "BYTES", default_value_t = WebhookVerifier::DEFAULT_LIMIT)]
    max_body: usize,
}

/// What every request is handled with.
#[derive(Debug)]
struct Listener {
    verifier: Option<Verifier>,
    scheme: ReceiveScheme,
    path: String,
    forward: Option<(Url, reqwest::Client)>,
    max_body: usize,
    colour: bool,
    /// Each request's printed text, written to the command's output in arrival order.
    printed: mpsc::Sender<Vec<u8>>,
}

/// Listens until SIGTERM or SIGINT, printing `listening on http://ADDR` first, then each
/// request.
pub async fn run(args: ListenArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let verifier = args.receive.verifier(args.scheme);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("--host {}: cannot resolve it", args.host))?
        .collect();
    if verifier.is_none() {
        if let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            anyhow::bail!(
                "--host {} ({}) is not a loopback address: without --secret anyone who can reach \
                 it could have requests printed and forwarded; give --secret, or listen on \
                 127.0.0.1",
                args.host,
                open.ip()
            );
        }
        eprintln!(
            "warning: no --secret: signatures are not verified; every request is printed and \
             accepted"
        );
    }
    let stop = stop_signal()?;
    let listener = tokio::net::TcpListener::bind(&addrs[..])
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let local = listener
        .local_addr()
        .context("cannot read the address listened on")?;
    let forward = match args.forward_to {
        Some(url) => Some((url, forward_client()?)),
        None => None,
    };
    let (printed, mut to_print) = mpsc::channel(64);
    let state = Arc::new(Listener {
        verifier,
        scheme: args.scheme,
        path: args.path,
        forward,
        max_body: args.max_body,
        colour: colour_enabled(),
        printed,
    });
    let app = Router::new()
        .fallback(receive)
        .layer(DefaultBodyLimit::max(args.max_body))
        .with_state(state);
    writeln!(out, "listening on http://{local}")?;
    out.flush()?;
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .into_future();
    tokio::pin!(server);
    loop {
        tokio::select! {
            result = &mut server => {
                result.context("the listener failed")?;
                break;
            }
            Some(text) = to_print.recv() => {
                out.write_all(&text)?;
                out.flush()?;
            }
        }
    }
    while let Ok(text) = to_print.try_recv() {
        out.write_all(&text)?;
    }
    out.flush()?;
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C); the handlers are installed at once.
fn stop_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// The client forwards go through: no redirects followed, a timeout.
fn forward_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FORWARD_TIMEOUT)
        .build()
        .context("cannot build the HTTP client for --forward-to")
}

/// `--forward-to`: an http or https URL.
fn forward_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("an http or https URL is needed, not {other}:")),
    }
}

/// `--path`: a path starting with `/`, kept without a trailing `/` (but `/` itself).
fn path_prefix(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err("a path starts with `/`".to_owned());
    }
    let trimmed = text.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
}

impl Listener {
    /// Whether `path` lies under `--path`.
    fn accepts(&self, path: &str) -> bool {
        self.path == "/"
            || path
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// Handles one request: checks, verifies, forwards, prints, answers.
async fn receive(
    State(listener): State<Arc<Listener>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let at = Utc::now();
    let (verdict, forward, response, body) = handle(&listener, &method, &uri, &headers, body).await;
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let shown = RequestView {
        at,
        method: method.as_str(),
        target,
        headers: &headers,
        body: &body,
        verdict,
        forward,
        status: response.status().as_u16(),
    };
    let mut text = Vec::new();
    if view::request(&mut text, &shown, listener.colour).is_ok() {
        // Only fails when the command is stopping: nothing is left to print to.
        let _ = listener.printed.send(text).await;
    }
    response
}

/// What one request comes to: its verdict, its forward, the answer and the body read.
async fn handle(
    listener: &Listener,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> (Verdict, Option<Forward>, Response, Bytes) {
    if !listener.accepts(uri.path()) {
        let why = format!("not under --path {}", listener.path);
        let response = Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            "nothing is received at this path",
        );
        return (
            Verdict::Ignored(why),
            None,
            response.into_response(),
            Bytes::new(),
        );
    }
    if method != Method::POST {
        let mut response = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
            "webhooks are received with POST",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        let why = "only POST is received".to_owned();
        return (Verdict::Ignored(why), None, response, Bytes::new());
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let why = format!("body over --max-body ({})", size(listener.max_body));
            let response = VerifyRejection::TooLarge.into_response();
            return (Verdict::Refused(why), None, response, Bytes::new());
        }
        Err(rejection) => {
            let response = Problem::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "Unreadable body",
                "the body could not be read",
            );
            let why = rejection.body_text();
            return (
                Verdict::Refused(why),
                None,
                response.into_response(),
                Bytes::new(),
            );
        }
    };
    let verdict = match &listener.verifier {
        None => Verdict::Unchecked,
        Some(verifier) => match verifier.verify(headers, &body) {
            Ok(()) => Verdict::Verified(listener.scheme.name()),
            Err(e) => Verdict::Refused(e.to_string()),
        },
    };
    if matches!(verdict, Verdict::Refused(_)) {
        return (
            verdict,
            None,
            VerifyRejection::Unauthorized.into_response(),
            body,
        );
    }
    let Some((url, client)) = &listener.forward else {
        return (verdict, None, StatusCode::NO_CONTENT.into_response(), body);
    };
    let (forward, response) = forward(client, url, method, headers, &body, listener.max_body).await;
    (verdict, Some(forward), response, body)
}

/// Forwards the request to `url` and answers with what it answered (502 when it fails).
async fn forward(
    client: &reqwest::Client,
    url: &Url,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    max_body: usize,
) -> (Forward, Response) {
    let connection: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .collect();
    let mut sent = HeaderMap::new();
    for (name, value) in headers {
        let name_str = name.as_str();
        if !NOT_FORWARDED.contains(&name_str) && !connection.iter().any(|c| c == name_str) {
            sent.append(name.clone(), value.clone());
        }
    }
    let started = Instant::now();
    let request = client
        .request(method.clone(), url.clone())
        .headers(sent)
        .body(body.clone());
    match answer(request, max_body).await {
        Ok((status, content_type, bytes)) => {
            let forward = Forward::Answered {
                url: url.to_string(),
                status: status.as_u16(),
                took: started.elapsed(),
            };
            let mut response = (status, bytes).into_response();
            if let Some(content_type) = content_type {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type);
            }
            (forward, response)
        }
        Err(error) => {
            let forward = Forward::Failed {
                url: url.to_string(),
                error,
            };
            let response = Problem::new(
                StatusCode::BAD_GATEWAY,
                "forward_failed",
                "Forward failed",
                "the request could not be forwarded",
            );
            (forward, response.into_response())
        }
    }
}

/// Sends `request` and reads its answer, at most `max_body` bytes of it.
async fn answer(
    request: reqwest::RequestBuilder,
    max_body: usize,
) -> Result<(StatusCode, Option<HeaderValue>, Vec<u8>), String> {
    let mut response = request.send().await.map_err(|e| causes(&e))?;
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| causes(&e))? {
        if bytes.len() + chunk.len() > max_body {
            return Err(format!(
                "its answer is over --max-body ({})",
                size(max_body)
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((status, content_type, bytes))
}

/// An error and its causes, `: `-separated (reqwest's own message names only the URL).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_received_under_the_prefix_only() {
        let listener = |path: &str| Listener {
            verifier: None,
            scheme: ReceiveScheme::Sha256,
            path: path_prefix(path).unwrap(),
            forward: None,
            max_body: 1,
            colour: false,
            printed: mpsc::channel(1).0,
        };
        assert!(listener("/").accepts("/anything/at/all"));
        let hooks = listener("/hooks/");
        assert!(hooks.accepts("/hooks") && hooks.accepts("/hooks/github"));
        assert!(!hooks.accepts("/hooksy") && !hooks.accepts("/"));
        assert!(path_prefix("hooks").is_err());
    }

    #[test]
    fn only_http_urls_are_forwarded_to() {
        assert!(forward_url("http://127.0.0.1:3000/hooks").is_ok());
        assert!(forward_url("ftp://example.com/").is_err());
        assert!(forward_url("127.0.0.1:3000").is_err());
    }
}

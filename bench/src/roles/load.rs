//! The load generator: `connections` keep-alive HTTP/1.1 connections, each sending the same
//! `POST /orders` as soon as the previous answer is read (a closed loop), on one thread.
//!
//! It is written against raw sockets (the request is pre-encoded, answers are parsed with
//! `httparse`) so that it costs less per request than the server it measures: on the shared
//! 2-core machine it must not be the limit. Its CPU time is reported so the conductor can tell.
//!
//! With `--webhooks SECRET` it sends webhooks instead (the receive rows): each request signed
//! with Standard Webhooks as it is encoded, under a `webhook-id` of its own (`--same-id`: all
//! under one), so that every request is a new webhook. The signing is in its reported CPU, and
//! happens before the request's latency clock starts.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use fastapihooks::Secret;
use fastapihooks::signing::{SignInput, SignatureScheme};
use hdrhistogram::Histogram;
use http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proc_stats::own_cpu_ms;
use crate::wire::{EVENT_NAME, LoadDone, order};

/// Arguments of the `load` part.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The server, `127.0.0.1:<port>`.
    #[arg(long)]
    addr: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Warm-up before measuring (answers counted as events, not in the figures).
    #[arg(long, default_value_t = 1000)]
    warmup_ms: u64,
    /// The measured window.
    #[arg(long, default_value_t = 10_000)]
    duration_ms: u64,
    /// A bound on the requests each connection sends, whatever the duration.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests_per_connection: u64,
    /// The path requests are posted to.
    #[arg(long, default_value = "/orders")]
    path: String,
    /// Send Standard Webhooks signed with this secret: each request signed as it is encoded,
    /// under a `webhook-id` of its own.
    #[arg(long)]
    webhooks: Option<String>,
    /// With `--webhooks`: every request under the same `webhook-id` (the duplicate path).
    #[arg(long, requires = "webhooks")]
    same_id: bool,
}

/// What the connections send.
#[derive(Clone, Debug)]
enum Requests {
    /// The same pre-encoded request, every time.
    Fixed(Arc<[u8]>),
    /// Webhooks, each encoded and signed as it is sent.
    Webhooks(Arc<Webhooks>),
}

/// The parts of every webhook request; each request adds its id, timestamp and signature.
#[derive(Debug)]
struct Webhooks {
    /// The request line and the headers every request shares (`content-length` included).
    head: Vec<u8>,
    body: Vec<u8>,
    secret: Secret,
    same_id: bool,
}

/// A connection's buffers for encoding webhooks, reused from one request to the next.
#[derive(Debug, Default)]
struct Encoding {
    id: String,
    headers: HeaderMap,
    request: Vec<u8>,
}

impl Webhooks {
    /// Request `n` of `connection`, signed now, encoded into `encoding.request`.
    fn encode<'a>(&self, connection: usize, n: u64, encoding: &'a mut Encoding) -> &'a [u8] {
        let Encoding {
            id,
            headers,
            request,
        } = encoding;
        id.clear();
        if self.same_id {
            id.push_str("msg_same");
        } else {
            let _ = write!(id, "msg_{connection}_{n}");
        }
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        headers.clear();
        SignatureScheme::StandardWebhooks.signer().sign(
            &SignInput {
                delivery_id: id,
                event_name: EVENT_NAME,
                timestamp,
                body: &self.body,
            },
            &[&self.secret],
            headers,
        );
        request.clear();
        request.extend_from_slice(&self.head);
        for (name, value) in headers.iter() {
            request.extend_from_slice(name.as_str().as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(&self.body);
        request
    }
}

#[derive(Debug)]
struct Tally {
    latency_us: Histogram<u64>,
    total_ok: u64,
    measured_ok: u64,
    failed: u64,
}

/// Runs the load and reports.
pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(load(args))
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let requests = match &args.webhooks {
        None => {
            let body = serde_json::to_vec(&order(1)["order"])?;
            let mut request = format!(
                "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                args.path,
                args.addr,
                body.len()
            )
            .into_bytes();
            request.extend_from_slice(&body);
            Requests::Fixed(request.into())
        }
        Some(secret) => {
            // The whole order, as the emitter's payload.
            let body = serde_json::to_vec(&order(1))?;
            let head = format!(
                "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                args.path,
                args.addr,
                body.len()
            )
            .into_bytes();
            Requests::Webhooks(Arc::new(Webhooks {
                head,
                body,
                secret: Secret::new(secret.as_str())?,
                same_id: args.same_id,
            }))
        }
    };
    let cpu_before = own_cpu_ms();
    let start = Instant::now();
    let measure_from = start + Duration::from_millis(args.warmup_ms);
    let measure_until = measure_from + Duration::from_millis(args.duration_ms);
    let mut connections = tokio::task::JoinSet::new();
    for index in 0..args.connections {
        let (addr, requests) = (args.addr.clone(), requests.clone());
        let max = args.max_requests_per_connection;
        connections.spawn(async move {
            connection(&addr, index, &requests, measure_from, measure_until, max).await
        });
    }
    let mut all = Tally::new()?;
    while let Some(tally) = connections.join_next().await {
        let tally = tally??;
        all.latency_us.add(&tally.latency_us)?;
        all.total_ok += tally.total_ok;
        all.measured_ok += tally.measured_ok;
        all.failed += tally.failed;
    }
    let measured_secs = (Instant::now().min(measure_until) - measure_from).as_secs_f64();
    super::report(&LoadDone {
        total_ok: all.total_ok,
        measured_ok: all.measured_ok,
        failed: all.failed,
        measured_secs,
        p50_us: all.latency_us.value_at_quantile(0.50),
        p99_us: all.latency_us.value_at_quantile(0.99),
        max_us: all.latency_us.max(),
        cpu_ms: own_cpu_ms() - cpu_before,
    })
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            // 1 µs to 60 s, 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            total_ok: 0,
            measured_ok: 0,
            failed: 0,
        })
    }
}

/// One keep-alive connection (number `index`) in a closed loop until `until` (or `max`
/// requests).
async fn connection(
    addr: &str,
    index: usize,
    requests: &Requests,
    measure_from: Instant,
    until: Instant,
    max: u64,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::new()?;
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    let mut encoding = Encoding::default();
    for n in 0..max {
        let request: &[u8] = match requests {
            Requests::Fixed(request) => request,
            Requests::Webhooks(webhooks) => webhooks.encode(index, n, &mut encoding),
        };
        let sent_at = Instant::now();
        if sent_at >= until {
            break;
        }
        let answer = tokio::time::timeout(Duration::from_secs(30), async {
            stream.write_all(request).await?;
            read_response(&mut stream, &mut buf).await
        })
        .await;
        match answer {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                tally.total_ok += 1;
                if sent_at >= measure_from {
                    tally.measured_ok += 1;
                    let us = sent_at.elapsed().as_micros() as u64;
                    tally.latency_us.saturating_record(us.max(1));
                }
            }
            Ok(Ok(_status)) => tally.failed += 1,
            // A broken or stalled connection ends this connection's loop, counted as a failure.
            Ok(Err(_)) | Err(_) => {
                tally.failed += 1;
                break;
            }
        }
    }
    Ok(tally)
}

/// Reads one response (headers and a `content-length` body) and returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<u16> {
    buf.clear();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = response.parse(buf)? {
            let status = response.code.unwrap_or(0);
            let length: usize = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .ok_or_else(|| anyhow::anyhow!("answer without content-length"))?;
            while buf.len() < head + length {
                read_more(stream, buf).await?;
            }
            return Ok(status);
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    anyhow::ensure!(n > 0, "connection closed by the server");
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

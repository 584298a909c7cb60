//! The physical limit: a plain keep-alive POST loop to the same receiver at the same
//! concurrency — no signing, no queue, no store. Request `i` carries id `raw_<i>`. Through
//! reqwest (`--client reqwest`, the reference) or hyper's pooled client alone
//! (`--client hyper`, the client deliveries go through: the limit of our own path).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use http_body_util::BodyExt;

use crate::proc_stats::{own_cpu_ms, own_peak_rss_kib, unix_ns};
use crate::wire::{ID_HEADER, RawLoopDone, order};

/// The HTTP client of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RawClient {
    /// `reqwest::Client::new()`.
    Reqwest,
    /// `hyper_util::client::legacy::Client` over its `HttpConnector`.
    Hyper,
}

/// Arguments of the `raw-loop` part.
#[derive(Debug, Args)]
pub struct RawLoopArgs {
    /// The client.
    #[arg(long, value_enum, default_value = "reqwest")]
    client: RawClient,
    /// The receiver's URL.
    #[arg(long)]
    url: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Requests to send.
    #[arg(long)]
    requests: u64,
    /// Gives up after this long.
    #[arg(long, default_value_t = 120)]
    max_secs: u64,
}

/// Runs the loop and reports.
pub fn run(args: RawLoopArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(post_loop(args))
}

async fn post_loop(args: RawLoopArgs) -> anyhow::Result<()> {
    let client = Client::new(args.client, &args.url)?;
    let body = Bytes::from(serde_json::to_vec(&order(1))?);
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.max_secs);
    let cpu_before = own_cpu_ms();
    let allocations_before = crate::allocator::allocations();
    let started_ns = unix_ns();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, body, next, ok, failed) = (
            client.clone(),
            body.clone(),
            next.clone(),
            ok.clone(),
            failed.clone(),
        );
        let (url, total) = (args.url.clone(), args.requests);
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() > deadline {
                    return;
                }
                let answered = client.post(&url, format!("raw_{i}"), body.clone()).await;
                if answered { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while workers.join_next().await.is_some() {}
    super::report(&RawLoopDone {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        started_ns,
        finished_ns: unix_ns(),
        cpu_ms: own_cpu_ms() - cpu_before,
        peak_rss_kib: own_peak_rss_kib(),
        allocations: crate::allocator::allocations()
            .zip(allocations_before)
            .map(|(after, before)| after - before),
    })
}

/// One of the two clients, each used as plainly as it allows.
#[derive(Clone)]
enum Client {
    Reqwest(reqwest::Client),
    Hyper(Box<(HyperClient, http::Uri)>),
}

type HyperClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<Bytes>,
>;

impl Client {
    fn new(kind: RawClient, url: &str) -> anyhow::Result<Self> {
        Ok(match kind {
            RawClient::Reqwest => Self::Reqwest(reqwest::Client::new()),
            RawClient::Hyper => {
                let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
                connector.set_nodelay(true);
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .pool_max_idle_per_host(usize::MAX)
                .build(connector);
                Self::Hyper(Box::new((client, url.parse()?)))
            }
        })
    }

    /// POSTs `body` with id `id`; whether a 2xx came back with its whole body.
    async fn post(&self, url: &str, id: String, body: Bytes) -> bool {
        match self {
            Self::Reqwest(client) => {
                let sent = client
                    .post(url)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header(ID_HEADER, id)
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) => {
                        let success = response.status().is_success();
                        success && response.bytes().await.is_ok()
                    }
                    Err(_) => false,
                }
            }
            Self::Hyper(hyper) => {
                let (client, uri) = &**hyper;
                let Ok(id) = http::HeaderValue::try_from(id) else {
                    return false;
                };
                let mut request = http::Request::new(http_body_util::Full::new(body));
                *request.method_mut() = http::Method::POST;
                *request.uri_mut() = uri.clone();
                let headers = request.headers_mut();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                headers.insert(ID_HEADER, id);
                match client.request(request).await {
                    Ok(response) => {
                        let success = response.status().is_success();
                        success && response.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                }
            }
        }
    }
}

//! [`DeliveryClient`]: the one HTTP client every delivery attempt goes through — hyper's pooled
//! client, the SSRF guard as its resolver, rustls for `https`, one deadline per attempt.
//!
//! hyper directly rather than through reqwest: a delivery needs a `POST` with its own headers,
//! a pooled keep-alive connection, a deadline and a capped read of the answer, and reqwest's
//! layers around the same hyper client (a redirect layer that parses the URL again, a retry
//! layer and its own future that copy the request's headers, a boxed timer and body wrappers)
//! cost about 7 µs of CPU per request on the bench's loopback, a third of the whole exchange.

use std::error::Error as StdError;
use std::fmt;
use std::future::ready;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use reqwest::dns::{Addrs, Resolve, Resolving};

use super::guard::GuardedResolver;
use super::http_config::HttpConfig;
use crate::error::{Error, Result};

type BoxError = Box<dyn StdError + Send + Sync>;

/// How long an idle keep-alive connection stays in the pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// TCP keep-alive probes on delivery connections, so a dead peer is noticed while idle.
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);

/// The delivery client: built once per [`Dispatcher`](super::Dispatcher) from its
/// [`HttpConfig`], shared (cheaply cloned) by every attempt.
#[derive(Clone)]
pub(crate) struct DeliveryClient {
    client: Client<HttpsConnector<HttpConnector<GuardedDns>>, Full<Bytes>>,
    user_agent: HeaderValue,
    timeout: Duration,
    max_response_bytes: usize,
}

impl fmt::Debug for DeliveryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryClient")
            .field("user_agent", &self.user_agent)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

/// What came back: the response's head and the start of its body, up to
/// [`HttpConfig::max_response_bytes`].
pub(crate) struct Answer {
    pub(crate) head: http::response::Parts,
    pub(crate) excerpt: Vec<u8>,
}

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No response head within the attempt's timeout.
    TimedOut(Duration),
    /// The exchange failed: connecting (a refusal of the SSRF guard included) or on the wire.
    Http(hyper_util::client::legacy::Error),
}

impl DeliveryClient {
    /// The client `config` describes, with the guarded resolver plugged in.
    pub(crate) fn new(config: &HttpConfig) -> Result<Self> {
        config.validate()?;
        warn_of_ignored_proxy();
        let user_agent =
            HeaderValue::from_str(&config.user_agent).map_err(|e| Error::InvalidConfig {
                field: "http.user_agent",
                reason: format!("{:?} is not a valid header value: {e}", config.user_agent),
            })?;
        // Every answer goes through the guard, which lets everything through when the policy
        // allows everything: one resolver path, whatever the policy.
        let resolver = match &config.resolver {
            Some(inner) => {
                GuardedResolver::with_resolver(config.address_policy.clone(), Arc::clone(inner))
            }
            None => GuardedResolver::new(config.address_policy.clone()),
        };
        let mut http = HttpConnector::new_with_resolver(GuardedDns(Arc::new(resolver)));
        http.enforce_http(false); // `https` is the TLS layer's, around this one
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_keepalive(Some(TCP_KEEPALIVE));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(&config.root_certificates)?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(Self {
            client,
            user_agent,
            timeout: config.timeout,
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// A `POST` of `body` to `uri` carrying the client's `User-Agent`; the caller adds the
    /// rest of the headers.
    pub(crate) fn post(&self, uri: Uri, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.reserve(8);
        headers.insert(header::USER_AGENT, self.user_agent.clone());
        request
    }

    /// Sends `request` and reads the answer's head, then as much of its body as the excerpt
    /// takes, all within the timeout. A body cut short or late ends the excerpt there: the
    /// status is what counts.
    pub(crate) async fn send(&self, request: Request<Full<Bytes>>) -> Result<Answer, Failure> {
        // One timer for the whole exchange, registered once.
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let response = tokio::select! {
            biased;
            response = self.client.request(request) => response.map_err(Failure::Http)?,
            _ = &mut deadline => return Err(Failure::TimedOut(self.timeout)),
        };
        let (head, mut body) = response.into_parts();
        let mut excerpt = Vec::new();
        while excerpt.len() < self.max_response_bytes {
            let frame = tokio::select! {
                biased;
                frame = body.frame() => frame,
                _ = &mut deadline => None,
            };
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = self.max_response_bytes - excerpt.len();
                        excerpt.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                Some(Err(_)) | None => break,
            }
        }
        Ok(Answer { head, excerpt })
    }
}

/// Says so when the environment names a proxy: deliveries never use one, and a proxy setting
/// is not ignored without a word.
fn warn_of_ignored_proxy() {
    const PROXY_VARIABLES: [&str; 6] = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ];
    if let Some(variable) = PROXY_VARIABLES
        .into_iter()
        .find(|v| std::env::var_os(v).is_some_and(|value| !value.is_empty()))
    {
        tracing::warn!(
            variable,
            "deliveries do not go through the proxy {variable} names: they connect to \
             subscribers directly (a proxy would resolve them out of the SSRF guard's sight)"
        );
    }
}

/// TLS for `https` subscribers: rustls with the ring provider, Mozilla's root certificates and
/// `extra_roots`, TLS 1.2 and 1.3. (The provider is named here rather than taken from the
/// process default, which another dependency may have set to a different one, or to none.)
fn tls_config(extra_roots: &rustls::RootCertStore) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots.extend(extra_roots.roots.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::HttpClient(Box::new(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The guard as hyper's resolver: hyper asks a `tower::Service` for a name's addresses, the
/// guard answers through reqwest's [`Resolve`], the interface users plug their own resolver in
/// by ([`HttpConfig::resolver`]).
#[derive(Clone)]
struct GuardedDns(Arc<GuardedResolver>);

impl tower_service::Service<Name> for GuardedDns {
    type Response = Addrs;
    type Error = BoxError;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolving {
        match name.as_str().parse::<reqwest::dns::Name>() {
            Ok(name) => self.0.resolve(name),
            Err(_) => {
                let invalid = format!("{:?} is not a host name", name.as_str());
                Box::pin(ready(Err(invalid.into())))
            }
        }
    }
}

//! The sidecar's management port (`fastapihooks start --admin-addr`): the management API of
//! [`fastapihooks_axum::admin`] — subscriptions, events, deliveries, replay, `/openapi.json` —
//! for deployments without an application of their own to mount it in.
//!
//! It changes subscriptions and replays deliveries, so it answers only requests bearing the
//! token (`Authorization: Bearer <token>`, compared in constant time), and refuses to listen on
//! anything but a loopback address without one. Like the operator port it stays open while the
//! sidecar drains and closes once the worker has stopped.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fastapihooks_axum::Problem;
use fastapihooks_axum::admin::AdminApi;
use fastapihooks_core::worker::CancellationToken;
use fastapihooks_core::{Backend, Secret, Store};
use http::{HeaderValue, StatusCode, header};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The shortest token accepted: a guessable one would open the API.
const MIN_TOKEN_LEN: usize = 16;

/// Where the management API listens, and the token it asks for.
#[derive(Clone, Debug)]
pub struct AdminPort {
    /// The address (port 0 picks one, logged as `management API listening on http://ADDR`).
    pub addr: SocketAddr,
    /// The bearer token every request must carry; `None` only on a loopback address.
    pub token: Option<Secret>,
}

impl AdminPort {
    /// Checks the settings: a token of at least 16 characters, and one at all unless the
    /// address is a loopback one.
    pub fn new(addr: SocketAddr, token: Option<Secret>) -> anyhow::Result<Self> {
        match &token {
            Some(token) if token.expose().chars().count() < MIN_TOKEN_LEN => anyhow::bail!(
                "--admin-token is shorter than {MIN_TOKEN_LEN} characters: anyone who guesses it \
                 can change subscriptions and replay deliveries; use a long random one \
                 (`openssl rand -hex 32`)"
            ),
            None if !addr.ip().is_loopback() => anyhow::bail!(
                "refusing to serve the management API on {addr} without --admin-token: it changes \
                 subscriptions and replays deliveries; set --admin-token (FASTAPIHOOKS_ADMIN_TOKEN), \
                 or listen on 127.0.0.1"
            ),
            _ => Ok(Self { addr, token }),
        }
    }
}

/// Serves the management API over `store` and `backend` on `port` until `shutdown`.
pub(crate) async fn serve(
    port: AdminPort,
    store: Arc<dyn Store>,
    backend: Arc<dyn Backend>,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(port.addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on the management port {} (--admin-addr)",
                port.addr
            )
        })?;
    let local = listener
        .local_addr()
        .context("the management port's address")?;
    let mut app = AdminApi::new(store, backend).router();
    if let Some(token) = port.token {
        let expected = Arc::new(Sha256::digest(token.expose().as_bytes()));
        app = app.layer(axum::middleware::from_fn_with_state(expected, bearer));
    }
    tracing::info!(addr = %local, "management API listening on http://{local}");
    Ok(tokio::spawn(async move {
        let stopped = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = stopped {
            tracing::error!(error = %e, "the management port failed");
        }
    }))
}

/// Lets a request through when it bears the token: the digests of both compared in constant
/// time, so neither the token's bytes nor its length show in the timing.
async fn bearer(
    State(expected): State<Arc<sha2::digest::Output<Sha256>>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let allowed = presented.is_some_and(|token| {
        bool::from(Sha256::digest(token.trim().as_bytes()).ct_eq(expected.as_slice()))
    });
    if allowed {
        return next.run(request).await;
    }
    let mut response = Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        "this API needs `Authorization: Bearer <token>` (fastapihooks start --admin-token)",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_loopback_address_needs_a_token_and_a_token_must_be_long() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let long = Secret::new("0123456789abcdef0123").unwrap();
        let short = Secret::new("letmein").unwrap();
        let refused = AdminPort::new(public, None).unwrap_err().to_string();
        assert!(refused.contains("without --admin-token"), "{refused}");
        assert!(AdminPort::new(local, None).is_ok());
        assert!(AdminPort::new(public, Some(long)).is_ok());
        let weak = AdminPort::new(local, Some(short)).unwrap_err().to_string();
        assert!(weak.contains("shorter than 16"), "{weak}");
    }
}

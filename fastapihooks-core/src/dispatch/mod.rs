//! [`Dispatcher`]: one HTTP attempt of one delivery — sign, POST, read a capped excerpt,
//! classify.

mod client;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Utc;
use http::{HeaderMap, HeaderName, HeaderValue, header};

pub use client::HttpConfig;

use crate::delivery::{Attempt, AttemptErrorKind, AttemptOutcome, Delivery};
use crate::error::Result;
use crate::id::AttemptId;
use crate::retry::{Verdict, parse_retry_after};
use crate::secret::Secret;
use crate::signing::{SignInput, Signer};
use crate::subscription::{Auth, Subscription};

/// Makes single delivery attempts over one shared HTTP client.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    client: reqwest::Client,
    signer: Arc<dyn Signer>,
    default_secret: Option<Secret>,
    max_response_bytes: usize,
    timeout: Duration,
}

impl Dispatcher {
    /// A dispatcher signing with `signer`, using `default_secret` for subscriptions without
    /// their own.
    pub fn new(
        http: &HttpConfig,
        signer: Arc<dyn Signer>,
        default_secret: Option<Secret>,
    ) -> Result<Self> {
        Ok(Self {
            client: http.build_client()?,
            signer,
            default_secret,
            max_response_bytes: http.max_response_bytes,
            timeout: http.timeout,
        })
    }

    /// The longest one attempt can take (the HTTP client's total timeout). A queue's visibility
    /// timeout must exceed it, or a live attempt's lease could be taken over.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Tries `delivery` once against `subscription` and says what the result means. Never
    /// fails: a transport error is an attempt outcome like any other.
    pub async fn attempt(
        &self,
        delivery: &Delivery,
        subscription: &Subscription,
    ) -> (Attempt, Verdict) {
        let started_at = Utc::now();
        let clock = Instant::now();
        let (outcome, verdict) = match self.send(delivery, subscription).await {
            Ok((status, retry_after, body_excerpt)) => (
                AttemptOutcome::Response {
                    status,
                    body_excerpt,
                },
                Verdict::for_status(status, retry_after),
            ),
            Err(e) => {
                let kind = classify(&e);
                (
                    AttemptOutcome::Error {
                        kind,
                        message: error_chain(&e),
                    },
                    Verdict::Retry { retry_after: None },
                )
            }
        };
        let attempt = Attempt {
            id: AttemptId::new(),
            delivery_id: delivery.id.clone(),
            number: delivery.attempts + 1,
            started_at,
            duration: clock.elapsed(),
            outcome,
        };
        (attempt, verdict)
    }

    async fn send(
        &self,
        delivery: &Delivery,
        sub: &Subscription,
    ) -> std::result::Result<(u16, Option<Duration>, String), reqwest::Error> {
        let event = &delivery.event;
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        add_auth(&sub.auth, &mut headers);
        let secret = sub.secret.as_ref().or(self.default_secret.as_ref());
        let secrets: Vec<&Secret> = secret.into_iter().collect();
        self.signer.sign(
            &SignInput {
                delivery_id: delivery.id.as_str(),
                event_name: event.name().as_str(),
                timestamp: Utc::now().timestamp(),
                body: event.payload(),
            },
            &secrets,
            &mut headers,
        );
        let mut response = self
            .client
            .post(sub.url.clone())
            .headers(headers)
            .body(event.payload().clone())
            .send()
            .await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut excerpt = Vec::new();
        while excerpt.len() < self.max_response_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.max_response_bytes - excerpt.len();
                    excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                // The status is what counts; a body cut short does not change it.
                Ok(None) | Err(_) => break,
            }
        }
        Ok((
            status,
            retry_after,
            String::from_utf8_lossy(&excerpt).into_owned(),
        ))
    }
}

fn add_auth(auth: &Auth, headers: &mut HeaderMap) {
    let value = match auth {
        Auth::None => return,
        Auth::Bearer { token } => format!("Bearer {}", token.expose()),
        Auth::Basic { username, password } => {
            let raw = format!("{username}:{}", password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        }
        Auth::Header { name, value } => {
            // Both were validated when the subscription was made.
            if let (Ok(n), Ok(mut v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value.expose()),
            ) {
                v.set_sensitive(true);
                headers.insert(n, v);
            }
            return;
        }
    };
    if let Ok(mut v) = HeaderValue::from_str(&value) {
        v.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, v);
    }
}

fn classify(e: &reqwest::Error) -> AttemptErrorKind {
    if e.is_timeout() {
        AttemptErrorKind::Timeout
    } else if e.is_connect() {
        AttemptErrorKind::Connect
    } else {
        AttemptErrorKind::Transport
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

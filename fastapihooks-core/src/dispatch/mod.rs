//! [`Dispatcher`]: one HTTP attempt of one delivery — sign, POST, read a capped excerpt,
//! classify.

mod client;
mod guard;
mod http_config;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, header};

use client::{DeliveryClient, Failure};
pub use guard::{AddressPolicy, AllowHint, BLOCKED_RANGES, GuardedResolver, Refusal, canonical_ip};
pub use http_config::HttpConfig;

use crate::delivery::{Attempt, AttemptErrorKind, AttemptOutcome, Delivery};
use crate::error::{Error, Result};
use crate::id::AttemptId;
use crate::retry::{Verdict, parse_retry_after};
use crate::secret::Secret;
use crate::signing::{SignInput, Signer};
use crate::subscription::{Auth, Subscription};

/// Makes single delivery attempts over one shared HTTP client.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    client: DeliveryClient,
    signer: Arc<dyn Signer>,
    default_secret: Option<Secret>,
    http: HttpConfig,
}

impl Dispatcher {
    /// A dispatcher signing with `signer` (unless a subscription picks its own
    /// [`SignatureScheme`](crate::signing::SignatureScheme)), using `default_secret` for
    /// subscriptions without a secret of their own. A subscription in a secret rotation signs
    /// with every secret still in its grace period.
    pub fn new(
        http: &HttpConfig,
        signer: Arc<dyn Signer>,
        default_secret: Option<Secret>,
    ) -> Result<Self> {
        Ok(Self {
            client: DeliveryClient::new(http)?,
            signer,
            default_secret,
            http: http.clone(),
        })
    }

    /// The longest one attempt can take (the HTTP client's total timeout). A queue's visibility
    /// timeout must exceed it, or a live attempt's lease could be taken over.
    pub fn timeout(&self) -> Duration {
        self.http.timeout
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
        let result = match self.http.check_url(&subscription.url) {
            Ok(()) => self.send(delivery, subscription, started_at).await,
            Err(refused) => Err(SendError::Refused(refused)),
        };
        let (outcome, verdict) = match result {
            Ok((status, retry_after, body_excerpt)) => (
                AttemptOutcome::Response {
                    status,
                    body_excerpt,
                },
                Verdict::for_status(status, retry_after),
            ),
            Err(e) => e.into_outcome(),
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

    /// Signs the delivery — timestamped `now`, the attempt's start — POSTs it and reads the
    /// answer: its status, `Retry-After` and an excerpt of its body.
    async fn send(
        &self,
        delivery: &Delivery,
        sub: &Subscription,
        now: DateTime<Utc>,
    ) -> std::result::Result<(u16, Option<Duration>, String), SendError> {
        let event = &delivery.event;
        let mut request = self
            .client
            .post(sub.url.as_uri().clone(), event.payload().clone());
        // Written into the request's own map: a map of ours would be copied into it.
        let headers = request.headers_mut();
        // Credentials first: the engine's own headers, set after, always win.
        add_auth(&sub.auth, headers);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // One secret (no rotation under way) needs no list: the common case allocates nothing.
        let one: [&Secret; 1];
        let rotating: Vec<&Secret>;
        let secrets: &[&Secret] = if sub.previous_secrets.is_empty() {
            match sub.secret.as_ref().or(self.default_secret.as_ref()) {
                Some(secret) => {
                    one = [secret];
                    &one
                }
                None => &[],
            }
        } else {
            rotating = match sub.signing_secrets(now) {
                own if own.is_empty() => self.default_secret.iter().collect(),
                own => own,
            };
            &rotating
        };
        let signer: &dyn Signer = match sub.signature_scheme {
            Some(scheme) => scheme.signer(),
            None => self.signer.as_ref(),
        };
        signer.sign(
            &SignInput {
                delivery_id: delivery.id.as_str(),
                event_name: event.name().as_str(),
                timestamp: now.timestamp(),
                body: event.payload(),
            },
            secrets,
            headers,
        );
        if self.http.send_traceparent
            && let Some(trace) = event.trace()
            && let Ok(value) = HeaderValue::from_str(&trace.child().to_string())
        {
            headers.insert("traceparent", value);
        }
        let answer = self.client.send(request).await.map_err(SendError::Failed)?;
        let status = answer.head.status.as_u16();
        let retry_after = answer
            .head
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Valid UTF-8 (the rule) is kept as it is, without a copy.
        let excerpt = String::from_utf8(answer.excerpt)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok((status, retry_after, excerpt))
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
        Auth::Header(custom) => {
            // Both were validated when the credential was made.
            if let (Ok(n), Ok(mut v)) = (
                HeaderName::from_bytes(custom.name().as_bytes()),
                HeaderValue::from_str(custom.value().expose()),
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

/// Why an attempt got no response.
enum SendError {
    /// Refused before any connection (SSRF guard on a literal address, `https_only`).
    Refused(Error),
    /// The HTTP exchange failed or timed out, possibly because the guard refused every
    /// resolved address.
    Failed(Failure),
}

impl SendError {
    /// A refusal is final; a transport failure is worth another try.
    fn into_outcome(self) -> (AttemptOutcome, Verdict) {
        let refused = |message: String| {
            (
                AttemptOutcome::Error {
                    kind: AttemptErrorKind::Blocked,
                    message,
                },
                Verdict::Reject {
                    disable_subscription: false,
                },
            )
        };
        match self {
            SendError::Refused(e) => refused(e.to_string()),
            SendError::Failed(Failure::TimedOut(after)) => (
                AttemptOutcome::Error {
                    kind: AttemptErrorKind::Timeout,
                    message: format!(
                        "no response within {} (the HTTP timeout)",
                        humantime::format_duration(after)
                    ),
                },
                Verdict::Retry { retry_after: None },
            ),
            SendError::Failed(Failure::Http(e)) => {
                if let Some(blocked) = guard::find_blocked(&e) {
                    return refused(blocked.to_string());
                }
                let kind = if timed_out(&e) {
                    AttemptErrorKind::Timeout
                } else if e.is_connect() {
                    AttemptErrorKind::Connect
                } else {
                    AttemptErrorKind::Transport
                };
                (
                    AttemptOutcome::Error {
                        kind,
                        message: error_chain(&e),
                    },
                    Verdict::Retry { retry_after: None },
                )
            }
        }
    }
}

/// Whether an I/O timeout (connecting took longer than the connect timeout) is behind `e`.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        current = err.source();
    }
    false
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

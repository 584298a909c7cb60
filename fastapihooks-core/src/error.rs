//! The crate's one error type.

use std::time::Duration;

/// Everything that can go wrong in `fastapihooks-core`.
///
/// Each variant keeps its kind and the input it is about, so a caller can match on it and a user
/// can act on its message. Secrets never appear in a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No secret signs deliveries to subscriptions without one of their own, and unsigned
    /// delivery was not asked for.
    #[error(
        "no signing secret: deliveries to subscriptions without a secret of their own would go \
         out unsigned; set one with `.secret(..)`, or ask for unsigned delivery explicitly with \
         `.unsigned()`"
    )]
    NoSigningSecret,
    /// The URL of a queue or database server (not a webhook URL) that cannot be used.
    #[error("invalid {service} URL {url:?}: {reason}")]
    InvalidServiceUrl {
        /// What the URL points at, e.g. `Redis`.
        service: &'static str,
        /// The URL as given, credentials redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A subscription URL that cannot be delivered to.
    #[error("invalid webhook URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An event name outside the accepted alphabet or length.
    #[error("invalid event name {name:?}: {reason}")]
    InvalidEventName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A subscription event filter that is neither a name, `prefix.*` nor `*`.
    #[error("invalid event filter {filter:?}: {reason}")]
    InvalidEventFilter {
        /// The filter as given.
        filter: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A string that is not an id of the expected kind.
    #[error("invalid id {input:?}: expected `{prefix}_` followed by a 26-character ULID")]
    InvalidId {
        /// The string as given.
        input: String,
        /// The prefix this kind of id carries.
        prefix: &'static str,
    },
    /// A signing secret or credential that cannot be used.
    #[error("invalid secret: {reason}")]
    InvalidSecret {
        /// What is wrong with it (never the secret itself).
        reason: &'static str,
    },
    /// A header name or value that cannot be sent.
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A signature scheme name that is not one of [`SignatureScheme`](crate::signing::SignatureScheme)'s.
    #[error("unknown signature scheme {input:?}: expected sha256_hex or standard_webhooks")]
    UnknownSignatureScheme {
        /// The name as given.
        input: String,
    },
    /// A retry policy given as text that cannot be read.
    #[error("invalid retry policy {input:?}: {reason}")]
    InvalidRetryPolicy {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration value out of its range.
    #[error("invalid configuration `{field}`: {reason}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An event payload larger than the configured maximum.
    #[error("event payload of {size} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The serialized size.
        size: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// A payload that could not be serialized to JSON, or bytes that are not JSON.
    #[error("event payload is not valid JSON: {0}")]
    InvalidPayload(#[source] serde_json::Error),
    /// A value of the model that could not be encoded as JSON for a store or a queue.
    #[error("{what}: could not be encoded as JSON: {source}")]
    Encode {
        /// What was being encoded, e.g. `queue.task`.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The backend's queue stayed full for longer than the publish bound.
    #[error("backend queue is full: waited {waited:?} for room; the event was not accepted")]
    QueueFull {
        /// How long `publish` waited.
        waited: Duration,
    },
    /// The backend is shutting down or has shut down and accepts no more events.
    #[error("backend is shut down and accepts no more events")]
    ShutDown,
    /// A subscription id that the store does not know.
    #[error("subscription {id} not found")]
    SubscriptionNotFound {
        /// The id looked up.
        id: String,
    },
    /// A delivery id that the store does not know.
    #[error("delivery {id} not found")]
    DeliveryNotFound {
        /// The id looked up.
        id: String,
    },
    /// An inbox id that the inbox does not know.
    #[error("inbox entry {id} not found")]
    InboxEntryNotFound {
        /// The id looked up.
        id: String,
    },
    /// A replay was asked of a backend that has no way to queue a delivery again.
    #[error(
        "{backend} cannot replay deliveries: it does not implement `Backend::redeliver`; replay through a queue (Redis, the SQL outbox) or the in-process backend"
    )]
    ReplayUnsupported {
        /// The backend's type.
        backend: &'static str,
    },
    /// An optional operation that the implementation in use does not provide (the trait's
    /// default refuses rather than silently doing nothing), e.g. [`Store::prune`](crate::Store::prune)
    /// on a store of one's own that does not override it.
    #[error(
        "{what} is not supported by the implementation in use: it does not provide this operation"
    )]
    Unsupported {
        /// The operation, e.g. `store.prune`.
        what: &'static str,
    },
    /// A subscription id that the store already holds.
    #[error("subscription {id} already exists")]
    SubscriptionExists {
        /// The duplicate id.
        id: String,
    },
    /// A store or queue that failed (database down, query rejected, ...).
    #[error("{what} failed: {source}")]
    Storage {
        /// The operation that failed, e.g. `store.matching`.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A value longer than the store can keep.
    #[error("{field} is {len} characters long; the store keeps at most {limit}")]
    TooLong {
        /// What the value is, e.g. `subscription.owner`.
        field: &'static str,
        /// Its length, in characters.
        len: usize,
        /// The most the store keeps.
        limit: usize,
    },
    /// A stored record that cannot be read back into the model (edited by hand, or written by an
    /// incompatible version).
    #[error("stored {table} record {id} is unreadable: column `{column}`: {reason}")]
    CorruptRecord {
        /// The table (or collection) it was read from.
        table: &'static str,
        /// The record's id.
        id: String,
        /// The column that holds the unreadable value.
        column: &'static str,
        /// What is wrong with the value (never a secret's value).
        reason: String,
    },
    /// The HTTP client could not be built from its configuration.
    #[error("HTTP client could not be built: {0}")]
    HttpClient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The SSRF guard refused the address a delivery would connect to.
    #[error(
        "delivery to {host} refused: address {address} is in {range} ({reason}), which the SSRF \
         guard blocks; {}",
        .hint.how_to_allow(.address, .range)
    )]
    BlockedAddress {
        /// The URL's host as written.
        host: String,
        /// The refused address (IPv4-mapped IPv6 shown as IPv4).
        address: std::net::IpAddr,
        /// The blocked range it lies in.
        range: ipnet::IpNet,
        /// What that range is.
        reason: &'static str,
        /// How the message says to allow the address (the Rust API, or the sidecar's flags).
        hint: crate::dispatch::AllowHint,
    },
    /// A plain-`http` URL while the client is configured `https_only`.
    #[error("delivery to {url} refused: the HTTP client is https_only and this URL is not https")]
    HttpsRequired {
        /// The URL.
        url: String,
    },
    /// A lease receipt that the queue did not issue (from another queue, or made up).
    #[error("receipt {receipt:?} was not issued by {queue}")]
    ForeignReceipt {
        /// The receipt as given.
        receipt: String,
        /// The queue it was handed to.
        queue: &'static str,
    },
    /// A received webhook whose signature was not accepted (see
    /// [`VerifyError`](crate::signing::VerifyError), what receivers match on).
    #[error(transparent)]
    Verify(#[from] crate::signing::VerifyError),
}

impl Error {
    /// Wraps an error from a store or queue implementation, naming the operation.
    pub fn storage(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Storage {
            what,
            source: source.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! [`PublisherBuilder`]: the publish-only front for a backend that delivers elsewhere — a
//! durable [`Queue`](crate::Queue) drained by the `fastapihooks start` sidecar, or a
//! [`Backend`] of one's own.
//!
//! It has no delivery settings (subscribers in code, secret, signer, retries, HTTP limits,
//! `on_failure`) because the process that publishes does not deliver: those belong to whatever
//! drains the backend (the sidecar's flags, or [`EmitterBuilder`](crate::EmitterBuilder) for an
//! in-process backend). A setting that would be ignored cannot be written.

use std::sync::Arc;

use crate::backend::Backend;
use crate::emitter::{DEFAULT_MAX_PAYLOAD_BYTES, Emitter};
use crate::store::{MemoryStore, Store};

/// Configures an [`Emitter`] that only publishes, into `backend`. Made by
/// [`Emitter::publisher`].
///
/// ```no_run
/// # #[cfg(feature = "sql")]
/// # async fn run() -> Result<(), fastapihooks_core::Error> {
/// use fastapihooks_core::{Emitter, SqlBackend, SqlStore};
///
/// let store = SqlStore::connect("sqlite://app.db?mode=rwc").await?;
/// let emitter = Emitter::publisher(SqlBackend::for_store(&store))
///     .store(store) // where `fastapihooks start` finds the subscriptions
///     .build()?;
/// emitter.emit("order.created", &serde_json::json!({"id": 1})).await?;
/// # Ok(()) }
/// ```
pub struct PublisherBuilder {
    backend: Arc<dyn Backend>,
    store: Option<Arc<dyn Store>>,
    max_payload_bytes: usize,
    trace_context: Option<Arc<dyn crate::trace::TraceContext>>,
}

impl std::fmt::Debug for PublisherBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublisherBuilder")
            .field("max_payload_bytes", &self.max_payload_bytes)
            .finish_non_exhaustive()
    }
}

impl PublisherBuilder {
    pub(crate) fn new(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            store: None,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            trace_context: None,
        }
    }

    /// The store the application manages subscriptions in (the one the sidecar reads), made
    /// available through [`Emitter::store`]. Default: an empty [`MemoryStore`].
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Like [`store`](Self::store), for a store shared with other code.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The largest serialized payload accepted. Default 256 KiB.
    pub fn max_payload_bytes(mut self, limit: usize) -> Self {
        self.max_payload_bytes = limit;
        self
    }

    /// Bridges traces to a tracing system: events published take its current context (see
    /// [`EmitterBuilder::trace_context`](crate::EmitterBuilder::trace_context)).
    pub fn trace_context(mut self, context: Arc<dyn crate::trace::TraceContext>) -> Self {
        self.trace_context = Some(context);
        self
    }

    /// Builds the emitter.
    pub fn build(self) -> crate::Result<Emitter> {
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        Ok(Emitter::from_parts(
            self.backend,
            store,
            self.max_payload_bytes,
            self.trace_context,
        ))
    }
}

//! [`OutboxTable`]: which of the store's outbox tables a [`SqlBackend`](super::SqlBackend)
//! queues into.

/// Which outbox table a [`SqlBackend`](super::SqlBackend) queues into.
///
/// Both tables have the same shape and are created by the store's migrations; they are
/// separate queues: a backend leases, counts and prunes the rows of its own table only. The
/// names are fixed — no string of the application's goes into the SQL.
///
/// ```
/// use fastapihooks_core::backend::OutboxTable;
/// assert_eq!(OutboxTable::default(), OutboxTable::Events);
/// assert_eq!(OutboxTable::Inbox.name(), "fastapihooks_inbox_queue");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OutboxTable {
    /// `fastapihooks_outbox`, the default: published events and their deliveries, drained by
    /// `fastapihooks start`.
    #[default]
    Events,
    /// `fastapihooks_inbox_queue`: processing of received webhooks, drained by the
    /// application's own worker (processing re-enters the application's router, so the
    /// sidecar never leases it).
    Inbox,
}

impl OutboxTable {
    /// The table's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Events => "fastapihooks_outbox",
            Self::Inbox => "fastapihooks_inbox_queue",
        }
    }
}

impl std::fmt::Display for OutboxTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

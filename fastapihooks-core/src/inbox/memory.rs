//! [`MemoryInbox`]: the inbox of [`MemoryStore`](crate::MemoryStore).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    Inbox, InboxEntry, InboxOutcome, InboxQuery, InboxStatus, NewInboxEntry, OrderingKey, Received,
};
use crate::error::{Error, Result};
use crate::id::InboxId;

/// Entries by id, and the id of each (source, external id).
#[derive(Debug, Default)]
pub(crate) struct MemoryInbox {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<InboxId, InboxEntry>,
    keys: HashMap<(String, String), InboxId>,
}

impl MemoryInbox {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is one insert or one field change: a poisoned map is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Now, at the microsecond (what a SQL store keeps), so entries compare equal across stores.
fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

#[async_trait]
impl Inbox for MemoryInbox {
    async fn receive(&self, new: NewInboxEntry) -> Result<Received> {
        let mut state = self.state();
        let key = (new.source.clone(), new.external_id.clone());
        if let Some(id) = state.keys.get(&key)
            && let Some(entry) = state.entries.get(id)
        {
            return Ok(Received::Duplicate(entry.clone()));
        }
        let entry = InboxEntry::received(new, now());
        state.keys.insert(key, entry.id.clone());
        state.entries.insert(entry.id.clone(), entry.clone());
        Ok(Received::New(entry))
    }

    async fn get_inbox_entry(&self, id: &InboxId) -> Result<Option<InboxEntry>> {
        Ok(self.state().entries.get(id).cloned())
    }

    async fn list_inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>> {
        Ok(self
            .state()
            .entries
            .values()
            .rev()
            .filter(|e| query.matches(e))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn start_processing(&self, id: &InboxId) -> Result<Option<InboxEntry>> {
        let mut state = self.state();
        let Some(entry) = state.entries.get_mut(id) else {
            return Ok(None);
        };
        if !entry.status.is_final() {
            entry.status = InboxStatus::Processing;
            entry.attempts += 1;
            entry.updated_at = now();
        }
        Ok(Some(entry.clone()))
    }

    async fn finish_processing(&self, id: &InboxId, outcome: &InboxOutcome) -> Result<bool> {
        let mut state = self.state();
        let entry = state
            .entries
            .get_mut(id)
            .ok_or_else(|| Error::InboxEntryNotFound { id: id.to_string() })?;
        if entry.status != InboxStatus::Processing {
            return Ok(false);
        }
        let at = now();
        match outcome {
            InboxOutcome::Processed => {
                entry.status = InboxStatus::Processed;
                entry.processed_at = Some(at);
                entry.last_error = None;
            }
            InboxOutcome::Failed { error } => {
                entry.status = InboxStatus::Failed;
                entry.last_error = Some(error.clone());
            }
            InboxOutcome::Dead { error } => {
                entry.status = InboxStatus::Dead;
                entry.last_error = Some(error.clone());
            }
        }
        entry.updated_at = at;
        Ok(true)
    }

    async fn reopen(&self, id: &InboxId, processed_too: bool) -> Result<Option<InboxEntry>> {
        let mut state = self.state();
        let entry = state
            .entries
            .get_mut(id)
            .ok_or_else(|| Error::InboxEntryNotFound { id: id.to_string() })?;
        let reopens = entry.status == InboxStatus::Dead
            || (processed_too && entry.status == InboxStatus::Processed);
        if !reopens {
            return Ok(None);
        }
        entry.status = InboxStatus::Received;
        entry.updated_at = now();
        Ok(Some(entry.clone()))
    }

    async fn newer_processed(&self, source: &str, ordering: &OrderingKey) -> Result<bool> {
        Ok(self.state().entries.values().any(|e| {
            e.source == source
                && e.status == InboxStatus::Processed
                && e.ordering
                    .as_ref()
                    .is_some_and(|o| o.object == ordering.object && o.position > ordering.position)
        }))
    }

    async fn stranded(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<InboxEntry>> {
        let mut stranded: Vec<InboxEntry> = self
            .state()
            .entries
            .values()
            .filter(|e| e.status == InboxStatus::Received && e.received_at < before)
            .cloned()
            .collect();
        stranded.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
        stranded.truncate(limit);
        Ok(stranded)
    }
}

/// The store keeps received webhooks too: one value to hand to both the engine and the inbox
/// route. Unbounded (entries are kept until the process ends), like any development store.
#[async_trait]
impl Inbox for crate::MemoryStore {
    async fn receive(&self, entry: NewInboxEntry) -> Result<Received> {
        self.memory_inbox().receive(entry).await
    }
    async fn get_inbox_entry(&self, id: &InboxId) -> Result<Option<InboxEntry>> {
        self.memory_inbox().get_inbox_entry(id).await
    }
    async fn list_inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>> {
        self.memory_inbox().list_inbox(query).await
    }
    async fn start_processing(&self, id: &InboxId) -> Result<Option<InboxEntry>> {
        self.memory_inbox().start_processing(id).await
    }
    async fn finish_processing(&self, id: &InboxId, outcome: &InboxOutcome) -> Result<bool> {
        self.memory_inbox().finish_processing(id, outcome).await
    }
    async fn reopen(&self, id: &InboxId, processed_too: bool) -> Result<Option<InboxEntry>> {
        self.memory_inbox().reopen(id, processed_too).await
    }
    async fn newer_processed(&self, source: &str, ordering: &OrderingKey) -> Result<bool> {
        self.memory_inbox().newer_processed(source, ordering).await
    }
    async fn stranded(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<InboxEntry>> {
        self.memory_inbox().stranded(before, limit).await
    }
}

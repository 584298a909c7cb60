//! The inbox part of the contract: what every [`Inbox`] must do — store a webhook once per
//! (source, external id), move it through its processing states one way, page it, find newer
//! events and stranded entries. [`inbox_contract!`](crate::inbox_contract) runs each behaviour
//! as a `#[test]` through a harness handing it a fresh inbox.

use bytes::Bytes;
use chrono::{Duration, Utc};
use fastapihooks_core::inbox::{
    Inbox, InboxEntry, InboxOutcome, InboxQuery, InboxStatus, NewInboxEntry, OrderingKey, Received,
};
use fastapihooks_core::{Error, InboxId};

/// One `#[test]` per behaviour of the inbox contract, each run through `$harness` (an async
/// function taking `impl AsyncFnOnce(&dyn Inbox)` and calling it with a fresh inbox).
///
/// ```
/// use fastapihooks_core::{MemoryStore, inbox::Inbox};
/// async fn with_inbox(behaviour: impl AsyncFnOnce(&dyn Inbox)) {
///     behaviour(&MemoryStore::new()).await;
/// }
/// fastapihooks_testkit::inbox_contract!(with_inbox);
/// # fn main() {
/// #     fastapihooks_testkit::contract::run(with_inbox(fastapihooks_testkit::contract::a_new_webhook_is_stored_as_received));
/// # }
/// ```
#[macro_export]
macro_rules! inbox_contract {
    ($harness:path) => {
        $crate::store_contract!(@each $harness;
            a_new_webhook_is_stored_as_received,
            a_second_copy_is_a_duplicate_and_changes_nothing,
            the_same_external_id_from_another_source_is_new,
            concurrent_copies_store_one_entry,
            an_unknown_entry_reads_as_none,
            processing_counts_attempts_and_records_success,
            a_failed_attempt_keeps_its_error_and_may_run_again,
            a_dead_entry_is_final_until_reopened,
            a_processed_entry_is_not_started_again,
            finishing_an_entry_that_is_not_processing_changes_nothing,
            finishing_an_unknown_entry_is_not_found,
            reopening_takes_only_dead_entries_unless_asked,
            reopening_an_unknown_entry_is_not_found,
            the_inbox_lists_newest_first_in_keyset_pages,
            the_inbox_lists_only_what_the_query_asks_for,
            a_newer_processed_event_about_the_same_object_is_found,
            stranded_entries_are_those_still_received_before_the_cut_off,
            a_binary_body_and_the_headers_read_back_unchanged,
        );
    };
}

fn webhook(source: &str, external_id: &str) -> NewInboxEntry {
    NewInboxEntry {
        source: source.to_owned(),
        external_id: external_id.to_owned(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("webhook-id".into(), external_id.to_owned()),
        ],
        body: Bytes::from(format!(r#"{{"id":"{external_id}"}}"#)),
        ordering: None,
    }
}

async fn stored(inbox: &dyn Inbox, source: &str, external_id: &str) -> InboxEntry {
    match inbox.receive(webhook(source, external_id)).await.unwrap() {
        Received::New(entry) => entry,
        Received::Duplicate(entry) => panic!("{} was new", entry.id),
    }
}

async fn read(inbox: &dyn Inbox, id: &InboxId) -> InboxEntry {
    inbox.get_inbox_entry(id).await.unwrap().expect("stored")
}

fn failed(error: &str) -> InboxOutcome {
    InboxOutcome::Failed {
        error: error.to_owned(),
    }
}

/// A behaviour of the inbox contract: a new webhook is stored as received, with no attempt,
/// and reads back as stored.
pub async fn a_new_webhook_is_stored_as_received(inbox: &dyn Inbox) {
    let entry = stored(inbox, "github", "d-1").await;
    assert_eq!(entry.status, InboxStatus::Received);
    assert_eq!(entry.attempts, 0);
    assert_eq!(
        (entry.source.as_str(), entry.external_id.as_str()),
        ("github", "d-1")
    );
    assert!(entry.processed_at.is_none() && entry.last_error.is_none());
    assert_eq!(read(inbox, &entry.id).await, entry);
}

/// A behaviour of the inbox contract: the same (source, external id) again is a duplicate,
/// answered with the stored entry, which it does not change.
pub async fn a_second_copy_is_a_duplicate_and_changes_nothing(inbox: &dyn Inbox) {
    let first = stored(inbox, "github", "d-1").await;
    inbox.start_processing(&first.id).await.unwrap();
    let now = read(inbox, &first.id).await;
    let mut copy = webhook("github", "d-1");
    copy.body = Bytes::from_static(b"{\"changed\":true}");
    match inbox.receive(copy).await.unwrap() {
        Received::Duplicate(entry) => assert_eq!(entry, now),
        Received::New(entry) => panic!("a copy was stored again as {}", entry.id),
    }
    assert_eq!(read(inbox, &first.id).await, now);
}

/// A behaviour of the inbox contract: ids are unique per source, not across sources.
pub async fn the_same_external_id_from_another_source_is_new(inbox: &dyn Inbox) {
    let github = stored(inbox, "github", "1").await;
    let stripe = stored(inbox, "stripe", "1").await;
    assert_ne!(github.id, stripe.id);
}

/// A behaviour of the inbox contract: of many copies arriving at once, one is new and every
/// other a duplicate of it.
pub async fn concurrent_copies_store_one_entry(inbox: &dyn Inbox) {
    let results =
        futures_util::future::join_all((0..16).map(|_| inbox.receive(webhook("partner", "same"))))
            .await;
    let results: Vec<Received> = results.into_iter().map(Result::unwrap).collect();
    let new = results
        .iter()
        .filter(|r| matches!(r, Received::New(_)))
        .count();
    assert_eq!(new, 1, "{results:?}");
    let ids: std::collections::HashSet<&InboxId> = results.iter().map(|r| &r.entry().id).collect();
    assert_eq!(ids.len(), 1);
}

/// A behaviour of the inbox contract: an id the inbox does not hold reads as none and starts
/// no processing.
pub async fn an_unknown_entry_reads_as_none(inbox: &dyn Inbox) {
    let unknown = InboxId::new();
    assert!(inbox.get_inbox_entry(&unknown).await.unwrap().is_none());
    assert!(inbox.start_processing(&unknown).await.unwrap().is_none());
}

/// A behaviour of the inbox contract: each start counts an attempt; success records the time
/// and clears the error.
pub async fn processing_counts_attempts_and_records_success(inbox: &dyn Inbox) {
    let entry = stored(inbox, "github", "d-1").await;
    let started = inbox.start_processing(&entry.id).await.unwrap().unwrap();
    assert_eq!(
        (started.status, started.attempts),
        (InboxStatus::Processing, 1)
    );
    assert!(
        inbox
            .finish_processing(&entry.id, &failed("boom"))
            .await
            .unwrap()
    );
    let again = inbox.start_processing(&entry.id).await.unwrap().unwrap();
    assert_eq!((again.status, again.attempts), (InboxStatus::Processing, 2));
    assert!(
        inbox
            .finish_processing(&entry.id, &InboxOutcome::Processed)
            .await
            .unwrap()
    );
    let done = read(inbox, &entry.id).await;
    assert_eq!(done.status, InboxStatus::Processed);
    assert_eq!(done.attempts, 2);
    assert!(done.processed_at.is_some());
    assert!(done.last_error.is_none(), "{:?}", done.last_error);
}

/// A behaviour of the inbox contract: a failed attempt keeps its error, and the entry can be
/// started again.
pub async fn a_failed_attempt_keeps_its_error_and_may_run_again(inbox: &dyn Inbox) {
    let entry = stored(inbox, "github", "d-1").await;
    inbox.start_processing(&entry.id).await.unwrap();
    inbox
        .finish_processing(&entry.id, &failed("503 from /internal/process"))
        .await
        .unwrap();
    let failed = read(inbox, &entry.id).await;
    assert_eq!(failed.status, InboxStatus::Failed);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("503 from /internal/process")
    );
    let again = inbox.start_processing(&entry.id).await.unwrap().unwrap();
    assert_eq!(again.status, InboxStatus::Processing);
}

/// A behaviour of the inbox contract: a dead entry is final — starting it changes nothing —
/// until it is reopened.
pub async fn a_dead_entry_is_final_until_reopened(inbox: &dyn Inbox) {
    let entry = stored(inbox, "github", "d-1").await;
    inbox.start_processing(&entry.id).await.unwrap();
    let dead = InboxOutcome::Dead {
        error: "out of retries".into(),
    };
    inbox.finish_processing(&entry.id, &dead).await.unwrap();
    let before = read(inbox, &entry.id).await;
    assert_eq!(before.status, InboxStatus::Dead);
    let started = inbox.start_processing(&entry.id).await.unwrap().unwrap();
    assert_eq!(started, before);
    let reopened = inbox.reopen(&entry.id, false).await.unwrap().unwrap();
    assert_eq!(reopened.status, InboxStatus::Received);
    assert_eq!(reopened.attempts, 1, "attempts stay, for the record");
    assert_eq!(read(inbox, &entry.id).await, reopened);
}

/// A behaviour of the inbox contract: a processed entry is returned unchanged by a start.
pub async fn a_processed_entry_is_not_started_again(inbox: &dyn Inbox) {
    let entry = stored(inbox, "github", "d-1").await;
    inbox.start_processing(&entry.id).await.unwrap();
    inbox
        .finish_processing(&entry.id, &InboxOutcome::Processed)
        .await
        .unwrap();
    let done = read(inbox, &entry.id).await;
    assert_eq!(
        inbox.start_processing(&entry.id).await.unwrap().unwrap(),
        done
    );
}

/// A behaviour of the inbox contract: an outcome is recorded only on a processing entry.
pub async fn finishing_an_entry_that_is_not_processing_changes_nothing(inbox: &dyn Inbox) {
    let entry = stored(inbox, "github", "d-1").await;
    assert!(
        !inbox
            .finish_processing(&entry.id, &InboxOutcome::Processed)
            .await
            .unwrap()
    );
    assert_eq!(read(inbox, &entry.id).await, entry);
}

/// A behaviour of the inbox contract: finishing an id the inbox does not hold is not found.
pub async fn finishing_an_unknown_entry_is_not_found(inbox: &dyn Inbox) {
    let err = inbox
        .finish_processing(&InboxId::new(), &InboxOutcome::Processed)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InboxEntryNotFound { .. }), "{err}");
}

/// A behaviour of the inbox contract: reopen takes a dead entry, a processed one only when
/// asked, and leaves a received, processing or failed one alone.
pub async fn reopening_takes_only_dead_entries_unless_asked(inbox: &dyn Inbox) {
    let received = stored(inbox, "s", "received").await;
    assert!(inbox.reopen(&received.id, true).await.unwrap().is_none());
    let failing = stored(inbox, "s", "failed").await;
    inbox.start_processing(&failing.id).await.unwrap();
    assert!(
        inbox.reopen(&failing.id, true).await.unwrap().is_none(),
        "processing"
    );
    inbox
        .finish_processing(&failing.id, &failed("x"))
        .await
        .unwrap();
    assert!(
        inbox.reopen(&failing.id, true).await.unwrap().is_none(),
        "failed"
    );
    let done = stored(inbox, "s", "processed").await;
    inbox.start_processing(&done.id).await.unwrap();
    inbox
        .finish_processing(&done.id, &InboxOutcome::Processed)
        .await
        .unwrap();
    assert!(inbox.reopen(&done.id, false).await.unwrap().is_none());
    assert_eq!(read(inbox, &done.id).await.status, InboxStatus::Processed);
    let reopened = inbox.reopen(&done.id, true).await.unwrap().unwrap();
    assert_eq!(reopened.status, InboxStatus::Received);
}

/// A behaviour of the inbox contract: reopening an id the inbox does not hold is not found.
pub async fn reopening_an_unknown_entry_is_not_found(inbox: &dyn Inbox) {
    let err = inbox.reopen(&InboxId::new(), true).await.unwrap_err();
    assert!(matches!(err, Error::InboxEntryNotFound { .. }), "{err}");
}

/// A behaviour of the inbox contract: pages come newest first (by id) and the next page starts
/// before the last id of the previous one, skipping and repeating nothing.
pub async fn the_inbox_lists_newest_first_in_keyset_pages(inbox: &dyn Inbox) {
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(stored(inbox, "s", &n.to_string()).await.id);
    }
    // Newest first by id (ids made in the same millisecond order among themselves at random).
    ids.sort();
    ids.reverse();
    let first = inbox
        .list_inbox(&InboxQuery::default().limit(2))
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|e| &e.id).collect::<Vec<_>>(),
        ids[..2].iter().collect::<Vec<_>>()
    );
    let mut seen: Vec<InboxId> = first.iter().map(|e| e.id.clone()).collect();
    let mut query = InboxQuery::default().limit(2).before(seen[1].clone());
    loop {
        let page = inbox.list_inbox(&query).await.unwrap();
        let Some(last) = page.last() else { break };
        query = query.before(last.id.clone());
        seen.extend(page.iter().map(|e| e.id.clone()));
    }
    assert_eq!(seen, ids);
}

/// A behaviour of the inbox contract: the listed entries are those [`InboxQuery::matches`]
/// accepts, for each filter.
pub async fn the_inbox_lists_only_what_the_query_asks_for(inbox: &dyn Inbox) {
    let a = stored(inbox, "github", "1").await;
    let b = stored(inbox, "stripe", "2").await;
    inbox.start_processing(&b.id).await.unwrap();
    inbox
        .finish_processing(&b.id, &InboxOutcome::Dead { error: "x".into() })
        .await
        .unwrap();
    let all = inbox.list_inbox(&InboxQuery::default()).await.unwrap();
    let queries = [
        InboxQuery::default().source("github"),
        InboxQuery::default().status(InboxStatus::Dead),
        InboxQuery::default()
            .status(InboxStatus::Received)
            .source("stripe"),
        InboxQuery::default().external_id("2"),
        InboxQuery::default().since(a.received_at + Duration::hours(1)),
        InboxQuery::default().until(a.received_at + Duration::hours(1)),
    ];
    for query in queries {
        let listed: Vec<InboxId> = inbox
            .list_inbox(&query)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        let expected: Vec<InboxId> = all
            .iter()
            .filter(|e| query.matches(e))
            .map(|e| e.id.clone())
            .collect();
        assert_eq!(listed, expected, "{query:?}");
    }
}

/// A behaviour of the inbox contract: a processed entry about the same object at a later
/// position is found; an earlier one, another object, another source or one not processed is
/// not.
pub async fn a_newer_processed_event_about_the_same_object_is_found(inbox: &dyn Inbox) {
    let at = |source: &str, id: &str, object: &str, position: i64| {
        let mut w = webhook(source, id);
        w.ordering = Some(OrderingKey::new(object, position));
        w
    };
    let process = async |w: NewInboxEntry| {
        let Received::New(entry) = inbox.receive(w).await.unwrap() else {
            panic!("new")
        };
        inbox.start_processing(&entry.id).await.unwrap();
        inbox
            .finish_processing(&entry.id, &InboxOutcome::Processed)
            .await
            .unwrap();
    };
    process(at("stripe", "e2", "cus_1", 200)).await;
    process(at("github", "g1", "cus_9", 900)).await;
    inbox
        .receive(at("stripe", "e3", "cus_9", 900))
        .await
        .unwrap();
    let asks = |object: &str, position: i64| OrderingKey::new(object, position);
    assert!(
        inbox
            .newer_processed("stripe", &asks("cus_1", 100))
            .await
            .unwrap()
    );
    assert!(
        !inbox
            .newer_processed("stripe", &asks("cus_1", 200))
            .await
            .unwrap(),
        "same position"
    );
    assert!(
        !inbox
            .newer_processed("stripe", &asks("cus_1", 300))
            .await
            .unwrap(),
        "older"
    );
    assert!(
        !inbox
            .newer_processed("stripe", &asks("cus_2", 100))
            .await
            .unwrap(),
        "another object"
    );
    assert!(
        !inbox
            .newer_processed("stripe", &asks("cus_9", 100))
            .await
            .unwrap(),
        "not processed, or another source"
    );
}

/// A behaviour of the inbox contract: stranded entries are the received ones older than the
/// cut-off, oldest first (by time received, then id), at most the limit.
pub async fn stranded_entries_are_those_still_received_before_the_cut_off(inbox: &dyn Inbox) {
    let old = stored(inbox, "s", "1").await;
    let older_too = stored(inbox, "s", "2").await;
    let taken = stored(inbox, "s", "3").await;
    inbox.start_processing(&taken.id).await.unwrap();
    let later = Utc::now() + Duration::seconds(5);
    let stranded = inbox.stranded(later, 10).await.unwrap();
    let ids: Vec<&InboxId> = stranded.iter().map(|e| &e.id).collect();
    // Oldest first: by time received, then by id.
    let mut expected = [&old, &older_too];
    expected.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
    assert_eq!(ids, expected.map(|e| &e.id).to_vec());
    assert_eq!(inbox.stranded(later, 1).await.unwrap().len(), 1);
    let before_any = old.received_at;
    assert!(inbox.stranded(before_any, 10).await.unwrap().is_empty());
}

/// A behaviour of the inbox contract: the body is kept byte for byte (not UTF-8 included) and
/// the headers in their order; so is an ordering key.
pub async fn a_binary_body_and_the_headers_read_back_unchanged(inbox: &dyn Inbox) {
    let mut w = webhook("s", "bin");
    w.body = Bytes::from((0..=255u8).cycle().take(70_000).collect::<Vec<u8>>());
    w.headers.push(("x-custom".into(), "ä value".into()));
    w.ordering = Some(OrderingKey::new("obj", -5));
    let Received::New(entry) = inbox.receive(w.clone()).await.unwrap() else {
        panic!("new")
    };
    let back = read(inbox, &entry.id).await;
    assert_eq!(back.body, w.body);
    assert_eq!(back.headers, w.headers);
    assert_eq!(back.ordering, w.ordering);
}

//! `fastapihooks inbox list|show|replay` through the real binary, against a fresh SQLite file per
//! test whose received webhooks are written with the library (`Inbox::receive`, then an attempt
//! ended as the inbox's worker would end it).
#![cfg(feature = "sqlite")]

mod support;

use std::time::Duration;

use assert_cmd::Command;
use fastapihooks_core::inbox::{Inbox as _, InboxEntry, InboxOutcome, InboxStatus, NewInboxEntry};
use fastapihooks_core::{InboxId, OutboxTable, Queue as _, SqlBackend};
use predicates::prelude::*;
use serde_json::Value;
use support::{SqliteApp, json};

/// What the inbox tests write into the app's database, and how they run the commands on it.
impl SqliteApp {
    /// Stores a webhook of `source` with sender's id `external_id`, as `InboxRoute` would.
    async fn receive(
        &self,
        source: &str,
        external_id: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> InboxEntry {
        let received = self
            .store
            .receive(NewInboxEntry {
                source: source.into(),
                external_id: external_id.into(),
                headers: headers
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                    .collect(),
                body: body.to_owned().into(),
                ordering: None,
            })
            .await
            .unwrap();
        // Ids sort by time: keep each entry in its own millisecond.
        tokio::time::sleep(Duration::from_millis(2)).await;
        received.entry().clone()
    }

    /// A webhook received and processed once, the attempt ending in `outcome`.
    async fn processed_once(&self, external_id: &str, outcome: InboxOutcome) -> InboxEntry {
        let entry = self.receive("github", external_id, &[], r#"{"n":1}"#).await;
        self.store.start_processing(&entry.id).await.unwrap();
        assert!(
            self.store
                .finish_processing(&entry.id, &outcome)
                .await
                .unwrap()
        );
        self.store
            .get_inbox_entry(&entry.id)
            .await
            .unwrap()
            .unwrap()
    }

    /// A dead letter: its one attempt failed and none is left.
    async fn dead_entry(&self, external_id: &str) -> InboxEntry {
        self.processed_once(
            external_id,
            InboxOutcome::Dead {
                error: "route answered 500".into(),
            },
        )
        .await
    }

    async fn inbox_status(&self, id: &InboxId) -> InboxStatus {
        self.store
            .get_inbox_entry(id)
            .await
            .unwrap()
            .unwrap()
            .status
    }

    /// Tasks on the inbox's queue: the outbox table `OutboxTable::Inbox` of this database.
    async fn inbox_depth(&self) -> u64 {
        SqlBackend::for_store(&self.store)
            .on_table(OutboxTable::Inbox)
            .depth()
            .await
            .unwrap()
    }

    /// `fastapihooks inbox <args> --database <this database>`, the inbox queue's settings not
    /// read from the environment.
    fn inbox(&self, args: &[&str]) -> Command {
        let mut cmd = self.run(&[&["inbox"][..], args].concat());
        cmd.env_remove("FASTAPIHOOKS_INBOX_QUEUE_URL")
            .env_remove("FASTAPIHOOKS_INBOX_QUEUE_PREFIX");
        cmd
    }
}

/// The `id` fields of a JSON array.
fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Each entry of an `inbox replay --json` report: its id, outcome and status.
fn outcomes(report: &Value) -> Vec<(String, String, Value)> {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
                e["status"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_list_shows_the_entries_newest_first_filtered_by_status() {
    let db = SqliteApp::new(Vec::new()).await;
    let older = db.dead_entry("d-1").await;
    let processed = db.processed_once("d-2", InboxOutcome::Processed).await;
    let newer = db.dead_entry("d-3").await;

    let out = db
        .inbox(&["list", "--status", "dead"])
        .assert()
        .success()
        .stdout(predicate::str::contains("EXTERNAL ID"))
        .stdout(predicate::str::contains("route answered 500"))
        .stdout(predicate::str::contains(processed.id.as_str()).not())
        // A pipe gets no colour.
        .stdout(predicate::str::contains("\x1b[").not());
    let table = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let (at_newer, at_older) = (
        table.find(newer.id.as_str()).unwrap(),
        table.find(older.id.as_str()).unwrap(),
    );
    assert!(at_newer < at_older, "{table}");

    let listed = json(&mut db.inbox(&["list", "--status", "dead"]), 0);
    assert_eq!(ids(&listed), [newer.id.to_string(), older.id.to_string()]);
    assert_eq!(listed[0]["status"], "dead");
    assert_eq!(listed[0]["attempts"], 1);
    assert_eq!(listed[0]["external_id"], "d-3");
    assert_eq!(listed[0]["last_error"], "route answered 500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_show_prints_the_body_and_headers() {
    let db = SqliteApp::new(Vec::new()).await;
    let entry = db
        .receive(
            "github",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            &[
                ("content-type", "application/json"),
                ("x-github-event", "pull_request"),
            ],
            r#"{"action":"opened","number":7}"#,
        )
        .await;

    db.inbox(&["show", entry.id.as_str()])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "id:           {}",
            entry.id
        )))
        .stdout(predicate::str::contains("status:       received"))
        .stdout(predicate::str::contains(
            "external_id:  72d3162e-cc78-11e3-81ab-4c9367dc0958",
        ))
        .stdout(predicate::str::contains("  x-github-event: pull_request\n"))
        .stdout(predicate::str::contains(
            "body:\n  {\n    \"action\": \"opened\",\n    \"number\": 7\n  }\n",
        ));

    let shown = json(&mut db.inbox(&["show", entry.id.as_str()]), 0);
    assert_eq!(shown["body"], r#"{"action":"opened","number":7}"#);
    assert_eq!(shown["body_encoding"], "utf-8");
    assert_eq!(
        shown["headers"],
        serde_json::json!([
            ["content-type", "application/json"],
            ["x-github-event", "pull_request"]
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_replay_queues_a_dead_entry_on_the_inbox_queue() {
    let db = SqliteApp::new(Vec::new()).await;
    let dead = db.dead_entry("d-1").await;

    db.inbox(&["replay", dead.id.as_str()])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("{}  queued\n", dead.id)))
        .stdout(predicate::str::contains("queued 1; skipped 0; not found 0"));

    let after = db.store.get_inbox_entry(&dead.id).await.unwrap().unwrap();
    assert_eq!(after.status, InboxStatus::Received);
    // Its attempts and last error stay, for the record.
    assert_eq!(after.attempts, 1);
    assert_eq!(db.inbox_depth().await, 1);
    // Not the queue `fastapihooks start` drains.
    assert_eq!(db.depth().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_replay_skips_a_processed_entry_unless_asked() {
    let db = SqliteApp::new(Vec::new()).await;
    let done = db.processed_once("d-1", InboxOutcome::Processed).await;

    let report = json(&mut db.inbox(&["replay", done.id.as_str()]), 0);
    assert_eq!(
        outcomes(&report),
        [(done.id.to_string(), "skipped".into(), "processed".into())]
    );
    assert_eq!(report["summary"]["skipped"], 1, "{report}");
    assert_eq!(db.inbox_status(&done.id).await, InboxStatus::Processed);
    assert_eq!(db.inbox_depth().await, 0);

    let forced = json(
        &mut db.inbox(&["replay", done.id.as_str(), "--processed-too"]),
        0,
    );
    assert_eq!(
        outcomes(&forced),
        [(done.id.to_string(), "queued".into(), "received".into())]
    );
    assert_eq!(db.inbox_status(&done.id).await, InboxStatus::Received);
    assert_eq!(db.inbox_depth().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_replay_of_an_unknown_id_says_so_and_exits_nonzero() {
    let db = SqliteApp::new(Vec::new()).await;
    let dead = db.dead_entry("d-1").await;
    let missing = InboxId::new();

    db.inbox(&["replay", dead.id.as_str(), missing.as_str()])
        .assert()
        .code(3)
        .stdout(predicate::str::contains(format!("{missing}  not found\n")))
        .stderr(predicate::str::contains("1 id(s) named no inbox entry"));
    // The id that was found is replayed all the same.
    assert_eq!(db.inbox_status(&dead.id).await, InboxStatus::Received);
    assert_eq!(db.inbox_depth().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_replay_dry_run_changes_nothing() {
    let db = SqliteApp::new(Vec::new()).await;
    let first = db.dead_entry("d-1").await;
    let second = db.dead_entry("d-2").await;
    let done = db.processed_once("d-3", InboxOutcome::Processed).await;

    db.inbox(&["replay", "--status", "dead", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "{}  dead  would queue\n{}  dead  would queue\n",
            first.id, second.id
        )))
        .stdout(predicate::str::contains(
            "would queue 2 of 2 (dry run: nothing changed)",
        ));
    let plan = json(&mut db.inbox(&["replay", done.id.as_str(), "--dry-run"]), 0);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        outcomes(&plan),
        [(done.id.to_string(), "skipped".into(), "processed".into())]
    );

    for entry in [&first, &second] {
        assert_eq!(db.inbox_status(&entry.id).await, InboxStatus::Dead);
    }
    assert_eq!(db.inbox_status(&done.id).await, InboxStatus::Processed);
    assert_eq!(db.inbox_depth().await, 0);
}

//! The real `fastapihooks` binary, run as a user would, against a fresh SQLite file per test.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

/// A fresh SQLite database in a temporary directory.
struct Db {
    _dir: tempfile::TempDir,
    url: String,
}

impl Db {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("hooks.db").display()
        );
        Self { _dir: dir, url }
    }

    /// A migrated one.
    fn migrated() -> Self {
        let db = Self::new();
        db.run(&["migrate"]).assert().success();
        db
    }

    /// `fastapihooks <args> --database <url>`, with no database in the environment.
    fn run(&self, args: &[&str]) -> Command {
        let mut cmd = fastapihooks();
        cmd.args(args).args(["--database", &self.url]);
        cmd
    }

    /// Runs `args` with `--json`, expecting success, and parses the output.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args).arg("--json").assert().success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    }

    /// Adds a subscription and returns its id.
    fn add(&self, args: &[&str]) -> String {
        let mut all = vec!["subscriptions", "add"];
        all.extend_from_slice(args);
        self.json(&all)["id"].as_str().unwrap().to_owned()
    }
}

fn fastapihooks() -> Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("fastapihooks");
    cmd.env_remove("FASTAPIHOOKS_DATABASE_URL");
    cmd
}

#[test]
fn migrate_applies_the_migrations_then_finds_nothing_to_do() {
    let db = Db::new();
    db.run(&["migrate"])
        .assert()
        .success()
        // Every migration, however many there are now.
        .stdout(predicate::str::contains(
            "applied m20261123_000001_create_subscriptions",
        ))
        .stdout(predicate::str::is_match(r"applied [0-9]+ migration\(s\)\n$").unwrap());
    db.run(&["migrate"])
        .assert()
        .success()
        .stdout(predicate::str::contains("up to date"));
}

#[test]
fn an_added_subscription_is_listed_in_the_table() {
    let db = Db::migrated();
    let id = db.add(&["--event", "order.*", "--url", "https://example.com/hooks"]);
    db.run(&["subscriptions", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ID"))
        .stdout(predicate::str::contains(id.as_str()))
        .stdout(predicate::str::contains("order.*"))
        .stdout(predicate::str::contains("https://example.com/hooks"));
}

#[test]
fn list_json_is_an_array_with_every_field_and_no_credentials() {
    let db = Db::migrated();
    db.add(&[
        "--event",
        "invoice.paid",
        "--url",
        "https://example.com/h",
        "--owner",
        "t1",
        "--metadata",
        r#"{"team":"billing"}"#,
        "--secret",
        "s3cret-value",
        "--bearer",
        "token-value",
    ]);
    let list = db.json(&["subscriptions", "list"]);
    let only = &list.as_array().unwrap()[..];
    assert_eq!(only.len(), 1);
    let sub = &only[0];
    assert_eq!(sub["event"], "invoice.paid");
    assert_eq!(sub["owner"], "t1");
    assert_eq!(sub["metadata"]["team"], "billing");
    assert_eq!(sub["auth"]["type"], "bearer");
    let text = list.to_string();
    assert!(
        !text.contains("s3cret-value") && !text.contains("token-value"),
        "{text}"
    );
}

#[test]
fn a_generated_secret_is_printed_once_and_kept() {
    let db = Db::migrated();
    let added = db.json(&[
        "subscriptions",
        "add",
        "--event",
        "*",
        "--url",
        "https://example.com/h",
        "--generate-secret",
    ]);
    let secret = added["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = added["id"].as_str().unwrap();
    assert_eq!(db.json(&["subscriptions", "show", id])["secret"], "***");
    let revealed = db.json(&["subscriptions", "show", id, "--show-secrets"]);
    assert_eq!(revealed["secret"], secret);
}

#[test]
fn update_changes_only_the_fields_given() {
    let db = Db::migrated();
    let id = db.add(&[
        "--event",
        "order.created",
        "--url",
        "https://example.com/h",
        "--owner",
        "t1",
    ]);
    db.run(&[
        "subscriptions",
        "update",
        &id,
        "--url",
        "https://example.com/new",
        "--disable",
        "--header",
        "X-Api-Key: k1",
    ])
    .assert()
    .success();
    let sub = db.json(&["subscriptions", "show", &id, "--show-secrets"]);
    assert_eq!(sub["url"], "https://example.com/new");
    assert_eq!(sub["enabled"], false);
    assert_eq!(sub["auth"]["name"], "X-Api-Key");
    assert_eq!(sub["auth"]["value"], "k1");
    assert_eq!(sub["event"], "order.created");
    assert_eq!(sub["owner"], "t1");
}

#[test]
fn a_removed_subscription_is_gone_and_removing_it_again_fails_naming_it() {
    let db = Db::migrated();
    let id = db.add(&["--event", "a", "--url", "https://example.com/h"]);
    db.run(&["subscriptions", "remove", &id]).assert().success();
    assert_eq!(db.json(&["subscriptions", "list"]), serde_json::json!([]));
    db.run(&["subscriptions", "remove", &id])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "subscription {id} not found"
        )));
}

#[test]
fn the_database_can_come_from_the_environment() {
    let db = Db::migrated();
    fastapihooks()
        .env("FASTAPIHOOKS_DATABASE_URL", &db.url)
        .args(["subscriptions", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("no subscriptions"));
}

#[test]
fn without_a_database_the_missing_flag_is_named() {
    fastapihooks()
        .args(["subscriptions", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--database <URL>"));
}

#[test]
fn commands_before_migrate_say_to_run_it() {
    let db = Db::new();
    db.run(&["subscriptions", "list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("run `fastapihooks migrate` first"));
}

#[test]
fn a_bad_url_is_rejected_naming_the_flag_and_the_input() {
    let db = Db::migrated();
    db.run(&[
        "subscriptions",
        "add",
        "--event",
        "a",
        "--url",
        "ftp://example.com",
    ])
    .assert()
    .code(2)
    .stderr(predicate::str::contains("--url"))
    .stderr(predicate::str::contains("ftp://example.com"));
}

#[test]
fn a_bad_event_filter_is_rejected_naming_the_flag_and_the_input() {
    let db = Db::migrated();
    db.run(&[
        "subscriptions",
        "add",
        "--event",
        "order.*.x",
        "--url",
        "https://e.com/h",
    ])
    .assert()
    .code(2)
    .stderr(predicate::str::contains("--event"))
    .stderr(predicate::str::contains("order.*.x"));
}

#[test]
fn a_malformed_id_is_rejected_naming_the_expected_form() {
    let db = Db::migrated();
    db.run(&["subscriptions", "show", "sub_123"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("sub_123"))
        .stderr(predicate::str::contains("26-character ULID"));
}

#[test]
fn an_unreachable_database_fails_with_the_url_and_no_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://app:hunter2@127.0.0.1:{port}/app");
    fastapihooks()
        .args(["migrate", "--database", &url, "--connect-timeout", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot connect"))
        .stderr(predicate::str::contains(format!(
            "app:***@127.0.0.1:{port}"
        )))
        .stderr(predicate::str::contains("hunter2").not());
}

#[test]
fn start_with_redis_and_no_store_says_the_store_is_required() {
    fastapihooks()
        .args(["start", "--queue", "redis://127.0.0.1:1", "--unsigned"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "--store is required with a Redis queue",
        ));
}

#[test]
fn start_with_an_unknown_queue_scheme_names_the_accepted_ones() {
    fastapihooks()
        .args(["start", "--queue", "amqp://127.0.0.1", "--unsigned"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unsupported scheme \"amqp\""))
        .stderr(predicate::str::contains("postgres://"));
}

#[test]
fn start_refuses_an_unmigrated_database_and_says_how_to_fix_it() {
    let db = Db::new();
    fastapihooks()
        .args(["start", "--queue", &db.url, "--signing-secret", "s3cret"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--migrate"));
}

#[test]
fn start_without_a_signing_secret_refuses_naming_both_flags() {
    let db = Db::migrated();
    fastapihooks()
        .args(["start", "--queue", &db.url])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no signing secret"))
        .stderr(predicate::str::contains("--signing-secret"))
        .stderr(predicate::str::contains("--unsigned"));
}

#[test]
fn unsigned_delivery_can_be_asked_for_in_the_environment() {
    // Past the signing check, the unmigrated database is what stops it.
    let db = Db::new();
    fastapihooks()
        .env("FASTAPIHOOKS_UNSIGNED", "true")
        .args(["start", "--queue", &db.url])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--migrate"))
        .stderr(predicate::str::contains("no signing secret").not());
}

#[test]
fn header_flags_with_the_standard_webhooks_scheme_are_refused_saying_why() {
    let db = Db::migrated();
    fastapihooks()
        .env("FASTAPIHOOKS_SIGNATURE_SCHEME", "standard-webhooks")
        .args(["start", "--queue", &db.url, "--unsigned"])
        .args(["--signature-header", "X-Hub-Signature-256"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--signature-header"))
        .stderr(predicate::str::contains("webhook-signature"));
}

#[test]
fn the_standard_webhooks_scheme_refuses_a_secret_that_is_not_whsec() {
    let db = Db::migrated();
    fastapihooks()
        .args(["start", "--queue", &db.url, "--signature-scheme"])
        .args(["standard-webhooks", "--signing-secret", "plain-secret"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("whsec_"))
        .stderr(predicate::str::contains("plain-secret").not());
}

#[test]
fn a_failed_start_with_json_logs_reports_its_error_as_json() {
    let out = fastapihooks()
        .args(["start", "--queue", "amqp://127.0.0.1", "--unsigned"])
        .args(["--log-format", "json"])
        .assert()
        .code(1);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    let last = stderr.lines().last().expect("an error line");
    let value: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(value["level"], "ERROR");
    let message = value["fields"]["message"].as_str().unwrap();
    assert!(message.contains("unsupported scheme"), "{message}");
}

#[test]
fn subscriptions_add_warns_about_an_address_the_guard_refuses_and_adds_it() {
    let db = Db::migrated();
    let url = "http://169.254.169.254/latest/meta-data";
    let out = db
        .run(&[
            "subscriptions",
            "add",
            "--event",
            "*",
            "--url",
            url,
            "--json",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("warning:"))
        .stderr(predicate::str::contains("169.254.0.0/16"))
        .stderr(predicate::str::contains("--allow-network 169.254.169.254"));
    let added: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let id = added["id"].as_str().unwrap();
    assert_eq!(db.json(&["subscriptions", "show", id])["url"], url);
}

#[test]
fn subscriptions_add_warns_when_the_host_resolves_to_loopback() {
    let db = Db::migrated();
    db.run(&[
        "subscriptions",
        "add",
        "--event",
        "*",
        "--url",
        "http://localhost:8080/hooks",
    ])
    .assert()
    .success()
    .stderr(predicate::str::contains("localhost resolves to"))
    .stderr(predicate::str::contains("--allow-loopback"));
    assert_eq!(
        db.json(&["subscriptions", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn subscriptions_add_warns_when_the_host_does_not_resolve_and_adds_it() {
    let db = Db::migrated();
    db.run(&[
        "subscriptions",
        "add",
        "--event",
        "*",
        "--url",
        "https://no-such-host.invalid/hooks",
    ])
    .assert()
    .success()
    .stderr(predicate::str::contains(
        "cannot resolve no-such-host.invalid",
    ));
    assert_eq!(
        db.json(&["subscriptions", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn subscriptions_add_is_silent_about_a_public_address() {
    let db = Db::migrated();
    db.run(&[
        "subscriptions",
        "add",
        "--event",
        "*",
        "--url",
        "https://93.184.215.14/hooks",
    ])
    .assert()
    .success()
    .stderr(predicate::str::is_empty());
}

#[test]
fn subscriptions_update_warns_when_the_new_url_is_refused() {
    let db = Db::migrated();
    let id = db.add(&["--event", "*", "--url", "https://93.184.215.14/hooks"]);
    db.run(&["subscriptions", "update", &id, "--url", "http://10.0.0.7/h"])
        .assert()
        .success()
        .stderr(predicate::str::contains("10.0.0.0/8"))
        .stderr(predicate::str::contains("--allow-network 10.0.0.7"));
    assert_eq!(
        db.json(&["subscriptions", "show", &id])["url"],
        "http://10.0.0.7/h"
    );
}

#[test]
fn a_subscription_keeps_its_own_retry_schedule_until_it_is_dropped() {
    let db = Db::migrated();
    let id = db.add(&[
        "--event",
        "*",
        "--url",
        "https://example.com/hooks",
        "--retry-schedule",
        "1m,10m,1h",
    ]);
    let shown = db.json(&["subscriptions", "show", &id]);
    assert_eq!(shown["retry_schedule"], "1m, 10m, 1h ±20%", "{shown}");

    let updated = db.json(&[
        "subscriptions",
        "update",
        &id,
        "--retry-schedule",
        "standard-webhooks",
    ]);
    assert_eq!(updated["retry_schedule"], "standard-webhooks");

    db.json(&["subscriptions", "update", &id, "--default-retry-schedule"]);
    let shown = db.json(&["subscriptions", "show", &id]);
    assert!(shown.get("retry_schedule").is_none(), "{shown}");
}

#[test]
fn a_bad_retry_schedule_is_refused_naming_the_flag_and_the_input() {
    let db = Db::migrated();
    db.run(&[
        "subscriptions",
        "add",
        "--event",
        "*",
        "--url",
        "https://example.com/hooks",
        "--retry-schedule",
        "1m,soon",
    ])
    .assert()
    .code(2)
    .stderr(predicate::str::contains("--retry-schedule").and(predicate::str::contains("soon")));
}

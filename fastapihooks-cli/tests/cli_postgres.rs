//! The real `fastapihooks` binary against PostgreSQL (`FASTAPIHOOKS_TEST_POSTGRES`), in a
//! database of its own. Skipped with a note when PostgreSQL does not answer, failed under
//! `CI=true`.
#![cfg(feature = "postgres")]

use assert_cmd::Command;
use fastapihooks_testkit::TempDatabase;
use predicates::prelude::*;

#[test]
fn migrate_then_add_then_list_work_against_postgresql() {
    // A database of the test's own, dropped (`WITH (FORCE)`) with the guard.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(database) = rt.block_on(TempDatabase::postgres("cli against PostgreSQL")) else {
        return;
    };

    let fastapihooks = || {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("fastapihooks"));
        cmd.env("FASTAPIHOOKS_DATABASE_URL", database.url());
        cmd
    };
    fastapihooks()
        .arg("migrate")
        .assert()
        .success()
        // Every migration, however many there are now.
        .stdout(predicate::str::contains(
            "applied m20261123_000001_create_subscriptions",
        ))
        .stdout(predicate::str::is_match(r"applied [0-9]+ migration\(s\)\n$").unwrap());
    let added = fastapihooks()
        .args(["subscriptions", "add", "--event", "invoice.*"])
        .args(["--url", "https://billing.example/hooks", "--owner", "acme"])
        .arg("--json")
        .assert()
        .success();
    let added: serde_json::Value = serde_json::from_slice(&added.get_output().stdout).unwrap();
    let id = added["id"].as_str().unwrap();
    fastapihooks()
        .args(["subscriptions", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains(id))
        .stdout(predicate::str::contains("invoice.*"));
}

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

#[test]
fn every_store_command_works_in_the_postgres_schema_it_is_given() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // One database for two schemas: what is made in one is not seen from the other.
    let Some(database) = rt.block_on(TempDatabase::postgres("cli in a PostgreSQL schema")) else {
        return;
    };
    let in_schema = |schema: &str| {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("fastapihooks"));
        cmd.env("FASTAPIHOOKS_DATABASE_URL", database.url())
            .env("FASTAPIHOOKS_POSTGRES_SCHEMA", schema);
        cmd
    };
    let url = database.url().to_owned();
    rt.block_on(async {
        use sea_orm::ConnectionTrait as _;
        let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
        for schema in ["tenant_a", "tenant_b"] {
            db.execute_unprepared(&format!("CREATE SCHEMA {schema}"))
                .await
                .unwrap();
        }
    });
    for schema in ["tenant_a", "tenant_b"] {
        in_schema(schema).arg("migrate").assert().success();
    }
    let added = in_schema("tenant_a")
        .args(["subscriptions", "add", "--event", "order.*"])
        .args(["--url", "https://a.example/hooks", "--json"])
        .assert()
        .success();
    let added: serde_json::Value = serde_json::from_slice(&added.get_output().stdout).unwrap();
    let id = added["id"].as_str().unwrap();
    in_schema("tenant_a")
        .args(["subscriptions", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains(id));
    in_schema("tenant_b")
        .args(["subscriptions", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains(id).not());
    for listing in [
        ["deliveries", "list"],
        ["events", "list"],
        ["inbox", "list"],
    ] {
        in_schema("tenant_a").args(listing).assert().success();
    }
}

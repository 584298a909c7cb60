//! The real `fastapihooks` binary against PostgreSQL (`FASTAPIHOOKS_TEST_POSTGRES`), in a
//! database of its own. Skipped with a note when PostgreSQL does not answer, failed under
//! `CI=true`.

use assert_cmd::Command;
use predicates::prelude::*;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

async fn admin(url: &str) -> Option<DatabaseConnection> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .connect_timeout(std::time::Duration::from_secs(3))
        .sqlx_logging(false);
    match Database::connect(options).await {
        Ok(db) => Some(db),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL at {url} is required under CI=true: {e}")
        }
        Err(e) => {
            eprintln!("skipped: PostgreSQL at {url} does not answer ({e})");
            None
        }
    }
}

#[test]
fn migrate_then_add_then_list_work_against_postgresql() {
    let url = std::env::var("FASTAPIHOOKS_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.into());
    // One runtime for the administrative connection's whole life.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(admin) = rt.block_on(admin(&url)) else {
        return;
    };
    let name = format!("fh_cli_{}", ulid::Ulid::new().to_string().to_lowercase());
    rt.block_on(admin.execute_unprepared(&format!(r#"CREATE DATABASE "{name}""#)))
        .unwrap();
    let mut own = url::Url::parse(&url).unwrap();
    own.set_path(&name);

    let fastapihooks = || {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("fastapihooks"));
        cmd.env("FASTAPIHOOKS_DATABASE_URL", own.as_str());
        cmd
    };
    fastapihooks()
        .arg("migrate")
        .assert()
        .success()
        .stdout(predicate::str::contains("applied 3 migration(s)"));
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

    rt.block_on(admin.execute_unprepared(&format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#)))
        .unwrap();
}

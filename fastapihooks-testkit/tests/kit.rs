//! The kit checked on itself: the receiver's script and accounting, the service-or-skip rule,
//! and guards that drop what they made from a `#[tokio::test]` default current-thread runtime.

use std::time::{Duration, Instant};

use fastapihooks_testkit::{
    NO_ID, Receiver, Reply, Service, client, duplicates, eventually, eventually_async,
};

#[tokio::test]
async fn the_receiver_answers_per_path_and_per_call_and_records_what_it_answered() {
    let receiver = Receiver::scripted(|path, nth| match (path, nth) {
        ("/flaky", 0) => Reply::status(503).header("retry-after", "7"),
        ("/slow", _) => Reply::ok().after(Duration::from_millis(200)),
        _ => Reply::status(204),
    })
    .await;
    let send = |path: &str, id: &str| {
        client()
            .post(receiver.url(path))
            .header("x-fastapihooks-id", id)
            .body(format!("{{\"path\":\"{path}\"}}"))
            .send()
    };
    let first = send("/flaky", "dlv_1").await.unwrap();
    assert_eq!(first.status(), 503);
    assert_eq!(first.headers()["retry-after"], "7");
    assert_eq!(send("/flaky", "dlv_1").await.unwrap().status(), 204);
    assert_eq!(send("other", "dlv_2").await.unwrap().status(), 204);

    let slow = tokio::spawn(send("/slow", "dlv_3"));
    assert!(eventually(Duration::from_secs(5), || receiver.in_flight() == 1).await);
    // Arrived and counted, not answered yet.
    assert_eq!((receiver.arrived(), receiver.answered()), (4, 3));
    assert_eq!(receiver.counts()["dlv_3"], 1);
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);

    let got = receiver.wait_for(4).await;
    assert_eq!(got.len(), 4);
    assert_eq!(got[2].path, "/other");
    assert_eq!(got[0].id(), "dlv_1");
    assert_eq!(got[0].json(), serde_json::json!({"path": "/flaky"}));
    assert_eq!(receiver.received_at("/flaky").len(), 2);
    assert_eq!(receiver.distinct(), 3);
    assert_eq!(duplicates(&receiver.counts()), (1, 1));
    assert_eq!(receiver.in_flight(), 0);
    assert_eq!(receiver.max_in_flight(), 1);
    assert!(got.windows(2).all(|w| w[0].at <= w[1].at));
}

#[tokio::test]
async fn a_request_without_a_delivery_id_is_counted_under_no_id() {
    let receiver = Receiver::ok().await;
    client().post(receiver.url("/h")).send().await.unwrap();
    assert_eq!(receiver.counts()[NO_ID], 1);
}

#[tokio::test]
async fn a_reserved_port_refuses_until_the_receiver_starts_on_it() {
    let addr = Receiver::reserve_port().await;
    let url = fastapihooks_testkit::url_of(addr, "hook");
    assert!(client().post(&url).send().await.is_err());
    let receiver = Receiver::replying_on(addr, Reply::status(202)).await;
    assert_eq!(receiver.url("/hook"), url);
    assert_eq!(client().post(&url).send().await.unwrap().status(), 202);
}

#[tokio::test]
async fn a_sender_that_gives_up_leaves_the_request_arrived_but_not_in_flight() {
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_secs(30))).await;
    let gave_up = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap()
        .post(receiver.url("/h"))
        .send()
        .await;
    assert!(gave_up.is_err());
    assert!(eventually(Duration::from_secs(5), || receiver.in_flight() == 0).await);
    assert_eq!((receiver.arrived(), receiver.answered()), (1, 0));
}

#[tokio::test]
async fn eventually_hands_back_the_value_of_an_option_probe_or_none_at_the_deadline() {
    let start = Instant::now();
    let mut calls = 0;
    let got = eventually_async(Duration::from_secs(5), async || {
        calls += 1;
        (start.elapsed() > Duration::from_millis(60)).then_some(calls)
    })
    .await;
    assert!(got.is_some_and(|n| n > 1));
    let never = eventually(Duration::from_millis(50), || None::<()>).await;
    assert!(never.is_none());
}

#[tokio::test]
async fn a_service_that_does_not_answer_is_a_skip_outside_ci() {
    if fastapihooks_testkit::in_ci() {
        return; // there it is a failure, by design
    }
    let nowhere = Service {
        name: "Nothing",
        var: "FASTAPIHOOKS_TEST_NOTHING_SET_HERE",
        default: "tcp://127.0.0.1:1",
    };
    let skipped = nowhere
        .or_skip("kit", |url| async move {
            tokio::net::TcpStream::connect(url.trim_start_matches("tcp://"))
                .await
                .map_err(|e| e.to_string())
        })
        .await;
    assert!(skipped.is_none());
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_temp_schema_is_gone_once_its_guard_is_dropped() {
    use fastapihooks_testkit::TempSchema;
    use sea_orm::{ConnectionTrait, Database, Statement};

    let Some(schema) = TempSchema::create("kit temp schema").await else {
        return;
    };
    let (url, name) = (schema.url().to_owned(), schema.name().to_owned());
    let db = Database::connect(&url).await.unwrap();
    let exists = async |db: &sea_orm::DatabaseConnection| {
        db.query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT 1 AS one FROM information_schema.schemata WHERE schema_name = '{name}'"
            ),
        ))
        .await
        .unwrap()
        .is_some()
    };
    db.execute_unprepared(&format!(r#"CREATE TABLE "{name}".t (id INT)"#))
        .await
        .unwrap();
    assert!(exists(&db).await);
    drop(schema); // inside this current-thread runtime
    assert!(!exists(&db).await);
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn a_temp_database_is_gone_once_its_guard_is_dropped() {
    use fastapihooks_testkit::TempDatabase;
    use sea_orm::{ConnectionTrait, Database, Statement};

    let Some(database) = TempDatabase::mysql("kit temp database").await else {
        return;
    };
    let name = database.name().to_owned();
    // A connection to the database itself, still open (idle) when the guard drops.
    let own = Database::connect(database.url()).await.unwrap();
    own.execute_unprepared("CREATE TABLE t (id INT)")
        .await
        .unwrap();
    drop(database);
    let admin = Database::connect(Service::MYSQL.url()).await.unwrap();
    let left = admin
        .query_one_raw(Statement::from_string(
            admin.get_database_backend(),
            format!(
                "SELECT 1 AS one FROM information_schema.schemata WHERE schema_name = '{name}'"
            ),
        ))
        .await
        .unwrap();
    assert!(left.is_none());
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn test_keys_delete_their_keys_and_only_them_once_dropped() {
    use fastapihooks_core::{Backend, Event};
    use fastapihooks_testkit::{TestKeys, redis_url};

    let Some(url) = redis_url("kit test keys").await else {
        return;
    };
    let (mine, theirs) = (TestKeys::new(&url, "kit"), TestKeys::new(&url, "kit"));
    assert_ne!(mine.prefix(), theirs.prefix());
    for keys in [&mine, &theirs] {
        let backend = keys.backend().await;
        backend.publish(Event::new("a", &1).unwrap()).await.unwrap();
    }
    let tasks = [mine.config.tasks_key(), theirs.config.tasks_key()];
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let exists = async |conn: &mut redis::aio::MultiplexedConnection, key: &str| {
        redis::cmd("EXISTS")
            .arg(key)
            .query_async::<u32>(conn)
            .await
            .unwrap()
            == 1
    };
    assert!(exists(&mut conn, &tasks[0]).await && exists(&mut conn, &tasks[1]).await);
    drop(mine);
    assert!(!exists(&mut conn, &tasks[0]).await);
    assert!(exists(&mut conn, &tasks[1]).await);
}

/// The contract through its macro, on the memory store: the kit's own check that the macro
/// expands and every behaviour holds for a store that keeps it.
mod memory_store_contract {
    use fastapihooks_core::{MemoryStore, Store};

    async fn with_store(behaviour: impl AsyncFnOnce(&dyn Store)) {
        behaviour(&MemoryStore::new()).await;
    }

    fastapihooks_testkit::store_contract!(with_store);
}

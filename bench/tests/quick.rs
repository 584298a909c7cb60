//! `fastapihooks-bench --quick` as a test: every part starts, every measurement completes, and
//! the counts are exact (no delivery lost or badly signed, no request failed, one inbox row and
//! one inbox-queue row per webhook acknowledged). No timing is asserted: the quick sizes are
//! too small for the figures to mean anything.
//!
//! It includes the durable path (the sidecar rows, the route-cost and receive rows in
//! PostgreSQL), so it needs PostgreSQL and Redis (`--postgres`, `--redis`: 127.0.0.1 by
//! default).

use std::process::Command;

#[test]
fn the_quick_benchmark_completes_with_exact_counts() {
    let out = std::env::temp_dir().join(format!("fastapihooks-bench-quick-{}", std::process::id()));
    let report = out.join("report.json");
    let status = Command::new(env!("CARGO_BIN_EXE_fastapihooks-bench"))
        .arg("--quick")
        .arg("--out")
        .arg(&report)
        .status()
        .expect("the benchmark binary starts");
    assert!(status.success(), "the quick benchmark failed: {status}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("the JSON report")).unwrap();
    let delivered = |row: &serde_json::Value| row["ours"]["accounting"]["delivered"].as_u64();
    let rows = json["delivery"].as_array().expect("delivery rows");
    assert_eq!(rows.len(), 3, "1, 10 and 1,000 subscribers");
    for row in rows {
        assert_eq!(
            delivered(row),
            row["ours"]["accounting"]["expected"].as_u64()
        );
        assert_eq!(row["ours"]["accounting"]["lost"], 0);
    }
    assert_eq!(json["fan_out"][0]["accounting"]["delivered"], 1000);
    // Unhooked and background × 2; in PostgreSQL: unhooked, Redis, outbox, and the outbox with
    // its wake gate held (a sidecar waiting).
    let route_cost = json["route_cost"].as_array().expect("route-cost rows");
    assert_eq!(route_cost.len(), 7);
    assert_eq!(route_cost[6]["row"]["sidecar_waiting"], true);
    // The publish into Redis alone, by 1, 8 and 32 publishers: every event queued once.
    let publish = json["publish"].as_array().expect("publish rows");
    assert_eq!(publish.len(), 3);
    for row in publish {
        assert_eq!(row["median"]["queued"], row["events"], "{row}");
    }

    // Receiving: verify only; the inbox in SQLite (new webhooks, duplicates) and PostgreSQL.
    let receive = json["receive"].as_array().expect("receive rows");
    let storage: Vec<_> = receive
        .iter()
        .map(|r| (r["row"]["storage"].as_str(), r["row"]["same_id"].as_bool()))
        .collect();
    assert_eq!(
        storage,
        [
            (Some("verify-only"), Some(false)),
            (Some("sqlite"), Some(false)),
            (Some("sqlite"), Some(true)),
            (Some("postgres"), Some(false)),
        ]
    );
    for row in receive {
        for run in row["runs"].as_array().expect("receive runs") {
            let acknowledged = run["acknowledged"].as_u64();
            assert!(acknowledged.is_some_and(|n| n > 0), "{row}");
            assert_eq!(run["failed"], 0, "{row}");
            if row["row"]["storage"] == "verify-only" {
                assert!(run["inbox_rows"].is_null(), "{row}");
                continue;
            }
            let expected = if row["row"]["same_id"] == true {
                Some(1)
            } else {
                acknowledged
            };
            assert_eq!(run["expected_rows"].as_u64(), expected, "{row}");
            assert_eq!(run["inbox_rows"].as_u64(), expected, "{row}");
            assert_eq!(run["queue_rows"].as_u64(), expected, "{row}");
        }
    }

    let sidecar = json["sidecar"].as_array().expect("sidecar rows");
    assert_eq!(
        sidecar.len(),
        6,
        "Redis and outbox × 1, 10 and 1,000 subscribers"
    );
    for row in sidecar {
        let run = &row["median"];
        let expected = run["accounting"]["expected"].as_u64();
        assert!(expected.is_some_and(|n| n > 0), "{row}");
        assert_eq!(run["accounting"]["delivered"].as_u64(), expected, "{row}");
        assert_eq!(run["accounting"]["lost"], 0, "{row}");
        assert_eq!(run["history"]["delivered"].as_u64(), expected, "{row}");
        assert_eq!(run["worker"]["delivered"].as_u64(), expected, "{row}");
        let machine_idle = run["machine_idle_percent"].as_f64();
        assert!(
            machine_idle.is_some_and(|p| (0.0..=100.0).contains(&p)),
            "the machine's idle share is a percentage: {row}"
        );
    }
    let idle = json["sidecar_idle_latency"]
        .as_array()
        .expect("idle latency rows");
    assert_eq!(idle.len(), 2, "Redis and outbox");
    for row in idle {
        assert_eq!(row["accounting"]["delivered"], row["events"], "{row}");
        assert_eq!(row["history"]["delivered"], row["events"], "{row}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

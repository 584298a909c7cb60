//! `fastapihooks-bench --quick` as a test: every part starts, every measurement completes, and
//! the counts are exact (no delivery lost or badly signed, no request failed). No timing is
//! asserted: the quick sizes are too small for the figures to mean anything.

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
    assert_eq!(json["route_cost"].as_array().map(Vec::len), Some(3));
    std::fs::remove_dir_all(&out).unwrap();
}

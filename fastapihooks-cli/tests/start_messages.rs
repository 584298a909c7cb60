//! What the sidecar tells its operator, read where the operator reads it: refusals of the SSRF
//! guard in the delivery history, logs through a pipe.
#![cfg(feature = "sqlite")]

mod support;

use std::time::Duration;

use fastapihooks_core::{AttemptErrorKind, AttemptOutcome, DeliveryId, Store, Subscription};
use fastapihooks_testkit::{Receiver, Reply, events, eventually, eventually_async};
use support::{Sidecar, SqliteApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_refused_by_the_ssrf_guard_names_the_sidecar_flags() {
    let receiver = Receiver::ok().await;
    let subscription = Subscription::new("*", &receiver.url("local")).unwrap();
    let app = SqliteApp::new(vec![subscription.clone()]).await;
    let events = events(1);
    app.publish(&events).await;
    let delivery = DeliveryId::for_event(events[0].id(), &subscription.id);
    // No --allow-loopback: the receiver on 127.0.0.1 is out of bounds.
    let sidecar = Sidecar::start(&app.args(&["--unsigned"]));
    let attempted = eventually_async(Duration::from_secs(30), async || {
        !app.store.list_attempts(&delivery).await.unwrap().is_empty()
    })
    .await;
    sidecar.terminate();
    let (clean_exit, _) = sidecar.exit(Duration::from_secs(20)).await;

    assert!(attempted, "no attempt was recorded");
    let attempts = app.store.list_attempts(&delivery).await.unwrap();
    let AttemptOutcome::Error { kind, message } = &attempts[0].outcome else {
        panic!("the receiver answered: {:?}", attempts[0].outcome);
    };
    assert_eq!(*kind, AttemptErrorKind::Blocked, "{message}");
    assert!(message.contains("--allow-loopback"), "{message}");
    assert!(message.contains("--allow-network 127.0.0.0/8"), "{message}");
    assert!(
        !message.contains("HttpConfig"),
        "a Rust API in a sidecar: {message}"
    );
    assert_eq!(receiver.arrived(), 0);
    assert!(clean_exit);
}

/// Runs a sidecar that delivers one event, with stderr through a pipe and `extra` flags; returns
/// what it wrote there.
async fn logs_of_one_delivery(extra: &[&str]) -> Vec<u8> {
    let receiver = Receiver::ok().await;
    let app = SqliteApp::new(vec![Subscription::new("*", &receiver.url("a")).unwrap()]).await;
    app.publish(&events(1)).await;
    let mut args = vec!["--unsigned", "--allow-loopback", "--log-level", "info"];
    args.extend_from_slice(extra);
    let sidecar = Sidecar::start_capturing(&app.args(&args));
    let delivered = eventually(Duration::from_secs(30), || receiver.answered() >= 1).await;
    sidecar.terminate();
    let (status, stdout, stderr) = sidecar.exit_capturing(Duration::from_secs(20)).await;
    assert!(delivered, "nothing was delivered");
    assert!(status.success(), "{status:?} {stdout}");
    assert!(
        stderr
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
            >= 2,
        "too few log lines to judge: {:?}",
        String::from_utf8_lossy(&stderr)
    );
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_through_a_pipe_carry_no_colour_codes() {
    let stderr = logs_of_one_delivery(&[]).await;
    assert!(
        !stderr.contains(&0x1b),
        "an escape sequence in piped logs: {:?}",
        String::from_utf8_lossy(&stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_json_object_per_line_with_level_and_message() {
    let stderr = logs_of_one_delivery(&["--log-format", "json"]).await;
    let text = String::from_utf8(stderr).unwrap();
    for line in text.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value["level"].is_string(), "no level: {line}");
        assert!(
            value["fields"]["message"].is_string(),
            "no fields.message: {line}"
        );
    }
    assert!(text.contains("sidecar started"), "{text}");
}

/// The log lines leave out the spans made for every delivery (formatting them cost every
/// delivery, BENCHMARKS.md session 25), not what they said: a line written inside an attempt
/// names its event, delivery, subscription and attempt number itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempts_log_line_names_its_event_delivery_subscription_and_attempt() {
    let receiver = Receiver::replying(Reply::status(500)).await;
    let subscription = Subscription::new("*", &receiver.url("a")).unwrap();
    let app = SqliteApp::new(vec![subscription.clone()]).await;
    let events = events(1);
    app.publish(&events).await;
    let delivery = DeliveryId::for_event(events[0].id(), &subscription.id);
    let args = [
        "--unsigned",
        "--allow-loopback",
        "--log-level",
        "info",
        "--log-format",
        "json",
    ];
    let sidecar = Sidecar::start_capturing(&app.args(&args));
    let answered = eventually(Duration::from_secs(30), || receiver.answered() >= 1).await;
    sidecar.terminate();
    let (status, stdout, stderr) = sidecar.exit_capturing(Duration::from_secs(20)).await;
    let text = String::from_utf8(stderr).unwrap();
    assert!(answered, "never attempted: {text}");
    assert!(status.success(), "{status:?} {stdout}");
    let line: serde_json::Value = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .find(|line: &serde_json::Value| line["fields"]["message"] == "attempt failed; will retry")
        .unwrap_or_else(|| panic!("no line for the failed attempt: {text}"));
    let fields = &line["fields"];
    assert_eq!(fields["event"], events[0].id().to_string(), "{line}");
    assert_eq!(fields["delivery"], delivery.to_string(), "{line}");
    assert_eq!(
        fields["subscription"],
        subscription.id.to_string(),
        "{line}"
    );
    assert_eq!(fields["attempt"], 1, "{line}");
    assert!(
        !text.contains("fastapihooks.attempt") && !text.contains("fastapihooks.fan_out"),
        "a per-delivery span in the log lines: {text}"
    );
}
